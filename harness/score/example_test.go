package score_test

import (
	"fmt"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

// Example is the worked example of docs/scoring.md: one dose attack in two
// steps under a posture with the broker ACL on, scored for an IDS and a
// SIEM.
func Example() {
	t0 := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []score.Step{
		{ScenarioID: "ATK-16", StepID: "ATK-16/1", Techniques: []string{"T0846"}, Tactic: "TA0102",
			Assets: []string{"pump-001", "10.0.4.11"}, Correlation: []string{"mqtt-evil-1"},
			Start: at(0), End: at(time.Minute)},
		{ScenarioID: "ATK-16", StepID: "ATK-16/2", Techniques: []string{"T0836", "T0855"}, Tactic: "TA0106",
			Assets: []string{"pump-001"}, Correlation: []string{"MSG-0042"}, Control: "mqtt-acl",
			Start: at(10 * time.Minute), End: at(11 * time.Minute)},
	}
	observed := map[string]score.Observed{
		"ATK-16/1": {Effect: true},
		"ATK-16/2": {Effect: false}, // the rate change never reached the pump
	}
	evidence := []score.Evidence{{Control: "mqtt-acl", Time: at(10*time.Minute + 2*time.Second),
		Target: "pump-001", Action: "blocked", Reason: "publish to pumps/pump-001/cmd denied", Ref: "MSG-0042"}}
	alerts := []score.Alert{
		// IDS: the scan, by address, naming the tactic only.
		{Tool: "ids", Time: at(20 * time.Second), Addresses: []string{"10.0.4.11:1883"}, Tactics: []string{"TA0102"}},
		// IDS: the command, naming the technique and the scanning client.
		{Tool: "ids", Time: at(10*time.Minute + 3*time.Second), Assets: []string{"PUMP-001"},
			Techniques: []string{"T0855"}, Text: "unauthorized command from mqtt-evil-1"},
		// SIEM: a generic alert 8 minutes after the scan ended (window 5 min + 30 s).
		{Tool: "siem", Time: at(9 * time.Minute), Assets: []string{"pump-001"}, Text: "unusual MQTT client"},
		// SIEM: an alert on a pump no step touched.
		{Tool: "siem", Time: at(20 * time.Minute), Assets: []string{"pump-002"}},
	}
	in := score.Inputs{Evidence: evidence, PostureControls: []string{"mqtt-acl"}, Alerts: alerts,
		Tools: []score.Scope{{Tool: "ids"}, {Tool: "siem"}}}
	opt := score.Options{} // Tolerance 30 s, MaxLateness 30 min
	verdicts := score.ScoreSteps(steps, observed, in, opt)
	for _, v := range verdicts {
		fmt.Printf("%s protection=%s safety=%s outcome=%s\n", v.StepID, v.Protection, v.Safety, v.Outcome)
		for _, d := range v.Tools {
			ttd := "-"
			if d.TTDMs != nil {
				ttd = fmt.Sprint(*d.TTDMs)
			}
			fmt.Printf("  %s: %s delayed=%v correlated=%v ttd_ms=%s outcome=%s\n",
				d.Tool, d.Category, d.Delayed, d.Correlated, ttd, d.Outcome)
		}
	}
	fps := score.FalsePositives(steps, alerts, opt)
	for _, ts := range score.Aggregate(score.AggregateInput{Posture: "hardened", Verdicts: verdicts,
		FalsePositives: fps, DeviceHours: 2, BaselineHarm: 30}) {
		fmt.Println(ts)
	}
	// Output:
	// ATK-16/1 protection=not_applicable safety=none outcome=detected_in_time
	//   ids: tactic delayed=false correlated=false ttd_ms=20000 outcome=detected_in_time
	//   siem: general delayed=true correlated=false ttd_ms=540000 outcome=detected_late
	// ATK-16/2 protection=blocked safety=none outcome=prevented
	//   ids: technique delayed=false correlated=true ttd_ms=3000 outcome=prevented
	//   siem: none delayed=false correlated=false ttd_ms=- outcome=prevented
	// hardened/ids protection=1.00 visibility=1.00 analytic=1.00 technique=0.50 ttd_p50=3000ms fp=0 harm=0.0 prevented=1.00 score=100.0
	// hardened/siem protection=1.00 visibility=0.50 analytic=0.50 technique=0.00 ttd_p50=540000ms fp=1 harm=0.0 prevented=1.00 score=66.7
}
