package score

import (
	"testing"
	"time"
)

// scoreTool scores one tool's alerts on the calibration steps under the
// legacy posture (no controls) with 2 device-hours.
func scoreTool(t *testing.T, tool string, alerts []Alert) (ToolScore, []StepVerdict, map[string][]Alert) {
	t.Helper()
	steps := calibrationSteps()
	in := Inputs{Alerts: alerts, Tools: []Scope{{Tool: tool}}}
	vs := ScoreSteps(steps, nil, in, Options{})
	fps := FalsePositives(steps, alerts, Options{})
	agg := Aggregate(AggregateInput{Posture: "legacy", Verdicts: vs, FalsePositives: fps, DeviceHours: 2})
	if len(agg) != 1 || agg[0].Tool != tool {
		t.Fatalf("aggregate tools = %+v, want only %s", agg, tool)
	}
	return agg[0], vs, fps
}

func TestCalibrationNull(t *testing.T) {
	a, vs, fps := scoreTool(t, "null", NullAlerts("null", calibrationSteps()))
	if a.Visibility != 0 || a.Visible != 0 || a.DetectionApplicable != 3 {
		t.Errorf("null visibility = %v (%d/%d), want 0 (0/3)", a.Visibility, a.Visible, a.DetectionApplicable)
	}
	if a.FalsePositives != 0 || len(fps) != 0 {
		t.Errorf("null FP = %d %v, want none", a.FalsePositives, fps)
	}
	for _, v := range vs {
		d, _ := v.Tool("null")
		if d.Category != CategoryNone || d.Outcome != OutcomeMissed || d.TTDMs != nil {
			t.Errorf("%s: null detection %+v, want none/missed", v.StepID, d)
		}
	}
	if a.Outcomes[OutcomeMissed] != 3 {
		t.Errorf("null outcomes %v", a.Outcomes)
	}
}

func TestCalibrationOracle(t *testing.T) {
	a, vs, fps := scoreTool(t, "oracle", OracleAlerts("oracle", calibrationSteps()))
	if a.TechniqueCoverage != 1 || a.Technique != 3 || a.Visibility != 1 || a.InTimeCoverage != 1 {
		t.Errorf("oracle coverage: %s", a)
	}
	if a.FalsePositives != 0 || len(fps) != 0 || a.FPPerDeviceHour != 0 {
		t.Errorf("oracle FP = %d, want 0", a.FalsePositives)
	}
	if a.TTD != (TTD{N: 3, P50: 1000, P95: 1000, Max: 1000}) {
		t.Errorf("oracle TTD = %+v", a.TTD)
	}
	for _, v := range vs {
		d, _ := v.Tool("oracle")
		if d.Category != CategoryTechnique || d.Delayed || d.Outcome != OutcomeDetectedInTime {
			t.Errorf("%s: oracle %+v", v.StepID, d)
		}
	}
	// no protection, no baseline harm and no harm: (0 + 1 + 1/(1+0)) / 3.
	if a.Score != 66.7 {
		t.Errorf("oracle score = %v, want 66.7", a.Score)
	}
}

func TestCalibrationNoisy(t *testing.T) {
	steps := calibrationSteps()
	alerts := NoisyAlerts("noisy", noisyAssets, at(0), at(60*time.Minute), time.Minute)
	if len(alerts) != 61*4 {
		t.Fatalf("noisy generated %d alerts, want 244", len(alerts))
	}
	a, vs, fps := scoreTool(t, "noisy", alerts)
	// visibility: every step has alerts on its assets, none names a technique.
	if a.Visibility != 1 || a.AnalyticCoverage != 1 || a.TechniqueCoverage != 0 {
		t.Errorf("noisy coverage: %s", a)
	}
	// pump-001 matches ticks 0..46 (ATK-16/1 up to 36m30s, ATK-16/2 from
	// 9m30s to 46m30s): 14 FP; pump-002 never: 61; alarm-manager and
	// pumpserver match ticks 30..60 (ATK-25/1 from 29m30s): 30 each.
	count := map[string]int{}
	for _, al := range fps["noisy"] {
		count[al.Assets[0]]++
	}
	want := map[string]int{"pump-001": 14, "pump-002": 61, "alarm-manager": 30, "pumpserver": 30}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("noisy FP on %s = %d, want %d", k, count[k], n)
		}
	}
	if a.FalsePositives != 135 || a.FPPerDeviceHour != 67.5 {
		t.Errorf("noisy FP = %d (%v/device-hour), want 135 (67.5)", a.FalsePositives, a.FPPerDeviceHour)
	}
	for _, v := range vs {
		d, _ := v.Tool("noisy")
		if d.Category != CategoryGeneral || d.TTDMs == nil || *d.TTDMs != 0 {
			t.Errorf("%s: noisy %+v", v.StepID, d)
		}
	}
	// The FP penalty keeps the noisy tool far below the oracle.
	if a.Score >= 40 {
		t.Errorf("noisy score = %v, want < 40", a.Score)
	}
	_ = steps
}

func TestCalibrationLate(t *testing.T) {
	a, vs, fps := scoreTool(t, "late", LateAlerts("late", calibrationSteps(), Options{}))
	if a.Delayed != 3 || a.InTime != 0 || a.Technique != 3 || len(fps) != 0 {
		t.Errorf("late: %s delayed=%d in_time=%d fps=%v", a, a.Delayed, a.InTime, fps)
	}
	for _, v := range vs {
		d, _ := v.Tool("late")
		if !d.Delayed || d.Category != CategoryTechnique || d.Outcome != OutcomeDetectedLate {
			t.Errorf("%s: late %+v", v.StepID, d)
		}
		// deadline is End + 5m + 30s; the alert is 1 s after it.
		if want := int64((60 + 300 + 30 + 1) * 1000); *d.TTDMs != want {
			t.Errorf("%s: late TTD %d, want %d", v.StepID, *d.TTDMs, want)
		}
	}
}

// TestCalibrationDoseAttack: every control off shows harm on the dose
// attack; the matching control on gives Blocked and no harm.
func TestCalibrationDoseAttack(t *testing.T) {
	dose := calibrationSteps()[1]
	overdose := Observed{Effect: true, Harm: Harm{DDR: 2, ExcessDrug: 12, HighAlert: true}}
	legacy := ScoreStep(dose, overdose, Inputs{}, Options{})
	if legacy.Protection != ProtectionNotApplicable || !legacy.Harm.Occurred || legacy.Harm.Weighted != 30 || legacy.Outcome != OutcomeMissed {
		t.Errorf("legacy: %s", mustJSON(legacy))
	}
	ev := []Evidence{{Control: "mqtt-acl", Time: at(10*time.Minute + 2*time.Second), Target: "pump-001", Action: "blocked", Reason: "topic ACL"}}
	hard := ScoreStep(dose, Observed{}, Inputs{Evidence: ev, PostureControls: []string{"mqtt-acl"}}, Options{})
	if hard.Protection != ProtectionBlocked || hard.Harm.Occurred || hard.Harm.Weighted != 0 || hard.Outcome != OutcomePrevented {
		t.Errorf("hardened: %s", mustJSON(hard))
	}
	agg := Aggregate(AggregateInput{Posture: "hardened", Verdicts: []StepVerdict{hard},
		FalsePositives: map[string][]Alert{"null": nil}, BaselineHarm: HarmIndex([]StepVerdict{legacy})})
	if agg[0].ProtectionRate != 1 || agg[0].HarmPrevented != 1 || agg[0].Outcomes[OutcomePrevented] != 1 {
		t.Errorf("hardened aggregate: %s", mustJSON(agg))
	}
}
