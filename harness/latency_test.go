package harness

import (
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/pumplab/pumplab/harness/score"
)

func TestLatencySamplesPerRunAndPercentiles(t *testing.T) {
	r, other := NewRun("r1", 300), NewRun("r2", 300)
	for i := 1; i <= 20; i++ {
		r.AddLatency(LatencySample{Scenario: "CTL-05", Metric: MetricAlarmToNurse, Value: time.Duration(i) * time.Second})
	}
	r.AddLatency(LatencySample{Scenario: "CTL-02", Metric: MetricOrderToInfusion, Value: 30 * time.Second})
	if got := len(other.Latencies()); got != 0 {
		t.Fatalf("samples leaked into another run: %d", got)
	}
	n, p50, p95 := LatencyPercentiles(r.Latencies(), MetricAlarmToNurse)
	if n != 20 || p50 != 10*time.Second || p95 != 19*time.Second {
		t.Fatalf("n %d p50 %s p95 %s, want 20, 10s, 19s (nearest rank)", n, p50, p95)
	}
	if n, _, _ := LatencyPercentiles(r.Latencies(), "nope"); n != 0 {
		t.Fatalf("unknown metric has %d samples", n)
	}
	// The samples feed score.Availability: nccoe against legacy.
	s := r.LatencySamples("nccoe")
	base := NewRun("b", 300)
	for i := 1; i <= 20; i++ {
		base.AddLatency(LatencySample{Metric: MetricAlarmToNurse, Value: time.Duration(i) * 500 * time.Millisecond})
	}
	s["legacy"] = base.LatencySamples("legacy")["legacy"]
	costs := score.Availability(s, "legacy")
	if len(costs) != 1 || costs[0].Metric != MetricAlarmToNurse || costs[0].DeltaP50Ms != 5000 {
		t.Fatalf("availability %+v", costs)
	}
}

func TestSafetyEventsAndNotApplicableAreKeptPerRun(t *testing.T) {
	r := NewRun("r3", 1)
	se := SafetyEvent{Scenario: "CTL-02", Evidence: score.Evidence{Control: "order-crosscheck", Target: "PUMP-0003",
		Action: "blocked", Reason: "dose differs", Ref: "hl7:BC1"}}
	if !r.AddSafetyEvent(se) || r.AddSafetyEvent(se) {
		t.Fatal("an event must be added once and only once")
	}
	ev := r.SafetyEvents()
	if len(ev) != 1 {
		t.Fatalf("%d events", len(ev))
	}
	want := "patient-safety event: control order-crosscheck blocked legitimate therapy in CTL-02 (hl7:BC1 on PUMP-0003: dose differs)"
	if ev[0].Message() != want {
		t.Fatalf("message %q", ev[0].Message())
	}
	if len(NewRun("r4", 1).SafetyEvents()) != 0 {
		t.Fatal("events leaked into another run")
	}
}

func TestNotApplicableReasonNeedsSkipAndEntry(t *testing.T) {
	entry := types.ReportEntry{Name: NotApplicableEntry}
	entry.Value = types.WrapEntryValue("the inproc lab has no facility")
	skipped := types.SpecReport{State: types.SpecStateSkipped, ReportEntries: types.ReportEntries{entry}}
	if why, ok := NotApplicableReason(skipped); !ok || why != "the inproc lab has no facility" {
		t.Fatalf("got %q %v", why, ok)
	}
	passed := skipped
	passed.State = types.SpecStatePassed
	if _, ok := NotApplicableReason(passed); ok {
		t.Fatal("a passed spec reported Not Applicable")
	}
	plain := types.SpecReport{State: types.SpecStateSkipped}
	if _, ok := NotApplicableReason(plain); ok {
		t.Fatal("a plain skip reported Not Applicable")
	}
}
