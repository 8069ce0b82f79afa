package report

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pumplab/pumplab/harness/attck"
	"github.com/pumplab/pumplab/harness/score"
)

// Layer is an ATT&CK Navigator layer (layer format 4.5).
type Layer struct {
	Name                          string           `json:"name"`
	Versions                      LayerVersions    `json:"versions"`
	Domain                        string           `json:"domain"`
	Description                   string           `json:"description"`
	Sorting                       int              `json:"sorting"`
	Layout                        LayerLayout      `json:"layout"`
	HideDisabled                  bool             `json:"hideDisabled"`
	Techniques                    []LayerTechnique `json:"techniques"`
	Gradient                      LayerGradient    `json:"gradient"`
	LegendItems                   []LegendItem     `json:"legendItems"`
	Metadata                      []LayerMeta      `json:"metadata"`
	ShowTacticRowBackground       bool             `json:"showTacticRowBackground"`
	SelectTechniquesAcrossTactics bool             `json:"selectTechniquesAcrossTactics"`
}

// LayerVersions are the ATT&CK, Navigator and layer format versions.
type LayerVersions struct {
	Attack    string `json:"attack"`
	Navigator string `json:"navigator"`
	Layer     string `json:"layer"`
}

// LayerLayout is how Navigator lays the matrix out.
type LayerLayout struct {
	Layout                string `json:"layout"`
	AggregateFunction     string `json:"aggregateFunction"`
	ShowID                bool   `json:"showID"`
	ShowName              bool   `json:"showName"`
	ShowAggregateScores   bool   `json:"showAggregateScores"`
	CountUnscored         bool   `json:"countUnscored"`
	ExpandedSubtechniques string `json:"expandedSubtechniques"`
}

// LayerTechnique is one technique of a layer. No tactic is set: the
// entry applies to the technique under every tactic it belongs to.
type LayerTechnique struct {
	TechniqueID       string      `json:"techniqueID"`
	Score             int         `json:"score"`
	Comment           string      `json:"comment"`
	Enabled           bool        `json:"enabled"`
	Metadata          []LayerMeta `json:"metadata"`
	ShowSubtechniques bool        `json:"showSubtechniques"`
}

// LayerGradient colours scores from MinValue to MaxValue.
type LayerGradient struct {
	Colors   []string `json:"colors"`
	MinValue int      `json:"minValue"`
	MaxValue int      `json:"maxValue"`
}

// LegendItem is one entry of the layer's legend.
type LegendItem struct {
	Label string `json:"label"`
	Color string `json:"color"`
}

// LayerMeta is a name/value pair of layer or technique metadata.
type LayerMeta struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Navigator layer versions written.
const (
	NavigatorAttackVersion = "18"
	NavigatorVersion       = "5.1.0"
	NavigatorLayerVersion  = "4.5"
)

// navigatorColors are the gradient from score 0 (none) to 4 (technique).
var navigatorColors = []string{"#e06666", "#f6b26b", "#ffd966", "#b6d7a8", "#6aa84f"}

// NavigatorLayer is the ATT&CK for ICS coverage of the run: one entry per
// technique a step exercised. Its score is the best detection across tools
// and steps: the highest score.Category rank (none 0, telemetry 1,
// general 2, tactic 3, technique 4) any tool reached on any step naming
// the technique; tools outside their scope (not_applicable) do not count.
// The comment names the scenarios and steps, the best tool, whether a
// control prevented a step or the safety layer caught it; the metadata
// gives each tool's best category.
func NavigatorLayer(sc Scorecard) Layer {
	type agg struct {
		best      int
		steps     []string
		scen      map[string]bool
		tool      map[string]score.Category
		delayed   map[string]bool
		prevented int
		caught    int
	}
	byTech := map[string]*agg{}
	for _, v := range sc.Steps {
		for _, t := range v.Techniques {
			a := byTech[t]
			if a == nil {
				a = &agg{scen: map[string]bool{}, tool: map[string]score.Category{}, delayed: map[string]bool{}}
				byTech[t] = a
			}
			a.steps = append(a.steps, v.StepID)
			a.scen[v.ScenarioID] = true
			if v.Outcome == score.OutcomePrevented {
				a.prevented++
			}
			if v.Outcome == score.OutcomeCaughtBySafety {
				a.caught++
			}
			for _, d := range v.Tools {
				cur, seen := a.tool[d.Tool]
				if !seen || d.Category.Rank() > cur.Rank() {
					a.tool[d.Tool] = d.Category
					a.delayed[d.Tool] = d.Delayed
				}
				a.best = max(a.best, d.Category.Rank())
			}
		}
	}
	ids := make([]string, 0, len(byTech))
	for id := range byTech {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	l := Layer{
		Name:     "pumplab " + sc.Run.ID,
		Versions: LayerVersions{Attack: NavigatorAttackVersion, Navigator: NavigatorVersion, Layer: NavigatorLayerVersion},
		Domain:   "ics-attack",
		Description: fmt.Sprintf("pumplab run %s, posture %s: score = best detection category across tools "+
			"(0 none, 1 telemetry, 2 general, 3 tactic, 4 technique) on the steps exercising the technique.",
			sc.Run.ID, sc.Run.Posture.Name),
		Layout:     LayerLayout{Layout: "side", AggregateFunction: "max", ShowID: true, ShowName: true, ExpandedSubtechniques: "none"},
		Techniques: make([]LayerTechnique, 0, len(ids)),
		Gradient:   LayerGradient{Colors: navigatorColors, MinValue: 0, MaxValue: 4},
		Metadata: []LayerMeta{{Name: "run", Value: sc.Run.ID}, {Name: "posture", Value: sc.Run.Posture.Name},
			{Name: "pumplab", Value: sc.Run.PumplabVersion}, {Name: "schema", Value: SchemaVersion}},
		ShowTacticRowBackground: true,
	}
	for i, c := range []score.Category{score.CategoryNone, score.CategoryTelemetry, score.CategoryGeneral, score.CategoryTactic, score.CategoryTechnique} {
		l.LegendItems = append(l.LegendItems, LegendItem{Label: fmt.Sprintf("%d %s", i, c), Color: navigatorColors[i]})
	}
	for _, id := range ids {
		a := byTech[id]
		scen := make([]string, 0, len(a.scen))
		for s := range a.scen {
			scen = append(scen, s)
		}
		sort.Slice(scen, func(i, j int) bool { return CompareIDs(scen[i], scen[j]) < 0 })
		tools := make([]string, 0, len(a.tool))
		for t := range a.tool {
			tools = append(tools, t)
		}
		sort.Strings(tools)
		var meta []LayerMeta
		var bestTools []string
		for _, t := range tools {
			c := a.tool[t]
			v := string(c)
			if a.delayed[t] {
				v += " (delayed)"
			}
			meta = append(meta, LayerMeta{Name: t, Value: v})
			if c.Rank() == a.best && a.best > 0 {
				bestTools = append(bestTools, t)
			}
		}
		if meta == nil {
			meta = []LayerMeta{}
		}
		var cm strings.Builder
		if name, ok := attck.Techniques[id]; ok {
			fmt.Fprintf(&cm, "%s. ", name)
		}
		fmt.Fprintf(&cm, "Scenarios %s (steps %s).", strings.Join(scen, ", "), strings.Join(a.steps, ", "))
		if len(bestTools) > 0 {
			fmt.Fprintf(&cm, " Best detection %s by %s.", categoryOfRank(a.best), strings.Join(bestTools, ", "))
		} else {
			cm.WriteString(" No detection.")
		}
		if a.prevented > 0 {
			fmt.Fprintf(&cm, " Prevented by a control on %d of %d steps.", a.prevented, len(a.steps))
		}
		if a.caught > 0 {
			fmt.Fprintf(&cm, " Caught by the pump's safety layer on %d of %d steps.", a.caught, len(a.steps))
		}
		l.Techniques = append(l.Techniques, LayerTechnique{TechniqueID: id, Score: a.best, Comment: cm.String(),
			Enabled: true, Metadata: meta})
	}
	return l
}

func categoryOfRank(r int) score.Category {
	for _, c := range []score.Category{score.CategoryNone, score.CategoryTelemetry, score.CategoryGeneral, score.CategoryTactic, score.CategoryTechnique} {
		if c.Rank() == r {
			return c
		}
	}
	return score.CategoryNone
}
