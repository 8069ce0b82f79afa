package pump

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// Segment is one piece of a channel's piecewise-constant delivery: from
// Start until the next segment the motor runs at RateMLH. Cumulative values
// are those at Start, counted since the pump was created; drug amounts are
// in the amount unit of the program running at the time.
type Segment struct {
	Start       time.Time
	RateMLH     float64 // motor rate: the delivered truth
	NominalMLH  float64 // rate the pump firmware believes it runs (differs only with flow error or tampering)
	Conc        float64 // drug amount per mL of the running program (0 for basic fluids)
	VolumeML    float64 // cumulative delivered volume at Start
	Drug        float64 // cumulative delivered drug at Start
	NominalML   float64 // cumulative nominal volume at Start
	NominalDrug float64 // cumulative nominal drug at Start
}

// at returns the cumulative values at t (t >= s.Start).
func (s Segment) at(t time.Time) (vol, drug, nomVol, nomDrug float64) {
	h := t.Sub(s.Start).Hours()
	if h < 0 {
		h = 0
	}
	return s.VolumeML + s.RateMLH*h, s.Drug + s.RateMLH*s.Conc*h,
		s.NominalML + s.NominalMLH*h, s.NominalDrug + s.NominalMLH*s.Conc*h
}

// channel is one delivery channel. All fields are guarded by Pump.mu.
type channel struct {
	name  string
	typ   ChannelType
	state ChannelState

	prog      *program // loaded or running program
	pending   *program // XO change awaiting local confirmation
	started   bool     // prog has been started: counters below are valid
	completed bool     // VTBI reached, channel in KVO
	resumeKVO bool     // return to KVO (not the programmed rate) after an alarm
	doorOpen  bool
	factor    float64 // motor factor (1 = honest; tampering changes it)
	calib     float64 // flow calibration device setting (1 = factory)
	occluded  bool    // a downstream occlusion is building pressure
	occlVol0  float64 // motor volume at the occlusion's onset
	airUL     float64 // air delivered to the patient (bubbles below the threshold)
	flowErr   float64 // relative flow error of the running program

	segs []Segment
	// cumulative values at program start
	vol0, drug0, nom0, nomDrug0 float64
	progStart                   time.Time

	completeSlot, nearSlot, callbackSlot, occlSlot timerSlot

	pca pcaState

	ordered, programmed, displayed, reported, documented Setting
}

func newChannel(name string, t ChannelType) *channel {
	return &channel{name: name, typ: t, state: ChIdle, factor: 1, calib: 1}
}

func (c *channel) startSegment(now time.Time) {
	c.segs = append(c.segs, Segment{Start: now})
}

func (c *channel) last() *Segment { return &c.segs[len(c.segs)-1] }

// cum returns the cumulative values at t.
func (c *channel) cum(t time.Time) (vol, drug, nomVol, nomDrug float64) {
	i := sort.Search(len(c.segs), func(i int) bool { return c.segs[i].Start.After(t) }) - 1
	if i < 0 {
		return 0, 0, 0, 0
	}
	return c.segs[i].at(t)
}

// setRate starts a new segment at now if the rates or concentration change.
func (c *channel) setRate(now time.Time, nominal, conc float64) {
	actual := nominal * c.factor * c.calib * (1 + c.flowErr)
	l := c.last()
	if l.RateMLH == actual && l.NominalMLH == nominal && l.Conc == conc {
		return
	}
	vol, drug, nv, nd := l.at(now)
	s := Segment{Start: now, RateMLH: actual, NominalMLH: nominal, Conc: conc, VolumeML: vol, Drug: drug, NominalML: nv, NominalDrug: nd}
	if !now.After(l.Start) {
		s.VolumeML, s.Drug, s.NominalML, s.NominalDrug = l.VolumeML, l.Drug, l.NominalML, l.NominalDrug
		*l = s
		return
	}
	c.segs = append(c.segs, s)
}

// pcaKVOMLH is the PCA limit KVO rate when a basal runs (REFERENCE.md §5.4).
const pcaKVOMLH = 0.1

// nominalRate is the rate the state asks of the motor, before flow error.
func (c *channel) nominalRate() float64 {
	if c.prog == nil {
		return 0
	}
	switch c.state {
	case ChInfusing, ChPCALockout:
		return c.prog.rateMLH
	case ChBolus:
		return c.prog.rateMLH + c.pca.bolusMLH
	case ChKVO:
		if c.pca.limited {
			if c.prog.rateMLH > 0 {
				return math.Min(pcaKVOMLH, c.prog.rateMLH)
			}
			return 0
		}
		return c.prog.kvoMLH
	}
	return 0
}

// progVolumes returns delivered and nominal volume and drug since the
// program started.
func (c *channel) progVolumes(now time.Time) (vol, drug, nomVol, nomDrug float64) {
	if !c.started {
		return 0, 0, 0, 0
	}
	v, d, nv, nd := c.cum(now)
	return math.Max(0, v-c.vol0), math.Max(0, d-c.drug0), math.Max(0, nv-c.nom0), math.Max(0, nd-c.nomDrug0)
}

// refresh applies the rate of the channel's state at now and re-arms the
// timers that depend on it (VTBI completion, near end, callback).
func (p *Pump) refresh(c *channel) {
	now := p.now()
	conc := 0.0
	if c.prog != nil {
		conc = c.prog.conc
	}
	c.setRate(now, c.nominalRate(), conc)
	p.disarm(&c.completeSlot)
	p.disarm(&c.nearSlot)
	if !c.state.delivering() {
		p.disarm(&c.occlSlot)
		c.occluded = false
	} else if c.occluded {
		p.armOcclusion(c)
	}
	if c.state == ChPaused {
		if c.callbackSlot.id == 0 && p.findAlarm(AlarmPausedTooLong, c.name) == nil {
			p.armCallback(c)
		}
	} else {
		p.disarm(&c.callbackSlot)
		p.endAlarmCode(AlarmPausedTooLong, c.name, "no longer paused")
	}
	if c.state != ChInfusing || c.prog == nil || c.prog.pca != nil || c.prog.wire.VTBI <= 0 {
		return
	}
	_, _, nv, _ := c.progVolumes(now)
	remaining := c.prog.wire.VTBI - nv
	rate := c.nominalRate()
	if remaining <= 1e-9 {
		p.complete(c)
		return
	}
	if rate <= 0 {
		return
	}
	h := remaining / rate
	p.arm(&c.completeSlot, hoursToDur(h), func() { p.complete(c) })
	if c.typ == Syringe && p.cfg.NearEndMin > 0 && p.findAlarm(AlarmNearEnd, c.name) == nil {
		near := h - p.cfg.NearEndMin/60
		if near <= 0 {
			p.raise(AlarmNearEnd, c.name, "")
		} else {
			p.arm(&c.nearSlot, hoursToDur(near), func() { p.raise(AlarmNearEnd, c.name, "") })
		}
	}
}

// armCallback schedules the paused-too-long alarm after the care area's
// callback time.
func (p *Pump) armCallback(c *channel) {
	min := p.careAreaDef().CallbackMin
	p.arm(&c.callbackSlot, time.Duration(min*float64(time.Minute)), func() {
		if c.state == ChPaused {
			p.raise(AlarmPausedTooLong, c.name, fmt.Sprintf("paused > %g min", min))
		}
	})
}

// complete is the VTBI completion: delivery_complete, infusion-complete
// advisory, then KVO.
func (p *Pump) complete(c *channel) {
	if c.state != ChInfusing {
		return
	}
	c.completed = true
	c.state = ChKVO
	p.refresh(c)
	p.endAlarmCode(AlarmNearEnd, c.name, "infusion complete")
	vol, _, nv, _ := c.progVolumes(p.now())
	p.emit(pumpwire.EvDeliveryComplete, c, map[string]string{"vtbi_ml": ftoa(c.prog.wire.VTBI), "volume_ml": ftoa(nv), "delivered_ml": ftoa(vol)})
	p.raise(AlarmInfusionComplete, c.name, "")
	p.emit(pumpwire.EvKVO, c, map[string]string{"reason": "vtbi_complete", "rate_ml_h": ftoa(c.nominalRate())})
}

// endTherapy stops every channel timer and the PCA machinery. Caller sets
// the new state and calls refresh.
func (p *Pump) endTherapy(c *channel, reason string) {
	wasDelivering := c.state.delivering()
	p.disarm(&c.completeSlot)
	p.disarm(&c.nearSlot)
	p.disarm(&c.callbackSlot)
	p.disarm(&c.occlSlot)
	c.occluded = false
	p.pcaEnd(c)
	c.state = ChStopped
	p.refresh(c)
	if wasDelivering {
		p.emit(pumpwire.EvDeliveryStop, c, map[string]string{"reason": reason})
	}
}

// ---- programming ----

// Result is the outcome of Program.
type Result struct {
	Channel       string
	OrderID       string
	Accepted      bool
	Check         druglib.Check // worst DERS check (Within when accepted without limit)
	Code          string        // refusal code, or the soft-limit code of an accepted program
	Reason        string
	RateMLH       float64 // rate the program will run at
	NeedsOverride bool    // soft limit: Override before Start
	NeedsConfirm  bool    // waits for the nurse's Start at the pump
	Applied       bool    // an XO change that took effect at once (legacy remote)
}

func validProgram(w *pumpwire.Program) *Rejection {
	if w.Action == "" {
		w.Action = "RE"
	}
	c := pumpwire.Command{CmdID: "local", Op: pumpwire.OpProgram, Program: w}
	if err := c.Validate(); err != nil {
		return reject("BAD-PROGRAM", "%v", err)
	}
	for _, v := range []float64{w.DoseRate, w.RateMLH, w.DrugAmount, w.DiluentML, w.VTBI, w.WeightKg, w.PCADose, w.PCALockout, w.PCAHourLimit, w.BasalRate} {
		if math.IsInf(v, 0) || v > 1e7 {
			return reject("BAD-PROGRAM", "value %v out of range", v)
		}
	}
	if w.VTBI > 9999 {
		return reject("BAD-PROGRAM", "vtbi %g mL above 9999", w.VTBI)
	}
	return nil
}

// Program loads an infusion program on channel ("" = first) after the DERS
// check against the active library and care area. RE (new bag) needs an idle,
// stopped or programming channel and waits for Start (and Override on a soft
// limit). XO changes a running channel: applied at once for a remote program
// on a RemoteStartAllowed (legacy) pump, otherwise pending until Start. A
// refusal returns a *Rejection (also in Result.Code).
func (p *Pump) Program(src Source, w pumpwire.Program, channel string) (Result, error) {
	p.mu.Lock()
	defer p.unlock()
	now := p.now()
	if w.OrderID == "" && src == Local {
		w.OrderID = fmt.Sprintf("LOCAL-%d", p.nextEvent+1)
	}
	res := Result{Channel: channel, OrderID: w.OrderID}
	c, r := p.channel(channel)
	if c != nil {
		res.Channel = c.name
	}
	if r == nil {
		r = p.operable()
	}
	if r == nil {
		r = validProgram(&w)
	}
	if r == nil {
		switch w.Action {
		case "XO":
			if c.prog == nil || (c.state != ChInfusing && c.state != ChPaused) || c.prog.pca != nil {
				r = reject("CH-STATE", "XO needs a running continuous infusion, channel %s is %s", c.name, c.state)
			}
		default:
			if c.state != ChIdle && c.state != ChStopped && c.state != ChProgramming {
				r = reject("CH-BUSY", "channel %s is %s", c.name, c.state)
			}
		}
	}
	var pr *program
	if r == nil {
		pr, r = p.ders(c, w, src)
	}
	if r != nil {
		res.Code, res.Reason = r.Code, r.Reason
		p.addLog(LogEntry{Kind: LogProgram, Source: src.String(), Channel: res.Channel, Action: "program_rejected", Code: r.Code,
			Detail: fmt.Sprintf("order %s drug %q: %s", w.OrderID, w.DrugID, r.Reason)})
		ev := p.emit(pumpwire.EvProgramRejected, c, map[string]string{"code": r.Code, "reason": r.Reason, "source": src.String(), "action": w.Action, "drug_id": w.DrugID})
		ev.OrderID = w.OrderID
		return res, r
	}
	pr.at = now
	res.Accepted, res.Check, res.RateMLH = true, pr.check, pr.rateMLH
	if pr.check.Soft() {
		res.Code, res.Reason, res.NeedsOverride = pr.check.Code(), pr.reason, true
	}
	p.addLog(LogEntry{Kind: LogProgram, Source: src.String(), Channel: c.name, Action: "program_" + w.Action, Code: res.Code,
		Detail: fmt.Sprintf("order %s drug %q rate %.4g mL/h check %s", w.OrderID, w.DrugID, pr.rateMLH, pr.check)})
	params := map[string]string{"source": src.String(), "action": w.Action, "check": pr.check.String(), "rate_ml_h": ftoa(pr.rateMLH)}
	if res.Code != "" {
		params["code"] = res.Code
	}
	if w.Action == "XO" {
		if src == Remote && p.cfg.RemoteStartAllowed && !pr.check.Soft() {
			p.emit(pumpwire.EvProgramAccepted, c, params)
			p.applyXO(c, pr, src, "server")
			res.Applied = true
			return res, nil
		}
		c.pending = pr
		res.NeedsConfirm = true
		p.emit(pumpwire.EvProgramAccepted, c, params)
		return res, nil
	}
	c.prog, c.pending, c.started, c.completed = pr, nil, false, false
	c.state = ChProgramming
	c.programmed = pr.setting(now)
	c.displayed = c.programmed
	res.NeedsConfirm = true
	p.refresh(c)
	p.emit(pumpwire.EvProgramAccepted, c, params)
	p.notePatient(w.PatientID)
	if w.PatientID != "" && w.PatientID != p.patientID {
		prev := p.patientID
		p.patientID = w.PatientID
		p.emit(pumpwire.EvPatientChange, nil, map[string]string{"patient_id": w.PatientID, "previous": prev})
	}
	return res, nil
}

// applyXO makes a pending or immediate rate change take effect.
func (p *Pump) applyXO(c *channel, pr *program, src Source, user string) {
	old := c.prog
	if pr.wire.VTBI == 0 {
		pr.wire.VTBI = old.wire.VTBI
	}
	c.prog, c.pending = pr, nil
	c.programmed = pr.setting(p.now())
	c.displayed = c.programmed
	p.addLog(LogEntry{Kind: LogProgram, Source: src.String(), User: user, Channel: c.name, Action: "rate_change",
		Detail: fmt.Sprintf("%.4g -> %.4g mL/h", old.rateMLH, pr.rateMLH)})
	p.refresh(c)
	p.emit(pumpwire.EvRateChange, c, map[string]string{"from_ml_h": ftoa(old.rateMLH), "to_ml_h": ftoa(pr.rateMLH), "source": src.String(), "user": user})
}

// Override accepts the soft limit of the program loaded (or XO pending) on
// channel, with a reason; logged and reported (soft_limit_override).
func (p *Pump) Override(channel, reason, user string) error {
	p.mu.Lock()
	defer p.unlock()
	c, r := p.channel(channel)
	if r != nil {
		return r
	}
	pr := c.pending
	if pr == nil && c.state == ChProgramming {
		pr = c.prog
	}
	if pr == nil || !pr.check.Soft() {
		return reject("NO-OVERRIDE", "no soft-limit program to override on channel %s", c.name)
	}
	if reason == "" {
		return reject("OVERRIDE-REASON", "an override needs a reason")
	}
	pr.overridden, pr.overrideReason, pr.overrideUser = true, reason, user
	p.addLog(LogEntry{Kind: LogOverride, Source: "local", User: user, Channel: c.name, Action: "override", Code: pr.check.Code(), Detail: reason})
	p.emit(pumpwire.EvOverride, c, map[string]string{"code": pr.check.Code(), "reason": reason, "user": user, "limit": pr.reason})
	return nil
}

// Start is the nurse confirming at the pump: it starts a loaded program,
// confirms a pending XO change, or resumes a paused channel.
func (p *Pump) Start(channel, user string) error {
	p.mu.Lock()
	defer p.unlock()
	return p.start(Local, channel, user)
}

// Confirm is Start (the confirmation key of an auto-programmed screen).
func (p *Pump) Confirm(channel, user string) error { return p.Start(channel, user) }

// RemoteStart is a start command from the server: refused unless the pump
// profile has RemoteStartAllowed (legacy).
func (p *Pump) RemoteStart(channel, by string) error {
	p.mu.Lock()
	defer p.unlock()
	if !p.cfg.RemoteStartAllowed {
		p.addLog(LogEntry{Kind: LogRemote, Source: "remote", User: by, Channel: channel, Action: "start_denied", Code: "REMOTE-DISABLED"})
		return reject("REMOTE-DISABLED", "remote start not allowed by this pump profile: confirm at the pump")
	}
	return p.start(Remote, channel, by)
}

func (p *Pump) start(src Source, channel, user string) error {
	if r := p.operable(); r != nil {
		return r
	}
	c, r := p.channel(channel)
	if r != nil {
		return r
	}
	if pr := c.pending; pr != nil {
		if pr.check.Soft() && !pr.overridden {
			return reject("NEEDS-OVERRIDE", "soft limit %s needs an override", pr.check.Code())
		}
		p.addLog(LogEntry{Kind: LogConfirm, Source: src.String(), User: user, Channel: c.name, Action: "confirm_xo"})
		p.applyXO(c, pr, src, user)
		return nil
	}
	switch c.state {
	case ChProgramming:
		pr := c.prog
		if pr.check.Soft() && !pr.overridden {
			return reject("NEEDS-OVERRIDE", "soft limit %s needs an override", pr.check.Code())
		}
		if c.doorOpen {
			return reject("DOOR-OPEN", "door open on channel %s", c.name)
		}
		if p.stopAlarmOn(c.name) {
			return reject("ALARM-ACTIVE", "a stop-class alarm is active")
		}
		now := p.now()
		c.vol0, c.drug0, c.nom0, c.nomDrug0 = c.cum(now)
		c.progStart, c.started, c.completed, c.resumeKVO = now, true, false, false
		c.flowErr = 0
		if e := p.cfg.FlowError; e > 0 {
			c.flowErr = (p.rnd.Float64()*2 - 1) * e
		}
		p.addLog(LogEntry{Kind: LogConfirm, Source: src.String(), User: user, Channel: c.name, Action: "start",
			Detail: fmt.Sprintf("order %s %.4g mL/h", pr.wire.OrderID, pr.rateMLH)})
		c.state = ChInfusing
		if pr.pca != nil {
			p.pcaBegin(c)
		}
		p.refresh(c)
		p.emit(pumpwire.EvDeliveryStart, c, map[string]string{"rate_ml_h": ftoa(c.nominalRate()), "source": src.String(), "user": user})
		return nil
	case ChPaused:
		return p.resume(src, c, user)
	}
	return reject("CH-STATE", "nothing to start on channel %s (%s)", c.name, c.state)
}

// Resume restarts a paused channel.
func (p *Pump) Resume(channel, user string) error {
	p.mu.Lock()
	defer p.unlock()
	if r := p.operable(); r != nil {
		return r
	}
	c, r := p.channel(channel)
	if r != nil {
		return r
	}
	return p.resume(Local, c, user)
}

func (p *Pump) resume(src Source, c *channel, user string) error {
	if c.state != ChPaused {
		return reject("CH-STATE", "channel %s is %s, not paused", c.name, c.state)
	}
	if c.doorOpen {
		return reject("DOOR-OPEN", "door open on channel %s", c.name)
	}
	if p.stopAlarmOn(c.name) {
		return reject("ALARM-ACTIVE", "a stop-class alarm is active")
	}
	switch {
	case c.completed || c.resumeKVO || c.pca.limited:
		c.state = ChKVO
	case c.prog.pca != nil:
		c.state = p.pcaRunState(c)
	default:
		c.state = ChInfusing
	}
	c.resumeKVO = false
	p.addLog(LogEntry{Kind: LogKeypress, Source: src.String(), User: user, Channel: c.name, Action: "resume"})
	p.refresh(c)
	p.emit(pumpwire.EvDeliveryStart, c, map[string]string{"rate_ml_h": ftoa(c.nominalRate()), "source": src.String(), "user": user, "reason": "resume"})
	return nil
}

// Pause pauses a delivering channel (an ongoing PCA dose is cut short). The
// care area's callback time later raises paused_too_long.
func (p *Pump) Pause(channel, user string) error {
	p.mu.Lock()
	defer p.unlock()
	return p.pause(Local, channel, user)
}

// RemotePause is a pause command from the server (always allowed: it makes
// the pump safer, not riskier — but it is logged as remote).
func (p *Pump) RemotePause(channel, by string) error {
	p.mu.Lock()
	defer p.unlock()
	return p.pause(Remote, channel, by)
}

func (p *Pump) pause(src Source, channel, user string) error {
	c, r := p.channel(channel)
	if r != nil {
		return r
	}
	if !c.state.delivering() {
		return reject("CH-STATE", "channel %s is %s, not delivering", c.name, c.state)
	}
	c.resumeKVO = c.state == ChKVO && !c.pca.limited && !c.completed
	p.pcaCutBolus(c)
	c.state = ChPaused
	p.addLog(LogEntry{Kind: LogKeypress, Source: src.String(), User: user, Channel: c.name, Action: "pause"})
	p.refresh(c)
	p.emit(pumpwire.EvDeliveryStop, c, map[string]string{"reason": "paused", "source": src.String(), "user": user})
	return nil
}

// Stop ends the therapy on channel (a loaded program is cancelled). The stop
// key also ends the channel's alarms.
func (p *Pump) Stop(channel, user string) error {
	p.mu.Lock()
	defer p.unlock()
	return p.stop(Local, channel, user)
}

// RemoteStop is a stop command from the server (always allowed, logged).
func (p *Pump) RemoteStop(channel, by string) error {
	p.mu.Lock()
	defer p.unlock()
	return p.stop(Remote, channel, by)
}

func (p *Pump) stop(src Source, channel, user string) error {
	c, r := p.channel(channel)
	if r != nil {
		return r
	}
	p.addLog(LogEntry{Kind: LogKeypress, Source: src.String(), User: user, Channel: c.name, Action: "stop"})
	c.pending = nil
	switch c.state {
	case ChIdle, ChStopped:
		return reject("CH-STATE", "channel %s is %s", c.name, c.state)
	case ChProgramming:
		c.state, c.prog = ChIdle, nil
		p.refresh(c)
		p.emit(pumpwire.EvProgramCleared, c, map[string]string{"reason": "cancelled", "source": src.String(), "user": user})
		return nil
	}
	p.endTherapy(c, "stopped")
	for i := 0; i < len(p.alarms); {
		if a := p.alarms[i]; a.Channel == c.name {
			p.endAlarm(a, "stopped by "+user)
			continue
		}
		i++
	}
	return nil
}

// ClearProgram clears a stopped or loaded program; the channel goes idle.
func (p *Pump) ClearProgram(channel, user string) error {
	p.mu.Lock()
	defer p.unlock()
	c, r := p.channel(channel)
	if r != nil {
		return r
	}
	if c.state != ChStopped && c.state != ChProgramming {
		return reject("CH-STATE", "channel %s is %s", c.name, c.state)
	}
	c.state, c.prog, c.pending, c.started = ChIdle, nil, nil, false
	p.refresh(c)
	p.addLog(LogEntry{Kind: LogKeypress, Source: "local", User: user, Channel: c.name, Action: "clear_program"})
	p.emit(pumpwire.EvProgramCleared, c, map[string]string{"reason": "cleared", "user": user})
	return nil
}

// TamperDelivery multiplies the motor rate of channel by factor while the
// pump keeps showing and reporting the programmed values: the lab's model of
// compromised firmware (REFERENCE.md §2.8 item 7). 1 restores honesty.
func (p *Pump) TamperDelivery(channel string, factor float64) error {
	if factor < 0 || math.IsNaN(factor) || math.IsInf(factor, 0) {
		return fmt.Errorf("pump %s: tamper delivery: bad factor %v", p.cfg.ID, factor)
	}
	p.mu.Lock()
	defer p.unlock()
	c, r := p.channel(channel)
	if r != nil {
		return r
	}
	c.factor = factor
	p.addLog(LogEntry{Kind: LogFault, Source: "lab", Channel: c.name, Action: "tamper_delivery", Detail: ftoa(factor)})
	p.refresh(c)
	return nil
}

// chanStatus is the wire view of a channel: what the pump firmware believes
// (nominal volumes). Caller holds p.mu.
func (p *Pump) chanStatus(c *channel, now time.Time) pumpwire.ChannelStatus {
	cs := pumpwire.ChannelStatus{Channel: c.name, Type: string(c.typ), State: string(c.state), RateMLH: c.nominalRate()}
	if pr := c.prog; pr != nil {
		cs.PatientID = pr.wire.PatientID
		if cs.PatientID == "" {
			cs.PatientID = p.patientID
		}
		d := c.displayed
		cs.OrderID, cs.DrugID, cs.DrugName = d.OrderID, d.DrugID, d.DrugName
		cs.DoseRate, cs.DoseUnit, cs.VTBI, cs.WeightKg = d.DoseRate, d.DoseUnit, d.VTBI, d.WeightKg
		if d.Concentration > 0 {
			cs.Concentration, cs.ConcUnit = d.Concentration, d.AmountUnit+"/mL"
		}
		_, _, cs.VolumeInfused, cs.DrugInfused = c.progVolumes(now)
	}
	return cs
}

// Snapshot is the state of a channel at one lab time.
type Snapshot struct {
	Channel       string
	Type          ChannelType
	State         ChannelState
	At            time.Time
	RateMLH       float64 // motor rate now (delivered truth)
	NominalMLH    float64 // rate the pump believes it runs
	VolumeML      float64 // delivered since the program started
	Drug          float64 // delivered drug since the program started, in the program's amount unit
	NominalML     float64 // volume the pump counts (shown, reported)
	TotalVolumeML float64 // delivered since the pump was created
	TotalDrug     float64
	VTBI          float64
	RemainingML   float64 // VTBI - NominalML (0 without VTBI)
	Program       *pumpwire.Program
	Pending       *pumpwire.Program // XO awaiting confirmation
	Check         druglib.Check
	NeedsOverride bool
	DoorOpen      bool
	PCA           PCAStats
}

// Snapshot computes channel's state up to the clock's now.
func (p *Pump) Snapshot(channel string) (Snapshot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, r := p.channel(channel)
	if r != nil {
		return Snapshot{}, r
	}
	now := p.now()
	s := Snapshot{Channel: c.name, Type: c.typ, State: c.state, At: now, RateMLH: c.last().RateMLH, NominalMLH: c.nominalRate(), DoorOpen: c.doorOpen, PCA: c.pca.stats()}
	s.VolumeML, s.Drug, s.NominalML, _ = c.progVolumes(now)
	s.TotalVolumeML, s.TotalDrug, _, _ = c.cum(now)
	if pr := c.prog; pr != nil {
		w := pr.wire
		s.Program, s.Check, s.VTBI = &w, pr.check, w.VTBI
		s.NeedsOverride = pr.check.Soft() && !pr.overridden && c.state == ChProgramming
		if w.VTBI > 0 {
			s.RemainingML = math.Max(0, w.VTBI-s.NominalML)
		}
	}
	if pr := c.pending; pr != nil {
		w := pr.wire
		s.Pending = &w
		s.NeedsOverride = s.NeedsOverride || (pr.check.Soft() && !pr.overridden)
	}
	return s, nil
}
