package score

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// Inputs is everything besides the step that its verdict depends on.
type Inputs struct {
	// Steps are all steps of the run; Correlated looks for other steps of
	// the same scenario here. ScoreSteps fills it when empty.
	Steps []Step `json:"steps,omitempty"`
	// Evidence is what the posture's controls reported.
	Evidence []Evidence `json:"evidence,omitempty"`
	// PostureControls are the controls the posture turns on.
	PostureControls []string `json:"posture_controls,omitempty"`
	// Alerts are the alerts of every tool.
	Alerts []Alert `json:"alerts,omitempty"`
	// Tools are the declared scopes; tools that alerted without a declared
	// scope are scored too, claiming everything.
	Tools []Scope `json:"tools,omitempty"`
}

// blockActions are the Evidence.Action values that count as a control
// stopping something (case-insensitive).
var blockActions = []string{"blocked", "block", "denied", "deny", "dropped", "drop", "rejected", "reject", "refused", "refuse",
	"contained"}

// IsBlockAction reports whether an Evidence.Action says the control stopped
// something: blocked, denied, dropped, rejected, refused (or their
// imperatives), case-insensitive, and contained (the control stopped the
// step's effect by another path, e.g. the alarm manager paging the charge
// nurse when the alarm reporter falls silent).
func IsBlockAction(action string) bool { return eqFold(blockActions, action) }

// ControlEvidence returns the evidence that counts for the step, in time
// order: a blocking action between Start - Tolerance and End + Tolerance,
// either by the step's own Control, or by a posture control whose Target
// names a step asset or whose Ref names a step correlation id.
func ControlEvidence(s Step, evidence []Evidence, postureControls []string, opt Options) []Evidence {
	tol := opt.tolerance()
	from, to := s.Start.Add(-tol), s.End.Add(tol)
	if s.End.Before(s.Start) {
		to = s.Start.Add(tol)
	}
	assets := stepAssetSet(s)
	var out []Evidence
	for _, e := range evidence {
		if e.Time.Before(from) || e.Time.After(to) || !IsBlockAction(e.Action) {
			continue
		}
		own := s.Control != "" && strings.EqualFold(strings.TrimSpace(e.Control), strings.TrimSpace(s.Control))
		posture := eqFold(postureControls, e.Control) &&
			(assets[normAsset(e.Target)] || eqFold(s.Correlation, e.Ref))
		if own || posture {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// ProtectionOf is the protection rule: Blocked when there is control
// evidence and the effect is absent; None when a control claims the step
// (its Control is in the posture) or acted on it but the step was not
// blocked, including a step that failed with no evidence; NotApplicable
// when no control of the posture claims the step and none acted.
func ProtectionOf(s Step, obs Observed, evidence []Evidence, postureControls []string, opt Options) (Protection, []Evidence) {
	ev := ControlEvidence(s, evidence, postureControls, opt)
	switch {
	case len(ev) > 0 && !obs.Effect:
		return ProtectionBlocked, ev
	case len(ev) > 0 || eqFold(postureControls, s.Control):
		return ProtectionNone, ev
	}
	return ProtectionNotApplicable, nil
}

// InScope reports whether the step is inside the tool's declared scope:
// every non-empty list of the scope must name one of the step's assets
// (case-insensitive, host:port by host) or techniques.
func InScope(s Step, sc Scope) bool {
	if len(sc.Assets) > 0 {
		set := stepAssetSet(s)
		ok := false
		for _, a := range sc.Assets {
			if set[normAsset(a)] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return len(sc.Techniques) == 0 || anyEqFold(sc.Techniques, s.Techniques)
}

// toolScopes returns the declared scopes plus a claim-everything scope for
// each tool that alerted without one, sorted by tool name.
func toolScopes(tools []Scope, alerts []Alert) []Scope {
	seen := map[string]bool{}
	var out []Scope
	for _, t := range tools {
		if !seen[t.Tool] {
			seen[t.Tool] = true
			out = append(out, t)
		}
	}
	for _, a := range alerts {
		if !seen[a.Tool] {
			seen[a.Tool] = true
			out = append(out, Scope{Tool: a.Tool})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Tool < out[j].Tool })
	return out
}

// Detect is the detection verdict of one tool on a step; alerts of other
// tools are ignored. all are the run's steps (for Correlated).
func Detect(s Step, sc Scope, alerts []Alert, all []Step, opt Options) ToolDetection {
	d := ToolDetection{Tool: sc.Tool, Category: CategoryNone}
	if !InScope(s, sc) {
		d.Category = CategoryNotApplicable
		return d
	}
	b := StepBounds(s, opt)
	assets := stepAssetSet(s)
	bestInTime := CategoryNone
	var first time.Time
	for _, a := range alerts {
		if a.Tool != sc.Tool || !b.contains(a.Time) || !namesAsset(a, assets) {
			continue
		}
		d.Alerts++
		if first.IsZero() || a.Time.Before(first) {
			first = a.Time
		}
		c := alertCategory(s, a)
		if c.Rank() > d.Category.Rank() {
			d.Category = c
		}
		if !b.late(a.Time) && c.Rank() > bestInTime.Rank() {
			bestInTime = c
		}
		if !d.Correlated && namesOtherStep(s, a, all) {
			d.Correlated = true
		}
	}
	if d.Alerts > 0 {
		ms := max(first.Sub(s.Start).Milliseconds(), 0)
		d.TTDMs = &ms
		d.Delayed = bestInTime.Rank() < d.Category.Rank()
		d.InTime = bestInTime.Analytic()
	}
	switch {
	case d.InTime:
		d.Outcome = OutcomeDetectedInTime
	case d.Category.Analytic():
		d.Outcome = OutcomeDetectedLate
	default:
		d.Outcome = OutcomeMissed
	}
	return d
}

// ScoreStep is every verdict of one step. obs is what the harness observed
// of it; in holds the posture's controls and evidence, the alerts and the
// tools.
func ScoreStep(step Step, obs Observed, in Inputs, opt Options) StepVerdict {
	w := opt.weights()
	v := StepVerdict{
		RunID: step.RunID, ScenarioID: step.ScenarioID, StepID: step.StepID,
		Techniques: slices.Clone(step.Techniques), Tactic: step.Tactic,
		Effect: obs.Effect, Safety: SafetyNone,
		Harm: HarmVerdict{Occurred: w.HarmOccurred(obs.Harm), Metrics: obs.Harm, Weighted: w.Value(obs.Harm)},
	}
	v.Protection, v.Evidence = ProtectionOf(step, obs, in.Evidence, in.PostureControls, opt)
	if obs.SafetyCaught {
		v.Safety = SafetyCaught
	}
	all := in.Steps
	if len(all) == 0 {
		all = []Step{step}
	}
	v.Outcome = OutcomeMissed
	if v.Protection == ProtectionBlocked {
		v.Outcome = OutcomePrevented
	} else if v.Safety == SafetyCaught {
		v.Outcome = OutcomeCaughtBySafety
	}
	for _, sc := range toolScopes(in.Tools, in.Alerts) {
		d := Detect(step, sc, in.Alerts, all, opt)
		switch {
		case v.Protection == ProtectionBlocked:
			d.Outcome = OutcomePrevented
		case v.Safety == SafetyCaught:
			d.Outcome = OutcomeCaughtBySafety
		case d.Category == CategoryNotApplicable:
			d.Outcome = OutcomeNotApplicable
		}
		if d.Outcome.Rank() > v.Outcome.Rank() {
			v.Outcome = d.Outcome
		}
		v.Tools = append(v.Tools, d)
	}
	return v
}

// ScoreSteps scores every step in order; obs is keyed by StepID (a
// missing entry is the zero Observed: no effect, no harm). in.Steps
// defaults to steps.
func ScoreSteps(steps []Step, obs map[string]Observed, in Inputs, opt Options) []StepVerdict {
	if len(in.Steps) == 0 {
		in.Steps = steps
	}
	out := make([]StepVerdict, 0, len(steps))
	for _, s := range steps {
		out = append(out, ScoreStep(s, obs[s.StepID], in, opt))
	}
	return out
}
