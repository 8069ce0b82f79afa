package report

import (
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

// SchemaVersion is the version of the scorecard.json format
// (docs/scorecard.schema.json). A change that removes or renames a field
// bumps the major version; adding an optional field bumps the minor.
const SchemaVersion = "1.0.0"

// Scenario states.
const (
	StatePassed        = "passed"
	StateFailed        = "failed"
	StateSkipped       = "skipped"
	StateNotApplicable = "not_applicable"
)

// Scenario kinds.
const (
	KindAttack  = "attack"
	KindControl = "control"
)

// Scorecard is everything a run scored, in the order Build gives it.
type Scorecard struct {
	SchemaVersion string `json:"schema_version"`
	Run           Run    `json:"run"`
	// Scenarios sorted by id (ATK-2 before ATK-10).
	Scenarios []Scenario `json:"scenarios"`
	// Steps are the verdicts of every attack step, by scenario then step id.
	Steps []score.StepVerdict `json:"steps"`
	// Aggregates are the vectors per (posture, tool), by posture then tool.
	Aggregates []score.ToolScore `json:"aggregates"`
	// FalsePositives per tool (every tool of the run, zero included), by tool.
	FalsePositives []ToolFalsePositives `json:"false_positives"`
	// Availability is the latency cost of the posture against the baseline
	// posture, by posture then metric.
	Availability []score.AvailabilityCost `json:"availability"`
	Harm         HarmSummary              `json:"harm"`
	// Notes are free remarks of the run (e.g. a tool that sent nothing).
	Notes []string `json:"notes"`
}

// Run is the metadata of a run.
type Run struct {
	ID    string    `json:"id"`
	Start time.Time `json:"start"` // wall time
	End   time.Time `json:"end"`
	Seed  int64     `json:"seed"`
	// Provider is the lab provider (inproc, compose).
	Provider string  `json:"provider"`
	Posture  Posture `json:"posture"`
	// BaselinePosture is the posture availability costs are measured
	// against (legacy).
	BaselinePosture string  `json:"baseline_posture"`
	Tools           []Tool  `json:"tools"`
	Pumps           int     `json:"pumps"`
	ClockSpeed      float64 `json:"clock_speed"`
	// DeviceHours is pumps x hours observed (the unit of FP rates).
	DeviceHours    float64 `json:"device_hours"`
	PumplabVersion string  `json:"pumplab_version"`
}

// Posture is the security posture of the run: its name and the controls it
// turns on.
type Posture struct {
	Name     string   `json:"name"`
	Controls []string `json:"controls"`
}

// Tool is a tool under test and its declared scope; empty scope lists
// claim everything (score.Scope).
type Tool struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Assets     []string `json:"assets,omitempty"`
	Techniques []string `json:"techniques,omitempty"`
}

// Scenario is one scenario of the run.
type Scenario struct {
	ID    string `json:"id"`    // ATK-16, CTL-01
	Kind  string `json:"kind"`  // attack or control
	Title string `json:"title"` // human title
	State string `json:"state"` // passed, failed, skipped, not_applicable
	// Reason says why a scenario failed, was skipped or is not applicable.
	Reason     string `json:"reason,omitempty"`
	DurationMs int64  `json:"duration_ms"`
	// Start and End (wall) bound a control scenario's false positives.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// Areas are SP 1800-8 challenge areas (AU), Techniques ATT&CK for ICS
	// ids, both from the scenario's labels.
	Areas      []string `json:"areas,omitempty"`
	Techniques []string `json:"techniques,omitempty"`
	// Entries are the scenario's report entries (name, value).
	Entries []Entry `json:"entries,omitempty"`
	// Steps are the ids of the scenario's scored steps (Build fills it).
	Steps []string `json:"steps,omitempty"`
	// Outcome is the worst step outcome of an attack scenario
	// (not_applicable without steps); empty for a control scenario.
	Outcome score.Outcome `json:"outcome,omitempty"`
	// Tools are the per-tool results (Build fills them): the worst step
	// outcome of an attack scenario for the tool, and for a control
	// scenario with Start and End the tool's false positives inside them.
	Tools []ScenarioTool `json:"tools,omitempty"`
}

// Entry is one report entry of a scenario.
type Entry struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ScenarioTool is one tool's result on one scenario.
type ScenarioTool struct {
	Tool           string        `json:"tool"`
	Outcome        score.Outcome `json:"outcome,omitempty"`
	FalsePositives int           `json:"false_positives"`
}

// ToolFalsePositives are the alerts of a tool that matched no step.
type ToolFalsePositives struct {
	Tool          string        `json:"tool"`
	Count         int           `json:"count"`
	PerDeviceHour float64       `json:"per_device_hour"`
	Alerts        []score.Alert `json:"alerts"`
}

// HarmSummary is the harm of the run: the index, its share prevented
// against the baseline, totals of the metrics and one row per harmed step.
type HarmSummary struct {
	StepsWithHarm int        `json:"steps_with_harm"`
	HarmIndex     float64    `json:"harm_index"`
	BaselineHarm  float64    `json:"baseline_harm"`
	HarmPrevented float64    `json:"harm_prevented"`
	Totals        HarmTotals `json:"totals"`
	Rows          []HarmRow  `json:"rows"`
}

// HarmTotals sum the harm metrics over the steps (MaxDDR is the largest
// delivered-dose ratio measured).
type HarmTotals struct {
	MaxDDR             float64 `json:"max_ddr"`
	ExcessDrug         float64 `json:"excess_drug"`
	InterruptedMin     float64 `json:"interrupted_min"`
	AlarmsMissed       int     `json:"alarms_missed"`
	AlarmsLate         int     `json:"alarms_late"`
	DocMismatches      int     `json:"doc_mismatches"`
	PHIExposed         int     `json:"phi_exposed"`
	CredsExposed       int     `json:"creds_exposed"`
	PumpMinutesOffline float64 `json:"pump_minutes_offline"`
	HighAlertSteps     int     `json:"high_alert_steps"`
}

// HarmRow is one step where harm occurred.
type HarmRow struct {
	ScenarioID string           `json:"scenario_id"`
	StepID     string           `json:"step_id"`
	Protection score.Protection `json:"protection"`
	Outcome    score.Outcome    `json:"outcome"`
	Weighted   float64          `json:"weighted"`
	Metrics    score.Harm       `json:"metrics"`
}

// Input is what Build needs: the run's metadata and scenarios, and the
// scorer's results.
type Input struct {
	Run       Run
	Scenarios []Scenario
	// Verdicts are score.ScoreSteps' results.
	Verdicts []score.StepVerdict
	// FalsePositives are score.FalsePositives' results.
	FalsePositives map[string][]score.Alert
	// Aggregates, when nil, are computed with score.Aggregate from the
	// verdicts, false positives, Run.DeviceHours and BaselineHarm.
	Aggregates []score.ToolScore
	// BaselineHarm is the harm index of the same steps under the baseline
	// posture (0 when unknown).
	BaselineHarm float64
	// Availability are score.Availability's results.
	Availability []score.AvailabilityCost
	Notes        []string
}

// Build makes the scorecard of a run. It copies its inputs (the caller's
// slices are not changed), normalises times to UTC, fills the derived
// fields (scenario steps and outcomes, false positives per tool and per
// control scenario, the harm summary) and sorts everything, so the same
// input always gives the same scorecard.
func Build(in Input) Scorecard {
	sc := Scorecard{SchemaVersion: SchemaVersion, Run: in.Run}
	sc.Run.Start, sc.Run.End = sc.Run.Start.UTC(), sc.Run.End.UTC()
	sc.Run.Posture.Controls = sortedStrings(in.Run.Posture.Controls)
	sc.Run.Tools = make([]Tool, 0, len(in.Run.Tools))
	for _, t := range in.Run.Tools {
		t.Assets, t.Techniques = sortedStrings(t.Assets), sortedStrings(t.Techniques)
		sc.Run.Tools = append(sc.Run.Tools, t)
	}
	sort.SliceStable(sc.Run.Tools, func(i, j int) bool { return sc.Run.Tools[i].Name < sc.Run.Tools[j].Name })

	// Verdicts.
	sc.Steps = make([]score.StepVerdict, 0, len(in.Verdicts))
	for _, v := range in.Verdicts {
		sc.Steps = append(sc.Steps, cloneVerdict(v))
	}
	sort.SliceStable(sc.Steps, func(i, j int) bool {
		a, b := sc.Steps[i], sc.Steps[j]
		if c := CompareIDs(a.ScenarioID, b.ScenarioID); c != 0 {
			return c < 0
		}
		return CompareIDs(a.StepID, b.StepID) < 0
	})

	// Aggregates.
	if in.Aggregates == nil {
		sc.Aggregates = score.Aggregate(score.AggregateInput{Posture: in.Run.Posture.Name, Verdicts: sc.Steps,
			FalsePositives: in.FalsePositives, DeviceHours: in.Run.DeviceHours, BaselineHarm: in.BaselineHarm})
	} else {
		sc.Aggregates = slices.Clone(in.Aggregates)
	}
	for i := range sc.Aggregates {
		m := make(map[score.Outcome]int, len(sc.Aggregates[i].Outcomes))
		for k, n := range sc.Aggregates[i].Outcomes {
			m[k] = n
		}
		sc.Aggregates[i].Outcomes = m
	}
	sort.SliceStable(sc.Aggregates, func(i, j int) bool {
		a, b := sc.Aggregates[i], sc.Aggregates[j]
		if a.Posture != b.Posture {
			return a.Posture < b.Posture
		}
		return a.Tool < b.Tool
	})

	// Tools of the run: declared, scored, or with false positives.
	tools := ToolNames(sc.Run.Tools, sc.Steps, in.FalsePositives)

	// False positives per tool.
	sc.FalsePositives = make([]ToolFalsePositives, 0, len(tools))
	for _, t := range tools {
		as := cloneAlerts(in.FalsePositives[t])
		score.SortAlerts(as)
		sc.FalsePositives = append(sc.FalsePositives, ToolFalsePositives{Tool: t, Count: len(as),
			PerDeviceHour: score.FPRate(len(as), in.Run.DeviceHours), Alerts: as})
	}

	// Scenarios.
	sc.Scenarios = make([]Scenario, 0, len(in.Scenarios))
	for _, s := range in.Scenarios {
		s.Start, s.End = utcOrZero(s.Start), utcOrZero(s.End)
		s.Areas, s.Techniques = sortedStrings(s.Areas), sortedStrings(s.Techniques)
		s.Entries = slices.Clone(s.Entries)
		s.Steps, s.Outcome, s.Tools = nil, "", nil
		sc.Scenarios = append(sc.Scenarios, s)
	}
	sort.SliceStable(sc.Scenarios, func(i, j int) bool { return CompareIDs(sc.Scenarios[i].ID, sc.Scenarios[j].ID) < 0 })
	for i := range sc.Scenarios {
		fillScenario(&sc.Scenarios[i], sc.Steps, tools, in.FalsePositives)
	}

	sc.Availability = slices.Clone(in.Availability)
	if sc.Availability == nil {
		sc.Availability = []score.AvailabilityCost{}
	}
	sort.SliceStable(sc.Availability, func(i, j int) bool {
		a, b := sc.Availability[i], sc.Availability[j]
		if a.Posture != b.Posture {
			return a.Posture < b.Posture
		}
		return a.Metric < b.Metric
	})
	sc.Harm = harmSummary(sc.Steps, in.BaselineHarm)
	sc.Notes = slices.Clone(in.Notes)
	if sc.Notes == nil {
		sc.Notes = []string{}
	}
	return sc
}

// fillScenario derives a scenario's steps, outcome and per-tool results.
func fillScenario(s *Scenario, steps []score.StepVerdict, tools []string, fps map[string][]score.Alert) {
	var mine []score.StepVerdict
	for _, v := range steps {
		if v.ScenarioID == s.ID {
			mine = append(mine, v)
			s.Steps = append(s.Steps, v.StepID)
		}
	}
	if s.Kind == KindAttack || len(mine) > 0 {
		s.Outcome = score.OutcomeNotApplicable
		if len(mine) > 0 {
			s.Outcome = WorstOutcome(outcomesOf(mine, ""))
		}
	}
	for _, t := range tools {
		st := ScenarioTool{Tool: t}
		if s.Outcome != "" {
			st.Outcome = score.OutcomeNotApplicable
			if len(mine) > 0 {
				st.Outcome = WorstOutcome(outcomesOf(mine, t))
			}
		}
		if !s.Start.IsZero() && !s.End.IsZero() {
			for _, a := range fps[t] {
				if !a.Time.Before(s.Start) && !a.Time.After(s.End) {
					st.FalsePositives++
				}
			}
		}
		s.Tools = append(s.Tools, st)
	}
}

// outcomesOf lists the outcome of each verdict for a tool ("" = the
// step's overall outcome). A step the tool did not score has the step's
// outcome when prevented or caught, else missed (as score.Aggregate).
func outcomesOf(vs []score.StepVerdict, tool string) []score.Outcome {
	out := make([]score.Outcome, 0, len(vs))
	for _, v := range vs {
		if tool == "" {
			out = append(out, v.Outcome)
			continue
		}
		out = append(out, ToolOutcome(v, tool))
	}
	return out
}

// ToolOutcome is the outcome of a step for one tool: its detection's
// outcome, or for a tool absent from the verdict the step's outcome when
// prevented or caught by the safety layer, else missed.
func ToolOutcome(v score.StepVerdict, tool string) score.Outcome {
	if d, ok := v.Tool(tool); ok {
		return d.Outcome
	}
	if v.Outcome == score.OutcomePrevented || v.Outcome == score.OutcomeCaughtBySafety {
		return v.Outcome
	}
	return score.OutcomeMissed
}

// WorstOutcome is the weakest link of a list of step outcomes: the lowest
// ranked outcome that is not not_applicable, or not_applicable when all
// are (or the list is empty).
func WorstOutcome(os []score.Outcome) score.Outcome {
	worst := score.OutcomeNotApplicable
	for _, o := range os {
		if o == score.OutcomeNotApplicable || o.Rank() == 0 {
			continue
		}
		if worst == score.OutcomeNotApplicable || o.Rank() < worst.Rank() {
			worst = o
		}
	}
	return worst
}

// ToolNames is the sorted union of the declared tools, the tools of the
// verdicts and the tools with false positives.
func ToolNames(declared []Tool, steps []score.StepVerdict, fps map[string][]score.Alert) []string {
	set := map[string]bool{}
	for _, t := range declared {
		set[t.Name] = true
	}
	for _, v := range steps {
		for _, d := range v.Tools {
			set[d.Tool] = true
		}
	}
	for t := range fps {
		set[t] = true
	}
	out := make([]string, 0, len(set))
	for t := range set {
		if t != "" {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

func harmSummary(steps []score.StepVerdict, baseline float64) HarmSummary {
	h := HarmSummary{HarmIndex: score.HarmIndex(steps), BaselineHarm: baseline, Rows: []HarmRow{}}
	h.HarmPrevented = score.HarmPreventedShare(h.HarmIndex, baseline)
	t := &h.Totals
	for _, v := range steps {
		m := v.Harm.Metrics
		t.MaxDDR = max(t.MaxDDR, m.DDR)
		t.ExcessDrug += m.ExcessDrug
		t.InterruptedMin += m.InterruptedMin
		t.AlarmsMissed += m.AlarmsMissed
		t.AlarmsLate += m.AlarmsLate
		if m.DocMismatch {
			t.DocMismatches++
		}
		t.PHIExposed += m.PHIExposed
		t.CredsExposed += m.CredsExposed
		t.PumpMinutesOffline += m.PumpMinutesOffline
		if !v.Harm.Occurred {
			continue
		}
		if m.HighAlert {
			t.HighAlertSteps++
		}
		h.StepsWithHarm++
		h.Rows = append(h.Rows, HarmRow{ScenarioID: v.ScenarioID, StepID: v.StepID, Protection: v.Protection,
			Outcome: v.Outcome, Weighted: v.Harm.Weighted, Metrics: m})
	}
	t.ExcessDrug, t.InterruptedMin, t.PumpMinutesOffline = round6(t.ExcessDrug), round6(t.InterruptedMin), round6(t.PumpMinutesOffline)
	return h
}

func cloneVerdict(v score.StepVerdict) score.StepVerdict {
	v.Techniques = slices.Clone(v.Techniques)
	v.Evidence = slices.Clone(v.Evidence)
	for i := range v.Evidence {
		v.Evidence[i].Time = v.Evidence[i].Time.UTC()
	}
	v.Tools = slices.Clone(v.Tools)
	for i := range v.Tools {
		if p := v.Tools[i].TTDMs; p != nil {
			ms := *p
			v.Tools[i].TTDMs = &ms
		}
	}
	sort.SliceStable(v.Tools, func(i, j int) bool { return v.Tools[i].Tool < v.Tools[j].Tool })
	return v
}

func cloneAlerts(as []score.Alert) []score.Alert {
	out := make([]score.Alert, 0, len(as))
	for _, a := range as {
		a.Time, a.Reported = a.Time.UTC(), utcOrZero(a.Reported)
		a.Assets, a.Addresses = slices.Clone(a.Assets), slices.Clone(a.Addresses)
		a.Techniques, a.Tactics = slices.Clone(a.Techniques), slices.Clone(a.Tactics)
		out = append(out, a)
	}
	return out
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	if out == nil {
		out = []string{}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// CompareIDs orders ids naturally: runs of digits compare by value, so
// ATK-2 < ATK-10 and ATK-10/2 < ATK-10/10; otherwise bytewise.
func CompareIDs(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return cmpInt(len(na), len(nb))
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			if da != db {
				return cmpInt(da, db)
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmpInt(int(a[0]), int(b[0]))
		}
		a, b = a[1:], b[1:]
	}
	return cmpInt(len(a), len(b))
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
