package alarms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MaxBodySize caps the JSON bodies both sides accept (64 KiB).
const MaxBodySize = 64 << 10

// Response statuses a communicator reports (PCD-07-like).
const (
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusAccepted  = "accepted"
	StatusRejected  = "rejected"
)

// ResponseStatuses lists the valid Response.Status values.
var ResponseStatuses = []string{StatusDelivered, StatusRead, StatusAccepted, StatusRejected}

// Message is a dispatch from the manager to a communicator: the body of
// POST {communicator}/v1/messages (a WCTP-like JSON stand-in for PCD-06).
// Times are lab times.
type Message struct {
	// ID identifies this dispatch (unique per manager), e.g. "AM-17".
	ID string `json:"id"`
	// AlertID is the PCD-04 alert identifier (OBR-2.1); answers and cancels
	// name the alert by it.
	AlertID string `json:"alert_id"`
	// Recipient is the communicator id the manager sent this to.
	Recipient string `json:"recipient"`
	// Pump is the pump id (OBX-18 of the alert's event row).
	Pump string `json:"pump,omitempty"`
	// Event is the MDC reference of the alert event, e.g.
	// MDC_EVT_FLUID_LINE_OCCL.
	Event string `json:"event,omitempty"`
	// Text is the human-readable alert text.
	Text string `json:"text"`
	// Priority is PH, PM, PL or PN; Type is SP, ST or SA.
	Priority string `json:"priority,omitempty"`
	Type     string `json:"type,omitempty"`
	// Location is the patient's point of care, "unit^room^bed".
	Location string `json:"location,omitempty"`
	// Onset is the alarm onset (OBR-7); Sent the time of this dispatch.
	Onset time.Time `json:"onset"`
	Sent  time.Time `json:"sent"`
	// Level is the escalation level this dispatch belongs to (0 = primary).
	Level int `json:"level"`
	// Seq counts the dispatches of this alert to this recipient (1, 2, ...):
	// a repeat at the end of the escalation chain has Seq > 1.
	Seq int `json:"seq"`
	// Callback is the URL where the communicator posts its Response.
	Callback string `json:"callback"`
	// Token, when the manager has a ResponseKey, must be echoed in the
	// Response.
	Token string `json:"token,omitempty"`
}

// Response is a communicator's answer about an alert: the body of
// POST {manager}/v1/responses (a stand-in for PCD-07).
type Response struct {
	// AlertID names the alert (Message.AlertID). Required.
	AlertID string `json:"alert_id"`
	// Status is delivered, read, accepted or rejected. Required.
	Status string `json:"status"`
	// User is the nurse; required for accepted and rejected.
	User string `json:"user,omitempty"`
	// Communicator is the answering device id (Message.Recipient).
	Communicator string `json:"communicator,omitempty"`
	// Token echoes Message.Token.
	Token string `json:"token,omitempty"`
	// Reason is free text, e.g. why an alert was rejected.
	Reason string `json:"reason,omitempty"`
}

// maxIDLen bounds identifiers in JSON bodies.
const maxIDLen = 128

// DecodeResponse decodes and validates one Response: a single JSON object,
// no unknown fields, nothing after it, at most MaxBodySize bytes. The error
// names the problem (field or JSON position).
func DecodeResponse(b []byte) (Response, error) {
	var r Response
	if err := decodeStrict(b, &r); err != nil {
		return Response{}, fmt.Errorf("alarms: decode response: %w", err)
	}
	if err := r.Validate(); err != nil {
		return Response{}, fmt.Errorf("alarms: decode response: %w", err)
	}
	return r, nil
}

// Validate checks the required fields and the status value.
func (r Response) Validate() error {
	if err := checkID("alert_id", r.AlertID, true); err != nil {
		return err
	}
	if r.Status == "" {
		return errors.New(`missing "status"`)
	}
	known := false
	for _, s := range ResponseStatuses {
		known = known || s == r.Status
	}
	if !known {
		return fmt.Errorf(`unknown "status" %q (want one of %s)`, clip(r.Status), strings.Join(ResponseStatuses, ", "))
	}
	need := r.Status == StatusAccepted || r.Status == StatusRejected
	if err := checkID("user", r.User, need); err != nil {
		return err
	}
	if err := checkID("communicator", r.Communicator, false); err != nil {
		return err
	}
	if len(r.Token) > maxIDLen {
		return fmt.Errorf(`"token" longer than %d bytes`, maxIDLen)
	}
	if len(r.Reason) > 1024 {
		return errors.New(`"reason" longer than 1024 bytes`)
	}
	return nil
}

// DecodeMessage decodes and validates one dispatch Message with the same
// strictness as DecodeResponse; alert_id, recipient and callback are
// required.
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	if err := decodeStrict(b, &m); err != nil {
		return Message{}, fmt.Errorf("alarms: decode message: %w", err)
	}
	if err := m.Validate(); err != nil {
		return Message{}, fmt.Errorf("alarms: decode message: %w", err)
	}
	return m, nil
}

// Validate checks the required fields of a dispatch.
func (m Message) Validate() error {
	if err := checkID("alert_id", m.AlertID, true); err != nil {
		return err
	}
	if err := checkID("recipient", m.Recipient, true); err != nil {
		return err
	}
	if err := checkID("id", m.ID, false); err != nil {
		return err
	}
	if m.Callback == "" {
		return errors.New(`missing "callback"`)
	}
	if !strings.HasPrefix(m.Callback, "http://") && !strings.HasPrefix(m.Callback, "https://") {
		return fmt.Errorf(`"callback" %q is not an http(s) URL`, clip(m.Callback))
	}
	if m.Level < 0 || m.Seq < 0 {
		return errors.New(`negative "level" or "seq"`)
	}
	return nil
}

// checkID validates an identifier: printable ASCII without '/', at most
// maxIDLen bytes; required ones must be non-empty.
func checkID(name, v string, required bool) error {
	if v == "" {
		if required {
			return fmt.Errorf("missing %q", name)
		}
		return nil
	}
	if len(v) > maxIDLen {
		return fmt.Errorf("%q longer than %d bytes", name, maxIDLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return fmt.Errorf("%q %q: only printable ASCII without spaces or '/'", name, clip(v))
		}
	}
	return nil
}

// decodeStrict decodes exactly one JSON object into v.
func decodeStrict(b []byte, v any) error {
	if len(b) > MaxBodySize {
		return fmt.Errorf("body larger than %d bytes", MaxBodySize)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad JSON: %w", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("bad JSON: data after the object")
	}
	return nil
}

func describeJSONError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("syntax error at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		return fmt.Errorf("field %q: want %s, got JSON %s", te.Field, te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return errors.New("truncated object")
	}
	return err
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ResponseCase is one fixture of the response decoder: JSON input, the
// decoded value, or a fragment of the expected error.
type ResponseCase struct {
	Name string
	JSON string
	Want Response
	// Err is a substring of the error; "" means the input is valid.
	Err string
}

// ResponseCases is the exported fixture table of DecodeResponse, shared by
// the decoder, server and fuzz tests (and usable by attack code that forges
// PCD-07 answers).
var ResponseCases = []ResponseCase{
	{Name: "accepted", JSON: `{"alert_id":"ALR-55123","status":"accepted","user":"RN0042","communicator":"PHONE-4W-1"}`,
		Want: Response{AlertID: "ALR-55123", Status: StatusAccepted, User: "RN0042", Communicator: "PHONE-4W-1"}},
	{Name: "rejected with reason", JSON: `{"alert_id":"ALR-1","status":"rejected","user":"RN0007","reason":"nuisance"}`,
		Want: Response{AlertID: "ALR-1", Status: StatusRejected, User: "RN0007", Reason: "nuisance"}},
	{Name: "delivered without user", JSON: ` {"alert_id":"ALR-1","status":"delivered"} `,
		Want: Response{AlertID: "ALR-1", Status: StatusDelivered}},
	{Name: "read with token", JSON: `{"alert_id":"ALR-1","status":"read","user":"RN1","token":"abc123"}`,
		Want: Response{AlertID: "ALR-1", Status: StatusRead, User: "RN1", Token: "abc123"}},
	{Name: "empty", JSON: ``, Err: "empty body"},
	{Name: "not an object", JSON: `[1,2]`, Err: "bad JSON"},
	{Name: "syntax", JSON: `{"alert_id":"ALR-1",`, Err: "bad JSON"},
	{Name: "unknown field", JSON: `{"alert_id":"ALR-1","status":"read","priority":"PH"}`, Err: `unknown field "priority"`},
	{Name: "wrong type", JSON: `{"alert_id":7,"status":"read"}`, Err: `field "alert_id"`},
	{Name: "trailing data", JSON: `{"alert_id":"ALR-1","status":"read"}{}`, Err: "data after the object"},
	{Name: "missing alert", JSON: `{"status":"accepted","user":"RN1"}`, Err: `missing "alert_id"`},
	{Name: "missing status", JSON: `{"alert_id":"ALR-1"}`, Err: `missing "status"`},
	{Name: "unknown status", JSON: `{"alert_id":"ALR-1","status":"silenced","user":"RN1"}`, Err: `unknown "status"`},
	{Name: "accept without user", JSON: `{"alert_id":"ALR-1","status":"accepted"}`, Err: `missing "user"`},
	{Name: "slash in id", JSON: `{"alert_id":"../x","status":"read"}`, Err: `"alert_id"`},
}

// MessageCase is one fixture of the dispatch decoder.
type MessageCase struct {
	Name string
	JSON string
	Want Message
	Err  string
}

// MessageCases is the exported fixture table of DecodeMessage.
var MessageCases = []MessageCase{
	{Name: "occlusion", JSON: `{"id":"AM-1","alert_id":"ALR-55123","recipient":"PHONE-4W-1","pump":"PUMP-0007",` +
		`"event":"MDC_EVT_FLUID_LINE_OCCL","text":"Occlusion","priority":"PH","type":"ST","location":"4W ICU^12^A",` +
		`"onset":"2026-01-01T08:00:00Z","sent":"2026-01-01T08:00:01Z","level":0,"seq":1,"callback":"http://127.0.0.1:9/v1/responses"}`,
		Want: Message{ID: "AM-1", AlertID: "ALR-55123", Recipient: "PHONE-4W-1", Pump: "PUMP-0007",
			Event: "MDC_EVT_FLUID_LINE_OCCL", Text: "Occlusion", Priority: "PH", Type: "ST", Location: "4W ICU^12^A",
			Onset: time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC), Sent: time.Date(2026, 1, 1, 8, 0, 1, 0, time.UTC),
			Level: 0, Seq: 1, Callback: "http://127.0.0.1:9/v1/responses"}},
	{Name: "missing callback", JSON: `{"alert_id":"ALR-1","recipient":"P1","text":"x"}`, Err: `missing "callback"`},
	{Name: "bad callback", JSON: `{"alert_id":"ALR-1","recipient":"P1","callback":"file:///etc/passwd"}`, Err: "not an http(s) URL"},
	{Name: "missing recipient", JSON: `{"alert_id":"ALR-1","callback":"http://x/"}`, Err: `missing "recipient"`},
	{Name: "bad time", JSON: `{"alert_id":"ALR-1","recipient":"P1","callback":"http://x/","onset":"yesterday"}`, Err: "bad JSON"},
	{Name: "negative level", JSON: `{"alert_id":"ALR-1","recipient":"P1","callback":"http://x/","level":-1}`, Err: "negative"},
}
