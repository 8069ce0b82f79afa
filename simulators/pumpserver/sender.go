package pumpserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pumplab/pumplab/simulators/hl7"
)

// sender delivers HL7 messages to one MLLP destination in order, over one
// persistent connection that it re-dials after failures. Nothing is dropped
// silently: a message stays queued until the peer acknowledged it (any MSA),
// and a full queue is an error returned to the caller and counted.
type sender struct {
	name   string
	addrMu sync.Mutex
	addr   string
	redial atomic.Bool // the address changed: drop the connection before the next send
	tls    *tls.Config
	log    *slog.Logger

	q        chan *hl7.Message
	once     sync.Once
	done     chan struct{}
	stopped  chan struct{}
	sent     atomic.Int64
	retries  atomic.Int64
	rejected atomic.Int64 // peer answered AE/AR/CE/CR
	overflow atomic.Int64
	inflight atomic.Int64 // 1 while a message taken from q is not yet acknowledged

	onAck func(m, ack *hl7.Message)
}

func newSender(name, addr string, tlsConf *tls.Config, depth int, log *slog.Logger) *sender {
	if depth <= 0 {
		depth = 10000
	}
	return &sender{name: name, addr: addr, tls: tlsConf, log: log,
		q: make(chan *hl7.Message, depth), done: make(chan struct{}), stopped: make(chan struct{})}
}

// enqueue queues m; it fails when the queue is full or the sender stopped.
func (s *sender) enqueue(m *hl7.Message) error {
	select {
	case <-s.done:
		return fmt.Errorf("pumpserver: send %s to %s: sender closed", m.Type(), s.name)
	default:
	}
	select {
	case s.q <- m:
		return nil
	default:
		s.overflow.Add(1)
		s.log.Error("outbound queue full", "dest", s.name, "type", m.Type().String(), "id", m.ControlID())
		return fmt.Errorf("pumpserver: send %s to %s: queue of %d full", m.Type(), s.name, cap(s.q))
	}
}

func (s *sender) run() {
	defer close(s.stopped)
	var c *hl7.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	backoff := 50 * time.Millisecond
	for {
		var m *hl7.Message
		select {
		case m = <-s.q:
			s.inflight.Store(1)
		case <-s.done:
			return
		}
		for {
			if s.redial.Swap(false) && c != nil {
				c.Close()
				c = nil
			}
			if c == nil {
				addr := s.address()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var err error
				c, err = hl7.Dial(ctx, addr, s.tls)
				cancel()
				if err != nil {
					c = nil
					s.retries.Add(1)
					s.log.Warn("dial failed, retrying", "dest", s.name, "addr", addr, "err", err)
					if !s.wait(backoff) {
						return
					}
					backoff = min(backoff*2, 2*time.Second)
					continue
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			ack, err := c.Send(ctx, m)
			cancel()
			if err != nil {
				c.Close()
				c = nil
				s.retries.Add(1)
				s.log.Warn("send failed, retrying", "dest", s.name, "type", m.Type().String(), "err", err)
				if !s.wait(backoff) {
					return
				}
				backoff = min(backoff*2, 2*time.Second)
				continue
			}
			backoff = 50 * time.Millisecond
			s.sent.Add(1)
			s.inflight.Store(0)
			if code := ack.Get("MSA-1"); code != "AA" && code != "CA" {
				s.rejected.Add(1)
				s.log.Warn("peer refused message", "dest", s.name, "type", m.Type().String(), "ack", code, "err", ack.Get("ERR-8"))
			}
			if s.onAck != nil {
				s.onAck(m, ack)
			}
			break
		}
	}
}

func (s *sender) wait(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-s.done:
		return false
	}
}

func (s *sender) address() string {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

// setAddress points the sender at another address; the next message goes
// over a new connection to it.
func (s *sender) setAddress(addr string) (old string) {
	s.addrMu.Lock()
	old, s.addr = s.addr, addr
	s.addrMu.Unlock()
	s.redial.Store(true)
	return old
}

// pending is the number of messages not yet acknowledged by the peer: the
// queue and the one being sent or retried.
func (s *sender) pending() int { return len(s.q) + int(s.inflight.Load()) }

func (s *sender) close() {
	s.once.Do(func() { close(s.done) })
	<-s.stopped
}
