package attack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/harness/score"
)

// Recorder takes ground-truth records. Do calls Record twice per step: once
// before the action (End zero) and once after it (End set, correlation ids
// added); a recorder keeps the last record of a step (same RunID,
// ScenarioID and StepID).
type Recorder interface {
	Record(ctx context.Context, s score.Step) error
}

// Memory is an in-memory Recorder, safe for concurrent use.
type Memory struct {
	mu    sync.Mutex
	steps []score.Step
	log   []score.Step
}

// Record implements Recorder.
func (m *Memory) Record(_ context.Context, s score.Step) error {
	s = cloneStep(s)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log = append(m.log, s)
	for i, old := range m.steps {
		if old.RunID == s.RunID && old.ScenarioID == s.ScenarioID && old.StepID == s.StepID {
			m.steps[i] = s
			return nil
		}
	}
	m.steps = append(m.steps, s)
	return nil
}

// Steps returns the latest record of every step, in the order the steps
// were first recorded.
func (m *Memory) Steps() []score.Step {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]score.Step, len(m.steps))
	for i, s := range m.steps {
		out[i] = cloneStep(s)
	}
	return out
}

// Records returns every Record call in order (a step appears once at its
// start and once at its end).
func (m *Memory) Records() []score.Step {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]score.Step, len(m.log))
	for i, s := range m.log {
		out[i] = cloneStep(s)
	}
	return out
}

func cloneStep(s score.Step) score.Step {
	s.Techniques = slices.Clone(s.Techniques)
	s.Assets = slices.Clone(s.Assets)
	s.Correlation = slices.Clone(s.Correlation)
	return s
}

// Step describes one attack step for the ground truth.
type Step struct {
	RunID      string
	ScenarioID string // ATK-10
	StepID     string // ATK-10/1
	// Techniques are ATT&CK for ICS technique ids (at least one, each in
	// Techniques); Tactic an optional tactic id (in Tactics).
	Techniques []string
	Tactic     string
	// Assets are the targets: pump ids, service names, addresses (at
	// least one).
	Assets []string
	// Correlation ids known before the step; helpers add more while it runs
	// (see Correlate).
	Correlation []string
	// Criteria says what counts as the step having happened; Control is the
	// control expected to block it; Window its clinical window (zero =
	// score.DefaultWindow).
	Criteria string
	Control  string
	Window   time.Duration
	// Wall returns wall time for Start and End; nil means time.Now.
	Wall func() time.Time
	// Lab is the lab clock for LabStart and LabEnd; nil leaves them zero.
	Lab clock.Clock
}

// Validate checks the step's ids, techniques, tactic and assets.
func (s Step) Validate() error {
	if s.ScenarioID == "" || s.StepID == "" {
		return fmt.Errorf("attack: step %q/%q: scenario id and step id are required", s.ScenarioID, s.StepID)
	}
	if err := CheckTechniques(s.Techniques...); err != nil {
		return fmt.Errorf("attack: step %s: %w", s.StepID, err)
	}
	if s.Tactic != "" {
		if err := CheckTactic(s.Tactic); err != nil {
			return fmt.Errorf("attack: step %s: %w", s.StepID, err)
		}
	}
	if len(s.Assets) == 0 {
		return fmt.Errorf("attack: step %s: no target assets", s.StepID)
	}
	if s.Window < 0 {
		return fmt.Errorf("attack: step %s: negative clinical window %v", s.StepID, s.Window)
	}
	return nil
}

// Record returns the step as a ground-truth record, without times.
func (s Step) Record() score.Step {
	return score.Step{
		RunID: s.RunID, ScenarioID: s.ScenarioID, StepID: s.StepID,
		Techniques: slices.Clone(s.Techniques), Tactic: s.Tactic,
		Assets: slices.Clone(s.Assets), Correlation: slices.Clone(s.Correlation),
		Criteria: s.Criteria, Control: s.Control, Window: s.Window,
	}
}

type traceKey struct{}

// trace collects correlation ids while a step runs.
type trace struct {
	mu  sync.Mutex
	ids []string
}

// Correlate adds correlation ids (MQTT client ids, message ids, TCP
// 5-tuples) to the step running in ctx, if any; helpers of this package
// call it for what they send. Duplicates are kept once.
func Correlate(ctx context.Context, ids ...string) {
	t, _ := ctx.Value(traceKey{}).(*trace)
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if id != "" && !slices.Contains(t.ids, id) {
			t.ids = append(t.ids, id)
		}
	}
}

// Do runs one attack step with its ground truth: it validates the step,
// records it (Start and LabStart set) BEFORE the action runs, runs the
// action with a context that collects correlation ids, and records it again
// with End, LabEnd and the correlation ids, whatever the action returned.
// When the first record fails the action does not run. The error joins the
// action's error and the final record's, wrapped with the step id.
func Do(ctx context.Context, rec Recorder, s Step, action func(ctx context.Context) error) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if rec == nil {
		return fmt.Errorf("attack: step %s: no recorder: ground truth must be written before the step acts", s.StepID)
	}
	wall := s.Wall
	if wall == nil {
		wall = time.Now
	}
	r := s.Record()
	r.Start = wall()
	if s.Lab != nil {
		r.LabStart = s.Lab.Now()
	}
	if err := rec.Record(ctx, r); err != nil {
		return fmt.Errorf("attack: step %s: record start (action not run): %w", s.StepID, err)
	}
	tr := &trace{ids: slices.Clone(s.Correlation)}
	actErr := runAction(context.WithValue(ctx, traceKey{}, tr), action)
	r.End = wall()
	if s.Lab != nil {
		r.LabEnd = s.Lab.Now()
	}
	tr.mu.Lock()
	r.Correlation = slices.Clone(tr.ids)
	tr.mu.Unlock()
	// The end record is written even when ctx is done: the step happened.
	recErr := rec.Record(context.WithoutCancel(ctx), r)
	if recErr != nil {
		recErr = fmt.Errorf("record end: %w", recErr)
	}
	if err := errors.Join(actErr, recErr); err != nil {
		return fmt.Errorf("attack: step %s: %w", s.StepID, err)
	}
	return nil
}

func runAction(ctx context.Context, action func(ctx context.Context) error) (err error) {
	if action == nil {
		return errors.New("no action")
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("action panicked: %v", p)
		}
	}()
	return action(ctx)
}
