// Package clock is the lab clock injected into every simulator.
//
// Simulator logic never calls time.Now: it asks a Clock. Three clocks exist:
//
//   - Real: wall time.
//   - Scaled: lab time runs Speed times faster than wall time from a fixed lab
//     epoch, so an hour of infusion can pass in a minute of wall time.
//   - Fake: time moves only when a test calls Advance; timers fire in order,
//     synchronously, which makes simulator tests deterministic.
//
// Durations given to a Clock (timers, tickers) are lab durations.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock is the lab's notion of time.
type Clock interface {
	// Now returns the current lab time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine (Real, Scaled) or synchronously
	// inside Advance (Fake) once lab duration d has passed.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTicker returns a ticker that ticks every lab duration d.
	NewTicker(d time.Duration) Ticker
	// Speed is the number of lab seconds per wall second (1 for Real).
	Speed() float64
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not happened yet and reports whether
	// it did so.
	Stop() bool
}

// Ticker delivers lab times on C at a fixed lab interval.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Sleep waits for lab duration d or until ctx is done.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	done := make(chan struct{})
	t := c.AfterFunc(d, func() { close(done) })
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Real returns the wall clock.
func Real() Clock { return NewScaled(time.Time{}, 1) }

// Scaled is a clock whose lab time runs Speed times as fast as wall time.
type Scaled struct {
	epoch     time.Time // lab time at wallStart
	wallStart time.Time
	speed     float64
}

// NewScaled returns a clock that reads epoch now and advances speed lab
// seconds per wall second. A zero epoch means the current wall time; a speed
// below or equal to zero means 1.
func NewScaled(epoch time.Time, speed float64) *Scaled {
	if speed <= 0 {
		speed = 1
	}
	now := time.Now()
	if epoch.IsZero() {
		epoch = now
	}
	return &Scaled{epoch: epoch, wallStart: now, speed: speed}
}

// Now implements Clock.
func (s *Scaled) Now() time.Time {
	el := time.Since(s.wallStart)
	return s.epoch.Add(time.Duration(float64(el) * s.speed))
}

// Speed implements Clock.
func (s *Scaled) Speed() float64 { return s.speed }

func (s *Scaled) wall(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) / s.speed)
}

// AfterFunc implements Clock.
func (s *Scaled) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(s.wall(d), f)}
}

// NewTicker implements Clock.
func (s *Scaled) NewTicker(d time.Duration) Ticker {
	w := s.wall(d)
	if w <= 0 {
		w = time.Nanosecond
	}
	t := &scaledTicker{t: time.NewTicker(w), c: make(chan time.Time, 1), stop: make(chan struct{})}
	go func() {
		for {
			select {
			case <-t.t.C:
				select {
				case t.c <- s.Now():
				default:
				}
			case <-t.stop:
				return
			}
		}
	}()
	return t
}

type realTimer struct{ t *time.Timer }

func (r realTimer) Stop() bool { return r.t.Stop() }

type scaledTicker struct {
	t    *time.Ticker
	c    chan time.Time
	once sync.Once
	stop chan struct{}
}

func (t *scaledTicker) C() <-chan time.Time { return t.c }
func (t *scaledTicker) Stop() {
	t.once.Do(func() { t.t.Stop(); close(t.stop) })
}
