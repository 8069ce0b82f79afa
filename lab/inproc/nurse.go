package inproc

import (
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// nurse is the simulated nursing staff at the bedside: it confirms
// auto-programmed infusions (overriding soft limits with a reason), and
// answers alarms dispatched to the communicators, each after a log-normal
// latency drawn from the lab's seed.
type nurse struct {
	l       *Lab
	mu      sync.Mutex
	timers  map[uint64]clock.Timer // pending actions, removed when they run
	next    uint64
	cancels []func()
	closed  bool
	attn    attention // what each nurse has still to read on her phone (attention.go)
}

const nurseUser = "RN0042"

func newNurse(l *Lab) *nurse {
	n := &nurse{l: l, timers: map[uint64]clock.Timer{}}
	for id, p := range l.PumpModels {
		n.cancels = append(n.cancels, p.Listen(func(o pump.Output) { n.onPump(id, p, o) }))
	}
	return n
}

// onPump reacts to a program waiting for confirmation at the pump.
func (n *nurse) onPump(id string, p *pump.Pump, o pump.Output) {
	ev := o.Event
	if ev == nil || ev.Type != pumpwire.EvProgramAccepted {
		return
	}
	ch := ev.Channel
	n.at(n.l.topo.Nurse.ConfirmMedian, func() {
		s, err := p.Snapshot(ch)
		if err != nil {
			return
		}
		if s.State != pump.ChProgramming && s.Pending == nil {
			return // already started, replaced or cleared
		}
		if s.NeedsOverride {
			if err := p.Override(ch, n.l.topo.Nurse.OverrideReason, nurseUser); err != nil {
				n.l.log.Warn("nurse: override refused", "pump", id, "channel", ch, "err", err)
				return
			}
		}
		if err := p.Start(ch, nurseUser); err != nil {
			n.l.log.Warn("nurse: start refused", "pump", id, "channel", ch, "err", err)
			return
		}
	})
}

// at runs f after a log-normal lab latency around median.
func (n *nurse) at(median time.Duration, f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.next++
	id := n.next
	n.timers[id] = n.l.clk.AfterFunc(n.l.lognormal(median, n.l.topo.Nurse.Sigma), func() {
		n.mu.Lock()
		delete(n.timers, id)
		closed := n.closed
		n.mu.Unlock()
		if !closed {
			f()
		}
	})
}

func (n *nurse) close() {
	n.mu.Lock()
	n.closed = true
	ts := n.timers
	n.timers = nil
	n.mu.Unlock()
	for _, t := range ts {
		t.Stop()
	}
	for _, c := range n.cancels {
		c()
	}
}
