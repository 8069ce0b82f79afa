package score

import (
	"encoding/json"
	"time"
)

var t0 = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// calibrationSteps are two scenarios: a dose attack on pump-001 (recon,
// then the rate change a broker ACL blocks) and an alarm suppression.
func calibrationSteps() []Step {
	return []Step{
		{RunID: "r1", ScenarioID: "ATK-16", StepID: "ATK-16/1", Techniques: []string{"T0846"}, Tactic: "TA0102",
			Assets: []string{"pump-001", "10.0.4.11"}, Correlation: []string{"mqtt-evil-1"},
			Start: at(0), End: at(time.Minute)},
		{RunID: "r1", ScenarioID: "ATK-16", StepID: "ATK-16/2", Techniques: []string{"T0836", "T0855"}, Tactic: "TA0106",
			Assets: []string{"pump-001"}, Correlation: []string{"MSG-0042"}, Control: "mqtt-acl",
			Start: at(10 * time.Minute), End: at(11 * time.Minute)},
		{RunID: "r1", ScenarioID: "ATK-25", StepID: "ATK-25/1", Techniques: []string{"T0878", "T0804"}, Tactic: "TA0107",
			Assets: []string{"alarm-manager", "pumpserver"}, Start: at(30 * time.Minute), End: at(31 * time.Minute)},
	}
}

// noisyAssets are every asset of the fixture lab, including pump-002 that
// no step touches.
var noisyAssets = []string{"pump-001", "pump-002", "alarm-manager", "pumpserver"}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
