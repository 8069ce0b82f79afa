package harness

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/score"
)

// Run collects what one run of the suite produces for scoring: the ground
// truth of every attack step (it is the attack.Recorder of the run), what
// the harness observed of each step, and the controls' evidence. Entry
// points create it and hand it to the suite with UseRun; the scorer reads it
// after the suite.
type Run struct {
	ID string
	// Speed is the lab clock's speed factor: a step's clinical window is lab
	// time, its ground-truth window wall time (Window / Speed).
	Speed float64

	mem      attack.Memory
	mu       sync.Mutex
	observed map[string]score.Observed
	evidence []score.Evidence
	alerts   func() []score.Alert
	hooks    []func(score.Step)
	endHooks []func(score.Step)
	started  map[string]bool
}

// NewRun returns an empty run.
func NewRun(id string, speed float64) *Run {
	if speed <= 0 {
		speed = 1
	}
	return &Run{ID: id, Speed: speed, observed: map[string]score.Observed{}, started: map[string]bool{}}
}

// ScoreOptions are the scorer's options for this run: its wall-time
// tolerances scaled to the lab clock (a 30 s tolerance at x300 would be two
// and a half lab hours), with floors for network jitter.
func (r *Run) ScoreOptions() score.Options {
	tol := max(time.Duration(float64(score.DefaultTolerance)/r.Speed), 500*time.Millisecond)
	late := max(time.Duration(float64(score.DefaultMaxLateness)/r.Speed), 5*time.Second)
	return score.Options{Tolerance: tol, MaxLateness: late}
}

// Record implements attack.Recorder. The first record of a step (before it
// acts) is passed to the OnStep hooks.
func (r *Run) Record(ctx context.Context, s score.Step) error {
	if err := r.mem.Record(ctx, s); err != nil {
		return err
	}
	r.mu.Lock()
	first := !r.started[s.StepID]
	r.started[s.StepID] = true
	hooks := append([]func(score.Step){}, r.hooks...)
	ends := append([]func(score.Step){}, r.endHooks...)
	r.mu.Unlock()
	if first {
		for _, h := range hooks {
			h(s)
		}
	}
	if !s.End.IsZero() {
		for _, h := range ends {
			h(s)
		}
	}
	return nil
}

// OnStepEnd registers f to be called with a step's final record (End set).
func (r *Run) OnStepEnd(f func(score.Step)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endHooks = append(r.endHooks, f)
}

// OnStep registers f to be called when a step is recorded, before it acts
// (built-in calibration tools such as the oracle use it).
func (r *Run) OnStep(f func(score.Step)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks = append(r.hooks, f)
}

// SetAlertSource tells the run where the tools' alerts are (the entry
// point's intake), so that failure evidence can show them.
func (r *Run) SetAlertSource(f func() []score.Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = f
}

// Alerts returns the tools' alerts so far (none without a source).
func (r *Run) Alerts() []score.Alert {
	r.mu.Lock()
	f := r.alerts
	r.mu.Unlock()
	if f == nil {
		return nil
	}
	return f()
}

// Observe records what was observed of a step after it ran.
func (r *Run) Observe(stepID string, o score.Observed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observed[stepID] = o
}

// AddEvidence records a control acting.
func (r *Run) AddEvidence(e score.Evidence) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evidence = append(r.evidence, e)
}

// Steps returns the ground truth, sorted by start time and step id.
func (r *Run) Steps() []score.Step {
	s := r.mem.Steps()
	sort.SliceStable(s, func(i, j int) bool {
		if !s[i].Start.Equal(s[j].Start) {
			return s[i].Start.Before(s[j].Start)
		}
		return s[i].StepID < s[j].StepID
	})
	return s
}

// Observed returns a copy of the observations by step id.
func (r *Run) Observed() map[string]score.Observed {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]score.Observed, len(r.observed))
	for k, v := range r.observed {
		out[k] = v
	}
	return out
}

// Evidence returns a copy of the controls' evidence.
func (r *Run) Evidence() []score.Evidence {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]score.Evidence(nil), r.evidence...)
}

var (
	runMu   sync.Mutex
	current *Run
)

// UseRun makes r the run every Framework records into. Only entry points
// call it. Without it, a Framework records into a run of its own so that
// scenarios also work under plain go test.
func UseRun(r *Run) {
	runMu.Lock()
	defer runMu.Unlock()
	current = r
}

// CurrentRun returns the run in use, creating a default one on first use.
func CurrentRun() *Run {
	runMu.Lock()
	defer runMu.Unlock()
	if current == nil {
		_, t := Current()
		current = NewRun(fmt.Sprintf("test-%s", time.Now().UTC().Format("20060102T150405Z")), t.WithDefaults().Speed)
	}
	return current
}
