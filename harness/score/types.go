// Package score is the scoring model of the lab (design/SCORING.md): the
// records a run produces (ground truth, alerts, control evidence, harm), the
// verdict of every attack step per tool, false positives, and the aggregates
// per posture and tool. It is pure: no Ginkgo, no I/O, no clock; everything it
// needs is in its arguments, so the same inputs always give the same scores.
package score

import "time"

// Step is the ground truth of one attack step, written by the harness
// before the step acts and never shown to tools.
type Step struct {
	RunID      string `json:"run_id"`
	ScenarioID string `json:"scenario_id"` // ATK-10
	StepID     string `json:"step_id"`     // ATK-10/1
	// Techniques are ATT&CK for ICS technique ids (T0831), Tactic its tactic
	// id (TA0106).
	Techniques []string `json:"techniques"`
	Tactic     string   `json:"tactic,omitempty"`
	// Assets are the targets: pump ids, service names, addresses.
	Assets []string `json:"assets"`
	// Correlation are message ids, MQTT client ids, TCP 5-tuples.
	Correlation []string `json:"correlation,omitempty"`
	// Start and End are wall time; LabStart and LabEnd lab time.
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	LabStart time.Time `json:"lab_start"`
	LabEnd   time.Time `json:"lab_end"`
	// Criteria says what counts as the step having happened.
	Criteria string `json:"criteria,omitempty"`
	// Control is the control of the posture expected to block the step.
	Control string `json:"control,omitempty"`
	// Window is the step's clinical window: a detection later than End +
	// Window is Delayed. Zero means DefaultWindow.
	Window time.Duration `json:"window,omitempty"`
}

// DefaultWindow is the clinical window of a step without its own (T_detect
// of REFERENCE.md §3.0).
const DefaultWindow = 5 * time.Minute

// Alert is one alert of a tool, as the lab's intake received it.
type Alert struct {
	Tool       string    `json:"tool"`
	Time       time.Time `json:"time"`              // receive time (wall)
	Reported   time.Time `json:"reported,omitzero"` // the tool's own timestamp, if any
	Severity   string    `json:"severity,omitempty"`
	Assets     []string  `json:"assets,omitempty"` // pump ids, service names, hosts
	Addresses  []string  `json:"addresses,omitempty"`
	Techniques []string  `json:"techniques,omitempty"`
	Tactics    []string  `json:"tactics,omitempty"`
	Category   string    `json:"category,omitempty"`
	Text       string    `json:"text,omitempty"`
	// Telemetry marks a raw telemetry record rather than an alert.
	Telemetry bool   `json:"telemetry,omitempty"`
	Raw       string `json:"raw,omitempty"`
	// Source is how it arrived: http, syslog-udp, syslog-tcp, file.
	Source string `json:"source,omitempty"`
}

// Evidence is a control acting: what it did, on what, when, why.
type Evidence struct {
	Control string    `json:"control"`
	Time    time.Time `json:"time"`
	Target  string    `json:"target"`           // asset it protected
	Action  string    `json:"action"`           // blocked, allowed, flagged
	Reason  string    `json:"reason,omitempty"` // why
	Ref     string    `json:"ref,omitempty"`    // message id or connection it acted on
}

// Harm is what reached the patient and the hospital during a step
// (REFERENCE.md §3.0).
type Harm struct {
	DDR                float64 `json:"ddr,omitempty"`         // delivered-dose ratio
	ExcessDrug         float64 `json:"excess_drug,omitempty"` // above ordered, in the drug's unit
	InterruptedMin     float64 `json:"interrupted_min,omitempty"`
	AlarmsMissed       int     `json:"alarms_missed,omitempty"`
	AlarmsLate         int     `json:"alarms_late,omitempty"`
	DocMismatch        bool    `json:"doc_mismatch,omitempty"`
	PHIExposed         int     `json:"phi_exposed,omitempty"`
	CredsExposed       int     `json:"creds_exposed,omitempty"`
	PumpMinutesOffline float64 `json:"pump_minutes_offline,omitempty"`
	HighAlert          bool    `json:"high_alert,omitempty"` // the drug is high-alert: harm weighs more
}

// Observed is what the harness observed of a step after it ran.
type Observed struct {
	// Effect reports whether the step's effect happened (its criteria met).
	Effect bool `json:"effect"`
	// SafetyCaught reports that the pump's own functions (DERS hard limit,
	// alarms, lockout) stopped or flagged the effect.
	SafetyCaught bool `json:"safety_caught"`
	Harm         Harm `json:"harm"`
}

// Scope is a tool's declared scope: assets and techniques it claims to
// cover; steps outside it are Not Applicable for that tool. Empty lists
// claim everything.
type Scope struct {
	Tool       string   `json:"tool"`
	Assets     []string `json:"assets,omitempty"`
	Techniques []string `json:"techniques,omitempty"`
}
