package score

// Protection is the protection verdict of a step under a posture.
type Protection string

// Protection verdicts.
const (
	// ProtectionBlocked: a control acted on the step (control evidence) and
	// the step's effect is absent.
	ProtectionBlocked Protection = "blocked"
	// ProtectionNone: a control claims the step but did not stop it, or the
	// step failed without any control evidence.
	ProtectionNone Protection = "none"
	// ProtectionNotApplicable: no control of the posture claims the step
	// and none acted on it.
	ProtectionNotApplicable Protection = "not_applicable"
)

// Safety is the verdict of the pump's own safety layer (DERS hard limit,
// alarms, lockout).
type Safety string

// Safety verdicts.
const (
	SafetyCaught Safety = "caught"
	SafetyNone   Safety = "none"
)

// Category is the detection category of one tool on one step, in the
// vocabulary of MITRE ATT&CK Evaluations.
type Category string

// Detection categories, from worst to best (NotApplicable is outside the
// ranking: the step is outside the tool's declared scope).
const (
	CategoryNotApplicable Category = "not_applicable"
	CategoryNone          Category = "none"
	CategoryTelemetry     Category = "telemetry"
	CategoryGeneral       Category = "general"
	CategoryTactic        Category = "tactic"
	CategoryTechnique     Category = "technique"
)

// Rank orders categories: NotApplicable -1, None 0, Telemetry 1, General 2,
// Tactic 3, Technique 4. Unknown strings rank -1.
func (c Category) Rank() int {
	switch c {
	case CategoryNone:
		return 0
	case CategoryTelemetry:
		return 1
	case CategoryGeneral:
		return 2
	case CategoryTactic:
		return 3
	case CategoryTechnique:
		return 4
	}
	return -1
}

// Visible reports a detection of any kind (Telemetry or better).
func (c Category) Visible() bool { return c.Rank() >= 1 }

// Analytic reports an analytic detection (General, Tactic or Technique).
func (c Category) Analytic() bool { return c.Rank() >= 2 }

// Outcome is the place of a step on the outcome ladder Prevented >
// CaughtBySafety > DetectedInTime > DetectedLate > Missed.
type Outcome string

// Outcomes, best first. NotApplicable is a tool's outcome on a step outside
// its scope that was neither prevented nor caught.
const (
	OutcomePrevented      Outcome = "prevented"
	OutcomeCaughtBySafety Outcome = "caught_by_safety"
	OutcomeDetectedInTime Outcome = "detected_in_time"
	OutcomeDetectedLate   Outcome = "detected_late"
	OutcomeMissed         Outcome = "missed"
	OutcomeNotApplicable  Outcome = "not_applicable"
)

// Rank orders outcomes: Prevented 5 ... Missed 1, NotApplicable 0.
func (o Outcome) Rank() int {
	switch o {
	case OutcomePrevented:
		return 5
	case OutcomeCaughtBySafety:
		return 4
	case OutcomeDetectedInTime:
		return 3
	case OutcomeDetectedLate:
		return 2
	case OutcomeMissed:
		return 1
	}
	return 0
}

// Outcomes lists the outcomes best first (the order of the ladder).
var Outcomes = []Outcome{OutcomePrevented, OutcomeCaughtBySafety, OutcomeDetectedInTime,
	OutcomeDetectedLate, OutcomeMissed, OutcomeNotApplicable}

// HarmVerdict is the harm of a step: whether harm happened, its metrics and
// its weighted value (see HarmWeights).
type HarmVerdict struct {
	Occurred bool    `json:"occurred"`
	Metrics  Harm    `json:"metrics"`
	Weighted float64 `json:"weighted"`
}

// ToolDetection is one tool's detection verdict on one step.
type ToolDetection struct {
	Tool     string   `json:"tool"`
	Category Category `json:"category"`
	// Delayed: the best category was reached only by alerts later than the
	// step's clinical deadline.
	Delayed bool `json:"delayed,omitempty"`
	// Correlated: a matching alert also names a correlation id of another
	// step of the same scenario.
	Correlated bool `json:"correlated,omitempty"`
	// InTime: an analytic alert (General or better) matched by the
	// clinical deadline.
	InTime bool `json:"in_time,omitempty"`
	// TTDMs is the time to detect in ms: first matching alert minus the
	// step's start (0 when the alert came within the early tolerance);
	// nil when nothing matched.
	TTDMs *int64 `json:"ttd_ms,omitempty"`
	// Alerts is the number of the tool's alerts that matched the step.
	Alerts  int     `json:"alerts"`
	Outcome Outcome `json:"outcome"`
}

// StepVerdict is every verdict of one step: protection, safety, harm, and
// detection per tool (sorted by tool name).
type StepVerdict struct {
	RunID      string   `json:"run_id,omitempty"`
	ScenarioID string   `json:"scenario_id"`
	StepID     string   `json:"step_id"`
	Techniques []string `json:"techniques,omitempty"`
	Tactic     string   `json:"tactic,omitempty"`

	Protection Protection `json:"protection"`
	// Evidence is the control evidence that counted for the step, in time order.
	Evidence []Evidence  `json:"evidence,omitempty"`
	Effect   bool        `json:"effect"`
	Safety   Safety      `json:"safety"`
	Harm     HarmVerdict `json:"harm"`

	Tools []ToolDetection `json:"tools,omitempty"`
	// Outcome is the best outcome over the tools (Prevented or
	// CaughtBySafety regardless of tools; Missed when no tool applies).
	Outcome Outcome `json:"outcome"`
}

// Tool returns the detection of the named tool and whether there is one.
func (v StepVerdict) Tool(name string) (ToolDetection, bool) {
	for _, d := range v.Tools {
		if d.Tool == name {
			return d, true
		}
	}
	return ToolDetection{}, false
}
