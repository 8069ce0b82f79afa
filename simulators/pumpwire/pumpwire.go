// Package pumpwire is the MQTT protocol between infusion pumps and the pump
// server: topic names, the message envelope and the payload types.
//
// Every message is a JSON Envelope published on a topic under
// pumplab/v1/pumps/{id}/:
//
//	status    pump -> server  Status, periodic (QoS 0)
//	events    pump -> server  Event, one per message (QoS 1), buffered while offline
//	alarms    pump -> server  Alarm, one per message (QoS 1), buffered while offline
//	cmd       server -> pump  Command (QoS 1)
//	cmd/ack   pump -> server  CommandAck (QoS 1)
//	online    pump -> server  Online, retained; the broker publishes the last will {online:false}
//
// Decoders never trust their input: every Decode function returns an error
// naming the field that was wrong, and never panics (fuzzed).
//
// The protocol is versioned by the topic prefix and by the envelope's v field
// (Version). docs/pumpwire.md documents it for people scripting against the lab.
package pumpwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Version is the envelope schema version this package writes and accepts.
const Version = 1

// Prefix is the topic prefix of every pump topic.
const Prefix = "pumplab/v1/pumps/"

// MaxPayload is the largest payload a decoder accepts, in bytes.
const MaxPayload = 64 << 10

// Kind names a topic leaf and the body type carried on it.
type Kind string

// The topic kinds.
const (
	KindStatus Kind = "status"
	KindEvent  Kind = "events"
	KindAlarm  Kind = "alarms"
	KindCmd    Kind = "cmd"
	KindAck    Kind = "cmd/ack"
	KindOnline Kind = "online"
	// KindReceipt carries the pump server's end-to-end receipts for events
	// and alarms it took in (server -> pump).
	KindReceipt Kind = "receipt"
)

var kinds = []Kind{KindStatus, KindEvent, KindAlarm, KindAck, KindCmd, KindOnline, KindReceipt}

// Topic returns the topic of kind k for pump id.
func Topic(id string, k Kind) string { return Prefix + id + "/" + string(k) }

// ServerOnlineTopic is the pump server's retained presence topic (body
// Online; the server's last will is {online:false}). Pumps that await the
// server flush buffered events and alarms only while it reads online, so a
// message is never published into a broker where nobody subscribed to it
// (after a broker restart the server must resubscribe first).
const ServerOnlineTopic = "pumplab/v1/server/online"

// DecodeServerOnline parses a message of ServerOnlineTopic.
func DecodeServerOnline(payload []byte) (Envelope, Online, error) {
	env, err := DecodeEnvelope(payload)
	if err != nil {
		return env, Online{}, err
	}
	o, err := DecodeBody[Online](env)
	return env, o, err
}

// Filter returns a subscription filter for kind k of every pump.
func Filter(k Kind) string { return Prefix + "+/" + string(k) }

// ParseTopic splits a pump topic into pump id and kind.
func ParseTopic(topic string) (id string, k Kind, err error) {
	rest, ok := strings.CutPrefix(topic, Prefix)
	if !ok {
		return "", "", fmt.Errorf("pumpwire: topic %q: not under %s", topic, Prefix)
	}
	id, leaf, ok := strings.Cut(rest, "/")
	if !ok || id == "" {
		return "", "", fmt.Errorf("pumpwire: topic %q: no pump id", topic)
	}
	if err := ValidID(id); err != nil {
		return "", "", fmt.Errorf("pumpwire: topic %q: %w", topic, err)
	}
	for _, k := range kinds {
		if leaf == string(k) {
			return id, k, nil
		}
	}
	return "", "", fmt.Errorf("pumpwire: topic %q: unknown kind %q", topic, leaf)
}

// ValidID reports whether id is usable as a pump id: 1 to 64 characters of
// letters, digits, '-' and '_'.
func ValidID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("pump id %q: length must be 1..64", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("pump id %q: character %q not allowed", id, r)
		}
	}
	return nil
}

// Auth is the optional security block of hardened postures: the sender's key
// id, a single-use nonce and a signature over the envelope without Auth.
type Auth struct {
	KeyID string `json:"kid"`
	Nonce string `json:"nonce"`
	Sig   string `json:"sig"`
}

// Envelope wraps every payload.
type Envelope struct {
	V    int             `json:"v"`
	ID   string          `json:"id"`   // message id, unique per sender
	From string          `json:"from"` // sender: pump id or server name
	TS   time.Time       `json:"ts"`   // lab time the content was created (original time when buffered)
	Seq  uint64          `json:"seq"`  // per-sender counter, starts at 1
	Body json.RawMessage `json:"body"`
	Auth *Auth           `json:"auth,omitempty"`
}

// Encode builds an envelope around body and marshals it.
func Encode(id, from string, ts time.Time, seq uint64, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("pumpwire: encode body: %w", err)
	}
	return json.Marshal(Envelope{V: Version, ID: id, From: from, TS: ts.UTC(), Seq: seq, Body: b})
}

// DecodeEnvelope parses and checks the envelope fields.
func DecodeEnvelope(payload []byte) (Envelope, error) {
	var e Envelope
	if len(payload) > MaxPayload {
		return e, fmt.Errorf("pumpwire: payload of %d bytes exceeds %d", len(payload), MaxPayload)
	}
	if err := strictUnmarshal(payload, &e); err != nil {
		return e, fmt.Errorf("pumpwire: envelope: %w", err)
	}
	switch {
	case e.V != Version:
		return e, fmt.Errorf("pumpwire: envelope field v: version %d, want %d", e.V, Version)
	case e.ID == "" || len(e.ID) > 128:
		return e, errors.New("pumpwire: envelope field id: missing or longer than 128")
	case e.From == "" || len(e.From) > 64:
		return e, errors.New("pumpwire: envelope field from: missing or longer than 64")
	case e.TS.IsZero():
		return e, errors.New("pumpwire: envelope field ts: missing")
	case e.Seq == 0:
		return e, errors.New("pumpwire: envelope field seq: missing or zero")
	case len(e.Body) == 0 || bytes.Equal(e.Body, []byte("null")):
		return e, errors.New("pumpwire: envelope field body: missing")
	}
	return e, nil
}

// strictUnmarshal rejects unknown fields and trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// Validator is implemented by every body type.
type Validator interface{ Validate() error }

// DecodeBody parses an envelope's body into v and validates it.
func DecodeBody[T any, P interface {
	*T
	Validator
}](e Envelope) (T, error) {
	var v T
	if err := strictUnmarshal(e.Body, &v); err != nil {
		return v, fmt.Errorf("pumpwire: body of %T: %w", v, err)
	}
	if err := P(&v).Validate(); err != nil {
		return v, fmt.Errorf("pumpwire: body of %T: %w", v, err)
	}
	return v, nil
}

// Decode parses a payload published on topic into its envelope and typed body
// (one of *Status, *Event, *Alarm, *Command, *CommandAck, *Online). It checks
// that the envelope's sender matches the topic's pump id for pump-sent kinds.
func Decode(topic string, payload []byte) (pumpID string, env Envelope, body any, err error) {
	id, k, err := ParseTopic(topic)
	if err != nil {
		return "", env, nil, err
	}
	env, err = DecodeEnvelope(payload)
	if err != nil {
		return id, env, nil, err
	}
	if k != KindCmd && k != KindReceipt && env.From != id {
		return id, env, nil, fmt.Errorf("pumpwire: envelope field from: %q sent on topic of pump %q", env.From, id)
	}
	switch k {
	case KindStatus:
		v, err := DecodeBody[Status](env)
		return id, env, &v, err
	case KindEvent:
		v, err := DecodeBody[Event](env)
		return id, env, &v, err
	case KindAlarm:
		v, err := DecodeBody[Alarm](env)
		return id, env, &v, err
	case KindCmd:
		v, err := DecodeBody[Command](env)
		return id, env, &v, err
	case KindAck:
		v, err := DecodeBody[CommandAck](env)
		return id, env, &v, err
	case KindReceipt:
		v, err := DecodeBody[Receipt](env)
		return id, env, &v, err
	default:
		v, err := DecodeBody[Online](env)
		return id, env, &v, err
	}
}

// Receipt confirms that the pump server took in the listed event and alarm
// envelopes (by envelope id). A pump keeps each event and alarm until its
// receipt arrives and publishes it again after a reconnect otherwise: QoS 1
// only reaches the broker, and a broker that dies after acknowledging a
// message loses it.
type Receipt struct {
	IDs []string `json:"ids"`
}

// Validate implements Validator.
func (r *Receipt) Validate() error {
	if len(r.IDs) == 0 || len(r.IDs) > 1000 {
		return fmt.Errorf("field ids: %d ids, want 1..1000", len(r.IDs))
	}
	for i, id := range r.IDs {
		if id == "" || len(id) > 128 {
			return fmt.Errorf("field ids[%d]: empty or longer than 128", i)
		}
	}
	return nil
}

// Online is the retained presence message; the last will carries Online false.
type Online struct {
	Online   bool   `json:"online"`
	Model    string `json:"model,omitempty"`
	Firmware string `json:"firmware,omitempty"`
}

// Validate implements Validator.
func (o *Online) Validate() error { return nil }

// Status is the periodic pump status.
type Status struct {
	State           string          `json:"state"` // pump-level state, see pump.State names
	Battery         float64         `json:"battery"`
	OnMains         bool            `json:"on_mains"`
	LibraryVersion  string          `json:"library_version"`
	LibraryHash     string          `json:"library_hash,omitempty"`
	PendingLibrary  string          `json:"pending_library,omitempty"`
	Firmware        string          `json:"firmware"`
	CareArea        string          `json:"care_area,omitempty"`
	PatientID       string          `json:"patient_id,omitempty"`
	Channels        []ChannelStatus `json:"channels"`
	BufferedPending int             `json:"buffered_pending,omitempty"`
}

// ChannelStatus is one channel in a Status; volumes in mL, rates in mL/h.
type ChannelStatus struct {
	Channel       string  `json:"channel"` // "A", "B", ...
	Type          string  `json:"type"`    // lvp, syringe, pca
	State         string  `json:"state"`
	PatientID     string  `json:"patient_id,omitempty"` // patient of the channel's program (PHI on the wire)
	OrderID       string  `json:"order_id,omitempty"`
	DrugID        string  `json:"drug_id,omitempty"`
	DrugName      string  `json:"drug_name,omitempty"`
	RateMLH       float64 `json:"rate_ml_h"`
	DoseRate      float64 `json:"dose_rate,omitempty"`
	DoseUnit      string  `json:"dose_unit,omitempty"`
	Concentration float64 `json:"concentration,omitempty"` // drug amount per mL, in ConcUnit
	ConcUnit      string  `json:"conc_unit,omitempty"`
	VTBI          float64 `json:"vtbi_ml,omitempty"`
	VolumeInfused float64 `json:"volume_infused_ml"`
	DrugInfused   float64 `json:"drug_infused,omitempty"` // in the amount unit of ConcUnit
	WeightKg      float64 `json:"weight_kg,omitempty"`
}

// Validate implements Validator.
func (s *Status) Validate() error {
	if s.State == "" {
		return errors.New("field state: missing")
	}
	if s.Battery < 0 || s.Battery > 100 {
		return fmt.Errorf("field battery: %v outside 0..100", s.Battery)
	}
	if len(s.Channels) > 8 {
		return fmt.Errorf("field channels: %d channels, at most 8", len(s.Channels))
	}
	for i, c := range s.Channels {
		if c.Channel == "" {
			return fmt.Errorf("field channels[%d].channel: missing", i)
		}
		if c.RateMLH < 0 || c.VolumeInfused < 0 || c.VTBI < 0 || c.DrugInfused < 0 {
			return fmt.Errorf("field channels[%d]: negative quantity", i)
		}
	}
	return nil
}

// Event types (IPEC-like, REFERENCE.md §4.6).
const (
	EvDeliveryStart    = "delivery_start"
	EvDeliveryStop     = "delivery_stop"
	EvDeliveryComplete = "delivery_complete"
	EvKVO              = "kvo"
	EvProgramAccepted  = "program_accepted"
	EvProgramRejected  = "program_rejected"
	EvProgramCleared   = "program_cleared"
	EvRateChange       = "rate_change"
	EvOverride         = "soft_limit_override"
	EvBolus            = "bolus"
	EvPCADemand        = "pca_demand"
	EvLibraryActivated = "library_activated"
	EvFirmware         = "firmware_changed"
	EvCommStatus       = "comm_status_change"
	EvServiceMode      = "service_mode"
	EvPatientChange    = "patient_change"
)

// Event is one pump event. Params carries event-specific values (volumes,
// rates, reasons) as strings so that the schema stays open to new events.
type Event struct {
	EventID  string            `json:"event_id"` // unique per pump, stable across retransmission
	Type     string            `json:"type"`
	Channel  string            `json:"channel,omitempty"`
	OrderID  string            `json:"order_id,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
	Snapshot *ChannelStatus    `json:"snapshot,omitempty"` // channel state at the event
}

// Validate implements Validator.
func (e *Event) Validate() error {
	if e.EventID == "" {
		return errors.New("field event_id: missing")
	}
	if e.Type == "" {
		return errors.New("field type: missing")
	}
	if len(e.Params) > 64 {
		return errors.New("field params: more than 64 entries")
	}
	return nil
}

// Alarm phases (REFERENCE.md §4.5).
const (
	PhaseStart = "start"
	PhaseEnd   = "end"
)

// Alarm is one alarm transition on a pump.
type Alarm struct {
	AlarmID  string `json:"alarm_id"` // stable for one alarm instance across start and end
	Code     string `json:"code"`     // e.g. occlusion_downstream, see pump alarm catalogue
	MDC      int    `json:"mdc,omitempty"`
	Text     string `json:"text,omitempty"`
	Phase    string `json:"phase"`    // start or end
	Priority string `json:"priority"` // PH, PM, PL, PN
	Type     string `json:"type"`     // SP, ST, SA
	Channel  string `json:"channel,omitempty"`
	Stops    bool   `json:"stops"` // the alarm stopped delivery
}

// Validate implements Validator.
func (a *Alarm) Validate() error {
	switch {
	case a.AlarmID == "":
		return errors.New("field alarm_id: missing")
	case a.Code == "":
		return errors.New("field code: missing")
	case a.Phase != PhaseStart && a.Phase != PhaseEnd:
		return fmt.Errorf("field phase: %q not start or end", a.Phase)
	}
	switch a.Priority {
	case "PH", "PM", "PL", "PN":
	default:
		return fmt.Errorf("field priority: %q not PH, PM, PL or PN", a.Priority)
	}
	switch a.Type {
	case "SP", "ST", "SA":
	default:
		return fmt.Errorf("field type: %q not SP, ST or SA", a.Type)
	}
	return nil
}

// Command operations.
const (
	OpProgram       = "program" // load a program (auto-programming from PCD-03)
	OpStart         = "start"   // start a loaded program (legacy remote start)
	OpPause         = "pause"
	OpStop          = "stop"
	OpActivateLib   = "library"  // stage a drug library (activated when idle)
	OpFirmware      = "firmware" // stage a firmware image
	OpClearAlarm    = "clear_alarm"
	OpStatusRequest = "status_request"
	// OpSetRate is the comm module's proprietary "set rate" path: it changes
	// a running infusion's rate at once, with no nurse (REFERENCE.md ATK-16).
	OpSetRate = "set_rate"
	// OpConfig writes device settings (Settings) through the comm module's
	// proprietary config channel (ATK-17, ATK-26, ATK-33).
	OpConfig = "config"
)

// Device settings of OpConfig (Command.Settings keys); the pump checks the
// values (docs/pump.md, "Device settings").
const (
	SetFlowCalibration    = "flow_calibration"         // motor calibration factor, 0.5..2
	SetOcclusionThreshold = "occlusion_threshold_mmhg" // downstream occlusion alarm pressure, 100..1200
	SetAirInLine          = "air_in_line_ul"           // air-in-line alarm bubble size, 10..1000
	SetServerAddress      = "server_address"           // broker URL of the pump server (loopback only)
)

// SettingKeys are the device settings, in documentation order.
var SettingKeys = []string{SetFlowCalibration, SetOcclusionThreshold, SetAirInLine, SetServerAddress}

// Program is the infusion program of an OpProgram command.
type Program struct {
	OrderID    string  `json:"order_id"`
	Action     string  `json:"action"` // RE new bag, XO change running infusion
	PatientID  string  `json:"patient_id,omitempty"`
	DrugID     string  `json:"drug_id,omitempty"` // library give code; empty = basic infusion
	DrugName   string  `json:"drug_name,omitempty"`
	DoseRate   float64 `json:"dose_rate,omitempty"`
	DoseUnit   string  `json:"dose_unit,omitempty"` // e.g. mcg/kg/min, units/h, mL/h
	RateMLH    float64 `json:"rate_ml_h,omitempty"` // set when the order is a plain rate
	DrugAmount float64 `json:"drug_amount,omitempty"`
	DrugUnit   string  `json:"drug_unit,omitempty"` // mg, mcg, units, mEq
	DiluentML  float64 `json:"diluent_ml,omitempty"`
	VTBI       float64 `json:"vtbi_ml,omitempty"`
	WeightKg   float64 `json:"weight_kg,omitempty"`
	// PCA settings (channel type pca).
	PCADose      float64 `json:"pca_dose,omitempty"`        // per demand, in DrugUnit
	PCALockout   float64 `json:"pca_lockout_min,omitempty"` // minutes
	PCAHourLimit float64 `json:"pca_hour_limit,omitempty"`  // DrugUnit per hour
	BasalRate    float64 `json:"basal_rate,omitempty"`      // DrugUnit per hour
}

// Command is a server -> pump command.
type Command struct {
	CmdID   string   `json:"cmd_id"`
	Op      string   `json:"op"`
	Channel string   `json:"channel,omitempty"`
	Program *Program `json:"program,omitempty"`
	// Library and firmware staging.
	LibraryVersion string `json:"library_version,omitempty"`
	LibraryURL     string `json:"library_url,omitempty"`
	LibraryHash    string `json:"library_hash,omitempty"`
	Firmware       string `json:"firmware,omitempty"`
	// Image describes a signed firmware image (op firmware, hardened
	// postures); its version must equal Firmware.
	Image   *FirmwareImage `json:"image,omitempty"`
	AlarmID string         `json:"alarm_id,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	// RateMLH is the new rate of op set_rate.
	RateMLH float64 `json:"rate_ml_h,omitempty"`
	// Settings are the device settings of op config (keys in SettingKeys).
	Settings map[string]string `json:"settings,omitempty"`
}

// Validate implements Validator.
func (c *Command) Validate() error {
	if c.CmdID == "" {
		return errors.New("field cmd_id: missing")
	}
	switch c.Op {
	case OpProgram:
		if c.Program == nil {
			return errors.New("field program: missing for op program")
		}
		p := c.Program
		if p.OrderID == "" {
			return errors.New("field program.order_id: missing")
		}
		if p.Action != "RE" && p.Action != "XO" {
			return fmt.Errorf("field program.action: %q not RE or XO", p.Action)
		}
		for name, v := range map[string]float64{"dose_rate": p.DoseRate, "rate_ml_h": p.RateMLH,
			"drug_amount": p.DrugAmount, "diluent_ml": p.DiluentML, "vtbi_ml": p.VTBI, "weight_kg": p.WeightKg,
			"pca_dose": p.PCADose, "pca_lockout_min": p.PCALockout, "pca_hour_limit": p.PCAHourLimit, "basal_rate": p.BasalRate} {
			if v < 0 || v != v {
				return fmt.Errorf("field program.%s: %v is negative or not a number", name, v)
			}
		}
		if p.DoseRate == 0 && p.RateMLH == 0 && p.PCADose == 0 && p.Action == "RE" {
			return errors.New("field program: no dose_rate, rate_ml_h or pca_dose")
		}
	case OpActivateLib:
		if c.LibraryVersion == "" {
			return errors.New("field library_version: missing for op library")
		}
	case OpFirmware:
		if c.Firmware == "" {
			return errors.New("field firmware: missing for op firmware")
		}
		if c.Image != nil {
			if err := c.Image.Validate(); err != nil {
				return fmt.Errorf("field image: %w", err)
			}
			if c.Image.Version != c.Firmware {
				return fmt.Errorf("field image.version: %q differs from firmware %q", c.Image.Version, c.Firmware)
			}
		}
	case OpSetRate:
		if c.RateMLH <= 0 || c.RateMLH != c.RateMLH || c.RateMLH > 1e4 {
			return fmt.Errorf("field rate_ml_h: %v must be > 0 and at most 10000 for op set_rate", c.RateMLH)
		}
	case OpConfig:
		if len(c.Settings) == 0 || len(c.Settings) > len(SettingKeys) {
			return fmt.Errorf("field settings: %d entries, want 1..%d for op config", len(c.Settings), len(SettingKeys))
		}
		for k, v := range c.Settings {
			known := false
			for _, s := range SettingKeys {
				known = known || k == s
			}
			if !known {
				return fmt.Errorf("field settings: unknown setting %q (known: %s)", k, strings.Join(SettingKeys, ", "))
			}
			if v == "" || len(v) > 256 {
				return fmt.Errorf("field settings.%s: empty or longer than 256", k)
			}
		}
	case OpClearAlarm:
		if c.AlarmID == "" {
			return errors.New("field alarm_id: missing for op clear_alarm")
		}
	case OpStart, OpPause, OpStop, OpStatusRequest:
	default:
		return fmt.Errorf("field op: unknown operation %q", c.Op)
	}
	return nil
}

// Ack results.
const (
	ResultAccepted = "accepted" // program loaded / command done
	ResultRejected = "rejected" // refused (hard limit, wrong state, bad input)
	ResultDeferred = "deferred" // staged, applied later (library while infusing)
)

// CommandAck answers a Command.
type CommandAck struct {
	CmdID   string `json:"cmd_id"`
	OrderID string `json:"order_id,omitempty"`
	Result  string `json:"result"`
	Code    string `json:"code,omitempty"`   // machine reason, e.g. LIB-HARDMAX, LIB-SOFTMAX
	Reason  string `json:"reason,omitempty"` // human text
	Channel string `json:"channel,omitempty"`
}

// Validate implements Validator.
func (a *CommandAck) Validate() error {
	if a.CmdID == "" {
		return errors.New("field cmd_id: missing")
	}
	switch a.Result {
	case ResultAccepted, ResultRejected, ResultDeferred:
		return nil
	}
	return fmt.Errorf("field result: %q not accepted, rejected or deferred", a.Result)
}
