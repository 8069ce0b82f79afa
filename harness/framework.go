// Package harness is the Ginkgo-facing framework of the scenario suite: one
// Framework per Describe acquires a lab from the chosen provider, registers
// its teardown at once and dumps evidence when a spec fails.
//
// Entry points (cmd/pumplab, suite test files) choose the provider with Use;
// scenarios only call New and the Framework's methods.
package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
)

// MinFleet is the smallest fleet a scenario's lab gets: scenarios put
// their patients on distinct pumps of the fleet (up to the thirteenth), so
// a smaller --pumps is raised to it per scenario.
const MinFleet = 14

// Timeouts are every wait of the suite in one place (wall time).
type Timeouts struct {
	// LabStart bounds bringing a hospital up.
	LabStart time.Duration
	// Workflow bounds one clinical workflow step (an order, a scan, a
	// documentation round trip).
	Workflow time.Duration
	// Therapy bounds waiting for a pump to reach a therapy state (e.g. VTBI
	// complete) at the lab's clock speed.
	Therapy time.Duration
}

// DefaultTimeouts are used unless an entry point changes them.
var DefaultTimeouts = Timeouts{LabStart: 90 * time.Second, Workflow: 30 * time.Second, Therapy: 2 * time.Minute}

var (
	cfgMu    sync.Mutex
	provider = "inproc"
	topology lab.Topology
)

// Use chooses the provider and the topology every Framework acquires. Only
// entry points call it.
func Use(providerName string, t lab.Topology) {
	cfgMu.Lock()
	defer cfgMu.Unlock()
	provider, topology = providerName, t
}

// Current returns the provider name and topology in use.
func Current() (string, lab.Topology) {
	cfgMu.Lock()
	defer cfgMu.Unlock()
	return provider, topology
}

// Framework is the one object a scenario's Describe works with.
type Framework struct {
	// Name is the scenario's base name, e.g. "ctl-01-closed-loop-piv".
	Name string
	// Lab is the running lab of the current spec.
	Lab lab.Lab
	// Timeouts for this scenario.
	Timeouts Timeouts
	// Topology overrides the suite's topology fields that are set (non-zero).
	Topology lab.Topology
}

// New returns a framework and registers, in the enclosing Describe, a
// BeforeEach that starts a lab and defers its teardown, and a failure hook
// that dumps evidence.
func New(name string) *Framework {
	f := &Framework{Name: name, Timeouts: DefaultTimeouts}
	ginkgo.BeforeEach(func(ctx ginkgo.SpecContext) {
		name, t := Current()
		t = merge(t, f.Topology)
		p, err := lab.Lookup(name)
		if err != nil {
			ginkgo.Fail(err.Error())
		}
		sctx, cancel := context.WithTimeout(ctx, f.Timeouts.LabStart)
		defer cancel()
		l, err := p.Start(sctx, t)
		if err != nil {
			ginkgo.Fail(fmt.Sprintf("start %s lab for %s: %v", name, f.Name, err))
		}
		f.Lab = l
		ginkgo.DeferCleanup(func() error { return l.Close() })
		// The attack toolkit's default safety rail takes the lab's own
		// networks (a container lab's) besides loopback, for this spec only.
		if z, ok := l.(lab.Zoned); ok {
			if err := attack.UseLab(z.Subnets()); err != nil {
				ginkgo.Fail(fmt.Sprintf("lab networks of %s: %v", f.Name, err))
			}
			ginkgo.DeferCleanup(func() { _ = attack.UseLab(nil) })
		}
		// Runs before Close: the controls' evidence goes to the run record.
		ginkgo.DeferCleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ev, err := l.Evidence(ctx)
			if err != nil {
				fmt.Fprintf(ginkgo.GinkgoWriter, "evidence of %s: %v\n", f.Name, err)
				return
			}
			r := CurrentRun()
			for _, e := range ev {
				r.AddEvidence(score.Evidence{Control: e.Control, Time: e.Time, Target: e.Target, Action: e.Action, Reason: e.Reason, Ref: e.Ref})
			}
		})
		ginkgo.DeferCleanup(func() {
			if ginkgo.CurrentSpecReport().Failed() {
				f.dumpEvidence()
			}
		})
	})
	return f
}

// merge overlays the set fields of o on t.
func merge(t, o lab.Topology) lab.Topology {
	if o.Pumps > 0 {
		t.Pumps = o.Pumps
	}
	if t.Pumps > 0 && t.Pumps < MinFleet {
		t.Pumps = MinFleet
	}
	if o.Speed > 0 {
		t.Speed = o.Speed
	}
	if o.Seed != 0 {
		t.Seed = o.Seed
	}
	if o.Broker != "" {
		t.Broker = o.Broker
	}
	return t
}

// Attack runs one attack step with its ground truth recorded first (see
// attack.Do). It fills in the run id and the lab clock, and converts the
// step's clinical window from lab time to the wall time the scorer uses.
func (f *Framework) Attack(ctx context.Context, s attack.Step, action func(ctx context.Context) error) error {
	r := CurrentRun()
	s.RunID = r.ID
	if s.Lab == nil && f.Lab != nil {
		s.Lab = f.Lab.Clock()
	}
	labWindow := s.Window
	if labWindow <= 0 {
		labWindow = score.DefaultWindow
	}
	s.Window = time.Duration(float64(labWindow) / r.Speed)
	return attack.Do(ctx, r, s, action)
}

// ControlOn reports whether the lab enforces a posture control (e.g.
// order-crosscheck), so that a scenario can state what it expects: blocked
// with the control, harm without.
func (f *Framework) ControlOn(name string) bool {
	if f.Lab == nil {
		return false
	}
	enforced, _ := f.Lab.Controls()
	for _, c := range enforced {
		if c == name {
			return true
		}
	}
	return false
}

// Observe records what the scenario observed of a step: whether its effect
// happened, whether the pump's own safety functions caught it, the harm.
func (f *Framework) Observe(stepID string, o score.Observed) { CurrentRun().Observe(stepID, o) }

// Context returns a context bounded by d and by the spec.
func (f *Framework) Context(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, d)
}

// dumpEvidence writes what the lab knows to the Ginkgo writer: pump
// registry, alarm records, the truth layers of channels with a therapy, and
// the run's ground truth and the tools' latest alerts. It runs before the
// lab is closed.
func (f *Framework) dumpEvidence() {
	if f.Lab == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w := ginkgo.GinkgoWriter
	fmt.Fprintf(w, "\n=== evidence for %s (lab %s, lab time %s)\n", f.Name, f.Lab.Provider(), f.Lab.Clock().Now().Format(time.RFC3339))
	if ps, err := f.Lab.PumpServer().Pumps(ctx); err == nil {
		b, _ := json.Marshal(ps)
		fmt.Fprintf(w, "pumps: %s\n", b)
	}
	if as, err := f.Lab.Alarms().Records(ctx); err == nil {
		b, _ := json.Marshal(as)
		fmt.Fprintf(w, "alarms: %s\n", b)
	}
	// Truth layers of every channel A that carries an order or a program.
	for _, id := range f.Lab.Pumps() {
		t, err := f.Lab.Devices().Truth(ctx, id, "A")
		if err != nil || (t.Ordered.OrderID == "" && t.Programmed.OrderID == "" && t.Programmed.RateMLH == 0) {
			continue
		}
		b, _ := json.Marshal(t)
		fmt.Fprintf(w, "truth %s/A: %s\n", id, b)
	}
	r := CurrentRun()
	if steps := r.Steps(); len(steps) > 0 {
		b, _ := json.Marshal(steps)
		fmt.Fprintf(w, "ground truth: %s\n", b)
	}
	if as := r.Alerts(); len(as) > 0 {
		if len(as) > 20 {
			fmt.Fprintf(w, "alerts: %d, the last 20:\n", len(as))
			as = as[len(as)-20:]
		}
		b, _ := json.Marshal(as)
		fmt.Fprintf(w, "alerts: %s\n", b)
	}
}
