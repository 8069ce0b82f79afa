// Package compare finds the regressions between two scorecards of the lab
// (design/SCORING.md "Regression gating"): new misses, lost protection, new
// harm, new false positives, time to detect worse than a tolerance, and
// coverage drops. It refuses a vacuous run: one that executed no scenario, or
// where a configured detector delivered no alert at all. It is pure: it
// reads two report.Scorecard values.
package compare

import (
	"fmt"
	"sort"

	"github.com/pumplab/pumplab/harness/report"
	"github.com/pumplab/pumplab/harness/score"
)

// Options tune what counts as a regression.
type Options struct {
	// TTDToleranceMs is how much a tool's p50 or p95 time to detect may grow
	// (ms); default 1000.
	TTDToleranceMs int64
	// CoverageTolerance is how much a coverage ratio may drop; default 0
	// (any drop regresses).
	CoverageTolerance float64
	// FPTolerance is how many more false positives a tool may raise; default 0.
	FPTolerance int
}

func (o Options) withDefaults() Options {
	if o.TTDToleranceMs == 0 {
		o.TTDToleranceMs = 1000
	}
	return o
}

// Kind names a class of regression.
type Kind string

// The regression kinds.
const (
	NewMiss        Kind = "new_miss"        // a step a tool detected (or a control prevented) is now worse
	LostProtection Kind = "lost_protection" // a step the posture blocked is not blocked any more
	NewHarm        Kind = "new_harm"        // a step that did no harm now does
	NewFalsePos    Kind = "new_false_positives"
	SlowerDetect   Kind = "slower_detection"
	CoverageDrop   Kind = "coverage_drop"
	ScenarioFailed Kind = "scenario_failed" // a scenario that passed now fails
	Missing        Kind = "missing"         // a step, scenario or tool of BASE is absent from NEW
)

// Regression is one difference that makes NEW worse than BASE.
type Regression struct {
	Kind   Kind   `json:"kind"`
	Where  string `json:"where"` // step id, scenario id or tool
	Tool   string `json:"tool,omitempty"`
	Base   string `json:"base"`
	New    string `json:"new"`
	Detail string `json:"detail,omitempty"`
}

func (r Regression) String() string {
	s := fmt.Sprintf("%-20s %-10s", r.Kind, r.Where)
	if r.Tool != "" {
		s += " tool " + r.Tool
	}
	s += fmt.Sprintf(": %s -> %s", r.Base, r.New)
	if r.Detail != "" {
		s += " (" + r.Detail + ")"
	}
	return s
}

// Vacuous reports why a scorecard cannot gate anything, or "" when it can.
func Vacuous(sc report.Scorecard) string {
	ran := 0
	for _, s := range sc.Scenarios {
		if s.State == report.StatePassed || s.State == report.StateFailed {
			ran++
		}
	}
	if ran == 0 {
		return fmt.Sprintf("run %s executed no scenario", sc.Run.ID)
	}
	for _, t := range sc.Run.Tools {
		if alertsOf(sc, t.Name) == 0 {
			return fmt.Sprintf("run %s: configured tool %q delivered no alert at all", sc.Run.ID, t.Name)
		}
	}
	return ""
}

// alertsOf counts a tool's alerts: matched to steps, plus false positives.
func alertsOf(sc report.Scorecard, tool string) int {
	n := 0
	for _, v := range sc.Steps {
		if d, ok := v.Tool(tool); ok {
			n += d.Alerts
		}
	}
	for _, fp := range sc.FalsePositives {
		if fp.Tool == tool {
			n += fp.Count
		}
	}
	return n
}

// Regressions lists what NEW does worse than BASE, in a stable order.
func Regressions(base, cur report.Scorecard, opt Options) []Regression {
	opt = opt.withDefaults()
	var out []Regression
	// Scenarios.
	curScen := map[string]report.Scenario{}
	for _, s := range cur.Scenarios {
		curScen[s.ID] = s
	}
	for _, b := range base.Scenarios {
		n, ok := curScen[b.ID]
		switch {
		case !ok:
			out = append(out, Regression{Kind: Missing, Where: b.ID, Base: b.State, New: "absent"})
		case b.State == report.StatePassed && n.State == report.StateFailed:
			out = append(out, Regression{Kind: ScenarioFailed, Where: b.ID, Base: b.State, New: n.State, Detail: n.Reason})
		}
	}
	// Steps.
	curSteps := map[string]score.StepVerdict{}
	for _, v := range cur.Steps {
		curSteps[v.StepID] = v
	}
	for _, b := range base.Steps {
		n, ok := curSteps[b.StepID]
		if !ok {
			out = append(out, Regression{Kind: Missing, Where: b.StepID, Base: string(b.Outcome), New: "absent"})
			continue
		}
		if b.Protection == score.ProtectionBlocked && n.Protection != score.ProtectionBlocked {
			out = append(out, Regression{Kind: LostProtection, Where: b.StepID, Base: string(b.Protection), New: string(n.Protection)})
		}
		if !b.Harm.Occurred && n.Harm.Occurred {
			out = append(out, Regression{Kind: NewHarm, Where: b.StepID, Base: "no harm", New: fmt.Sprintf("harm %.1f", n.Harm.Weighted)})
		}
		for _, bt := range b.Tools {
			nt, ok := n.Tool(bt.Tool)
			if !ok {
				out = append(out, Regression{Kind: Missing, Where: b.StepID, Tool: bt.Tool, Base: string(bt.Outcome), New: "absent"})
				continue
			}
			if nt.Outcome.Rank() < bt.Outcome.Rank() {
				out = append(out, Regression{Kind: NewMiss, Where: b.StepID, Tool: bt.Tool, Base: string(bt.Outcome), New: string(nt.Outcome)})
			} else if nt.Category.Rank() < bt.Category.Rank() {
				out = append(out, Regression{Kind: NewMiss, Where: b.StepID, Tool: bt.Tool, Base: string(bt.Category), New: string(nt.Category), Detail: "weaker detection category"})
			}
		}
	}
	// Tools.
	curAgg := map[string]score.ToolScore{}
	for _, a := range cur.Aggregates {
		curAgg[a.Posture+"/"+a.Tool] = a
	}
	for _, b := range base.Aggregates {
		n, ok := curAgg[b.Posture+"/"+b.Tool]
		if !ok {
			out = append(out, Regression{Kind: Missing, Where: b.Tool, Base: "scored", New: "absent"})
			continue
		}
		if n.FalsePositives > b.FalsePositives+opt.FPTolerance {
			out = append(out, Regression{Kind: NewFalsePos, Where: b.Tool, Base: fmt.Sprint(b.FalsePositives), New: fmt.Sprint(n.FalsePositives)})
		}
		if b.TTD.N > 0 && n.TTD.N > 0 {
			if n.TTD.P50 > b.TTD.P50+opt.TTDToleranceMs {
				out = append(out, Regression{Kind: SlowerDetect, Where: b.Tool, Base: fmt.Sprintf("p50 %d ms", b.TTD.P50), New: fmt.Sprintf("p50 %d ms", n.TTD.P50)})
			}
			if n.TTD.P95 > b.TTD.P95+opt.TTDToleranceMs {
				out = append(out, Regression{Kind: SlowerDetect, Where: b.Tool, Base: fmt.Sprintf("p95 %d ms", b.TTD.P95), New: fmt.Sprintf("p95 %d ms", n.TTD.P95)})
			}
		}
		for _, c := range []struct {
			name      string
			base, cur float64
		}{
			{"visibility", b.Visibility, n.Visibility},
			{"analytic coverage", b.AnalyticCoverage, n.AnalyticCoverage},
			{"technique coverage", b.TechniqueCoverage, n.TechniqueCoverage},
			{"in-time coverage", b.InTimeCoverage, n.InTimeCoverage},
			{"protection rate", b.ProtectionRate, n.ProtectionRate},
		} {
			if c.cur < c.base-opt.CoverageTolerance-1e-9 {
				out = append(out, Regression{Kind: CoverageDrop, Where: b.Tool, Base: fmt.Sprintf("%s %.0f%%", c.name, 100*c.base), New: fmt.Sprintf("%.0f%%", 100*c.cur)})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		if out[i].Where != out[j].Where {
			return report.CompareIDs(out[i].Where, out[j].Where) < 0
		}
		return out[i].Tool < out[j].Tool
	})
	return out
}
