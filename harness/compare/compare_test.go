package compare

import (
	"strings"
	"testing"

	"github.com/pumplab/pumplab/harness/report"
	"github.com/pumplab/pumplab/harness/score"
)

func ms(v int64) *int64 { return &v }

func card() report.Scorecard {
	return report.Scorecard{
		SchemaVersion: report.SchemaVersion,
		Run:           report.Run{ID: "base", Tools: []report.Tool{{Name: "ids"}}},
		Scenarios:     []report.Scenario{{ID: "ATK-10", State: report.StatePassed}, {ID: "CTL-01", State: report.StatePassed}},
		Steps: []score.StepVerdict{{StepID: "ATK-10/1", Protection: score.ProtectionBlocked, Outcome: score.OutcomePrevented,
			Tools: []score.ToolDetection{{Tool: "ids", Category: score.CategoryTechnique, Outcome: score.OutcomeDetectedInTime, Alerts: 1, TTDMs: ms(800)}}}},
		Aggregates: []score.ToolScore{{Posture: "nccoe", Tool: "ids", Visibility: 1, TechniqueCoverage: 1, AnalyticCoverage: 1,
			InTimeCoverage: 1, ProtectionRate: 1, TTD: score.TTD{N: 1, P50: 800, P95: 800, Max: 800}}},
	}
}

func kinds(rs []Regression) string {
	var k []string
	for _, r := range rs {
		k = append(k, string(r.Kind))
	}
	return strings.Join(k, ",")
}

func TestIdenticalHasNoRegression(t *testing.T) {
	if rs := Regressions(card(), card(), Options{}); len(rs) != 0 {
		t.Fatalf("identical scorecards: %v", rs)
	}
	if why := Vacuous(card()); why != "" {
		t.Fatalf("vacuous: %s", why)
	}
}

func TestEachRegressionKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*report.Scorecard)
		want string
	}{
		{"lost protection", func(s *report.Scorecard) { s.Steps[0].Protection = score.ProtectionNone }, "lost_protection"},
		{"new harm", func(s *report.Scorecard) { s.Steps[0].Harm.Occurred = true }, "new_harm"},
		{"new miss", func(s *report.Scorecard) {
			s.Steps[0].Tools[0].Outcome, s.Steps[0].Tools[0].Category = score.OutcomeMissed, score.CategoryNone
		}, "new_miss"},
		{"weaker category", func(s *report.Scorecard) { s.Steps[0].Tools[0].Category = score.CategoryGeneral }, "new_miss"},
		{"false positives", func(s *report.Scorecard) { s.Aggregates[0].FalsePositives = 3 }, "new_false_positives"},
		{"slower", func(s *report.Scorecard) { s.Aggregates[0].TTD.P50, s.Aggregates[0].TTD.P95 = 5000, 900 }, "slower_detection"},
		{"coverage", func(s *report.Scorecard) { s.Aggregates[0].TechniqueCoverage = 0.5 }, "coverage_drop"},
		{"scenario failed", func(s *report.Scorecard) { s.Scenarios[1].State = report.StateFailed }, "scenario_failed"},
		{"step missing", func(s *report.Scorecard) { s.Steps = nil }, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := card()
			tc.edit(&cur)
			rs := Regressions(card(), cur, Options{})
			if !strings.Contains(kinds(rs), tc.want) {
				t.Fatalf("regressions %v, want %s", rs, tc.want)
			}
		})
	}
}

func TestTolerances(t *testing.T) {
	cur := card()
	cur.Aggregates[0].TTD.P50 = 1500 // +700 ms, within the default 1 s
	cur.Aggregates[0].FalsePositives = 2
	if rs := Regressions(card(), cur, Options{FPTolerance: 2}); len(rs) != 0 {
		t.Fatalf("within tolerance: %v", rs)
	}
	if rs := Regressions(card(), cur, Options{TTDToleranceMs: 100, FPTolerance: 2}); kinds(rs) != "slower_detection" {
		t.Fatalf("tight TTD tolerance: %v", rs)
	}
}

func TestVacuous(t *testing.T) {
	s := card()
	s.Scenarios[0].State, s.Scenarios[1].State = report.StateSkipped, report.StateNotApplicable
	if why := Vacuous(s); !strings.Contains(why, "executed no scenario") {
		t.Fatalf("no scenario ran: %q", why)
	}
	s = card()
	s.Run.Tools = append(s.Run.Tools, report.Tool{Name: "silent"})
	if why := Vacuous(s); !strings.Contains(why, `"silent" delivered no alert`) {
		t.Fatalf("silent tool: %q", why)
	}
}
