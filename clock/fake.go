package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a manual clock for tests. Time moves only in Advance, which fires
// every timer that falls due, in due order, on the caller's goroutine, with
// Now reading each timer's due time while it runs.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers []*fakeTimer
}

// NewFake returns a fake clock reading start (a fixed date when zero).
func NewFake(start time.Time) *Fake {
	if start.IsZero() {
		start = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	}
	return &Fake{now: start}
}

type fakeTimer struct {
	c       *Fake
	due     time.Time
	seq     uint64
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.stopped {
		return false
	}
	t.stopped = true
	for i, o := range t.c.timers {
		if o == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			break
		}
	}
	return true
}

// Now implements Clock.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Speed implements Clock; a fake clock has no wall relation and reports 1.
func (c *Fake) Speed() float64 { return 1 }

// AfterFunc implements Clock. A non-positive d fires at the next Advance.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d < 0 {
		d = 0
	}
	c.seq++
	t := &fakeTimer{c: c, due: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// NewTicker implements Clock. Ticks are dropped when C is full, as with
// time.Ticker.
func (c *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		d = time.Nanosecond
	}
	ft := &fakeTicker{ch: make(chan time.Time, 1)}
	var arm func()
	arm = func() {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		if ft.stopped {
			return
		}
		ft.t = c.AfterFunc(d, func() {
			select {
			case ft.ch <- c.Now():
			default:
			}
			arm()
		})
	}
	arm()
	return ft
}

type fakeTicker struct {
	mu      sync.Mutex
	ch      chan time.Time
	t       Timer
	stopped bool
}

func (t *fakeTicker) C() <-chan time.Time { return t.ch }
func (t *fakeTicker) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.t != nil {
		t.t.Stop()
	}
}

// Advance moves the clock forward by d, firing due timers in order.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.Slice(c.timers, func(i, j int) bool {
			if c.timers[i].due.Equal(c.timers[j].due) {
				return c.timers[i].seq < c.timers[j].seq
			}
			return c.timers[i].due.Before(c.timers[j].due)
		})
		if len(c.timers) == 0 || c.timers[0].due.After(end) {
			c.now = end
			c.mu.Unlock()
			return
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		t.stopped = true
		if t.due.After(c.now) {
			c.now = t.due
		}
		c.mu.Unlock()
		t.f()
	}
}

// Pending reports how many timers are waiting.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}
