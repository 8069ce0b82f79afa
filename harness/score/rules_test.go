package score

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func doseStep() Step { return calibrationSteps()[1] } // pump-001, 10m-11m, control mqtt-acl

func TestProtection(t *testing.T) {
	s := doseStep()
	blocked := Evidence{Control: "mqtt-acl", Time: at(10*time.Minute + time.Second), Target: "pump-001", Action: "blocked"}
	cases := []struct {
		name     string
		effect   bool
		posture  []string
		ev       []Evidence
		want     Protection
		evidence int
	}{
		{"blocked: own control evidence, effect absent", false, []string{"mqtt-acl"}, []Evidence{blocked}, ProtectionBlocked, 1},
		{"evidence but effect happened", true, []string{"mqtt-acl"}, []Evidence{blocked}, ProtectionNone, 1},
		{"failed without evidence is none, not blocked", false, []string{"mqtt-acl"}, nil, ProtectionNone, 0},
		{"claimed, effect happened, no evidence", true, []string{"MQTT-ACL"}, nil, ProtectionNone, 0},
		{"no control claims the step", true, []string{"tls"}, nil, ProtectionNotApplicable, 0},
		{"no control claims the step, step failed", false, nil, nil, ProtectionNotApplicable, 0},
		{"own control counts even outside the posture list", false, nil, []Evidence{blocked}, ProtectionBlocked, 1},
		{"own control on another target counts", false, nil, []Evidence{{Control: "mqtt-acl", Time: at(10 * time.Minute), Target: "pump-009", Action: "denied"}}, ProtectionBlocked, 1},
		{"posture control on a step asset", false, []string{"nac"}, []Evidence{{Control: "nac", Time: at(10 * time.Minute), Target: "PUMP-001", Action: "dropped"}}, ProtectionBlocked, 1},
		{"posture control by correlation ref", false, []string{"nac"}, []Evidence{{Control: "nac", Time: at(10 * time.Minute), Target: "broker", Ref: "msg-0042", Action: "rejected"}}, ProtectionBlocked, 1},
		{"posture control on another asset", false, []string{"nac"}, []Evidence{{Control: "nac", Time: at(10 * time.Minute), Target: "pump-002", Action: "blocked"}}, ProtectionNotApplicable, 0},
		{"control outside the posture on a step asset", false, []string{"tls"}, []Evidence{{Control: "nac", Time: at(10 * time.Minute), Target: "pump-001", Action: "blocked"}}, ProtectionNotApplicable, 0},
		{"allowed is no evidence", false, []string{"mqtt-acl"}, []Evidence{{Control: "mqtt-acl", Time: at(10 * time.Minute), Target: "pump-001", Action: "allowed"}}, ProtectionNone, 0},
		{"flagged is no evidence", false, []string{"mqtt-acl"}, []Evidence{{Control: "mqtt-acl", Time: at(10 * time.Minute), Target: "pump-001", Action: "flagged"}}, ProtectionNone, 0},
		{"evidence at Start - tolerance counts", false, nil, []Evidence{{Control: "mqtt-acl", Time: at(9*time.Minute + 30*time.Second), Action: "blocked"}}, ProtectionBlocked, 1},
		{"evidence before Start - tolerance", false, nil, []Evidence{{Control: "mqtt-acl", Time: at(9*time.Minute + 30*time.Second - 1), Action: "blocked"}}, ProtectionNotApplicable, 0},
		{"evidence at End + tolerance counts", false, nil, []Evidence{{Control: "mqtt-acl", Time: at(11*time.Minute + 30*time.Second), Action: "blocked"}}, ProtectionBlocked, 1},
		{"evidence after End + tolerance", false, nil, []Evidence{{Control: "mqtt-acl", Time: at(11*time.Minute + 30*time.Second + 1), Action: "blocked"}}, ProtectionNotApplicable, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := ScoreStep(s, Observed{Effect: c.effect}, Inputs{Evidence: c.ev, PostureControls: c.posture}, Options{})
			if v.Protection != c.want || len(v.Evidence) != c.evidence {
				t.Fatalf("protection %q with %d evidence, want %q with %d", v.Protection, len(v.Evidence), c.want, c.evidence)
			}
			wantOutcome := OutcomeMissed
			if c.want == ProtectionBlocked {
				wantOutcome = OutcomePrevented
			}
			if v.Outcome != wantOutcome {
				t.Fatalf("outcome %q, want %q", v.Outcome, wantOutcome)
			}
		})
	}
}

func TestSafetyAndOutcomeLadder(t *testing.T) {
	s := doseStep()
	oracle := OracleAlerts("ids", []Step{s})
	ev := []Evidence{{Control: "mqtt-acl", Time: s.Start, Action: "blocked"}}
	cases := []struct {
		name   string
		obs    Observed
		ev     []Evidence
		alerts []Alert
		want   Outcome
		tool   Outcome
	}{
		{"prevented beats everything", Observed{SafetyCaught: true}, ev, oracle, OutcomePrevented, OutcomePrevented},
		{"caught by safety beats detection", Observed{Effect: true, SafetyCaught: true}, nil, oracle, OutcomeCaughtBySafety, OutcomeCaughtBySafety},
		{"detected in time", Observed{Effect: true}, nil, oracle, OutcomeDetectedInTime, OutcomeDetectedInTime},
		{"detected late", Observed{Effect: true}, nil, LateAlerts("ids", []Step{s}, Options{}), OutcomeDetectedLate, OutcomeDetectedLate},
		{"missed", Observed{Effect: true}, nil, nil, OutcomeMissed, OutcomeMissed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := ScoreStep(s, c.obs, Inputs{Evidence: c.ev, Alerts: c.alerts, Tools: []Scope{{Tool: "ids"}}}, Options{})
			d, _ := v.Tool("ids")
			if v.Outcome != c.want || d.Outcome != c.tool {
				t.Fatalf("outcome %q tool %q, want %q %q", v.Outcome, d.Outcome, c.want, c.tool)
			}
			if (v.Safety == SafetyCaught) != c.obs.SafetyCaught {
				t.Fatalf("safety %q", v.Safety)
			}
		})
	}
}

func TestScope(t *testing.T) {
	s := calibrationSteps()[0] // pump-001, 10.0.4.11, T0846
	alerts := OracleAlerts("ids", []Step{s})
	cases := []struct {
		scope Scope
		want  Category
	}{
		{Scope{Tool: "ids"}, CategoryTechnique},
		{Scope{Tool: "ids", Assets: []string{"pump-002"}}, CategoryNotApplicable},
		{Scope{Tool: "ids", Assets: []string{"10.0.4.11:443"}}, CategoryTechnique},
		{Scope{Tool: "ids", Techniques: []string{"T0836"}}, CategoryNotApplicable},
		{Scope{Tool: "ids", Techniques: []string{"t0846"}}, CategoryTechnique},
		{Scope{Tool: "ids", Assets: []string{"pump-001"}, Techniques: []string{"T0836"}}, CategoryNotApplicable},
	}
	for _, c := range cases {
		v := ScoreStep(s, Observed{Effect: true}, Inputs{Alerts: alerts, Tools: []Scope{c.scope}}, Options{})
		d, _ := v.Tool("ids")
		if d.Category != c.want {
			t.Errorf("scope %+v: %q, want %q", c.scope, d.Category, c.want)
		}
		if c.want == CategoryNotApplicable && (d.Outcome != OutcomeNotApplicable || v.Outcome != OutcomeMissed) {
			t.Errorf("scope %+v: outcomes %q/%q", c.scope, d.Outcome, v.Outcome)
		}
	}
	// Out-of-scope steps leave the denominators.
	v := ScoreStep(s, Observed{}, Inputs{Tools: []Scope{{Tool: "ids", Assets: []string{"x"}}}}, Options{})
	agg := Aggregate(AggregateInput{Verdicts: []StepVerdict{v}})
	if agg[0].DetectionApplicable != 0 || agg[0].Outcomes[OutcomeNotApplicable] != 1 {
		t.Errorf("aggregate of an out-of-scope step: %s", mustJSON(agg[0]))
	}
}

func TestMatchingTimeEdges(t *testing.T) {
	s := doseStep() // 10m..11m: From 9m30s, Deadline 16m30s, Cutoff 46m30s
	b := StepBounds(s, Options{})
	if !b.From.Equal(at(9*time.Minute+30*time.Second)) || !b.Deadline.Equal(at(16*time.Minute+30*time.Second)) || !b.Cutoff.Equal(at(46*time.Minute+30*time.Second)) {
		t.Fatalf("bounds %+v", b)
	}
	cases := []struct {
		name    string
		t       time.Time
		opt     Options
		want    Category
		delayed bool
		ttd     int64
	}{
		{"before From", b.From.Add(-1), Options{}, CategoryNone, false, 0},
		{"at From", b.From, Options{}, CategoryGeneral, false, 0},
		{"at Start", s.Start, Options{}, CategoryGeneral, false, 0},
		{"at Deadline", b.Deadline, Options{}, CategoryGeneral, false, 390000},
		{"after Deadline", b.Deadline.Add(time.Millisecond), Options{}, CategoryGeneral, true, 390001},
		{"at Cutoff", b.Cutoff, Options{}, CategoryGeneral, true, 2190000},
		{"after Cutoff", b.Cutoff.Add(1), Options{}, CategoryNone, false, 0},
		{"no tolerance: just before Start", s.Start.Add(-1), Options{Tolerance: -1}, CategoryNone, false, 0},
		{"wider tolerance", s.Start.Add(-time.Minute), Options{Tolerance: time.Minute}, CategoryGeneral, false, 0},
		{"no lateness: after the deadline", at(16*time.Minute + 30*time.Second + 1), Options{MaxLateness: -1}, CategoryNone, false, 0},
		{"step window 1m: late at End+1m+30s+1ms", at(12*time.Minute + 30*time.Second + time.Millisecond), Options{}, CategoryGeneral, true, 150001},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := s
			if strings.HasPrefix(c.name, "step window") {
				st.Window = time.Minute
			}
			a := Alert{Tool: "ids", Time: c.t, Assets: []string{"pump-001"}}
			d := Detect(st, Scope{Tool: "ids"}, []Alert{a}, nil, c.opt)
			if d.Category != c.want || d.Delayed != c.delayed {
				t.Fatalf("category %q delayed %v, want %q %v", d.Category, d.Delayed, c.want, c.delayed)
			}
			if Matches(st, a, c.opt) != (c.want != CategoryNone) {
				t.Fatalf("Matches disagrees with Detect")
			}
			if c.want != CategoryNone && *d.TTDMs != c.ttd {
				t.Fatalf("ttd %d, want %d", *d.TTDMs, c.ttd)
			}
		})
	}
}

func TestMatchingAssets(t *testing.T) {
	s := calibrationSteps()[0] // pump-001, 10.0.4.11, correlation mqtt-evil-1
	cases := []struct {
		name  string
		alert Alert
		match bool
	}{
		{"asset", Alert{Assets: []string{"pump-001"}}, true},
		{"asset case-insensitive", Alert{Assets: []string{" PUMP-001 "}}, true},
		{"address", Alert{Addresses: []string{"10.0.4.11"}}, true},
		{"address with port", Alert{Addresses: []string{"10.0.4.11:1883"}}, true},
		{"address in brackets", Alert{Addresses: []string{"[10.0.4.11]:1883"}}, true},
		{"correlation id", Alert{Assets: []string{"MQTT-EVIL-1"}}, true},
		{"other asset", Alert{Assets: []string{"pump-002"}, Addresses: []string{"10.0.4.12"}}, false},
		{"prefix is not a match", Alert{Assets: []string{"pump-00"}}, false},
		{"text naming the asset is not a match", Alert{Text: "pump-001 misbehaves"}, false},
		{"no assets", Alert{}, false},
	}
	for _, c := range cases {
		a := c.alert
		a.Tool, a.Time = "ids", s.Start
		if got := Matches(s, a, Options{}); got != c.match {
			t.Errorf("%s: match %v, want %v", c.name, got, c.match)
		}
	}
	if normAsset("fe80::1") != "fe80::1" || normAsset("[fe80::1]:80") != "fe80::1" || normAsset("host:http") != "host:http" {
		t.Errorf("normAsset: %q %q %q", normAsset("fe80::1"), normAsset("[fe80::1]:80"), normAsset("host:http"))
	}
}

func TestCategories(t *testing.T) {
	s := doseStep() // T0836, T0855, TA0106
	in := func(d time.Duration) time.Time { return s.Start.Add(d) }
	base := Alert{Tool: "ids", Assets: []string{"pump-001"}}
	with := func(f func(*Alert)) Alert { a := base; f(&a); return a }
	tel := with(func(a *Alert) { a.Telemetry, a.Time, a.Techniques = true, in(time.Second), []string{"T0836"} })
	gen := with(func(a *Alert) { a.Time = in(2 * time.Second) })
	tac := with(func(a *Alert) { a.Time, a.Tactics = in(3*time.Second), []string{"ta0106"} })
	wrongTac := with(func(a *Alert) { a.Time, a.Tactics = in(3*time.Second), []string{"TA0107"} })
	tech := with(func(a *Alert) { a.Time, a.Techniques = in(4*time.Second), []string{"t0855"} })
	wrongTech := with(func(a *Alert) { a.Time, a.Techniques = in(4*time.Second), []string{"T0831"} })
	lateTech := with(func(a *Alert) { a.Time, a.Techniques = in(10*time.Minute), []string{"T0836"} })
	otherTool := with(func(a *Alert) { a.Tool, a.Time, a.Techniques = "edr", in(time.Second), []string{"T0836"} })
	cases := []struct {
		name           string
		alerts         []Alert
		want           Category
		delayed        bool
		inTime         bool
		outcome        Outcome
		ttd, nmatching int64
	}{
		{"telemetry only (even naming the technique)", []Alert{tel}, CategoryTelemetry, false, false, OutcomeMissed, 1000, 1},
		{"general beats telemetry", []Alert{gen, tel}, CategoryGeneral, false, true, OutcomeDetectedInTime, 1000, 2},
		{"tactic", []Alert{tac, gen}, CategoryTactic, false, true, OutcomeDetectedInTime, 2000, 2},
		{"wrong tactic is general", []Alert{wrongTac}, CategoryGeneral, false, true, OutcomeDetectedInTime, 3000, 1},
		{"technique", []Alert{tac, tech}, CategoryTechnique, false, true, OutcomeDetectedInTime, 3000, 2},
		{"wrong technique is general", []Alert{wrongTech}, CategoryGeneral, false, true, OutcomeDetectedInTime, 4000, 1},
		{"late technique after in-time general: delayed technique, detected in time", []Alert{gen, lateTech}, CategoryTechnique, true, true, OutcomeDetectedInTime, 2000, 2},
		{"late technique after in-time telemetry: detected late", []Alert{tel, lateTech}, CategoryTechnique, true, false, OutcomeDetectedLate, 1000, 2},
		{"in-time technique and late technique: not delayed", []Alert{lateTech, tech}, CategoryTechnique, false, true, OutcomeDetectedInTime, 4000, 2},
		{"other tool's alerts do not count", []Alert{otherTool}, CategoryNone, false, false, OutcomeMissed, -1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Detect(s, Scope{Tool: "ids"}, c.alerts, nil, Options{})
			if d.Category != c.want || d.Delayed != c.delayed || d.InTime != c.inTime || d.Outcome != c.outcome || int64(d.Alerts) != c.nmatching {
				t.Fatalf("got %s", mustJSON(d))
			}
			if (d.TTDMs == nil) != (c.ttd < 0) || (d.TTDMs != nil && *d.TTDMs != c.ttd) {
				t.Fatalf("ttd %v, want %d", d.TTDMs, c.ttd)
			}
		})
	}
	if !(CategoryTechnique.Rank() > CategoryTactic.Rank() && CategoryTactic.Rank() > CategoryGeneral.Rank() &&
		CategoryGeneral.Rank() > CategoryTelemetry.Rank() && CategoryTelemetry.Rank() > CategoryNone.Rank() &&
		CategoryNone.Rank() > CategoryNotApplicable.Rank()) {
		t.Error("category ranks out of order")
	}
}

func TestCorrelated(t *testing.T) {
	steps := calibrationSteps()
	recon, dose, alarm := steps[0], steps[1], steps[2]
	alarm.Correlation = []string{"alarm-drop-7"}
	steps[2] = alarm
	a := func(f func(*Alert)) Alert {
		x := Alert{Tool: "ids", Time: dose.Start.Add(time.Second), Assets: []string{"pump-001"}}
		f(&x)
		return x
	}
	cases := []struct {
		name  string
		alert Alert
		want  bool
	}{
		{"names the recon step's MQTT client id as an asset", a(func(x *Alert) { x.Assets = append(x.Assets, "mqtt-evil-1") }), true},
		{"names it in the text", a(func(x *Alert) { x.Text = "rate change by client MQTT-EVIL-1 after scan" }), true},
		{"names only its own correlation id", a(func(x *Alert) { x.Text = "MSG-0042 changed the rate" }), false},
		{"names another scenario's correlation id", a(func(x *Alert) { x.Text = "see alarm-drop-7" }), false},
		{"names nothing", a(func(x *Alert) {}), false},
	}
	for _, c := range cases {
		d := Detect(dose, Scope{Tool: "ids"}, []Alert{c.alert}, steps, Options{})
		if d.Correlated != c.want || d.Category != CategoryGeneral {
			t.Errorf("%s: correlated %v (%q), want %v", c.name, d.Correlated, d.Category, c.want)
		}
	}
	// The recon step is correlated too when the alert naming it matches it.
	x := Alert{Tool: "ids", Time: recon.Start.Add(time.Second), Assets: []string{"pump-001"}, Text: "scan then MSG-0042"}
	vs := ScoreSteps(steps, nil, Inputs{Alerts: []Alert{x}}, Options{})
	if d, _ := vs[0].Tool("ids"); !d.Correlated {
		t.Errorf("recon: %s", mustJSON(d))
	}
	agg := Aggregate(AggregateInput{Verdicts: vs})
	// The same alert is before the dose step's From: only the recon step counts.
	if agg[0].Correlated != 1 {
		t.Errorf("aggregate correlated = %d, want 1", agg[0].Correlated)
	}
}

func TestFalsePositives(t *testing.T) {
	steps := calibrationSteps()
	alerts := []Alert{
		{Tool: "b", Time: at(20 * time.Minute), Assets: []string{"pump-002"}},                     // FP: no step on pump-002
		{Tool: "a", Time: at(5 * time.Minute), Assets: []string{"pump-001"}},                      // matches ATK-16/1
		{Tool: "a", Time: at(50 * time.Minute), Assets: []string{"pump-001"}},                     // FP: after both cutoffs
		{Tool: "a", Time: at(29 * time.Minute), Assets: []string{"pumpserver"}},                   // FP: before ATK-25/1 From
		{Tool: "a", Time: at(29*time.Minute + 30*time.Second), Addresses: []string{"PumpServer"}}, // matches at From
		{Tool: "a", Time: at(-time.Minute), Assets: []string{"pump-001"}},                         // FP: before everything
		{Tool: "a", Time: at(70 * time.Minute), Assets: []string{"pump-009"}, Telemetry: true},    // telemetry never FP
		{Tool: "b", Time: at(10 * time.Minute), Assets: []string{"10.0.4.11:80"}},                 // matches ATK-16/1 by address
	}
	fps := FalsePositives(steps, alerts, Options{})
	got := map[string][]time.Time{}
	for tool, l := range fps {
		for _, a := range l {
			got[tool] = append(got[tool], a.Time)
		}
	}
	want := map[string][]time.Time{"a": {at(-time.Minute), at(29 * time.Minute), at(50 * time.Minute)}, "b": {at(20 * time.Minute)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("false positives %v, want %v", got, want)
	}
	if FPRate(3, 1.5) != 2 || FPRate(3, 0) != 0 {
		t.Errorf("FPRate")
	}
	agg := Aggregate(AggregateInput{Verdicts: ScoreSteps(steps, nil, Inputs{Alerts: alerts}, Options{}), FalsePositives: fps, DeviceHours: 1.5})
	if len(agg) != 2 || agg[0].FalsePositives != 3 || agg[0].FPPerDeviceHour != 2 || agg[1].FalsePositives != 1 {
		t.Errorf("aggregate FP: %s", mustJSON(agg))
	}
}

func TestHarm(t *testing.T) {
	w := DefaultHarmWeights
	cases := []struct {
		name  string
		h     Harm
		harm  bool
		value float64
	}{
		{"nothing", Harm{}, false, 0},
		{"DDR inside the band", Harm{DDR: 1.1}, false, 0},
		{"DDR just above", Harm{DDR: 1.2}, true, 2},
		{"DDR below", Harm{DDR: 0.5}, true, 5},
		{"DDR 2 high-alert", Harm{DDR: 2, HighAlert: true}, true, 30},
		{"DDR 1000 capped", Harm{DDR: 1000}, true, 100},
		{"excess drug without DDR", Harm{ExcessDrug: 3}, true, 5},
		{"excess drug with DDR out of band counts once", Harm{DDR: 1.5, ExcessDrug: 3}, true, 5},
		{"interruption high-alert", Harm{InterruptedMin: 4, HighAlert: true}, true, 6},
		{"interruption within the tolerance", Harm{InterruptedMin: 1.5, HighAlert: true}, false, 0},
		{"alarms", Harm{AlarmsMissed: 1, AlarmsLate: 2}, true, 9},
		{"confidentiality and availability are not multiplied", Harm{PHIExposed: 100, CredsExposed: 1, PumpMinutesOffline: 30, DocMismatch: true, HighAlert: true}, true, 10 + 2 + 3 + 3},
	}
	for _, c := range cases {
		if got := w.HarmOccurred(c.h); got != c.harm {
			t.Errorf("%s: harm %v, want %v", c.name, got, c.harm)
		}
		if got := w.Value(c.h); got != c.value {
			t.Errorf("%s: value %v, want %v", c.name, got, c.value)
		}
	}
	// Options.Weights overrides.
	v := ScoreStep(doseStep(), Observed{Harm: Harm{AlarmsMissed: 1}}, Inputs{}, Options{Weights: HarmWeights{AlarmMissed: 7, HighAlert: 1}})
	if v.Harm.Weighted != 7 {
		t.Errorf("custom weights: %v", v.Harm.Weighted)
	}
	if HarmPreventedShare(10, 40) != 0.75 || HarmPreventedShare(50, 40) != 0 || HarmPreventedShare(0, 0) != 1 || HarmPreventedShare(1, 0) != 0 {
		t.Error("HarmPreventedShare")
	}
}

func TestPercentileAndAvailability(t *testing.T) {
	vals := []int64{50, 10, 40, 30, 20, 60, 70, 80, 90, 100}
	for p, want := range map[float64]int64{50: 50, 95: 100, 100: 100, 10: 10, 1: 10} {
		if got := Percentile(vals, p); got != want {
			t.Errorf("p%v = %d, want %d", p, got, want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty percentile")
	}
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	samples := LatencySamples{
		"legacy":   {"order_to_infusion": ms(100, 200, 300, 400), "alarm_to_nurse": ms(1000)},
		"hardened": {"order_to_infusion": ms(150, 260, 330, 900), "alarm_to_nurse": ms(1200, 1100), "only_here": ms(5)},
		"tls":      {"order_to_infusion": ms(110)},
	}
	got := Availability(samples, "legacy")
	want := []AvailabilityCost{
		{Posture: "hardened", Metric: "alarm_to_nurse", N: 2, P50Ms: 1100, P95Ms: 1200, BaseP50Ms: 1000, BaseP95Ms: 1000, DeltaP50Ms: 100, DeltaP95Ms: 200},
		{Posture: "hardened", Metric: "order_to_infusion", N: 4, P50Ms: 260, P95Ms: 900, BaseP50Ms: 200, BaseP95Ms: 400, DeltaP50Ms: 60, DeltaP95Ms: 500},
		{Posture: "tls", Metric: "order_to_infusion", N: 1, P50Ms: 110, P95Ms: 110, BaseP50Ms: 200, BaseP95Ms: 400, DeltaP50Ms: -90, DeltaP95Ms: -290},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("availability\n got %+v\nwant %+v", got, want)
	}
}

// TestDeterminism: the same inputs, in any order of tools and scopes, give
// byte-identical JSON.
func TestDeterminism(t *testing.T) {
	steps := calibrationSteps()
	var alerts []Alert
	alerts = append(alerts, NoisyAlerts("noisy", noisyAssets, at(0), at(60*time.Minute), time.Minute)...)
	alerts = append(alerts, OracleAlerts("oracle", steps)...)
	alerts = append(alerts, LateAlerts("late", steps, Options{})...)
	tools := []Scope{{Tool: "oracle"}, {Tool: "null"}, {Tool: "late", Assets: []string{"pump-001"}}}
	obs := map[string]Observed{"ATK-16/2": {Effect: true, Harm: Harm{DDR: 3, HighAlert: true}}}
	run := func(alerts []Alert, tools []Scope) string {
		vs := ScoreSteps(steps, obs, Inputs{Alerts: alerts, Tools: tools, PostureControls: []string{"mqtt-acl"}}, Options{})
		fps := FalsePositives(steps, alerts, Options{})
		return mustJSON(struct {
			V []StepVerdict
			F map[string][]Alert
			A []ToolScore
		}{vs, fps, Aggregate(AggregateInput{Posture: "p", Verdicts: vs, FalsePositives: fps, DeviceHours: 2, BaselineHarm: 100})})
	}
	first := run(alerts, tools)
	rev := make([]Alert, len(alerts))
	for i, a := range alerts {
		rev[len(alerts)-1-i] = a
	}
	revTools := []Scope{tools[2], tools[1], tools[0]}
	for i := 0; i < 3; i++ {
		if got := run(alerts, tools); got != first {
			t.Fatal("same inputs gave different JSON")
		}
	}
	if got := run(rev, revTools); got != first {
		i := 0
		for i < len(got) && i < len(first) && got[i] == first[i] {
			i++
		}
		t.Fatalf("reordered inputs gave different JSON from byte %d: %.200s", i, got[max(0, i-100):])
	}
	for _, s := range []string{`"category":"technique"`, `"protection":"none"`, `"outcome":"detected_in_time"`, `"category":"not_applicable"`} {
		if !strings.Contains(first, s) {
			t.Errorf("JSON lacks %s", s)
		}
	}
}

// TestPure enforces that the package imports no Ginkgo/Gomega and nothing
// that does I/O, and never reads the wall clock.
func TestPure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"encoding/json": true, "fmt": true, "math": true, "slices": true, "sort": true, "strings": true, "time": true}
	fset := token.NewFileSet()
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		n++
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if !allowed[p] {
				t.Errorf("%s imports %q (allowed: pure standard packages only; no ginkgo, gomega, os, io, net)", f, p)
			}
		}
		full, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(full, func(nd ast.Node) bool {
			if sel, ok := nd.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && (sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until") {
					t.Errorf("%s: time.%s reads the wall clock", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
	if n < 5 {
		t.Fatalf("checked only %d files", n)
	}
}
