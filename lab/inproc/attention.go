package inproc

import (
	"sync"
	"time"
)

// AlertReadTime is how long (lab time) a nurse takes to read one message
// on her phone. She reads her messages in the order they arrive and answers
// one only after reading it, so a phone flooded with messages delays every
// alert behind them (alarm fatigue, denial of view: REFERENCE.md ATK-27).
// With a few messages at a time the delay is negligible (30 messages at
// once: the last is read 30 s late).
const AlertReadTime = time.Second

// attention is each nurse's reading queue, by phone: when she will have
// read everything that arrived so far.
type attention struct {
	mu   sync.Mutex
	busy map[string]time.Time
}

// readDelay books the reading of a message arriving on phone now and
// returns how long from now until it is read.
func (a *attention) readDelay(phone string, now time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.busy == nil {
		a.busy = map[string]time.Time{}
	}
	start := now
	if b := a.busy[phone]; b.After(start) {
		start = b
	}
	done := start.Add(AlertReadTime)
	a.busy[phone] = done
	return done.Sub(now)
}

// atAfter runs f after the lab duration first plus a log-normal latency
// around median (nurse.at after a fixed delay).
func (n *nurse) atAfter(first, median time.Duration, f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.next++
	id := n.next
	n.timers[id] = n.l.clk.AfterFunc(first+n.l.lognormal(median, n.l.topo.Nurse.Sigma), func() {
		n.mu.Lock()
		delete(n.timers, id)
		closed := n.closed
		n.mu.Unlock()
		if !closed {
			f()
		}
	})
}
