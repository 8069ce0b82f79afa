// Package pump is the infusion-pump simulator of the lab (REFERENCE.md §5).
//
// It has two halves that never mix:
//
//   - Pump is the therapy model: channels (LVP, syringe, PCA) with their state
//     machine, the dose error reduction system (DERS) against the active drug
//     library and care area, delivery physics integrated exactly over lab
//     time (piecewise-constant rates, no ticks), alarms from the catalogue of
//     §5.5, PCA lockout and hourly limits, the pump event log and the six
//     truth layers of §3.0 (ordered, programmed, displayed, delivered,
//     reported, documented). It has no network code.
//   - Agent is the pump's network module: an MQTT client (paho) that speaks
//     simulators/pumpwire, publishes status, events and alarms, buffers events
//     and alarms while offline with their original lab time, and turns
//     server commands into Pump calls.
//
// Therapy never depends on the network: a Pump runs the same with or without
// an Agent, and an Agent that loses its broker only buffers.
//
// Every Pump reads time from an injected clock.Clock; with clock.NewFake all
// timers (VTBI completion, callback, lockout, battery) fire at their exact lab
// time inside Advance, which makes tests deterministic. docs/pump.md describes
// the behaviour in full.
package pump

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// ChannelType is the kind of a delivery channel.
type ChannelType string

// Channel types (they match druglib.Entry.Channels).
const (
	LVP     ChannelType = "lvp"
	Syringe ChannelType = "syringe"
	PCA     ChannelType = "pca"
)

// ChannelState is the state of one channel.
type ChannelState string

// Channel states.
const (
	ChIdle        ChannelState = "idle"        // no program
	ChProgramming ChannelState = "programming" // program loaded, awaiting local confirmation (and override if soft limit)
	ChInfusing    ChannelState = "infusing"    // delivering the programmed rate (PCA: basal, demands honoured)
	ChPaused      ChannelState = "paused"      // stopped by the user or after an alarm was cleared; can resume
	ChAlarming    ChannelState = "alarming"    // a stop-class alarm holds the channel; no delivery
	ChKVO         ChannelState = "kvo"         // keep vein open after VTBI complete, over-infusion or PCA limit
	ChBolus       ChannelState = "bolus"       // PCA demand dose being delivered
	ChPCALockout  ChannelState = "pca_lockout" // PCA lockout interval: basal only, demands rejected
	ChStopped     ChannelState = "stopped"     // therapy ended; program kept for display until cleared or replaced
)

// delivering reports whether the motor runs in state s.
func (s ChannelState) delivering() bool {
	return s == ChInfusing || s == ChKVO || s == ChBolus || s == ChPCALockout
}

// active reports whether a therapy is under way (library and firmware
// activation wait until no channel is active).
func (s ChannelState) active() bool { return s.delivering() || s == ChPaused || s == ChAlarming }

// State is the pump-level state sent in pumpwire.Status.State.
type State string

// Pump-level states. The first four are modes of the whole pump; the others
// summarise the channels (alarm > infusing > paused > ready).
const (
	StateOff      State = "off"
	StatePOST     State = "post" // power-on self test
	StateFault    State = "fault"
	StateService  State = "service"
	StateAlarm    State = "alarm"    // some channel is held by a stop-class alarm
	StateInfusing State = "infusing" // some channel delivers
	StatePaused   State = "paused"   // some channel is paused
	StateReady    State = "ready"    // powered, nothing running
)

// Source says who asked for a program or action.
type Source int

// Sources.
const (
	Local  Source = iota // the nurse at the keypad
	Remote               // the pump server over the network
)

func (s Source) String() string {
	if s == Remote {
		return "remote"
	}
	return "local"
}

// Battery configures the simple battery model: linear drain on battery,
// linear charge on mains.
type Battery struct {
	RuntimeMin float64 // minutes from full to empty on battery; 0 = 360
	LowMin     float64 // low-battery alarm when this many minutes remain; 0 = 30
	ChargeMin  float64 // minutes to charge from empty to full on mains; 0 = 240
	StartPct   float64 // charge at creation, percent; 0 = 100
}

// Config configures a Pump. The zero value is a powered, plugged-in
// single-LVP pump with no library (basic infusions only) on the real clock.
type Config struct {
	ID       string        // pump id (pumpwire.ValidID); default PUMP-0001
	Model    string        // default "pumplab-lvp"
	Firmware string        // default "1.0.0"
	Channels []ChannelType // one entry per channel, named A, B, ...; default one LVP
	Clock    clock.Clock   // lab clock; nil = clock.Real()
	Library  *druglib.Library
	// LibraryHash is reported with the library version (sha256 of the bundle).
	LibraryHash string
	CareArea    string // care area name of the active library
	// LibrarySeq is the release number of Library (druglib.Bundle.Seq), the
	// base of the anti-rollback check; 0 = unknown.
	LibrarySeq uint64
	// LibraryPolicy is the signed-library control; nil = legacy.
	LibraryPolicy *LibraryPolicy
	// FirmwarePolicy is the signed-firmware control; nil = legacy.
	FirmwarePolicy *FirmwarePolicy
	Battery        Battery
	OnBattery      bool // start unplugged
	// Seed drives every random choice (flow error, POST failure).
	Seed uint64
	// FlowError is the relative flow inaccuracy: each started program runs
	// its motor at rate x (1+u), u uniform in [-FlowError, FlowError]. 0 = exact.
	FlowError float64
	// POSTDuration is the power-on self-test time; 0 = instant.
	POSTDuration time.Duration
	// POSTFailRate is the probability that a power-on self test fails.
	POSTFailRate float64
	// StartOff creates the pump powered off (call PowerOn).
	StartOff bool
	Logger   *slog.Logger
	// RemoteStartAllowed is the legacy profile: a remote start command starts a
	// loaded program without local confirmation, and a remote XO (rate
	// change) applies at once. When false (secure profile) every remote
	// program waits for the nurse's Start at the pump.
	RemoteStartAllowed bool
	// RemoteClearAllowed lets the server end alarms remotely (legacy).
	RemoteClearAllowed bool
	// ServiceCode is the biomed access code for service mode; default "1234"
	// (a hard-coded code, as in the real devices of §2).
	ServiceCode string
	// Access is the keypad and service-port policy (access codes, lockout,
	// audited service mode); nil = legacy: the factory code ServiceCode for
	// everyone.
	Access *AccessPolicy
	// Credentials are the secrets the pump stores (broker login, Wi-Fi,
	// client certificate); see Storage and Decommission.
	Credentials Credentials
	// PCABolusRateMLH is the rate of a PCA demand dose on top of the basal;
	// default 120 mL/h (1 mL in 30 s).
	PCABolusRateMLH float64
	// OcclusionBuildupML is the volume pushed against a downstream occlusion
	// before the pressure alarm (time to alarm = volume / rate); 0 = 0.5 mL,
	// negative = alarm at once.
	OcclusionBuildupML float64
	// OcclusionThresholdMMHg is the downstream occlusion alarm pressure,
	// 100..1200 mmHg; 0 = 300 (see the pressure model in docs/pump.md).
	OcclusionThresholdMMHg float64
	// AirInLineUL is the smallest air bubble that alarms, 10..1000 uL; 0 = 100.
	AirInLineUL float64
	// ServerAddress is the broker URL of the pump server as the pump stores
	// it (the agent fills it in from its BrokerURL when empty).
	ServerAddress string
	// NearEndMin raises the low-priority near-end advisory this many minutes
	// before VTBI completion on syringe channels; 0 = 5, negative = off.
	NearEndMin float64
	// LogLimit bounds the event log (oldest dropped and counted); 0 = 100000.
	LogLimit int
	// OnOutput, if set, receives every event and alarm transition (see Listen).
	OnOutput func(Output)
	// OnControl, if set, receives every act of a security control on this
	// pump (ControlEvent); called without the pump locked, it must not block.
	OnControl func(ControlEvent)
}

// Output is one event or alarm transition the pump emits. Exactly one of
// Event and Alarm is set; Time is the lab time the pump created it.
type Output struct {
	Time  time.Time
	Event *pumpwire.Event
	Alarm *pumpwire.Alarm
}

// Rejection is the error of a refused program or action. Code is the machine
// reason (LIB-HARDMAX, CH-BUSY, ...) sent in acks.
type Rejection struct {
	Code   string
	Reason string
}

func (r *Rejection) Error() string { return "pump: refused " + r.Code + ": " + r.Reason }

func reject(code, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Reason: fmt.Sprintf(format, args...)}
}

type power int

const (
	powerOn power = iota
	powerOff
	powerPOST
	powerFault
)

// Pump is one simulated infusion pump. All methods are safe for concurrent use.
type Pump struct {
	cfg Config
	clk clock.Clock
	log *slog.Logger
	rnd *rand.Rand
	// due is the lab time a running timer was scheduled for: while its
	// callback runs, now() is that time, so that a timer the scheduler
	// fires late (a loaded machine at a high clock speed) still changes the
	// motor rate at the exact lab time (VTBI completion delivers exactly
	// the VTBI). Zero outside timer callbacks.
	due time.Time

	mu          sync.Mutex
	power       power
	service     bool
	firmware    string
	lib         *druglib.Library
	libHash     string
	pendingLib  *druglib.Library
	pendingHash string
	libSeq      uint64
	pendingSeq  uint64
	pendingFW   string
	careArea    string
	patientID   string
	channels    []*channel
	alarms      []*ActiveAlarm
	nextEvent   uint64
	nextAlarm   uint64
	timerSeq    uint64
	logs        []LogEntry
	logSeq      uint64
	logDropped  int
	bat         batteryState
	comm        bool
	postSlot    timerSlot
	pending     []Output // emitted under mu, delivered by unlock
	pendingCtl  []ControlEvent
	set         settings
	acc         *access
	creds       Credentials
	patients    []string // recent patient ids, newest last

	decommissioned bool

	outMu      sync.Mutex
	outQ       []Output
	delivering bool
	listeners  map[int]func(Output)
	nextLst    int
}

// New returns a pump configured by cfg, powered on and past its self test
// unless cfg.StartOff.
func New(cfg Config) *Pump {
	if cfg.ID == "" {
		cfg.ID = "PUMP-0001"
	}
	if cfg.Model == "" {
		cfg.Model = "pumplab-lvp"
	}
	if cfg.Firmware == "" {
		cfg.Firmware = "1.0.0"
	}
	if len(cfg.Channels) == 0 {
		cfg.Channels = []ChannelType{LVP}
	}
	if len(cfg.Channels) > 8 {
		cfg.Channels = cfg.Channels[:8]
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ServiceCode == "" {
		cfg.ServiceCode = "1234"
	}
	if cfg.PCABolusRateMLH <= 0 {
		cfg.PCABolusRateMLH = 120
	}
	if cfg.OcclusionBuildupML == 0 {
		cfg.OcclusionBuildupML = 0.5
	}
	if cfg.OcclusionThresholdMMHg == 0 {
		cfg.OcclusionThresholdMMHg = DefaultOcclusionThresholdMMHg
	}
	cfg.OcclusionThresholdMMHg = math.Max(MinOcclusionThresholdMMHg, math.Min(MaxOcclusionThresholdMMHg, cfg.OcclusionThresholdMMHg))
	if cfg.AirInLineUL == 0 {
		cfg.AirInLineUL = DefaultAirInLineUL
	}
	cfg.AirInLineUL = math.Max(MinAirInLineUL, math.Min(MaxAirInLineUL, cfg.AirInLineUL))
	if cfg.NearEndMin == 0 {
		cfg.NearEndMin = 5
	}
	if cfg.LogLimit <= 0 {
		cfg.LogLimit = 100000
	}
	b := &cfg.Battery
	if b.RuntimeMin <= 0 {
		b.RuntimeMin = 360
	}
	if b.LowMin <= 0 {
		b.LowMin = 30
	}
	if b.ChargeMin <= 0 {
		b.ChargeMin = 240
	}
	if b.StartPct <= 0 || b.StartPct > 100 {
		b.StartPct = 100
	}
	p := &Pump{
		cfg:       cfg,
		clk:       cfg.Clock,
		log:       cfg.Logger.With("pump", cfg.ID),
		rnd:       rand.New(rand.NewPCG(cfg.Seed, 0x70756d70)),
		firmware:  cfg.Firmware,
		lib:       cfg.Library,
		libHash:   cfg.LibraryHash,
		libSeq:    cfg.LibrarySeq,
		careArea:  cfg.CareArea,
		listeners: map[int]func(Output){},
	}
	p.initSettings()
	p.creds = cfg.Credentials
	p.initAccess()
	for i, t := range cfg.Channels {
		p.channels = append(p.channels, newChannel(string(rune('A'+i)), t))
	}
	if cfg.OnOutput != nil {
		p.listeners[0] = cfg.OnOutput
		p.nextLst = 1
	}
	now := p.clk.Now()
	p.bat = batteryState{pct: b.StartPct, at: now, mains: !cfg.OnBattery}
	p.mu.Lock()
	if cfg.StartOff {
		p.power = powerOff
	}
	for _, ch := range p.channels {
		ch.startSegment(now)
	}
	p.addLog(LogEntry{Kind: LogPower, Source: "pump", Action: "created",
		Detail: fmt.Sprintf("model %s firmware %s channels %v", cfg.Model, cfg.Firmware, cfg.Channels)})
	p.rearmBattery()
	p.unlock()
	return p
}

// ID returns the pump id.
func (p *Pump) ID() string { return p.cfg.ID }

// Model returns the pump model.
func (p *Pump) Model() string { return p.cfg.Model }

// Clock returns the pump's lab clock.
func (p *Pump) Clock() clock.Clock { return p.clk }

// RemoteStartAllowed reports the profile flag of the same name.
func (p *Pump) RemoteStartAllowed() bool { return p.cfg.RemoteStartAllowed }

// Firmware returns the running firmware version.
func (p *Pump) Firmware() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firmware
}

// Library returns the active library (nil if none) and its hash.
func (p *Pump) Library() (*druglib.Library, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lib, p.libHash
}

// Channels returns the channel names in order.
func (p *Pump) Channels() []string {
	out := make([]string, len(p.channels))
	for i, c := range p.channels {
		out[i] = c.name
	}
	return out
}

func (p *Pump) now() time.Time {
	if !p.due.IsZero() {
		return p.due
	}
	return p.clk.Now()
}

// Listen registers f to receive every Output from now on, in emission order.
// f runs synchronously on the goroutine that caused the output (inside
// clock.Fake.Advance for timer-driven outputs), never with the pump locked,
// so it may call back into the pump; it must not block for long. Nothing is
// buffered beyond the in-order hand-off, so nothing is dropped. The returned
// func unregisters f.
func (p *Pump) Listen(f func(Output)) (cancel func()) {
	p.outMu.Lock()
	id := p.nextLst
	p.nextLst++
	p.listeners[id] = f
	p.outMu.Unlock()
	return func() {
		p.outMu.Lock()
		delete(p.listeners, id)
		p.outMu.Unlock()
	}
}

// unlock applies deferred library/firmware activation, releases p.mu and
// delivers the outputs emitted while it was held, in order. Every mutating
// method ends with it.
func (p *Pump) unlock() {
	p.applyDeferred()
	outs := p.pending
	p.pending = nil
	ctls := p.pendingCtl
	p.pendingCtl = nil
	p.outMu.Lock()
	p.outQ = append(p.outQ, outs...)
	p.mu.Unlock()
	defer func() {
		for _, ev := range ctls {
			p.cfg.OnControl(ev)
		}
	}()
	if p.delivering {
		p.outMu.Unlock()
		return
	}
	p.delivering = true
	for len(p.outQ) > 0 {
		o := p.outQ[0]
		p.outQ[0] = Output{}
		p.outQ = p.outQ[1:]
		ids := make([]int, 0, len(p.listeners))
		for id := range p.listeners {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		fs := make([]func(Output), 0, len(ids))
		for _, id := range ids {
			fs = append(fs, p.listeners[id])
		}
		p.outMu.Unlock()
		for _, f := range fs {
			f(o)
		}
		p.outMu.Lock()
	}
	p.delivering = false
	p.outMu.Unlock()
}

// emit records an event. Caller holds p.mu.
func (p *Pump) emit(typ string, ch *channel, params map[string]string) *pumpwire.Event {
	p.nextEvent++
	ev := &pumpwire.Event{EventID: fmt.Sprintf("%s-E%d", p.cfg.ID, p.nextEvent), Type: typ, Params: params}
	now := p.now()
	if ch != nil {
		ev.Channel = ch.name
		if ch.prog != nil {
			ev.OrderID = ch.prog.wire.OrderID
		}
		cs := p.chanStatus(ch, now)
		ev.Snapshot = &cs
	}
	p.addLog(LogEntry{Kind: LogEvent, Source: "pump", Channel: ev.Channel, Action: typ, Detail: fmtParams(params)})
	p.pending = append(p.pending, Output{Time: now, Event: ev})
	return ev
}

func fmtParams(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += " "
		}
		s += k + "=" + m[k]
	}
	return s
}

func ftoa(v float64) string { return fmt.Sprintf("%.6g", v) }

// timerSlot holds one pending lab timer; a callback runs only if its slot
// still holds it (re-arming or disarming invalidates older callbacks even if
// they already fired on another goroutine).
type timerSlot struct {
	t  clock.Timer
	id uint64
}

// arm (re)schedules f after lab duration d. f runs with p.mu held. Caller
// holds p.mu.
func (p *Pump) arm(s *timerSlot, d time.Duration, f func()) {
	p.disarm(s)
	p.timerSeq++
	id := p.timerSeq
	s.id = id
	due := p.now().Add(max(d, 0))
	s.t = p.clk.AfterFunc(d, func() {
		p.mu.Lock()
		if s.id != id {
			p.mu.Unlock()
			return
		}
		s.id = 0
		s.t = nil
		if now := p.clk.Now(); due.Before(now) {
			p.due = due
		}
		f()
		p.due = time.Time{}
		p.unlock()
	})
}

// armAt schedules f at lab time t (at once if t is not after now).
func (p *Pump) armAt(s *timerSlot, t time.Time, f func()) { p.arm(s, t.Sub(p.now()), f) }

func (p *Pump) disarm(s *timerSlot) {
	if s.t != nil {
		s.t.Stop()
	}
	s.t = nil
	s.id = 0
}

func hoursToDur(h float64) time.Duration {
	if h <= 0 || math.IsNaN(h) {
		return 0
	}
	if h > 1e5 {
		h = 1e5
	}
	return time.Duration(math.Round(h * float64(time.Hour)))
}

// operable returns a rejection unless the pump can take programs/actions.
func (p *Pump) operable() *Rejection {
	switch {
	case p.power == powerOff:
		return reject("PUMP-STATE", "pump is off")
	case p.power == powerPOST:
		return reject("PUMP-STATE", "pump is in self test")
	case p.power == powerFault:
		return reject("PUMP-STATE", "pump is in fault (power cycle needed)")
	case p.service:
		return reject("PUMP-STATE", "pump is in service mode")
	}
	return nil
}

func (p *Pump) channel(name string) (*channel, *Rejection) {
	if name == "" && len(p.channels) > 0 {
		return p.channels[0], nil
	}
	for _, c := range p.channels {
		if c.name == name {
			return c, nil
		}
	}
	return nil, reject("CH-UNKNOWN", "no channel %q", name)
}

// State returns the pump-level state.
func (p *Pump) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stateLocked()
}

func (p *Pump) stateLocked() State {
	switch p.power {
	case powerOff:
		return StateOff
	case powerPOST:
		return StatePOST
	case powerFault:
		return StateFault
	}
	if p.service {
		return StateService
	}
	st := StateReady
	for _, c := range p.channels {
		switch {
		case c.state == ChAlarming:
			return StateAlarm
		case c.state.delivering():
			st = StateInfusing
		case c.state == ChPaused && st == StateReady:
			st = StatePaused
		}
	}
	return st
}

// busy reports whether any channel has an active therapy.
func (p *Pump) busy() bool {
	for _, c := range p.channels {
		if c.state.active() {
			return true
		}
	}
	return false
}

// Status builds the wire status (BufferedPending is the agent's to fill).
func (p *Pump) Status() pumpwire.Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	st := pumpwire.Status{
		State:     string(p.stateLocked()),
		Battery:   math.Round(p.batteryPct(now)*10) / 10,
		OnMains:   p.bat.mains,
		Firmware:  p.firmware,
		CareArea:  p.careArea,
		PatientID: p.patientID,
	}
	if p.lib != nil {
		st.LibraryVersion = p.lib.Version
		st.LibraryHash = p.libHash
	}
	if p.pendingLib != nil {
		st.PendingLibrary = p.pendingLib.Version
	}
	for _, c := range p.channels {
		st.Channels = append(st.Channels, p.chanStatus(c, now))
	}
	return st
}

// ---- library, firmware, care area, service, power, comm ----

// StageLibrary stages a drug library. It is activated at once when no
// channel has an active therapy (activated true), otherwise when the last
// channel stops (event library_activated then).
func (p *Pump) StageLibrary(lib *druglib.Library, hash string) (activated bool, err error) {
	if lib == nil {
		return false, fmt.Errorf("pump %s: stage library: nil library", p.cfg.ID)
	}
	p.mu.Lock()
	defer p.unlock()
	return p.stageLibraryLocked(lib, hash, 0), nil
}

// stageLibraryLocked stages lib of release seq. Caller holds p.mu.
func (p *Pump) stageLibraryLocked(lib *druglib.Library, hash string, seq uint64) (activated bool) {
	p.pendingLib, p.pendingHash, p.pendingSeq = lib, hash, seq
	p.addLog(LogEntry{Kind: LogLibrary, Source: "pump", Action: "library_staged", Detail: fmt.Sprintf("%s %s release %d", lib.Version, hash, seq)})
	if p.busy() {
		return false
	}
	p.applyDeferred()
	return true
}

// StageFirmware stages a firmware version, applied at once when idle, else
// when the last channel stops (event firmware_changed).
func (p *Pump) StageFirmware(version string) (applied bool, err error) {
	if version == "" {
		return false, fmt.Errorf("pump %s: stage firmware: empty version", p.cfg.ID)
	}
	p.mu.Lock()
	defer p.unlock()
	return p.stageFirmwareLocked(version), nil
}

// stageFirmwareLocked stages version. Caller holds p.mu.
func (p *Pump) stageFirmwareLocked(version string) (applied bool) {
	p.pendingFW = version
	p.addLog(LogEntry{Kind: LogFirmware, Source: "pump", Action: "firmware_staged", Detail: version})
	if p.busy() {
		return false
	}
	p.applyDeferred()
	return true
}

// applyDeferred activates a staged library/firmware when no channel is
// active. Caller holds p.mu.
func (p *Pump) applyDeferred() {
	if (p.pendingLib == nil && p.pendingFW == "") || p.busy() {
		return
	}
	if lib := p.pendingLib; lib != nil {
		prev := ""
		if p.lib != nil {
			prev = p.lib.Version
		}
		p.lib, p.libHash, p.libSeq = lib, p.pendingHash, p.pendingSeq
		p.pendingLib, p.pendingHash, p.pendingSeq = nil, "", 0
		// Programs loaded but not started were checked against the old library.
		for _, c := range p.channels {
			if c.state == ChProgramming {
				c.state = ChIdle
				c.prog = nil
				p.emit(pumpwire.EvProgramCleared, c, map[string]string{"reason": "library_changed"})
			}
		}
		p.emit(pumpwire.EvLibraryActivated, nil, map[string]string{"version": lib.Version, "hash": p.libHash, "previous": prev})
	}
	if fw := p.pendingFW; fw != "" {
		prev := p.firmware
		p.firmware, p.pendingFW = fw, ""
		p.emit(pumpwire.EvFirmware, nil, map[string]string{"version": fw, "previous": prev})
	}
}

// SetCareArea selects the care area (DERS profile); refused while a therapy
// is active.
func (p *Pump) SetCareArea(name, user string) error {
	p.mu.Lock()
	defer p.unlock()
	if p.busy() {
		return reject("CH-BUSY", "care area change while a channel is active")
	}
	p.addLog(LogEntry{Kind: LogKeypress, Source: "local", User: user, Action: "care_area", Detail: p.careArea + " -> " + name})
	p.careArea = name
	return nil
}

// EnterService enters biomed service mode with the access code; refused
// while a therapy is active. A wrong code is logged (evidence).
func (p *Pump) EnterService(code, user string) error {
	p.mu.Lock()
	defer p.unlock()
	if r := p.operable(); r != nil {
		return r
	}
	if p.cfg.Access != nil {
		if r := p.checkCode(user, code, "keypad"); r != nil {
			return r
		}
	} else if code != p.cfg.ServiceCode {
		p.addLog(LogEntry{Kind: LogService, Source: "local", User: user, Action: "service_denied", Code: "SERVICE-CODE"})
		return reject("SERVICE-CODE", "wrong service access code")
	}
	if p.busy() {
		return reject("CH-BUSY", "service mode while a channel is active")
	}
	p.service = true
	p.addLog(LogEntry{Kind: LogService, Source: "local", User: user, Action: "service_enter"})
	p.emit(pumpwire.EvServiceMode, nil, map[string]string{"on": "true", "user": user})
	return nil
}

// ExitService leaves service mode.
func (p *Pump) ExitService(user string) error {
	p.mu.Lock()
	defer p.unlock()
	if !p.service {
		return reject("PUMP-STATE", "not in service mode")
	}
	p.service = false
	p.addLog(LogEntry{Kind: LogService, Source: "local", User: user, Action: "service_exit"})
	p.emit(pumpwire.EvServiceMode, nil, map[string]string{"on": "false", "user": user})
	return nil
}

// PowerOff switches the pump off: every channel stops and programs are lost.
func (p *Pump) PowerOff(user string) {
	p.mu.Lock()
	defer p.unlock()
	if p.power == powerOff {
		return
	}
	p.addLog(LogEntry{Kind: LogPower, Source: "local", User: user, Action: "power_off"})
	for _, c := range p.channels {
		p.endTherapy(c, "power_off")
		c.state, c.prog, c.pending, c.started = ChIdle, nil, nil, false
	}
	for len(p.alarms) > 0 {
		p.endAlarm(p.alarms[0], "power off")
	}
	p.disarm(&p.postSlot)
	p.power = powerOff
	p.service = false
}

// PowerOn starts the pump: self test (POSTDuration), then ready, or fault
// with probability POSTFailRate.
func (p *Pump) PowerOn(user string) {
	p.mu.Lock()
	defer p.unlock()
	if p.power != powerOff || p.decommissioned {
		return
	}
	p.addLog(LogEntry{Kind: LogPower, Source: "local", User: user, Action: "power_on"})
	p.power = powerPOST
	done := func() {
		if p.cfg.POSTFailRate > 0 && p.rnd.Float64() < p.cfg.POSTFailRate {
			p.power = powerFault
			p.raise(AlarmSystemFault, "", "self test failed")
			return
		}
		p.power = powerOn
		p.addLog(LogEntry{Kind: LogPower, Source: "pump", Action: "post_passed"})
		p.rearmBattery()
	}
	if p.cfg.POSTDuration <= 0 {
		done()
		return
	}
	p.arm(&p.postSlot, p.cfg.POSTDuration, done)
}

// SetComm records the network module's connection state: going offline
// raises the comm_loss advisory and a comm_status_change event (both
// buffered by the agent), coming back ends it. Therapy is not affected.
func (p *Pump) SetComm(online bool) {
	p.mu.Lock()
	defer p.unlock()
	if online == p.comm {
		return
	}
	p.comm = online
	p.emit(pumpwire.EvCommStatus, nil, map[string]string{"online": fmt.Sprint(online)})
	if online {
		p.endAlarmCode(AlarmCommLoss, "", "connection restored")
	} else {
		p.raise(AlarmCommLoss, "", "connection lost")
	}
}

// ---- battery ----

type batteryState struct {
	pct   float64 // at time at
	at    time.Time
	mains bool
	low   timerSlot
	empty timerSlot
}

func (p *Pump) batteryPct(now time.Time) float64 {
	b := p.bat
	min := now.Sub(b.at).Minutes()
	if min < 0 {
		min = 0
	}
	var v float64
	if b.mains {
		v = b.pct + min*100/p.cfg.Battery.ChargeMin
	} else {
		v = b.pct - min*100/p.cfg.Battery.RuntimeMin
	}
	return math.Max(0, math.Min(100, v))
}

// SetMains plugs (true) or unplugs the pump. Plugging in ends the battery
// alarms; channels stopped by a depleted battery stay paused.
func (p *Pump) SetMains(on bool) {
	p.mu.Lock()
	defer p.unlock()
	if on == p.bat.mains {
		return
	}
	now := p.now()
	p.bat.pct, p.bat.at, p.bat.mains = p.batteryPct(now), now, on
	p.addLog(LogEntry{Kind: LogPower, Source: "local", Action: "mains", Detail: fmt.Sprint(on)})
	if on {
		p.endAlarmCode(AlarmBatteryLow, "", "on mains")
		if a := p.findAlarm(AlarmBatteryDepleted, ""); a != nil {
			p.endAlarm(a, "on mains")
			p.releaseStopped()
		}
	}
	p.rearmBattery()
}

// rearmBattery schedules the low and depleted alarms at their exact lab time.
func (p *Pump) rearmBattery() {
	p.disarm(&p.bat.low)
	p.disarm(&p.bat.empty)
	if p.bat.mains {
		return
	}
	perMin := 100 / p.cfg.Battery.RuntimeMin
	lowPct := p.cfg.Battery.LowMin * perMin
	pct := p.batteryPct(p.now())
	if p.findAlarm(AlarmBatteryLow, "") == nil {
		if pct <= lowPct {
			p.batteryLow()
		} else {
			p.arm(&p.bat.low, time.Duration((pct-lowPct)/perMin*float64(time.Minute)), p.batteryLow)
		}
	}
	if pct <= 0 {
		p.batteryDepleted()
		return
	}
	p.arm(&p.bat.empty, time.Duration(pct/perMin*float64(time.Minute)), p.batteryDepleted)
}

func (p *Pump) batteryLow() {
	if p.power == powerOff {
		return
	}
	p.raise(AlarmBatteryLow, "", fmt.Sprintf("%.0f%%", p.batteryPct(p.now())))
}

func (p *Pump) batteryDepleted() {
	if p.power == powerOff || p.findAlarm(AlarmBatteryDepleted, "") != nil {
		return
	}
	p.raise(AlarmBatteryDepleted, "", "battery empty")
	for _, c := range p.channels {
		p.holdByAlarm(c, AlarmBatteryDepleted)
	}
}

// ---- faults ----

// Fault is a condition the lab injects.
type Fault string

// Faults (see the alarm catalogue for their effect).
const (
	FaultOcclusionDown   Fault = "occlusion_downstream"
	FaultOcclusionUp     Fault = "occlusion_upstream"
	FaultAirInLine       Fault = "air_in_line"
	FaultDoorOpen        Fault = "door_open"
	FaultFreeFlow        Fault = "free_flow"
	FaultContainerEmpty  Fault = "container_empty"
	FaultOverInfusion    Fault = "over_infusion"
	FaultSystem          Fault = "system_fault"
	FaultBatteryLow      Fault = "battery_low"
	FaultBatteryDepleted Fault = "battery_depleted"
)

// InjectFault makes a fault happen on channel (""= first channel; ignored
// for pump-wide faults). A downstream occlusion alarms after the build-up
// volume has been pushed at the current rate (at once if the channel is not
// delivering); the others alarm at once.
func (p *Pump) InjectFault(channel string, f Fault) error {
	p.mu.Lock()
	defer p.unlock()
	if p.power == powerOff {
		return reject("PUMP-STATE", "pump is off")
	}
	p.addLog(LogEntry{Kind: LogFault, Source: "lab", Channel: channel, Action: "inject", Code: string(f)})
	switch f {
	case FaultSystem:
		p.power = powerFault
		p.raise(AlarmSystemFault, "", "injected")
		for _, c := range p.channels {
			p.holdByAlarm(c, AlarmSystemFault)
		}
		return nil
	case FaultBatteryLow:
		if !p.bat.mains {
			now := p.now()
			lowPct := p.cfg.Battery.LowMin * 100 / p.cfg.Battery.RuntimeMin
			p.bat.pct, p.bat.at = math.Min(p.batteryPct(now), lowPct), now
			p.rearmBattery()
		}
		p.raise(AlarmBatteryLow, "", "injected")
		return nil
	case FaultBatteryDepleted:
		p.bat.pct, p.bat.at = 0, p.now()
		p.batteryDepleted()
		p.rearmBattery()
		return nil
	}
	c, r := p.channel(channel)
	if r != nil {
		return r
	}
	switch f {
	case FaultOcclusionDown:
		if c.state.delivering() && c.last().RateMLH > 0 && p.cfg.OcclusionBuildupML > 0 {
			p.startOcclusion(c)
			return nil
		}
		p.channelAlarm(c, AlarmOcclusionDown, "injected")
	case FaultOcclusionUp:
		p.channelAlarm(c, AlarmOcclusionUp, "injected")
	case FaultAirInLine:
		p.channelAlarm(c, AlarmAirInLine, "injected")
	case FaultDoorOpen:
		c.doorOpen = true
		p.channelAlarm(c, AlarmDoorOpen, "injected")
	case FaultFreeFlow:
		p.channelAlarm(c, AlarmFreeFlow, "injected")
	case FaultContainerEmpty:
		p.channelAlarm(c, AlarmContainerEmpty, "injected")
	case FaultOverInfusion:
		p.channelAlarm(c, AlarmOverInfusion, "injected")
	default:
		return reject("FAULT-UNKNOWN", "unknown fault %q", f)
	}
	return nil
}

// channelAlarm raises code on c and applies its action. Caller holds p.mu.
func (p *Pump) channelAlarm(c *channel, code AlarmCode, why string) {
	def, _ := LookupAlarm(code)
	p.raise(code, c.name, why)
	switch def.Action {
	case ActStop:
		p.holdByAlarm(c, code)
	case ActKVO:
		if c.state.delivering() && c.state != ChKVO {
			c.state = ChKVO
			p.refresh(c)
			p.emit(pumpwire.EvKVO, c, map[string]string{"reason": string(code), "rate_ml_h": ftoa(c.nominalRate())})
		}
	}
}

// holdByAlarm stops delivery on c because of a stop-class alarm.
func (p *Pump) holdByAlarm(c *channel, code AlarmCode) {
	if !c.state.active() || c.state == ChAlarming {
		return
	}
	wasDelivering := c.state.delivering()
	if c.state != ChPaused {
		c.resumeKVO = c.state == ChKVO && !c.pca.limited && !c.completed
	}
	p.pcaCutBolus(c)
	c.state = ChAlarming
	p.refresh(c)
	if wasDelivering {
		p.emit(pumpwire.EvDeliveryStop, c, map[string]string{"reason": string(code)})
	}
}

// releaseStopped moves channels no longer held by any stop-class alarm from
// alarming to paused.
func (p *Pump) releaseStopped() {
	for _, c := range p.channels {
		if c.state == ChAlarming && !p.stopAlarmOn(c.name) {
			c.state = ChPaused
			p.refresh(c)
		}
	}
}

// clearAlarm ends an alarm on behalf of a user (local or remote).
func (p *Pump) clearAlarm(src Source, alarmID, user string) error {
	var a *ActiveAlarm
	for _, x := range p.alarms {
		if x.AlarmID == alarmID {
			a = x
		}
	}
	if a == nil {
		return reject("ALARM-UNKNOWN", "no active alarm %q", alarmID)
	}
	switch a.Def.Code {
	case AlarmSystemFault:
		return reject("ALARM-CONDITION", "system fault needs a power cycle")
	case AlarmBatteryDepleted:
		if !p.bat.mains {
			return reject("ALARM-CONDITION", "battery depleted: connect mains")
		}
	case AlarmCommLoss:
		return reject("ALARM-CONDITION", "comm loss ends when the connection is back")
	}
	p.addLog(LogEntry{Kind: LogKeypress, Source: src.String(), User: user, Channel: a.Channel, Action: "clear_alarm",
		Code: string(a.Def.Code), Detail: a.AlarmID})
	p.endAlarm(a, "cleared by "+user)
	if c, _ := p.channel(a.Channel); c != nil && a.Channel != "" {
		switch a.Def.Code {
		case AlarmDoorOpen:
			c.doorOpen = false
		case AlarmOcclusionDown:
			p.disarm(&c.occlSlot)
			c.occluded = false
		case AlarmPausedTooLong:
			if c.state == ChPaused {
				p.armCallback(c)
			}
		case AlarmPCALimit:
			// stays in limit KVO until the window allows; the recheck timer ends it
		}
	}
	p.releaseStopped()
	return nil
}

// ClearAlarm is the nurse acknowledging and resolving an alarm at the pump.
// A channel stopped by the alarm goes to paused (resume with Resume/Start).
func (p *Pump) ClearAlarm(alarmID, user string) error {
	p.mu.Lock()
	defer p.unlock()
	return p.clearAlarm(Local, alarmID, user)
}

// RemoteClearAlarm ends an alarm from the server; refused unless the
// profile has RemoteClearAllowed.
func (p *Pump) RemoteClearAlarm(alarmID, by string) error {
	p.mu.Lock()
	defer p.unlock()
	if !p.cfg.RemoteClearAllowed {
		p.addLog(LogEntry{Kind: LogRemote, Source: "remote", User: by, Action: "clear_alarm_denied", Detail: alarmID, Code: "REMOTE-DISABLED"})
		return reject("REMOTE-DISABLED", "remote alarm clear not allowed by this pump profile")
	}
	return p.clearAlarm(Remote, alarmID, by)
}

// OpenDoor opens the cassette door of channel; while delivering this is a
// stop-class alarm.
func (p *Pump) OpenDoor(channel, user string) error {
	p.mu.Lock()
	defer p.unlock()
	c, r := p.channel(channel)
	if r != nil {
		return r
	}
	c.doorOpen = true
	p.addLog(LogEntry{Kind: LogKeypress, Source: "local", User: user, Channel: c.name, Action: "door_open"})
	if c.state.delivering() {
		p.channelAlarm(c, AlarmDoorOpen, "door opened while running")
	}
	return nil
}

// CloseDoor closes the door; a door alarm ends and the channel is paused.
func (p *Pump) CloseDoor(channel, user string) error {
	p.mu.Lock()
	defer p.unlock()
	c, r := p.channel(channel)
	if r != nil {
		return r
	}
	c.doorOpen = false
	p.addLog(LogEntry{Kind: LogKeypress, Source: "local", User: user, Channel: c.name, Action: "door_close"})
	p.endAlarmCode(AlarmDoorOpen, c.name, "door closed")
	p.releaseStopped()
	return nil
}
