package report_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pumplab/pumplab/harness/report"
	"github.com/pumplab/pumplab/harness/score"
)

// Example scores one attack step seen by an oracle tool and writes the
// run directory.
func Example() {
	t0 := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	steps := []score.Step{{RunID: "demo", ScenarioID: "ATK-16", StepID: "ATK-16/1",
		Techniques: []string{"T0836"}, Tactic: "TA0106", Assets: []string{"pump-001"},
		Start: t0, End: t0.Add(time.Minute)}}
	alerts := score.OracleAlerts("ids-a", steps)
	verdicts := score.ScoreSteps(steps, map[string]score.Observed{"ATK-16/1": {Effect: true}},
		score.Inputs{Alerts: alerts, Tools: []score.Scope{{Tool: "ids-a"}}}, score.Options{})

	sc := report.Build(report.Input{
		Run: report.Run{ID: "demo", Start: t0, End: t0.Add(time.Hour), Provider: "inproc",
			Posture: report.Posture{Name: "legacy"}, Tools: []report.Tool{{Name: "ids-a", Version: "1.0"}},
			Pumps: 1, ClockSpeed: 1, DeviceHours: 1, PumplabVersion: "dev"},
		Scenarios: []report.Scenario{{ID: "ATK-16", Kind: report.KindAttack, Title: "Rate change",
			State: report.StatePassed, DurationMs: 60000, Areas: []string{"AU"}}},
		Verdicts:       verdicts,
		FalsePositives: score.FalsePositives(steps, alerts, score.Options{}),
	})
	fmt.Println(sc.Scenarios[0].ID, sc.Scenarios[0].Outcome, sc.Aggregates[0].Tool, sc.Aggregates[0].TechniqueCoverage)

	dir, _ := os.MkdirTemp("", "pumplab-report")
	defer os.RemoveAll(dir)
	if err := report.Write(filepath.Join(dir, "demo"), sc, steps, alerts); err != nil {
		fmt.Println(err)
		return
	}
	files, _ := os.ReadDir(filepath.Join(dir, "demo"))
	for _, f := range files {
		fmt.Println(f.Name())
	}
	// Output:
	// ATK-16 detected_in_time ids-a 1
	// alerts.jsonl
	// ground-truth.jsonl
	// navigator-layer.json
	// report.html
	// scorecard.json
	// summary.md
}
