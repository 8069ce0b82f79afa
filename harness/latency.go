package harness

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/pumplab/pumplab/harness/score"
)

// Workflow latency metrics the control scenarios record (lab time). The
// scorecard gives p50 and p95 per metric and compares postures
// (score.Availability).
const (
	// MetricOrderToInfusion: BCMA scan (PCD-03 sent) to the pump delivering.
	MetricOrderToInfusion = "order_to_infusion"
	// MetricTitrationToRate: a titration scan (PCD-03 XO sent) to the pump
	// running the new rate.
	MetricTitrationToRate = "titration_to_rate"
	// MetricAlarmToNurse: alarm onset at the pump to delivery on a phone (L_notify).
	MetricAlarmToNurse = "alarm_to_nurse"
	// MetricAlarmToAccept: alarm onset to a nurse accepting it (L_ack).
	MetricAlarmToAccept = "alarm_to_accept"
	// MetricLibraryRollout: library push to 95% of the fleet on the new version.
	MetricLibraryRollout = "library_rollout_95"
)

// LatencySample is one workflow latency of a scenario, in lab time.
type LatencySample struct {
	Scenario string        `json:"scenario"` // CTL-05
	Metric   string        `json:"metric"`   // alarm_to_nurse
	Value    time.Duration `json:"value"`    // lab time
	At       time.Time     `json:"at"`       // wall time it was recorded
}

// SafetyEvent is a control blocking legitimate therapy during a control
// scenario: a patient-safety event, reported, never hidden.
type SafetyEvent struct {
	Scenario string         `json:"scenario"`
	Evidence score.Evidence `json:"evidence"`
}

// Message is the failure text of the event.
func (e SafetyEvent) Message() string {
	return fmt.Sprintf("patient-safety event: control %s blocked legitimate therapy in %s (%s on %s: %s)",
		e.Evidence.Control, e.Scenario, e.Evidence.Ref, e.Evidence.Target, e.Evidence.Reason)
}

// runExtras are the samples and events of a run, kept beside the Run.
type runExtras struct {
	mu      sync.Mutex
	lat     []LatencySample
	safety  []SafetyEvent
	seen    map[SafetyEvent]bool
	notAppl map[string]string
}

var (
	extrasMu sync.Mutex
	extras   = map[*Run]*runExtras{}
)

func (r *Run) extras() *runExtras {
	extrasMu.Lock()
	defer extrasMu.Unlock()
	x := extras[r]
	if x == nil {
		x = &runExtras{notAppl: map[string]string{}, seen: map[SafetyEvent]bool{}}
		extras[r] = x
	}
	return x
}

// AddLatency records a latency sample.
func (r *Run) AddLatency(s LatencySample) {
	x := r.extras()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.lat = append(x.lat, s)
}

// Latencies returns the run's latency samples in recording order.
func (r *Run) Latencies() []LatencySample {
	x := r.extras()
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]LatencySample(nil), x.lat...)
}

// LatencySamples returns the run's samples by metric, as score.Availability
// wants them under the run's posture name.
func (r *Run) LatencySamples(posture string) score.LatencySamples {
	m := map[string][]time.Duration{}
	for _, s := range r.Latencies() {
		m[s.Metric] = append(m[s.Metric], s.Value)
	}
	return score.LatencySamples{posture: m}
}

// AddSafetyEvent records a patient-safety event once and reports whether
// it was new (the same event added again is ignored).
func (r *Run) AddSafetyEvent(e SafetyEvent) bool {
	x := r.extras()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.seen[e] {
		return false
	}
	x.seen[e] = true
	x.safety = append(x.safety, e)
	return true
}

// SafetyEvents returns the run's patient-safety events.
func (r *Run) SafetyEvents() []SafetyEvent {
	x := r.extras()
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]SafetyEvent(nil), x.safety...)
}

// NotApplicable returns the scenarios reported Not Applicable, with reasons.
func (r *Run) NotApplicable() map[string]string {
	x := r.extras()
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[string]string, len(x.notAppl))
	for k, v := range x.notAppl {
		out[k] = v
	}
	return out
}

// Latency records a workflow latency (lab time) of the current scenario
// under metric (the Metric* constants) and adds a report entry.
func (f *Framework) Latency(metric string, d time.Duration) {
	id := currentScenarioID()
	CurrentRun().AddLatency(LatencySample{Scenario: id, Metric: metric, Value: d, At: time.Now()})
	ginkgo.AddReportEntry("latency "+metric, d.String())
}

// NotApplicableEntry is the report entry name that marks a spec Not
// Applicable (see NotApplicableReason).
const NotApplicableEntry = "not_applicable"

// NotApplicable records that the lab cannot host the current scenario (the
// reason names what is missing) and skips the spec: the report shows it Not
// Applicable, never passed.
func (f *Framework) NotApplicable(reason string) {
	id := currentScenarioID()
	x := CurrentRun().extras()
	x.mu.Lock()
	x.notAppl[id] = reason
	x.mu.Unlock()
	ginkgo.AddReportEntry(NotApplicableEntry, reason)
	ginkgo.Skip("not applicable: " + reason)
}

// NotApplicableReason tells an entry point whether a skipped spec was
// reported Not Applicable, and why.
func NotApplicableReason(sr types.SpecReport) (string, bool) {
	if !sr.State.Is(types.SpecStateSkipped) {
		return "", false
	}
	for _, e := range sr.ReportEntries {
		if e.Name == NotApplicableEntry {
			return e.StringRepresentation(), true
		}
	}
	return "", false
}

// BlockedTherapy reads the lab's evidence and returns, as a
// patient-safety error, every control that blocked something since the
// spec's lab started (during a control scenario everything is legitimate
// therapy). Each event is recorded in the run; nil when nothing was blocked.
func (f *Framework) BlockedTherapy(ctx context.Context) error {
	if f.Lab == nil {
		return nil
	}
	ev, err := f.Lab.Evidence(ctx)
	if err != nil {
		return fmt.Errorf("read the controls' evidence: %w", err)
	}
	id := currentScenarioID()
	var msgs []string
	for _, e := range ev {
		if e.Action != "blocked" {
			continue
		}
		se := SafetyEvent{Scenario: id, Evidence: score.Evidence{Control: e.Control, Time: e.Time, Target: e.Target,
			Action: e.Action, Reason: e.Reason, Ref: e.Ref}}
		if CurrentRun().AddSafetyEvent(se) {
			ginkgo.AddReportEntry("patient-safety event", se.Message())
		}
		msgs = append(msgs, se.Message())
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// GuardControlScenario makes every spec of a control scenario's Describe
// fail loudly when a posture control blocked anything during it: call it
// right after New. The check runs before the lab is closed.
func GuardControlScenario(f *Framework) {
	ginkgo.BeforeEach(func() {
		ginkgo.DeferCleanup(func(ctx ginkgo.SpecContext) {
			if err := f.BlockedTherapy(ctx); err != nil {
				ginkgo.Fail(err.Error())
			}
		}, ginkgo.NodeTimeout(10*time.Second))
	})
}

// LabAs type-asserts an optional lab interface (lab.Bedside, lab.Ward,
// lab.Pharmacy, lab.Facility) and reports the spec Not Applicable when the
// lab lacks it.
func LabAs[T any](f *Framework, what string) T {
	v, ok := f.Lab.(T)
	if !ok {
		f.NotApplicable(fmt.Sprintf("the %s lab has no %s", f.Lab.Provider(), what))
	}
	return v
}

// currentScenarioID is the scenario id of the running spec (its first
// label, as Register returns them), or the spec text.
func currentScenarioID() string {
	sr := ginkgo.CurrentSpecReport()
	for _, l := range sr.Labels() {
		if scenarioID.MatchString(l) {
			return l
		}
	}
	return sr.FullText()
}

// LatencyPercentiles returns the count, p50 and p95 (nearest rank) of a
// metric's samples.
func LatencyPercentiles(samples []LatencySample, metric string) (n int, p50, p95 time.Duration) {
	var ds []time.Duration
	for _, s := range samples {
		if s.Metric == metric {
			ds = append(ds, s.Value)
		}
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := func(p int) time.Duration {
		i := (p*len(ds)+99)/100 - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return len(ds), rank(50), rank(95)
}
