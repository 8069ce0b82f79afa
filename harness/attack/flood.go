package attack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"
)

// Hard caps of every flood, whatever the caller asks.
const (
	MaxFloodCount    = 100_000
	MaxFloodDuration = 60 * time.Second
)

// FloodLimits bound a flood. Both are required: the flood stops at Count
// messages (or connections) or after Duration, whichever comes first.
type FloodLimits struct {
	Count    int           // 1..MaxFloodCount
	Duration time.Duration // >0, at most MaxFloodDuration
}

// Validate checks the limits against the hard caps.
func (l FloodLimits) Validate() error {
	if l.Count <= 0 || l.Count > MaxFloodCount {
		return fmt.Errorf("attack: flood: count %d not in 1..%d", l.Count, MaxFloodCount)
	}
	if l.Duration <= 0 || l.Duration > MaxFloodDuration {
		return fmt.Errorf("attack: flood: duration %v not in (0, %v]", l.Duration, MaxFloodDuration)
	}
	return nil
}

// Why a flood stopped.
const (
	StopCount    = "count"
	StopDuration = "duration"
	StopContext  = "context" // the caller's ctx ended
	StopError    = "error"   // the target stopped accepting
)

// FloodResult says what a flood did.
type FloodResult struct {
	Sent    int           // messages (or connections) sent
	Errors  int           // sends that failed
	Elapsed time.Duration // wall time
	Stopped string        // StopCount, StopDuration, StopContext or StopError
}

// floodLoop calls send(ctx, i) until a bound; it stops early after
// maxErrors consecutive errors.
func floodLoop(ctx context.Context, lim FloodLimits, send func(ctx context.Context, i int) error) (FloodResult, error) {
	if err := lim.Validate(); err != nil {
		return FloodResult{}, err
	}
	const maxErrors = 10
	start := time.Now()
	fctx, cancel := context.WithTimeout(ctx, lim.Duration)
	defer cancel()
	var r FloodResult
	var lastErr error
	consecutive := 0
	for r.Sent < lim.Count {
		if fctx.Err() != nil {
			break
		}
		if err := send(fctx, r.Sent); err != nil {
			if fctx.Err() != nil {
				break
			}
			r.Errors++
			consecutive++
			lastErr = err
			if consecutive >= maxErrors {
				r.Stopped, r.Elapsed = StopError, time.Since(start)
				return r, fmt.Errorf("attack: flood: %d consecutive errors after %d sent: %w", consecutive, r.Sent, lastErr)
			}
			continue
		}
		consecutive = 0
		r.Sent++
	}
	r.Elapsed = time.Since(start)
	switch {
	case r.Sent >= lim.Count:
		r.Stopped = StopCount
	case ctx.Err() != nil:
		r.Stopped = StopContext
		return r, fmt.Errorf("attack: flood: %w", ctx.Err())
	default:
		r.Stopped = StopDuration
	}
	return r, nil
}

// Flood publishes payload(i) on topic, at qos, until a bound. QoS 1/2
// publishes wait for the broker each time; QoS 0 ones for the write.
func (m *MQTT) Flood(ctx context.Context, topic string, qos byte, payload func(i int) []byte, lim FloodLimits) (FloodResult, error) {
	if payload == nil {
		return FloodResult{}, errors.New("attack: mqtt: flood: no payload function")
	}
	Correlate(ctx, "mqtt-client:"+m.cfg.ClientID)
	r, err := floodLoop(ctx, lim, func(ctx context.Context, i int) error {
		return wait(ctx, m.c.Publish(topic, qos, false, payload(i)))
	})
	if err != nil {
		return r, fmt.Errorf("attack: mqtt: flood %s as %q: %w", topic, m.cfg.ClientID, err)
	}
	return r, nil
}

// MLLPFloodMode says what an MLLP flood multiplies.
type MLLPFloodMode int

const (
	// FloodMessages sends the messages one after the other on one
	// connection, each waiting for its acknowledgement.
	FloodMessages MLLPFloodMode = iota
	// FloodConnections opens one connection per count and sends one
	// message on each without waiting for a reply; the connections stay
	// open until the flood ends, then are closed.
	FloodConnections
)

// FloodMLLP floods addr (a lab target; TLS with tlsConf) with msg(i),
// until a bound.
func FloodMLLP(ctx context.Context, tg *Targets, addr string, tlsConf *tls.Config, mode MLLPFloodMode, msg func(i int) []byte, lim FloodLimits) (FloodResult, error) {
	if msg == nil {
		return FloodResult{}, fmt.Errorf("attack: mllp flood %s: no message function", addr)
	}
	if err := lim.Validate(); err != nil {
		return FloodResult{}, fmt.Errorf("attack: mllp flood %s: %w", addr, err)
	}
	if err := tg.Check(ctx, addr); err != nil {
		return FloodResult{}, fmt.Errorf("attack: mllp flood %s: %w", addr, err)
	}
	var r FloodResult
	var err error
	switch mode {
	case FloodMessages:
		var c *mllpConn
		defer func() {
			if c != nil {
				_ = c.Close()
			}
		}()
		r, err = floodLoop(ctx, lim, func(ctx context.Context, i int) error {
			if c == nil {
				if c, err = dialMLLP(ctx, tg, addr, tlsConf); err != nil {
					c = nil
					return err
				}
				Correlate(ctx, tuple(c.Conn()))
			}
			if _, err := c.SendRaw(ctx, msg(i)); err != nil {
				_ = c.Close()
				c = nil // a broken stream is out of step: reconnect
				return err
			}
			return nil
		})
	case FloodConnections:
		var open []*mllpConn
		defer func() {
			for _, c := range open {
				_ = c.Close()
			}
		}()
		r, err = floodLoop(ctx, lim, func(ctx context.Context, i int) error {
			c, err := dialMLLP(ctx, tg, addr, tlsConf)
			if err != nil {
				return err
			}
			open = append(open, c)
			_, err = c.send(ctx, msg(i), false)
			return err
		})
	default:
		return FloodResult{}, fmt.Errorf("attack: mllp flood %s: unknown mode %d", addr, mode)
	}
	if err != nil {
		return r, fmt.Errorf("attack: mllp flood %s: %w", addr, err)
	}
	return r, nil
}
