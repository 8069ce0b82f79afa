package main

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// Alert is one alert of the detector, in the lab's HTTP alert schema
// (docs/alerts.md).
type Alert struct {
	Tool       string   `json:"tool"`
	Time       string   `json:"time,omitempty"`
	Severity   string   `json:"severity"`
	Assets     []string `json:"assets"`
	Addresses  []string `json:"addresses,omitempty"`
	Techniques []string `json:"techniques"`
	Tactics    []string `json:"tactics,omitempty"`
	Category   string   `json:"category"`
	Text       string   `json:"text"`
}

// Rule ids, also the alerts' category.
const (
	ruleUnknownClient  = "unknown-mqtt-client"
	ruleClientTakeover = "mqtt-client-id-takeover"
	ruleWildcardSub    = "mqtt-wildcard-subscription"
	ruleRogueCommand   = "command-not-from-pump-server"
	ruleSpoofedReport  = "pump-report-not-from-pump"
	ruleNoOrder        = "pcd03-without-verified-order"
	ruleDoseMismatch   = "rate-change-without-order"
	ruleReplay         = "replay"
	ruleLibrary        = "drug-library-not-approved"
	ruleAlarmEnd       = "alarm-end-without-clear"
	ruleAlarmFlood     = "alarm-flood"
	ruleAlarmSuppress  = "alarm-not-forwarded"
	ruleSpoofedDoc     = "pcd10-without-pump-event"
	ruleSpoofedStatus  = "pcd01-differs-from-pump"
	ruleSpoofedAlarm   = "pcd04-without-pump-alarm"
	ruleServicePort    = "service-port-session"
)

// Config tunes the rules; times are lab time and scale with the clock.
type Config struct {
	Tool string
	// SuppressAfter: a pump alarm must reach the alarm manager (PCD-04)
	// within this lab time (default 60 s).
	SuppressAfter time.Duration
	// MinSuppressWall is the wall-time floor of SuppressAfter (default
	// 400 ms: the pipeline's own latency).
	MinSuppressWall time.Duration
	// FloodCount alarm starts for one pump within FloodWindow lab time are a
	// flood (defaults 8 in 2 min).
	FloodCount  int
	FloodWindow time.Duration
	// TitrationMax is how far a titration (PCD-03 XO) may move the dose
	// from the verified order, as a factor (default 2: between 1/2 and 2x).
	TitrationMax float64
	// RateTolerance is the relative difference between a pump's running
	// rate and the rate its last legitimate program implies that counts as
	// a change (default 0.05).
	RateTolerance float64
}

func (c Config) withDefaults() Config {
	if c.Tool == "" {
		c.Tool = "refdetect"
	}
	if c.SuppressAfter <= 0 {
		c.SuppressAfter = 60 * time.Second
	}
	if c.MinSuppressWall <= 0 {
		c.MinSuppressWall = 800 * time.Millisecond
	}
	if c.FloodCount <= 0 {
		c.FloodCount = 8
	}
	if c.FloodWindow <= 0 {
		c.FloodWindow = 2 * time.Minute
	}
	if c.TitrationMax <= 1 {
		c.TitrationMax = 2
	}
	if c.RateTolerance <= 0 {
		c.RateTolerance = 0.05
	}
	return c
}

// LabEvent is one line of the lab's lab-events.jsonl (docs/tools.md).
type LabEvent struct {
	Time       time.Time `json:"time"`
	Event      string    `json:"event"`
	Lab        int       `json:"lab"`
	ClockSpeed float64   `json:"clock_speed"`
	Pumps      []string  `json:"pumps"`
	Endpoints  []struct {
		Name     string `json:"name"`
		Protocol string `json:"protocol"`
		Address  string `json:"address"`
		Purpose  string `json:"purpose"`
	} `json:"endpoints"`
	PumpServerClientID string `json:"pump_server_client_id"`
	MonitorUser        string `json:"monitor_user"`
}

type order struct {
	mrn, drug          string
	dose               float64
	amount, diluent, w float64 // drug amount, diluent volume, patient weight
}

type pumpAlarm struct {
	code    string
	started time.Time
}

type pendingAlarm struct {
	pump, alarmID, code string
	since               time.Time
	waits               int // deadlines extended because the link was busy
}

type expected struct {
	rate       float64   // the rate the channel ran at
	allowUntil time.Time // a program of the pump server announced a change until then
}

// Engine holds the detector's state and applies the rules. It is fed
// decoded traffic (Engine.mqtt, Engine.hl7) and the lab's events, and
// Tick(now) for the time-outs; alerts go to Emit.
type Engine struct {
	cfg  Config
	Emit func(Alert)
	// Trace, when set, receives a line per decoded MQTT packet and HL7
	// message (refdetect -trace).
	Trace func(format string, args ...any)
	speed float64
	// approved answers whether a drug-library hash is approved by the
	// library service at url (nil: no library alerts).
	approved func(url, hash string) (bool, error)
	said     map[string]time.Time

	// Labs can overlap (one closing while the next starts) and reuse port
	// numbers: traffic belongs to the lab that owns its server port, the
	// latest to list it.
	labs   []*labState
	byPort map[uint16]*labState
	cur    *labState
}

// labState is what the detector knows of one hospital.
type labState struct {
	id         int
	known      map[string]bool // client ids of the lab's inventory
	pumps      map[string]bool
	server     string
	roles      map[uint16]string // server port -> endpoint name
	libraryURL string

	online     map[string]string // client id -> tuple of its live connection
	orders     map[string]order  // placer order -> verified order
	controlIDs map[string]time.Time
	msgIDs     map[string]bool
	alarms     map[string]map[string]pumpAlarm // pump -> alarm id -> alarm
	pending    map[string]pendingAlarm         // pump/alarm id -> awaiting PCD-04
	starts     map[string][]time.Time          // pump -> alarm start times (flood)
	expect     map[string]expected             // pump/channel -> rate of the last legitimate program
	lastPCD04  map[string]time.Time            // pump -> last PCD-04 to the alarm manager
	anyPCD04   time.Time                       // last PCD-04 of any pump to the alarm manager
	acked      map[string]bool                 // HL7 control ids acknowledged AA/CA
	patient    map[string]string               // pump -> patient of its running infusion
	events     map[string]bool                 // pump/message id of the pumps' own events
	rates      map[string][2]float64           // pump/channel -> last two rates the pump reported
	service    map[uint16]string               // server port -> name, of service (telnet-style) endpoints
	seenAlarm  map[string]bool                 // pump/alarm id of every alarm a pump published
	endWait    map[string]endWait              // pump/alarm id -> PCD-04 end awaiting the pump's end
	lastSeen   map[string]time.Time            // client tuple -> time of its last MQTT packet
}

// endWait is a PCD-04 alarm end that the pump has not confirmed yet.
type endWait struct {
	pump, alertID string
	since         time.Time
	assets        []string
	tuple         string
}

// lv is the engine's view of one lab: the rules run on it.
type lv struct {
	*Engine
	*labState
}

// NewEngine returns an engine; approved answers whether a drug-library hash
// is approved (nil: every hash is unknown and not alerted on).
func NewEngine(cfg Config, emit func(Alert)) *Engine {
	return &Engine{cfg: cfg.withDefaults(), Emit: emit, speed: 1, said: map[string]time.Time{}, byPort: map[uint16]*labState{}}
}

func newLabState(id int) *labState {
	return &labState{id: id, known: map[string]bool{}, pumps: map[string]bool{}, roles: map[uint16]string{},
		online: map[string]string{}, orders: map[string]order{}, controlIDs: map[string]time.Time{}, msgIDs: map[string]bool{},
		alarms: map[string]map[string]pumpAlarm{}, pending: map[string]pendingAlarm{}, starts: map[string][]time.Time{},
		expect: map[string]expected{}, lastPCD04: map[string]time.Time{}, acked: map[string]bool{}, patient: map[string]string{},
		events: map[string]bool{}, rates: map[string][2]float64{}, service: map[uint16]string{}, seenAlarm: map[string]bool{},
		endWait: map[string]endWait{}, lastSeen: map[string]time.Time{}}
}

// maxLabs is how many labs the engine follows at once (older ones are
// dropped with their ports).
const maxLabs = 4

// Lab takes a lab-start event: a new hospital, a new inventory, owning
// the ports it lists.
func (e *Engine) Lab(ev LabEvent) {
	if ev.Event != "lab-start" {
		return
	}
	if ev.ClockSpeed > 0 {
		e.speed = ev.ClockSpeed
	}
	l := newLabState(ev.Lab)
	l.server = ev.PumpServerClientID
	if l.server == "" {
		l.server = "pumpserver"
	}
	l.known[l.server] = true
	if ev.MonitorUser != "" {
		l.known[ev.MonitorUser] = true
	}
	for _, p := range ev.Pumps {
		l.known[p], l.pumps[p] = true, true
	}
	for _, ep := range ev.Endpoints {
		if p, ok := portOf(ep.Address); ok {
			l.roles[p] = ep.Name
			e.byPort[p] = l
			if isServicePort(ep.Name, ep.Protocol) {
				l.service[p] = ep.Name
			}
		}
		if ep.Name == "druglib" {
			l.libraryURL = ep.Address
		}
	}
	e.labs = append(e.labs, l)
	e.cur = l
	if len(e.labs) > maxLabs {
		old := e.labs[0]
		e.labs = e.labs[1:]
		for p, o := range e.byPort {
			if o == old {
				delete(e.byPort, p)
			}
		}
	}
}

// view returns the view of the lab owning port, or false.
func (e *Engine) view(port uint16) (lv, bool) {
	l := e.byPort[port]
	if l == nil {
		return lv{}, false
	}
	return lv{e, l}, true
}

// The reassembler's sink: each decoded unit goes to the lab that owns its
// server port.

func (e *Engine) mqtt(t time.Time, h *half, p mqttPacket) {
	if v, ok := e.view(h.conn.serverPort); ok {
		v.mqtt(t, h, p)
	} else if e.Trace != nil {
		e.Trace("%s mqtt type=%d on port %d of no known lab", t.Format("15:04:05.000"), p.Type, h.conn.serverPort)
	}
}

func (e *Engine) hl7(t time.Time, h *half, serverPort uint16, m *hl7.Message, raw []byte) {
	port := serverPort
	if m.Segment("MSA") != nil { // an acknowledgement, from the server
		if p, ok := portOf(strings.SplitN(strings.TrimPrefix(h.tuple, "tcp:"), "->", 2)[0]); ok {
			port = p
		}
	}
	if v, ok := e.view(port); ok {
		v.hl7(t, h, serverPort, m, raw)
	} else if e.Trace != nil {
		e.Trace("%s hl7 %s %s to port %d of no known lab", t.Format("15:04:05.000"), m.Type(), m.ControlID(), serverPort)
	}
}

func (e *Engine) text(t time.Time, h *half, line string) {
	v, ok := e.view(h.conn.serverPort)
	if !ok && e.cur != nil {
		v, ok = lv{e, e.cur}, true // a service port the lab did not list
	}
	if ok {
		v.text(t, h, line)
	}
}

func (e *Engine) opened(t time.Time, tuple string, dstPort uint16) {
	if v, ok := e.view(dstPort); ok {
		v.opened(t, tuple, dstPort)
	}
}

func (e *Engine) closed(t time.Time, h *half) {
	if v, ok := e.view(h.conn.serverPort); ok {
		v.closed(t, h)
	}
}

// Tick applies the time-outs of every lab at now.
func (e *Engine) Tick(now time.Time) {
	for _, l := range e.labs {
		lv{e, l}.tick(now)
	}
}

// wall converts a lab duration to wall time at the lab's clock speed.
func (e *Engine) wall(d time.Duration) time.Duration { return time.Duration(float64(d) / e.speed) }

// alert emits once per key within a lab minute.
func (e *Engine) alert(t time.Time, key string, a Alert) {
	if last, ok := e.said[key]; ok && t.Sub(last) < e.wall(time.Minute) {
		return
	}
	e.said[key] = t
	a.Tool = e.cfg.Tool
	a.Time = t.UTC().Format(time.RFC3339Nano)
	if a.Severity == "" {
		a.Severity = "high"
	}
	e.Emit(a)
}

func addr(tuple string) []string {
	rest := strings.TrimPrefix(tuple, "tcp:")
	a, _, _ := cut(rest, "->")
	if a == "" {
		return nil
	}
	return []string{a}
}

// mqtt applies the MQTT rules to one packet of a connection.
func (e lv) mqtt(t time.Time, h *half, p mqttPacket) {
	c := h.conn
	if e.Trace != nil {
		e.Trace("%s mqtt type=%d client=%q conn-client=%s half=%s topic=%s", t.Format("15:04:05.000"), p.Type, c.clientID, c.client, h.tuple, p.Topic)
	}
	if c.client != "" && c.client != h.tuple {
		return // broker -> subscriber deliveries: the publisher's own packet counts
	}
	id := c.clientID
	e.lastSeen[h.tuple] = t
	switch p.Type {
	case mqttConnect:
		if !e.known[id] && len(e.known) > 0 {
			e.alert(t, ruleUnknownClient+"/"+id, Alert{Assets: []string{"broker", "mqtt-client:" + id, h.tuple}, Addresses: addr(h.tuple),
				Techniques: []string{"T0886", "T0859"}, Tactics: []string{"TA0108"}, Category: ruleUnknownClient,
				Text: fmt.Sprintf("MQTT client id %q (user %q) is not in the lab's inventory (pumps, pump server, monitor)", id, c.user)})
		}
		// The old connection must still be alive (traffic within two
		// status periods): a FIN the capture missed is no takeover.
		if old, ok := e.online[id]; ok && old != h.tuple && t.Sub(e.lastSeen[old]) < e.wall(20*time.Second) {
			assets := []string{"broker", "mqtt-client:" + id, h.tuple}
			if e.pumps[id] {
				assets = append(assets, id)
			}
			if id == e.server {
				assets = append(assets, "pumpserver")
			}
			e.alert(t, ruleClientTakeover+"/"+id, Alert{Assets: assets, Addresses: addr(h.tuple),
				Techniques: []string{"T0859", "T0849", "T0855"}, Category: ruleClientTakeover,
				Text: fmt.Sprintf("MQTT client id %q connected from %s while still connected from %s", id, addr(h.tuple), addr(old))})
		}
		e.online[id] = h.tuple
	case mqttSubscribe:
		// The pump server subscribes to every pump, the monitor to
		// everything; a pump only to its own topics.
		if id == e.server || (e.known[id] && !e.pumps[id]) {
			return
		}
		for _, f := range p.Filters {
			if !strings.ContainsAny(f, "#+") {
				continue
			}
			tech, who := []string{"T0842", "T0882"}, "unknown MQTT client"
			assets := []string{"broker", "mqtt-client:" + id, h.tuple}
			if e.pumps[id] {
				// A pump's identity used by something that is no pump:
				// stolen credentials.
				tech, who = []string{"T0859", "T0842", "T0882"}, "MQTT client with the pump identity"
				assets = append(assets, id)
			}
			e.alert(t, ruleWildcardSub+"/"+id, Alert{Assets: assets, Addresses: addr(h.tuple), Techniques: tech, Category: ruleWildcardSub,
				Text: fmt.Sprintf("%s %q subscribed to %q (reading every pump's traffic)", who, id, f)})
		}
	case mqttPublish:
		e.publish(t, h, id, p)
	}
}

func (e lv) publish(t time.Time, h *half, id string, p mqttPacket) {
	pump, kind, err := pumpwire.ParseTopic(p.Topic)
	if err != nil {
		return
	}
	env, err := pumpwire.DecodeEnvelope(p.Payload)
	if err != nil {
		return
	}
	src := []string{"mqtt-client:" + id, h.tuple}
	switch kind {
	case pumpwire.KindCmd:
		var cmd pumpwire.Command
		json.Unmarshal(env.Body, &cmd)
		key := env.From + "/" + env.ID
		if !p.Dup && e.msgIDs[key] {
			e.alert(t, ruleReplay+"/mqtt/"+key, Alert{Assets: append([]string{pump}, src...), Addresses: addr(h.tuple),
				Techniques: []string{"T0855", "T0830"}, Category: ruleReplay,
				Text: fmt.Sprintf("pump command %s (message id %s from %q) seen before: replayed", cmd.Op, env.ID, env.From)})
		}
		e.msgIDs[key] = true
		if id != e.server {
			tech := commandTechniques(cmd)
			e.alert(t, ruleRogueCommand+"/"+pump+"/"+cmd.Op, Alert{Assets: append([]string{pump}, src...), Addresses: addr(h.tuple),
				Techniques: tech, Tactics: []string{"TA0106"}, Category: ruleRogueCommand,
				Text: fmt.Sprintf("pump command %q to %s published by MQTT client %q, not the pump server %q", cmd.Op, pump, id, e.server)})
		} else if cmd.Op == pumpwire.OpProgram && cmd.Program != nil {
			e.program(t, pump, cmd)
		}
		if cmd.Op == pumpwire.OpActivateLib && cmd.LibraryHash != "" {
			e.library(t, pump, cmd.LibraryHash, cmd.LibraryVersion, src, h.tuple)
		}
	case pumpwire.KindStatus, pumpwire.KindEvent, pumpwire.KindAlarm, pumpwire.KindAck:
		if id != pump {
			tech := []string{"T0856"}
			if kind == pumpwire.KindAlarm {
				tech = append(tech, "T0878", "T0815")
			}
			e.alert(t, ruleSpoofedReport+"/"+pump+"/"+id, Alert{Assets: append([]string{pump}, src...), Addresses: addr(h.tuple),
				Techniques: tech, Category: ruleSpoofedReport,
				Text: fmt.Sprintf("%s of %s published by MQTT client %q, not the pump", kind, pump, id)})
			return // a spoofed report says nothing true about the pump
		}
		switch kind {
		case pumpwire.KindAlarm:
			var a pumpwire.Alarm
			if json.Unmarshal(env.Body, &a) == nil {
				e.pumpAlarm(t, pump, a)
			}
		case pumpwire.KindEvent:
			e.events[pump+"/"+env.ID] = true
			var ev pumpwire.Event
			if json.Unmarshal(env.Body, &ev) == nil && ev.Type == pumpwire.EvLibraryActivated {
				if ev.Params["hash"] != "" {
					e.library(t, pump, ev.Params["hash"], ev.Params["version"], src, h.tuple)
				}
				if v, prev := ev.Params["version"], ev.Params["previous"]; v != "" && prev != "" && v < prev {
					e.alert(t, ruleLibrary+"/rollback/"+pump, Alert{Assets: append([]string{pump}, src...), Addresses: addr(h.tuple),
						Techniques: []string{"T0843", "T0836"}, Category: ruleLibrary,
						Text: fmt.Sprintf("%s activated drug library %s, older than the %s it ran: a rollback", pump, v, prev)})
				}
			}
		case pumpwire.KindStatus:
			var st pumpwire.Status
			if json.Unmarshal(env.Body, &st) == nil {
				e.status(t, pump, st)
			}
		}
	}
}

// commandTechniques are the techniques of a pump command sent by someone
// other than the pump server: an unauthorized command message from a rogue
// master, plus what the operation does.
func commandTechniques(cmd pumpwire.Command) []string {
	tech := []string{"T0855", "T0848"}
	add := func(ts ...string) {
		for _, t := range ts {
			if !slices.Contains(tech, t) {
				tech = append(tech, t)
			}
		}
	}
	switch cmd.Op {
	case pumpwire.OpProgram, pumpwire.OpStart, pumpwire.OpStop, pumpwire.OpPause, pumpwire.OpSetRate:
		add("T0836", "T0831")
	case pumpwire.OpActivateLib, pumpwire.OpFirmware:
		add("T0843", "T0836")
	case pumpwire.OpClearAlarm:
		add("T0878")
	case pumpwire.OpConfig:
		add("T0836")
		for k := range cmd.Settings {
			switch k {
			case pumpwire.SetOcclusionThreshold, pumpwire.SetAirInLine:
				add("T0838", "T0837") // modify alarm settings, loss of protection
			case pumpwire.SetFlowCalibration:
				add("T0831", "T0832") // delivery differs from what the pump shows
			case pumpwire.SetServerAddress:
				add("T0815") // the pump leaves the pump server's view
			}
		}
	}
	return tech
}

// program notes a legitimate program of the pump server: the pump's next
// rate change (once the nurse confirms it) is expected.
func (e lv) program(t time.Time, pump string, cmd pumpwire.Command) {
	ch := cmd.Channel
	if ch == "" {
		ch = "A"
	}
	key := pump + "/" + ch
	ex := e.expect[key]
	ex.allowUntil = t.Add(e.wall(30 * time.Minute))
	e.expect[key] = ex
}

// status checks a pump's running rate against the rate it ran before: a
// change that no program of the pump server announced is a rate change
// without an order.
func (e lv) status(t time.Time, pump string, st pumpwire.Status) {
	e.patient[pump] = ""
	for _, c := range st.Channels {
		if c.State == "infusing" && st.PatientID != "" {
			e.patient[pump] = st.PatientID
		}
	}
	for _, c := range st.Channels {
		r := e.rates[pump+"/"+c.Channel]
		if r[1] != c.RateMLH {
			e.rates[pump+"/"+c.Channel] = [2]float64{r[1], c.RateMLH}
		}
	}
	for _, c := range st.Channels {
		key := pump + "/" + c.Channel
		ex, ok := e.expect[key]
		if c.State != "infusing" || c.RateMLH <= 0 {
			continue
		}
		if !ok || ex.rate <= 0 {
			ex.rate = c.RateMLH
			e.expect[key] = ex
			continue
		}
		if math.Abs(c.RateMLH-ex.rate) <= e.cfg.RateTolerance*ex.rate {
			continue
		}
		announced := t.Before(ex.allowUntil)
		if !announced {
			e.alert(t, ruleDoseMismatch+"/status/"+key, Alert{Assets: []string{pump}, Techniques: []string{"T0836", "T0831"},
				Tactics: []string{"TA0106"}, Category: ruleDoseMismatch,
				Text: fmt.Sprintf("%s channel %s runs %.3f mL/h, before %.3f mL/h, and no program from the pump server announced it: rate changed without an order", pump, c.Channel, c.RateMLH, ex.rate)})
		}
		e.expect[key] = expected{rate: c.RateMLH}
	}
}

func (e lv) library(t time.Time, pump, hash, version string, src []string, tuple string) {
	if e.approved == nil || e.libraryURL == "" {
		return
	}
	ok, err := e.approved(e.libraryURL, hash)
	if err != nil || ok {
		return
	}
	e.alert(t, ruleLibrary+"/"+pump+"/"+hash, Alert{Assets: append([]string{pump}, src...), Addresses: addr(tuple),
		Techniques: []string{"T0843", "T0836"}, Category: ruleLibrary,
		Text: fmt.Sprintf("drug library %s (hash %.16s...) on %s is not an approved library", version, hash, pump)})
}

// pumpAlarm follows the pump's own alarms: a start must reach the alarm
// manager as PCD-04; many starts are a flood.
func (e lv) pumpAlarm(t time.Time, pump string, a pumpwire.Alarm) {
	e.seenAlarm[pump+"/"+a.AlarmID] = true
	if e.alarms[pump] == nil {
		e.alarms[pump] = map[string]pumpAlarm{}
	}
	switch a.Phase {
	case pumpwire.PhaseStart:
		e.alarms[pump][a.AlarmID] = pumpAlarm{code: a.Code, started: t}
		if a.Priority != "PN" {
			e.pending[pump+"/"+a.AlarmID] = pendingAlarm{pump: pump, alarmID: a.AlarmID, code: a.Code, since: t}
		}
		e.countStart(t, pump, "pump alarms")
	case pumpwire.PhaseEnd:
		delete(e.alarms[pump], a.AlarmID)
		delete(e.pending, pump+"/"+a.AlarmID)
		delete(e.endWait, pump+"/"+a.AlarmID)
	}
}

func (e lv) countStart(t time.Time, pump, what string) {
	win := e.wall(e.cfg.FloodWindow)
	s := append(e.starts[pump], t)
	for len(s) > 0 && t.Sub(s[0]) > win {
		s = s[1:]
	}
	e.starts[pump] = s
	if len(s) >= e.cfg.FloodCount {
		e.alert(t, ruleAlarmFlood+"/"+pump, Alert{Assets: []string{pump, "alarm-manager"}, Techniques: []string{"T0815", "T0856"},
			Category: ruleAlarmFlood, Severity: "medium",
			Text: fmt.Sprintf("%d alarm starts for %s within %s lab time (%s)", len(s), pump, e.cfg.FloodWindow, what)})
	}
}

// hl7 applies the HL7 rules to a message sent to a lab service.
func (e lv) hl7(t time.Time, h *half, serverPort uint16, m *hl7.Message, raw []byte) {
	if e.Trace != nil {
		e.Trace("%s hl7 %s %s to port %d (%s) half=%s", t.Format("15:04:05.000"), m.Type(), m.ControlID(), serverPort, e.roles[serverPort], h.tuple)
	}
	if msa := m.Segment("MSA"); msa != nil {
		// An acknowledgement: the message it accepts was delivered.
		if code := msa.Value(1); code == "AA" || code == "CA" {
			e.acked[msa.Value(2)] = true
		}
		return
	}
	role := e.roles[serverPort]
	if role == "" {
		return // a service the detector does not know
	}
	src := []string{h.tuple}
	ty := m.Type()
	switch {
	case ty.Is("RDE", "O11") && role == "emar-bcma":
		if o, err := hl7.ParseRDE(m); err == nil && o.PlacerOrder != "" {
			e.orders[o.PlacerOrder] = order{mrn: o.Patient.MRN, drug: o.GiveCode, dose: o.Dose,
				amount: o.DrugAmount, diluent: o.DiluentVolume, w: o.WeightKg}
		}
	case ty.Is("ORU", "R01") && role == "ehr":
		ps, err := hl7.ParsePumpStatus(m)
		if err != nil || !e.pumps[ps.PumpID] {
			return
		}
		ch := ps.Channel
		if ch == "" {
			ch = "A"
		}
		r, ok := e.rates[ps.PumpID+"/"+ch]
		if !ok {
			return
		}
		near := func(a, b float64) bool { return math.Abs(a-b) <= 0.05*math.Max(b, 1) }
		if !near(ps.RateMLH, r[1]) && !near(ps.RateMLH, r[0]) {
			e.alert(t, ruleSpoofedStatus+"/"+ps.PumpID, Alert{Assets: append([]string{ps.PumpID, "ehr"}, src...), Addresses: addr(h.tuple),
				Techniques: []string{"T0856", "T0832"}, Tactics: []string{"TA0105"}, Category: ruleSpoofedStatus,
				Text: fmt.Sprintf("PCD-01 documents %s channel %s at %g mL/h, the pump reports %g mL/h", ps.PumpID, ch, ps.RateMLH, r[1])})
		}
	case ty.Is("ORU", "R42") && role == "ehr":
		ie, err := hl7.ParseInfusionEvent(m)
		// Delivery start, stop and completion are the pump's own events;
		// others (communication status) the pump server may raise itself.
		if err != nil || !e.pumps[ie.PumpID] || ie.EventID == "" || !strings.HasPrefix(ie.Event.Ref, "MDC_EVT_PUMP_DELIV_") ||
			e.events[ie.PumpID+"/"+ie.EventID] {
			return
		}
		e.alert(t, ruleSpoofedDoc+"/"+ie.PumpID, Alert{Assets: append([]string{ie.PumpID, "ehr"}, src...), Addresses: addr(h.tuple),
			Techniques: []string{"T0856", "T0832"}, Tactics: []string{"TA0105"}, Category: ruleSpoofedDoc,
			Text: fmt.Sprintf("PCD-10 %s for %s documents event %s, which the pump never reported", ie.Event.Ref, ie.PumpID, ie.EventID)})
	case ty.Is("RGV", "O15") && role == "pumpserver-ioc":
		e.pcd03(t, m, src, h.tuple)
	case ty.Is("ORU", "R40") && role == "alarm-manager":
		a, err := hl7.ParseAlert(m)
		if err != nil || a.PumpID == "" {
			return
		}
		e.lastPCD04[a.PumpID] = t
		e.anyPCD04 = t
		for k, p := range e.pending {
			if p.pump == a.PumpID {
				delete(e.pending, k)
			}
		}
		active := len(e.alarms[a.PumpID]) > 0
		switch a.Phase {
		case hl7.PhaseEnd:
			if active {
				// The pump's own end may still be on its way: alert when it
				// does not follow (tick).
				e.endWait[a.PumpID+"/"+a.AlertID] = endWait{pump: a.PumpID, alertID: a.AlertID, since: t,
					assets: append([]string{a.PumpID, "alarm-manager"}, src...), tuple: h.tuple}
			}
		case hl7.PhaseStart:
			// The pump server forwards the pump's alarms under the pump's
			// alarm id; an alarm id the pump never published is spoofed.
			if e.pumps[a.PumpID] && a.AlertID != "" && !e.seenAlarm[a.PumpID+"/"+a.AlertID] {
				e.alert(t, ruleSpoofedAlarm+"/"+a.PumpID, Alert{Assets: append([]string{a.PumpID, "alarm-manager"}, src...), Addresses: addr(h.tuple),
					Techniques: []string{"T0856", "T0815"}, Category: ruleSpoofedAlarm, Severity: "medium",
					Text: fmt.Sprintf("PCD-04 alarm %s (%s) for %s, an alarm the pump never published", a.AlertID, a.EventText, a.PumpID)})
			}
			e.countStart(t, a.PumpID, "PCD-04 to the alarm manager")
		}
	}
}

// pcd03 checks a PCD-03 against the verified orders, the pump's current
// patient, the BCMA scan it must come from, and for replays.
func (e lv) pcd03(t time.Time, m *hl7.Message, src []string, tuple string) {
	r, err := hl7.ParseRGV(m)
	if err != nil {
		return
	}
	assets := append([]string{r.PumpID, "pumpserver"}, src...)
	emit := func(rule, key string, tech []string, format string, args ...any) {
		e.alert(t, rule+"/"+key, Alert{Assets: assets, Addresses: addr(tuple), Techniques: tech, Tactics: []string{"TA0106"},
			Category: rule, Text: fmt.Sprintf(format, args...)})
	}
	id := m.ControlID()
	if id != "" && e.acked[id] {
		if _, seen := e.controlIDs[id]; seen {
			emit(ruleReplay, "hl7/"+id, []string{"T0855", "T0830"},
				"PCD-03 %s for %s with message control id %s, already accepted by the pump server: replayed", r.OrderControl, r.PumpID, id)
			return
		}
	}
	e.controlIDs[id] = t
	o, ok := e.orders[r.PlacerOrder]
	switch {
	case r.Nurse.ID == "":
		emit(ruleNoOrder, "scan/"+id, []string{"T0855", "T0848"},
			"PCD-03 %s for order %s on %s names no scanning clinician (ORC-19): not from a BCMA scan", r.OrderControl, r.PlacerOrder, r.PumpID)
	case !ok:
		emit(ruleNoOrder, r.PlacerOrder, []string{"T0855", "T0848"},
			"PCD-03 %s for order %s on %s: no pharmacy-verified order (RDE^O11) matches it", r.OrderControl, r.PlacerOrder, r.PumpID)
	case o.mrn != "" && r.Patient.MRN != "" && o.mrn != r.Patient.MRN:
		emit(ruleNoOrder, "mrn/"+id, []string{"T0855", "T0831"},
			"PCD-03 for order %s names patient %s, the order is for %s", r.PlacerOrder, r.Patient.MRN, o.mrn)
	case e.patient[r.PumpID] != "" && r.Patient.MRN != "" && e.patient[r.PumpID] != r.Patient.MRN:
		emit(ruleNoOrder, "pump/"+id, []string{"T0855", "T0831"},
			"PCD-03 %s programs %s for patient %s while the pump infuses patient %s", r.OrderControl, r.PumpID, r.Patient.MRN, e.patient[r.PumpID])
	case differs(r.DrugAmount, o.amount) || differs(r.DiluentVolume, o.diluent):
		emit(ruleDoseMismatch, "conc/"+id, []string{"T0836", "T0830", "T0832"},
			"PCD-03 for order %s carries %g %s in %g mL, the verified order %g in %g mL: concentration changed in transit",
			r.PlacerOrder, r.DrugAmount, r.DrugAmountUnit, r.DiluentVolume, o.amount, o.diluent)
	case differs(r.WeightKg, o.w):
		emit(ruleDoseMismatch, "weight/"+id, []string{"T0836", "T0830"},
			"PCD-03 for order %s carries a patient weight of %g kg, the verified order %g kg", r.PlacerOrder, r.WeightKg, o.w)
	case r.OrderControl != hl7.OrderChange && differs(r.DoseRate, o.dose):
		emit(ruleDoseMismatch, "dose/"+id, []string{"T0855", "T0836", "T0831"},
			"PCD-03 %s sets %g %s on %s, the verified order %s %g: rate change without an order", r.OrderControl, r.DoseRate, r.DoseRateUnit, r.PumpID, r.PlacerOrder, o.dose)
	}
}

// differs reports whether a value in a message differs from the order's,
// both being known, by more than 1%.
func differs(got, want float64) bool {
	return got > 0 && want > 0 && math.Abs(got-want) > 0.01*want
}

// tick applies the lab's time-outs at now: a pump alarm that reached no
// alarm manager in time is suppressed.
func (e lv) tick(now time.Time) {
	after := max(e.wall(e.cfg.SuppressAfter), e.cfg.MinSuppressWall)
	for k, w := range e.endWait {
		if now.Sub(w.since) < after {
			continue
		}
		delete(e.endWait, k)
		if _, still := e.alarms[w.pump][w.alertID]; !still {
			continue
		}
		e.alert(now, ruleAlarmEnd+"/"+w.pump, Alert{Assets: w.assets, Addresses: addr(w.tuple),
			Techniques: []string{"T0856", "T0878"}, Category: ruleAlarmEnd,
			Text: fmt.Sprintf("PCD-04 ended alarm %s of %s, and the pump still reports it active %s later", w.alertID, w.pump, after)})
	}
	for k, p := range e.pending {
		if now.Sub(p.since) < after*time.Duration(p.waits+1) {
			continue
		}
		if last, ok := e.lastPCD04[p.pump]; ok && !last.Before(p.since) {
			delete(e.pending, k)
			continue
		}
		// PCD-04s of other pumps still reach the alarm manager: the pump
		// server is working through a burst; wait up to three more periods.
		if e.anyPCD04.After(p.since) && p.waits < 3 {
			p.waits++
			e.pending[k] = p
			continue
		}
		delete(e.pending, k)
		e.alert(now, ruleAlarmSuppress+"/"+p.pump, Alert{Assets: []string{p.pump, "alarm-manager", "pumpserver"},
			Techniques: []string{"T0878", "T0804"}, Tactics: []string{"TA0107"}, Category: ruleAlarmSuppress,
			Text: fmt.Sprintf("alarm %s (%s) of %s reached no alarm manager (no PCD-04) within %s", p.alarmID, p.code, p.pump, after)})
	}
}

// isServicePort reports whether an endpoint is a maintenance or service
// login port (telnet-style) rather than a clinical protocol.
func isServicePort(name, protocol string) bool {
	n, p := strings.ToLower(name), strings.ToLower(protocol)
	return p == "telnet" || p == "ssh" || p == "ftp" || strings.Contains(n, "service") || strings.Contains(n, "telnet") || strings.Contains(n, "maint")
}

// opened is called when a client opens a TCP connection (SYN).
func (e lv) opened(t time.Time, tuple string, dstPort uint16) {
	name, ok := e.service[dstPort]
	if !ok {
		return
	}
	assets := []string{name, tuple}
	if i := strings.LastIndex(name, "PUMP-"); i >= 0 && e.pumps[name[i:]] {
		assets = append(assets, name[i:])
	}
	e.alert(t, ruleServicePort+"/"+tuple, Alert{Assets: assets, Addresses: addr(tuple), Techniques: []string{"T0886", "T0891", "T0812"},
		Tactics: []string{"TA0108"}, Category: ruleServicePort,
		Text: fmt.Sprintf("connection to the service port %s from %s", name, addr(tuple))})
}

var pumpIDRE = regexp.MustCompile(`PUMP-\d{4}`)

// text takes a line of a text protocol: a service-port banner or login
// is a service-port session.
func (e lv) text(t time.Time, h *half, line string) {
	c := h.conn
	server := c.client != "" && c.client != h.tuple
	if id := pumpIDRE.FindString(line); id != "" && server && c.pump == "" {
		c.pump = id
	}
	up := strings.ToUpper(line)
	login := !server && (strings.HasPrefix(up, "LOGIN") || strings.HasPrefix(up, "USER "))
	banner := server && strings.Contains(strings.ToLower(line), "service port")
	if !login && !banner {
		return
	}
	client := c.client
	if client == "" {
		client = h.tuple
	}
	rest := strings.TrimPrefix(client, "tcp:")
	_, srv, _ := cut(rest, "->")
	assets := []string{"service-port:" + srv, client}
	if c.pump != "" {
		assets = append([]string{c.pump}, assets...)
	}
	what := "a service-port banner"
	if login {
		what = "a login"
	}
	e.alert(t, ruleServicePort+"/"+client, Alert{Assets: assets, Addresses: addr(client), Techniques: []string{"T0886", "T0891", "T0812"},
		Tactics: []string{"TA0108"}, Category: ruleServicePort,
		Text: fmt.Sprintf("%s on the service port %s of %s from %s", what, srv, orUnknown(c.pump), strings.Join(addr(client), ""))})
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown device"
	}
	return s
}

// closed is called when a connection direction ends.
func (e lv) closed(t time.Time, h *half) {
	if id := h.conn.clientID; id != "" && e.online[id] == h.conn.client {
		delete(e.online, id)
	}
	delete(e.lastSeen, h.conn.client)
}
