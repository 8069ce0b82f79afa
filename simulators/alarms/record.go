package alarms

import (
	"time"

	"github.com/pumplab/pumplab/simulators/hl7"
)

// Alert is what the manager read from a PCD-04 message. Route and Authorize
// receive it.
type Alert struct {
	// ID and App are OBR-2.1 and OBR-2.2 (or OBR-3): the reporter's alert
	// identifier and its namespace. The manager keys alerts by ID.
	ID, App string
	// Pump and PumpEUI come from OBX-18 of the facet 1 row.
	Pump, PumpEUI string
	// EventCode and Event are the facet 1 OBX-5 code and MDC reference;
	// Text is OBX-5.9 or, when empty, Event.
	EventCode int
	Event     string
	Text      string
	// Phase, State, Inactivation, Priority and Type are facets 3-7.
	Phase, State, Inactivation, Priority, Type string
	// Onset is OBR-7 (lab time of the alarm onset at the pump).
	Onset time.Time
	// Unit and Location are PV1-3.1 and the whole PV1-3 ("unit^room^bed").
	Unit, Location string
	// MRN is PID-3.1.
	MRN string
	// Reporter is the sending application (MSH-3.1), ControlID MSH-10.
	Reporter, ControlID string
}

func alertOf(a hl7.Alert) Alert {
	out := Alert{
		ID: a.AlertID, App: a.AlertApp,
		Pump: a.PumpID, PumpEUI: a.PumpEUI,
		EventCode: a.Event.Code, Event: a.Event.Ref, Text: a.EventText,
		Phase: a.Phase, State: a.State, Inactivation: a.Inactivation, Priority: a.Priority, Type: a.Type,
		Onset:    a.OnsetTime,
		Unit:     a.Patient.Location.Unit,
		Location: a.Patient.Location.String(),
		MRN:      a.Patient.MRN,
		Reporter: a.Header.SendingApp.Namespace, ControlID: a.Header.ControlID,
	}
	if out.Text == "" {
		out.Text = out.Event
	}
	return out
}

// Alert record statuses (AlertRecord.Status), most final first:
//   - accepted: a nurse accepted the alert (it may have ended since).
//   - cancelled: the reporter ended the alert before anyone accepted it.
//   - unanswered: escalation ran to the end of the chain and the bounded
//     repeats without acceptance.
//   - undeliverable: no dispatch has been delivered and none is pending.
//   - read, delivered: the best answer so far from a communicator.
//   - queued: received, dispatch in progress.
const (
	RecordQueued        = "queued"
	RecordDelivered     = "delivered"
	RecordRead          = "read"
	RecordAccepted      = "accepted"
	RecordCancelled     = "cancelled"
	RecordUnanswered    = "unanswered"
	RecordUndeliverable = "undeliverable"
)

// Dispatch is one recipient's copy of an alert at one escalation level (or
// one repeat at the last level). Times are lab times.
type Dispatch struct {
	// ID is the dispatch id (Message.ID), kept across retries.
	ID           string `json:"id"`
	Communicator string `json:"communicator"`
	URL          string `json:"url"`
	Level        int    `json:"level"`
	Seq          int    `json:"seq"`
	// Attempts counts HTTP POSTs (first try plus retries).
	Attempts int       `json:"attempts"`
	Sent     time.Time `json:"sent,omitzero"`
	// Delivered is when a POST was answered 2xx (zero if never).
	Delivered time.Time `json:"delivered,omitzero"`
	// Error is the last failure; GaveUp says retries are exhausted.
	Error  string `json:"error,omitempty"`
	GaveUp bool   `json:"gave_up,omitempty"`
	// Cancelled is when the cancel notice was sent.
	Cancelled time.Time `json:"cancelled,omitzero"`
}

// AlertRecord is the manager's record of one alert. Lab times come from the
// manager's clock (Onset from the reporter); the *Wall fields are wall-clock
// stamps for the wall-time latencies.
type AlertRecord struct {
	ID       string `json:"id"`
	App      string `json:"app,omitempty"`
	Pump     string `json:"pump"`
	Code     string `json:"code"` // MDC reference of the event
	Text     string `json:"text"`
	Priority string `json:"priority"`
	Type     string `json:"type,omitempty"`
	Location string `json:"location,omitempty"`

	// Onset is OBR-7 of the start message (Received when OBR-7 is empty).
	Onset    time.Time `json:"onset,omitzero"`
	Received time.Time `json:"received,omitzero"`
	// Delivered is the first delivery to any communicator; Read the first
	// "read" answer.
	Delivered time.Time `json:"delivered,omitzero"`
	Read      time.Time `json:"read,omitzero"`
	// Accepted is when a nurse accepted, AcceptedBy who, AcceptedVia on
	// which communicator.
	Accepted    time.Time `json:"accepted,omitzero"`
	AcceptedBy  string    `json:"accepted_by,omitempty"`
	AcceptedVia string    `json:"accepted_via,omitempty"`
	// Ended is when the reporter's phase end arrived.
	Ended time.Time `json:"ended,omitzero"`

	ReceivedWall  time.Time `json:"received_wall,omitzero"`
	DeliveredWall time.Time `json:"delivered_wall,omitzero"`
	AcceptedWall  time.Time `json:"accepted_wall,omitzero"`

	// Level is the highest escalation level reached (0 = primary);
	// Escalations counts escalation steps including repeats at the last
	// level.
	Level       int `json:"level"`
	Escalations int `json:"escalations"`
	// Attempts counts HTTP dispatch attempts, Failures the failed ones.
	Attempts int `json:"attempts"`
	Failures int `json:"failures"`
	// Rejections counts "rejected" answers; RejectedBy lists their users.
	Rejections int      `json:"rejections"`
	RejectedBy []string `json:"rejected_by,omitempty"`
	// Messages counts PCD-04 messages for this alert, Duplicates the
	// repeated ones (same phase again).
	Messages   int `json:"messages"`
	Duplicates int `json:"duplicates"`
	// StartFrom and EndFrom describe the connections the start and end
	// arrived on ("remote-addr" or "remote-addr cn=NAME"): evidence for
	// forged ends.
	StartFrom string `json:"start_from,omitempty"`
	EndFrom   string `json:"end_from,omitempty"`
	// Reporter is the alert reporter (certificate CN, else MSH-3.1) under
	// the alarm-heartbeat control. EndPending is when an end arrived that
	// waits for the reporter's next heartbeat (Ended is when it was
	// applied; zero again if it was refused); EndsRefused counts the ends
	// the control refused.
	Reporter    string    `json:"reporter,omitempty"`
	EndPending  time.Time `json:"end_pending,omitzero"`
	EndsRefused int       `json:"ends_refused,omitempty"`

	Status     string     `json:"status"`
	Dispatches []Dispatch `json:"dispatches,omitempty"`
}

// Active reports whether the reporter has not ended the alert.
func (r AlertRecord) Active() bool { return r.Ended.IsZero() }

// Missed reports whether the alert was never delivered to any communicator
// (the "missed" metric).
func (r AlertRecord) Missed() bool { return r.Delivered.IsZero() }

// NotifyLatency is L_notify: onset to first delivery, in lab time. ok is
// false when the alert was never delivered.
func (r AlertRecord) NotifyLatency() (d time.Duration, ok bool) {
	if r.Delivered.IsZero() {
		return 0, false
	}
	return r.Delivered.Sub(r.Onset), true
}

// AckLatency is L_ack: onset to acceptance, in lab time. ok is false when
// nobody accepted.
func (r AlertRecord) AckLatency() (d time.Duration, ok bool) {
	if r.Accepted.IsZero() {
		return 0, false
	}
	return r.Accepted.Sub(r.Onset), true
}

// NotifyWall is receipt of the PCD-04 to first delivery in wall time: the
// manager's share of L_notify, which is what inline security tools (TLS, an
// inline IDS) slow down. The reporter-to-manager leg is only known in lab
// time (Received - Onset).
func (r AlertRecord) NotifyWall() (d time.Duration, ok bool) {
	if r.DeliveredWall.IsZero() || r.ReceivedWall.IsZero() {
		return 0, false
	}
	return r.DeliveredWall.Sub(r.ReceivedWall), true
}

// AckWall is receipt of the PCD-04 to acceptance in wall time.
func (r AlertRecord) AckWall() (d time.Duration, ok bool) {
	if r.AcceptedWall.IsZero() || r.ReceivedWall.IsZero() {
		return 0, false
	}
	return r.AcceptedWall.Sub(r.ReceivedWall), true
}

func (r AlertRecord) clone() AlertRecord {
	r.RejectedBy = append([]string(nil), r.RejectedBy...)
	r.Dispatches = append([]Dispatch(nil), r.Dispatches...)
	return r
}

// Stats counts what the manager saw and did.
type Stats struct {
	// Received counts accepted PCD-04 messages (duplicates included);
	// Alerts the distinct alerts started; Duplicates the repeated ones.
	Received   int64 `json:"received"`
	Alerts     int64 `json:"alerts"`
	Duplicates int64 `json:"duplicates"`
	// Malformed counts MLLP frames answered with an error acknowledgement
	// (unparseable, not ORU^R40, missing alert fields), excluding Refused.
	Malformed int64 `json:"malformed"`
	// Refused counts PCD-04 messages and heartbeats refused by
	// Config.Authorize or by the alarm-heartbeat control.
	Refused int64 `json:"refused"`
	// Heartbeats counts accepted reporter heartbeats. Under the
	// alarm-heartbeat control: SequenceRefused counts messages refused for
	// their sequence number (replayed, out of order, jumping), SequenceGaps
	// the gaps flagged, EndsRefused the alert ends refused (still listed
	// active by the reporter, or from another reporter), SilentReporters
	// the "reporter silent" alerts raised.
	Heartbeats      int64 `json:"heartbeats"`
	SequenceRefused int64 `json:"sequence_refused,omitempty"`
	SequenceGaps    int64 `json:"sequence_gaps,omitempty"`
	EndsRefused     int64 `json:"ends_refused,omitempty"`
	SilentReporters int64 `json:"silent_reporters,omitempty"`
	// UnknownEnds counts ends (and other non-start phases that cannot start
	// an alert) for alerts the manager never saw start.
	UnknownEnds int64 `json:"unknown_ends"`
	// Dispatched counts HTTP dispatch attempts, Delivered the 2xx answers,
	// Failed the other attempts, Undeliverable the dispatches given up after
	// retries.
	Dispatched    int64 `json:"dispatched"`
	Delivered     int64 `json:"delivered"`
	Failed        int64 `json:"failed"`
	Undeliverable int64 `json:"undeliverable"`
	// Escalated counts escalation steps (next level or repeat at the last).
	Escalated int64 `json:"escalated"`
	// Cancelled counts cancel notices sent to communicators.
	Cancelled int64 `json:"cancelled"`
	// Responses counts valid communicator answers, Accepted and Rejected
	// the accepting and rejecting ones; BadResponses the 4xx answers of
	// /v1/responses (bad JSON, unknown alert, bad token).
	Responses    int64 `json:"responses"`
	Accepted     int64 `json:"accepted"`
	Rejected     int64 `json:"rejected"`
	BadResponses int64 `json:"bad_responses"`
	// Reported counts PCD-05 messages the reporter acknowledged;
	// ReportFailed the ones that could not be sent or were refused.
	Reported     int64 `json:"reported"`
	ReportFailed int64 `json:"report_failed"`
}
