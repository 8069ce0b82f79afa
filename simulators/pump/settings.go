package pump

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// Device setting ranges and defaults (the device's own, docs/pump.md).
const (
	DefaultOcclusionThresholdMMHg = 300.0
	MinOcclusionThresholdMMHg     = 100.0
	MaxOcclusionThresholdMMHg     = 1200.0
	// OcclusionBaselineMMHg is the downstream line pressure of a free line.
	OcclusionBaselineMMHg = 20.0
	DefaultAirInLineUL    = 100.0
	MinAirInLineUL        = 10.0
	MaxAirInLineUL        = 1000.0
	MinFlowCalibration    = 0.5
	MaxFlowCalibration    = 2.0
)

// Event types of the pump's own configuration channel.
const (
	EvConfigChanged = "config_changed" // a device setting changed (params setting, value, previous, source, user)
	EvAirBubble     = "air_bubble"     // a bubble below the air-in-line threshold went to the patient
)

// LogConfig is the log kind of device setting changes.
const LogConfig = "config"

// settings are the device settings a biomed (or the comm module's config
// channel) can change. Guarded by Pump.mu.
type settings struct {
	flowCalibration float64
	occlusionMMHg   float64
	airInLineUL     float64
	serverAddress   string
}

func (p *Pump) initSettings() {
	p.set = settings{flowCalibration: 1, occlusionMMHg: p.cfg.OcclusionThresholdMMHg, airInLineUL: p.cfg.AirInLineUL,
		serverAddress: p.cfg.ServerAddress}
}

// Setting returns the current value of a device setting (keys
// pumpwire.SettingKeys) as text.
func (p *Pump) Setting(key string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settingLocked(key)
}

func (p *Pump) settingLocked(key string) (string, error) {
	switch key {
	case pumpwire.SetFlowCalibration:
		return ftoa(p.set.flowCalibration), nil
	case pumpwire.SetOcclusionThreshold:
		return ftoa(p.set.occlusionMMHg), nil
	case pumpwire.SetAirInLine:
		return ftoa(p.set.airInLineUL), nil
	case pumpwire.SetServerAddress:
		return p.set.serverAddress, nil
	}
	return "", reject("CFG-KEY", "unknown setting %q (known: %s)", key, strings.Join(pumpwire.SettingKeys, ", "))
}

// ParseSetting checks a device setting value and returns it normalised, with
// a *Rejection (CFG-KEY, CFG-VALUE) naming what is wrong.
func ParseSetting(key, value string) (string, error) {
	num := func(lo, hi float64, unit string) (string, error) {
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return "", reject("CFG-VALUE", "%s: %q is not a number", key, value)
		}
		if v < lo || v > hi {
			return "", reject("CFG-VALUE", "%s: %g%s outside the device range %g..%g%s", key, v, unit, lo, hi, unit)
		}
		return ftoa(v), nil
	}
	switch key {
	case pumpwire.SetFlowCalibration:
		return num(MinFlowCalibration, MaxFlowCalibration, "")
	case pumpwire.SetOcclusionThreshold:
		return num(MinOcclusionThresholdMMHg, MaxOcclusionThresholdMMHg, " mmHg")
	case pumpwire.SetAirInLine:
		return num(MinAirInLineUL, MaxAirInLineUL, " uL")
	case pumpwire.SetServerAddress:
		if err := CheckServerAddress(value); err != nil {
			return "", err
		}
		return value, nil
	}
	return "", reject("CFG-KEY", "unknown setting %q (known: %s)", key, strings.Join(pumpwire.SettingKeys, ", "))
}

// CheckServerAddress accepts only broker URLs (tcp, mqtt, ssl, tls, mqtts,
// ws, wss) whose host is a loopback address: the lab never dials out.
func CheckServerAddress(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return reject("CFG-VALUE", "server_address: %q is not a URL", s)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return reject("CFG-VALUE", "server_address: %q: scheme must be tcp, ssl, ws or wss", s)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return reject("CFG-VALUE", "server_address: %q: only loopback hosts may be dialled in the lab", s)
	}
	if u.Port() == "" {
		return reject("CFG-VALUE", "server_address: %q: port missing", s)
	}
	return nil
}

// ApplySetting changes a device setting from src (who: "server:NAME" for the
// comm module's config channel, the user of a service session). The change
// goes to the event log and out as a config_changed event. Values are
// checked by ParseSetting.
//
//   - flow_calibration: the motor runs at nominal x factor from now on,
//     while screen and reports keep the nominal rate (ATK-17);
//   - occlusion_threshold_mmhg: the downstream occlusion alarm pressure
//     (ATK-26); a pending occlusion is re-timed;
//   - air_in_line_ul: the smallest bubble that alarms (ATK-26);
//   - server_address: the broker URL the agent connects to (ATK-33); the
//     agent moves when it sees the event.
func (p *Pump) ApplySetting(src Source, who, key, value string) error {
	v, err := ParseSetting(key, value)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.unlock()
	p.applySettingLocked(src, who, key, v)
	return nil
}

// applySettingLocked applies a parsed value. Caller holds p.mu.
func (p *Pump) applySettingLocked(src Source, who, key, v string) {
	prev, _ := p.settingLocked(key)
	f, _ := strconv.ParseFloat(v, 64)
	switch key {
	case pumpwire.SetFlowCalibration:
		p.set.flowCalibration = f
		for _, c := range p.channels {
			c.calib = f
			p.refresh(c)
		}
	case pumpwire.SetOcclusionThreshold:
		p.set.occlusionMMHg = f
		for _, c := range p.channels {
			if c.occluded {
				p.armOcclusion(c)
			}
		}
	case pumpwire.SetAirInLine:
		p.set.airInLineUL = f
	case pumpwire.SetServerAddress:
		p.set.serverAddress = v
	}
	p.addLog(LogEntry{Kind: LogConfig, Source: src.String(), User: who, Action: "set_" + key, Detail: prev + " -> " + v})
	p.emit(EvConfigChanged, nil, map[string]string{"setting": key, "value": v, "previous": prev, "source": src.String(), "user": who})
}

// SetRate is the comm module's proprietary "set rate" path (ATK-16): the
// running continuous infusion on channel changes to rateMLH at once, with no
// nurse and no drug-library check (only the care area's maximum pump rate
// applies). Screen and reports show the new rate; a rate_change event with
// op set_rate is emitted.
func (p *Pump) SetRate(channel string, rateMLH float64, by string) error {
	p.mu.Lock()
	defer p.unlock()
	if r := p.operable(); r != nil {
		return r
	}
	c, r := p.channel(channel)
	if r != nil {
		return r
	}
	if c.prog == nil || c.state != ChInfusing || c.prog.pca != nil {
		return reject("CH-STATE", "set_rate needs a running continuous infusion, channel %s is %s", c.name, c.state)
	}
	if max := p.careAreaDef().MaxRateMLH; rateMLH <= 0 || rateMLH > max || math.IsNaN(rateMLH) {
		return reject("BAD-RATE", "rate %g mL/h outside 0..%g", rateMLH, max)
	}
	old := c.prog
	pr := *old
	pr.rateMLH = rateMLH
	pr.wire.RateMLH = rateMLH
	if old.rateMLH > 0 && old.doseRate > 0 {
		pr.doseRate = old.doseRate * rateMLH / old.rateMLH
		pr.wire.DoseRate = pr.doseRate
	}
	c.prog, c.pending = &pr, nil
	c.programmed = pr.setting(p.now())
	c.displayed = c.programmed
	p.addLog(LogEntry{Kind: LogRemote, Source: Remote.String(), User: by, Channel: c.name, Action: "set_rate",
		Detail: fmt.Sprintf("%.4g -> %.4g mL/h", old.rateMLH, rateMLH)})
	p.refresh(c)
	p.emit(pumpwire.EvRateChange, c, map[string]string{"from_ml_h": ftoa(old.rateMLH), "to_ml_h": ftoa(rateMLH), "source": Remote.String(), "user": by, "op": pumpwire.OpSetRate})
	return nil
}

// ---- occlusion pressure model ----

// The downstream line is a compliant tube: once occluded, the volume the
// motor pushes raises the pressure linearly, P = baseline + V / C. The
// compliance C is chosen so that OcclusionBuildupML (default 0.5 mL) reaches
// the default threshold of 300 mmHg: C = 0.5 / 280 mL/mmHg. The pressure
// therefore rises by rate/60/C mmHg per minute (about 93 mmHg/min at
// 10 mL/h, 933 at 100 mL/h) and the alarm comes after
// (threshold - baseline) x C / rate hours: 18 s at 100 mL/h and 3 min at
// 10 mL/h with the default, 4.2 times later at 1200 mmHg.

// complianceMLPerMMHg returns C.
func (p *Pump) complianceMLPerMMHg() float64 {
	return p.cfg.OcclusionBuildupML / (DefaultOcclusionThresholdMMHg - OcclusionBaselineMMHg)
}

// startOcclusion marks c occluded downstream now. Caller holds p.mu.
func (p *Pump) startOcclusion(c *channel) {
	c.occluded = true
	c.occlVol0, _, _, _ = c.cum(p.now())
	p.armOcclusion(c)
}

// armOcclusion (re)times the occlusion alarm of an occluded channel from the
// pressure reached and the motor rate. Caller holds p.mu.
func (p *Pump) armOcclusion(c *channel) {
	rate := c.last().RateMLH
	pushed := p.pushedSinceOcclusion(c)
	need := (p.set.occlusionMMHg-OcclusionBaselineMMHg)*p.complianceMLPerMMHg() - pushed
	if need <= 1e-12 {
		p.disarm(&c.occlSlot)
		p.occlusionAlarm(c)
		return
	}
	if rate <= 0 {
		p.disarm(&c.occlSlot)
		return
	}
	p.arm(&c.occlSlot, hoursToDur(need/rate), func() { p.occlusionAlarm(c) })
}

func (p *Pump) occlusionAlarm(c *channel) {
	c.occluded = false
	p.channelAlarm(c, AlarmOcclusionDown, fmt.Sprintf("pressure limit %g mmHg", p.set.occlusionMMHg))
}

func (p *Pump) pushedSinceOcclusion(c *channel) float64 {
	v, _, _, _ := c.cum(p.now())
	return math.Max(0, v-c.occlVol0)
}

// LinePressure returns the modelled downstream pressure of channel in mmHg:
// the baseline on a free line, rising while an occlusion is pending.
func (p *Pump) LinePressure(channel string) (float64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, r := p.channel(channel)
	if r != nil {
		return 0, r
	}
	if !c.occluded || p.cfg.OcclusionBuildupML <= 0 {
		return OcclusionBaselineMMHg, nil
	}
	return OcclusionBaselineMMHg + p.pushedSinceOcclusion(c)/p.complianceMLPerMMHg(), nil
}

// ---- air in line ----

// InjectAir sends a bubble of ul microlitres down channel: it alarms
// (air_in_line, delivery stops) when it is at least the air_in_line_ul
// threshold, and otherwise reaches the patient, is counted (AirDelivered) and
// logged with an air_bubble event.
func (p *Pump) InjectAir(channel string, ul float64) (alarmed bool, err error) {
	if ul <= 0 || math.IsNaN(ul) || math.IsInf(ul, 0) || ul > 1e6 {
		return false, fmt.Errorf("pump %s: inject air: bubble of %v uL must be > 0 and at most 1e6", p.cfg.ID, ul)
	}
	p.mu.Lock()
	defer p.unlock()
	c, r := p.channel(channel)
	if r != nil {
		return false, r
	}
	p.addLog(LogEntry{Kind: LogFault, Source: "lab", Channel: c.name, Action: "inject", Code: string(FaultAirInLine), Detail: ftoa(ul) + " uL"})
	if !c.state.delivering() {
		return false, nil
	}
	if ul >= p.set.airInLineUL {
		p.channelAlarm(c, AlarmAirInLine, fmt.Sprintf("bubble %g uL >= %g uL", ul, p.set.airInLineUL))
		return true, nil
	}
	c.airUL += ul
	p.emit(EvAirBubble, c, map[string]string{"bubble_ul": ftoa(ul), "threshold_ul": ftoa(p.set.airInLineUL), "total_ul": ftoa(c.airUL)})
	return false, nil
}

// AirDelivered returns the air (uL) that reached the patient on channel.
func (p *Pump) AirDelivered(channel string) (float64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, r := p.channel(channel)
	if r != nil {
		return 0, r
	}
	return c.airUL, nil
}

// ApplySettings applies several settings at once: every value is checked
// first (nothing changes when one is wrong), then they apply in key order.
func (p *Pump) ApplySettings(src Source, who string, kv map[string]string) error {
	if len(kv) == 0 {
		return reject("CFG-KEY", "no settings")
	}
	keys := make([]string, 0, len(kv))
	vals := map[string]string{}
	for k, v := range kv {
		n, err := ParseSetting(k, v)
		if err != nil {
			return err
		}
		keys = append(keys, k)
		vals[k] = n
	}
	slices.Sort(keys)
	p.mu.Lock()
	defer p.unlock()
	for _, k := range keys {
		p.applySettingLocked(src, who, k, vals[k])
	}
	return nil
}

// refusedCommand logs a command a security control refused.
func (p *Pump) refusedCommand(cmd *pumpwire.Command, env pumpwire.Envelope, code, reason string) {
	p.mu.Lock()
	defer p.unlock()
	p.addLog(LogEntry{Kind: LogRemote, Source: Remote.String(), User: "server:" + env.From, Channel: cmd.Channel,
		Action: "command_refused", Code: code, Detail: fmt.Sprintf("cmd %s op %s: %s", cmd.CmdID, cmd.Op, reason)})
}

// ServerAddress returns the broker URL the pump stores.
func (p *Pump) ServerAddress() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set.serverAddress
}

// initServerAddress records the agent's broker URL when the pump stores none.
func (p *Pump) initServerAddress(u string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.set.serverAddress == "" {
		p.set.serverAddress = u
	}
}
