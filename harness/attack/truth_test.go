package attack

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/harness/score"
)

// fakeWall is a wall clock that advances one second per reading.
func fakeWall() func() time.Time {
	t := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

func atk10() Step {
	return Step{RunID: "run-1", ScenarioID: "ATK-10", StepID: "ATK-10/1",
		Techniques: []string{"T0855", "T0848", "T0836", "T0831"}, Tactic: "TA0106",
		Assets: []string{"PUMP-0007", "pumpserver"}, Criteria: "pump programmed at 3x the ordered rate",
		Control: "mtls-pcd03", Wall: fakeWall()}
}

func TestDoRecordsBeforeAction(t *testing.T) {
	ctx := testCtx(t)
	var rec Memory
	lab := clock.NewFake(time.Date(2025, 3, 1, 10, 15, 0, 0, time.UTC))
	s := atk10()
	s.Lab = lab
	s.Correlation = []string{"pre-known"}
	ran := false
	err := Do(ctx, &rec, s, func(ctx context.Context) error {
		ran = true
		// Ground truth first: the step is recorded, without an end, before
		// the action does anything.
		got := rec.Records()
		if len(got) != 1 || got[0].StepID != "ATK-10/1" || got[0].Start.IsZero() || !got[0].End.IsZero() {
			t.Errorf("records when the action starts = %+v, want one start record", got)
		}
		lab.Advance(time.Minute)
		Correlate(ctx, "hl7:BCMA000123", "tcp:a->b", "hl7:BCMA000123", "")
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("Do = %v, ran = %v", err, ran)
	}
	steps := rec.Steps()
	if len(steps) != 1 {
		t.Fatalf("steps = %+v, want 1", steps)
	}
	st := steps[0]
	if !st.End.After(st.Start) || st.Start != time.Date(2026, 1, 1, 8, 0, 1, 0, time.UTC) {
		t.Errorf("start %v end %v: want injected wall times, end after start", st.Start, st.End)
	}
	if st.LabEnd.Sub(st.LabStart) != time.Minute {
		t.Errorf("lab start %v end %v, want one lab minute apart", st.LabStart, st.LabEnd)
	}
	if want := []string{"pre-known", "hl7:BCMA000123", "tcp:a->b"}; !slices.Equal(st.Correlation, want) {
		t.Errorf("correlation = %q, want %q", st.Correlation, want)
	}
	if !slices.Equal(st.Techniques, s.Techniques) || st.Tactic != "TA0106" || st.Control != "mtls-pcd03" || st.Criteria == "" || st.ScenarioID != "ATK-10" {
		t.Errorf("record = %+v", st)
	}
	if n := len(rec.Records()); n != 2 {
		t.Errorf("%d Record calls, want 2 (start, end)", n)
	}
}

func TestDoActionErrorStillEnds(t *testing.T) {
	ctx := testCtx(t)
	var rec Memory
	boom := errors.New("connection refused")
	err := Do(ctx, &rec, atk10(), func(context.Context) error { return boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "ATK-10/1") {
		t.Fatalf("Do = %v, want the action error wrapped with the step id", err)
	}
	if st := rec.Steps(); len(st) != 1 || st[0].End.IsZero() {
		t.Fatalf("steps = %+v, want the step ended", st)
	}
	err = Do(ctx, &rec, atk10(), func(context.Context) error { panic("bad") })
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panicking action: %v", err)
	}
}

type failingRecorder struct{ calls int }

func (f *failingRecorder) Record(context.Context, score.Step) error {
	f.calls++
	return errors.New("disk full")
}

func TestDoRefuses(t *testing.T) {
	ctx := testCtx(t)
	mutate := map[string]func(*Step){
		"unknown technique":   func(s *Step) { s.Techniques = []string{"T0855", "T9999"} },
		"enterprise id":       func(s *Step) { s.Techniques = []string{"T1190"} },
		"lowercase technique": func(s *Step) { s.Techniques = []string{"t0855"} },
		"no technique":        func(s *Step) { s.Techniques = nil },
		"unknown tactic":      func(s *Step) { s.Tactic = "TA0001" },
		"technique as tactic": func(s *Step) { s.Tactic = "T0855" },
		"no assets":           func(s *Step) { s.Assets = nil },
		"no scenario":         func(s *Step) { s.ScenarioID = "" },
		"no step id":          func(s *Step) { s.StepID = "" },
		"negative window":     func(s *Step) { s.Window = -time.Second },
	}
	for name, m := range mutate {
		var rec Memory
		s := atk10()
		m(&s)
		ran := false
		err := Do(ctx, &rec, s, func(context.Context) error { ran = true; return nil })
		if err == nil || ran || len(rec.Records()) != 0 {
			t.Errorf("%s: err = %v, ran = %v, records = %d; want refusal before anything", name, err, ran, len(rec.Records()))
		}
	}
	if err := Do(ctx, nil, atk10(), func(context.Context) error { return nil }); err == nil {
		t.Error("Do without a recorder accepted")
	}
	// A recorder that cannot write the start keeps the action from running.
	fr := &failingRecorder{}
	ran := false
	if err := Do(ctx, fr, atk10(), func(context.Context) error { ran = true; return nil }); err == nil || ran || fr.calls != 1 {
		t.Errorf("failing recorder: err = %v, ran = %v, calls = %d", err, ran, fr.calls)
	}
	for id := range Techniques {
		if len(id) != 5 || id[0] != 'T' {
			t.Errorf("technique table holds %q", id)
		}
	}
	if len(Techniques) != 51 || len(Tactics) != 12 {
		t.Errorf("tables: %d techniques, %d tactics; want Appendix A's 51 and 12", len(Techniques), len(Tactics))
	}
}

func TestMemoryKeepsStepsApart(t *testing.T) {
	ctx := testCtx(t)
	var rec Memory
	for _, id := range []string{"ATK-15/1", "ATK-15/2"} {
		s := atk10()
		s.ScenarioID, s.StepID, s.Techniques = "ATK-15", id, []string{"T0855", "T0830"}
		if err := Do(ctx, &rec, s, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	st := rec.Steps()
	if len(st) != 2 || st[0].StepID != "ATK-15/1" || st[1].StepID != "ATK-15/2" || st[0].End.IsZero() {
		t.Fatalf("steps = %+v", st)
	}
	st[0].Assets[0] = "changed" // a copy
	if rec.Steps()[0].Assets[0] == "changed" {
		t.Fatal("Steps returned shared slices")
	}
}
