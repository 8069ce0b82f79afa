package report

import (
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

var t0 = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// fixtureSteps are two attack scenarios: ATK-16 (recon on pump-001, then
// the rate change the mqtt-acl control blocks) and ATK-25 (alarm
// suppression on the alarm manager).
func fixtureSteps() []score.Step {
	return []score.Step{
		{RunID: "run-fixture", ScenarioID: "ATK-16", StepID: "ATK-16/1", Techniques: []string{"T0846"}, Tactic: "TA0102",
			Assets: []string{"pump-001", "10.0.4.11"}, Correlation: []string{"mqtt-evil-1"},
			Start: at(0), End: at(time.Minute), LabStart: at(0), LabEnd: at(time.Minute)},
		{RunID: "run-fixture", ScenarioID: "ATK-16", StepID: "ATK-16/2", Techniques: []string{"T0836", "T0855"}, Tactic: "TA0106",
			Assets: []string{"pump-001"}, Correlation: []string{"MSG-0042"}, Control: "mqtt-acl",
			Start: at(10 * time.Minute), End: at(11 * time.Minute), LabStart: at(10 * time.Minute), LabEnd: at(11 * time.Minute)},
		{RunID: "run-fixture", ScenarioID: "ATK-25", StepID: "ATK-25/1", Techniques: []string{"T0878"}, Tactic: "TA0107",
			Assets: []string{"alarm-manager"}, Start: at(20 * time.Minute), End: at(21 * time.Minute),
			LabStart: at(20 * time.Minute), LabEnd: at(21 * time.Minute), Window: 2 * time.Minute},
	}
}

// fixture is a scored run of the fixture steps with two tools and one
// control scenario (CTL-01 from 40 to 60 min):
//   - "ids-a" is an oracle on ATK-16 and late on ATK-25;
//   - "ids-b" is noisy on pump-002 (false positives during CTL-01) and
//     raises one general alert on pump-001 during ATK-16/1.
func fixture() (Input, []score.Step, []score.Alert) {
	steps := fixtureSteps()
	alerts := append(score.OracleAlerts("ids-a", steps[:2]), score.LateAlerts("ids-a", steps[2:], score.Options{})...)
	alerts = append(alerts, score.NoisyAlerts("ids-b", []string{"pump-002"}, at(45*time.Minute), at(55*time.Minute), 5*time.Minute)...)
	alerts = append(alerts, score.Alert{Tool: "ids-b", Time: at(30 * time.Second), Severity: "medium", Assets: []string{"pump-001"},
		Text: "unusual MQTT subscription", Source: "http"})
	evidence := []score.Evidence{{Control: "mqtt-acl", Time: at(10*time.Minute + time.Second), Target: "pump-001",
		Action: "blocked", Reason: "publish to pump/001/cmd denied", Ref: "MSG-0042"}}
	obs := map[string]score.Observed{
		"ATK-16/1": {Effect: true, Harm: score.Harm{PHIExposed: 3}},
		"ATK-16/2": {Effect: false},
		"ATK-25/1": {Effect: true, Harm: score.Harm{AlarmsMissed: 1, HighAlert: true}},
	}
	tools := []score.Scope{{Tool: "ids-a"}, {Tool: "ids-b", Assets: []string{"pump-001", "pump-002"}}}
	verdicts := score.ScoreSteps(steps, obs, score.Inputs{Evidence: evidence, PostureControls: []string{"mqtt-acl", "tls"},
		Alerts: alerts, Tools: tools}, score.Options{})
	fps := score.FalsePositives(steps, alerts, score.Options{})
	avail := score.Availability(score.LatencySamples{
		"legacy":   {"order_to_infusion": {2 * time.Second, 3 * time.Second}, "alarm_to_nurse": {20 * time.Second}},
		"hardened": {"order_to_infusion": {2500 * time.Millisecond, 3200 * time.Millisecond}, "alarm_to_nurse": {21 * time.Second}},
	}, "legacy")
	in := Input{
		Run: Run{ID: "run-fixture", Start: at(-time.Minute), End: at(61 * time.Minute), Seed: 42, Provider: "inproc",
			Posture: Posture{Name: "hardened", Controls: []string{"tls", "mqtt-acl"}}, BaselinePosture: "legacy",
			Tools: []Tool{{Name: "ids-b", Version: "2.0", Assets: []string{"pump-002", "pump-001"}}, {Name: "ids-a", Version: "1.4.2"}},
			Pumps: 2, ClockSpeed: 10, DeviceHours: 2, PumplabVersion: "v0.1.0-test"},
		Scenarios: []Scenario{
			{ID: "CTL-01", Kind: KindControl, Title: "Closed-loop PIV order", State: StatePassed, DurationMs: 1_200_000,
				Start: at(40 * time.Minute), End: at(60 * time.Minute), Areas: []string{"AU"},
				Entries: []Entry{{Name: "orders", Value: "12/12 reached pumps"}}},
			{ID: "ATK-25", Kind: KindAttack, Title: "Alarm suppression", State: StatePassed, DurationMs: 60_000,
				Areas: []string{"AL"}, Techniques: []string{"T0878"}},
			{ID: "ATK-16", Kind: KindAttack, Title: "Rate change over MQTT", State: StatePassed, DurationMs: 660_000,
				Areas: []string{"NW", "AU"}, Techniques: []string{"T0855", "T0846", "T0836"}},
			{ID: "ATK-30", Kind: KindAttack, Title: "Firmware downgrade", State: StateNotApplicable, Reason: "needs:containers",
				Areas: []string{"MU"}},
		},
		Verdicts:       verdicts,
		FalsePositives: fps,
		BaselineHarm:   40,
		Availability:   avail,
		Notes:          []string{"fixture run: not a real lab"},
	}
	return in, steps, alerts
}
