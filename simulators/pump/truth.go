package pump

import (
	"errors"
	"fmt"
	"time"

	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// Setting is one truth layer of a channel (REFERENCE.md §3.0): what some
// party believes the therapy is. The same type serves all six layers so
// that gaps between layers are field-by-field differences.
type Setting struct {
	At            time.Time // when this layer was last set (Delivered: the read time)
	OrderID       string
	DrugID        string
	DrugName      string
	DoseRate      float64 // in DoseUnit
	DoseUnit      string
	RateMLH       float64
	Concentration float64 // amount per mL, in AmountUnit
	AmountUnit    string
	VTBI          float64
	WeightKg      float64
	VolumeML      float64 // volume infused as known to this layer
	Drug          float64 // drug infused as known to this layer, in AmountUnit
	State         string
}

// IsZero reports whether the layer was never set.
func (s Setting) IsZero() bool {
	return s.At.IsZero() && s.OrderID == "" && s.RateMLH == 0 && s.DoseRate == 0
}

// RateMLHOrDose returns the layer's rate in mL/h: RateMLH, or DoseRate
// converted with the layer's concentration and weight.
func (s Setting) RateMLHOrDose() (float64, error) {
	if s.RateMLH > 0 {
		return s.RateMLH, nil
	}
	return druglib.DoseToRate(s.DoseRate, s.DoseUnit, s.Concentration, s.AmountUnit, s.WeightKg)
}

// TruthLayers is a copy of the six truth layers of a channel.
type TruthLayers struct {
	Channel    string
	Ordered    Setting // set by the lab from the eMAR (SetOrdered)
	Programmed Setting // parameters the pump accepted
	Displayed  Setting // what the screen shows (normally = programmed, with nominal counters)
	Delivered  Setting // motor truth from the physics, at the read time
	Reported   Setting // what the pump last sent (recorded by the agent)
	Documented Setting // what the EHR stored (SetDocumented)
}

// SetOrdered records the ordered layer (the lab sets it from the eMAR).
func (p *Pump) SetOrdered(ch string, s Setting) error {
	return p.setLayer(ch, "ordered", s, func(c *channel) *Setting { return &c.ordered })
}

// SetDocumented records the documented layer (what the EHR stored).
func (p *Pump) SetDocumented(ch string, s Setting) error {
	return p.setLayer(ch, "documented", s, func(c *channel) *Setting { return &c.documented })
}

func (p *Pump) setLayer(chName, name string, s Setting, f func(*channel) *Setting) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, r := p.channel(chName)
	if r != nil {
		return r
	}
	if s.At.IsZero() {
		s.At = p.now()
	}
	*f(c) = s
	p.addLog(LogEntry{Kind: LogTruth, Source: "lab", Channel: c.name, Action: "set_" + name, Detail: "order " + s.OrderID})
	return nil
}

// RecordReported records what the pump sent about a channel at lab time at
// (the agent calls it after a status or event publish succeeds).
func (p *Pump) RecordReported(cs pumpwire.ChannelStatus, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, r := p.channel(cs.Channel)
	if r != nil || at.Before(c.reported.At) {
		return
	}
	unit := cs.ConcUnit
	if len(unit) > 3 && unit[len(unit)-3:] == "/mL" {
		unit = unit[:len(unit)-3]
	}
	c.reported = Setting{At: at, OrderID: cs.OrderID, DrugID: cs.DrugID, DrugName: cs.DrugName, DoseRate: cs.DoseRate,
		DoseUnit: cs.DoseUnit, RateMLH: cs.RateMLH, Concentration: cs.Concentration, AmountUnit: unit, VTBI: cs.VTBI,
		WeightKg: cs.WeightKg, VolumeML: cs.VolumeInfused, Drug: cs.DrugInfused, State: cs.State}
}

// Truth returns a copy of channel's six layers; Delivered and Displayed
// carry the counters at the clock's now.
func (p *Pump) Truth(channel string) (TruthLayers, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, r := p.channel(channel)
	if r != nil {
		return TruthLayers{}, r
	}
	now := p.now()
	t := TruthLayers{Channel: c.name, Ordered: c.ordered, Programmed: c.programmed, Displayed: c.displayed,
		Reported: c.reported, Documented: c.documented}
	if t.Ordered.RateMLH == 0 && t.Ordered.DoseRate > 0 {
		// A dose order (mcg/kg/min): its pump rate follows from the
		// concentration and weight the layer carries.
		if r, err := t.Ordered.RateMLHOrDose(); err == nil {
			t.Ordered.RateMLH = r
		}
	}
	vol, drug, nv, nd := c.progVolumes(now)
	t.Displayed.VolumeML, t.Displayed.Drug, t.Displayed.State = nv, nd, string(c.state)
	t.Displayed.RateMLH = c.nominalRate()
	d := c.programmed
	d.At, d.VolumeML, d.Drug, d.State = now, vol, drug, string(c.state)
	d.RateMLH = c.last().RateMLH
	if c.prog != nil && c.prog.rateMLH > 0 {
		d.DoseRate = c.prog.doseRate * d.RateMLH / c.prog.rateMLH
	} else if d.RateMLH == 0 {
		d.DoseRate = 0
	}
	t.Delivered = d
	return t, nil
}

// Segments returns channel's delivery history: one segment per rate change
// (the on-change series; cumulative values are exact at every instant).
func (p *Pump) Segments(channel string) ([]Segment, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, r := p.channel(channel)
	if r != nil {
		return nil, r
	}
	return append([]Segment(nil), c.segs...), nil
}

// Sample is the delivered truth of a channel at one instant.
type Sample struct {
	T          time.Time
	RateMLH    float64 // motor rate
	NominalMLH float64
	VolumeML   float64 // cumulative delivered since the pump was created
	Drug       float64
	NominalML  float64
}

// Samples returns samples of channel from from to to (inclusive) every step
// (default 1 s), computed exactly from the segments. At most 1e6 samples.
func (p *Pump) Samples(channel string, from, to time.Time, step time.Duration) ([]Sample, error) {
	if step <= 0 {
		step = time.Second
	}
	if to.Before(from) {
		return nil, errors.New("pump: samples: to before from")
	}
	if n := to.Sub(from) / step; n > 1e6 {
		return nil, fmt.Errorf("pump: samples: %d samples, at most 1e6", n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c, r := p.channel(channel)
	if r != nil {
		return nil, r
	}
	var out []Sample
	for t := from; !t.After(to); t = t.Add(step) {
		out = append(out, c.sample(t))
	}
	return out, nil
}

func (c *channel) sample(t time.Time) Sample {
	s := Sample{T: t}
	s.VolumeML, s.Drug, s.NominalML, _ = c.cum(t)
	for i := len(c.segs) - 1; i >= 0; i-- {
		if !c.segs[i].Start.After(t) {
			s.RateMLH, s.NominalMLH = c.segs[i].RateMLH, c.segs[i].NominalMLH
			break
		}
	}
	return s
}

// DeliveredBetween returns the volume and drug delivered on channel in
// [from, to] (motor truth).
func (p *Pump) DeliveredBetween(channel string, from, to time.Time) (volumeML, drug float64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, r := p.channel(channel)
	if r != nil {
		return 0, 0, r
	}
	v0, d0, _, _ := c.cum(from)
	v1, d1, _, _ := c.cum(to)
	return v1 - v0, d1 - d0, nil
}

// DDR is the delivered-dose ratio over [from, to]: delivered drug / ordered
// drug (by volume for basic fluids), with the ordered amount from the
// ordered layer's rate. Amounts must be in the same unit.
func (p *Pump) DDR(channel string, from, to time.Time) (float64, error) {
	p.mu.Lock()
	o := Setting{}
	c, r := p.channel(channel)
	if r == nil {
		o = c.ordered
	}
	p.mu.Unlock()
	if r != nil {
		return 0, r
	}
	if o.IsZero() {
		return 0, fmt.Errorf("pump %s: ddr channel %s: no ordered layer", p.cfg.ID, channel)
	}
	rate, err := o.RateMLHOrDose()
	if err != nil {
		return 0, fmt.Errorf("pump %s: ddr channel %s: %w", p.cfg.ID, channel, err)
	}
	h := to.Sub(from).Hours()
	vol, _, err := p.DeliveredBetween(channel, from, to)
	if err != nil {
		return 0, err
	}
	want, got := rate*h, vol
	if o.Concentration > 0 {
		// The bag holds what pharmacy dispensed for the order: the drug
		// delivered is the volume at the ordered concentration, whatever
		// concentration the pump was told (ATK-12 falsifies it in transit).
		want, got = rate*o.Concentration*h, vol*o.Concentration
	}
	if want <= 0 {
		return 0, fmt.Errorf("pump %s: ddr channel %s: ordered amount is zero", p.cfg.ID, channel)
	}
	return got / want, nil
}

// ---- event log ----

// Log entry kinds.
const (
	LogKeypress = "keypress"
	LogProgram  = "program"
	LogConfirm  = "confirm"
	LogOverride = "override"
	LogAlarm    = "alarm"
	LogEvent    = "event"
	LogRemote   = "remote"
	LogLibrary  = "library"
	LogFirmware = "firmware"
	LogService  = "service"
	LogPower    = "power"
	LogFault    = "fault"
	LogTruth    = "truth"
)

// LogEntry is one line of the pump's event log (the device's own record,
// source of truth for CQI).
type LogEntry struct {
	Seq     uint64
	At      time.Time
	Kind    string // see Log* constants
	Source  string // local, remote, patient, pump, lab
	User    string
	Channel string
	Action  string
	Code    string
	Detail  string
}

// addLog appends to the log. Caller holds p.mu.
func (p *Pump) addLog(e LogEntry) {
	p.logSeq++
	e.Seq = p.logSeq
	e.At = p.now()
	if len(p.logs) >= p.cfg.LogLimit {
		n := len(p.logs) - p.cfg.LogLimit + 1
		p.logs = append(p.logs[:0], p.logs[n:]...)
		p.logDropped += n
	}
	p.logs = append(p.logs, e)
	p.log.Debug("pump log", "kind", e.Kind, "action", e.Action, "channel", e.Channel, "code", e.Code, "detail", e.Detail)
}

// Log returns a copy of the event log, oldest first.
func (p *Pump) Log() []LogEntry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]LogEntry(nil), p.logs...)
}

// LogDropped returns how many of the oldest log entries were dropped.
func (p *Pump) LogDropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logDropped
}
