package pump

import (
	"fmt"
	"strings"
	"time"

	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// pcaProgram holds the PCA settings of a program, in the drug's amount unit.
type pcaProgram struct {
	dose      float64       // per demand
	lockout   time.Duration // minimum time from one honoured demand to the next
	hourLimit float64       // amount per rolling 60 min (basal + demand doses); 0 = none
	basal     float64       // amount per hour
}

// pcaState is the running PCA machinery of a channel.
type pcaState struct {
	demands, delivered, rejected   int
	rejLockout, rejLimit, rejState int
	lastDose                       time.Time
	hasDose                        bool
	limited                        bool
	bolusMLH                       float64
	bolusSlot, lockSlot, limitSlot timerSlot
}

// PCAStats counts the patient demands of the current PCA program.
type PCAStats struct {
	Demands         int
	Delivered       int
	Rejected        int
	RejectedLockout int
	RejectedLimit   int // rejected because the hourly limit would be exceeded (or in limit KVO)
	RejectedState   int // channel not running
	Limited         bool
	LastDose        time.Time
}

func (s *pcaState) stats() PCAStats {
	return PCAStats{Demands: s.demands, Delivered: s.delivered, Rejected: s.rejected, RejectedLockout: s.rejLockout,
		RejectedLimit: s.rejLimit, RejectedState: s.rejState, Limited: s.limited, LastDose: s.lastDose}
}

// dersPCA checks the PCA settings against the entry's PCA limits.
func (p *Pump) dersPCA(c *channel, pr *program, e *druglib.Entry) *Rejection {
	w := pr.wire
	if c.typ != PCA {
		return reject("LIB-CHANNEL", "PCA program on %s channel", c.typ)
	}
	pl := e.PCA
	if pl == nil {
		return reject("LIB-NOPCA", "drug %s has no PCA limits", e.ID)
	}
	if w.DrugUnit != "" && e.AmountUnit != "" && !strings.EqualFold(w.DrugUnit, e.AmountUnit) {
		return reject("LIB-UNIT", "PCA unit %s does not match library unit %s", w.DrugUnit, e.AmountUnit)
	}
	if pr.conc <= 0 {
		return reject("LIB-UNIT", "PCA drug %s needs a concentration", e.ID)
	}
	if w.PCADose <= 0 && w.BasalRate <= 0 {
		return reject("BAD-PROGRAM", "PCA program needs pca_dose or basal_rate")
	}
	unit := pr.amtUnit
	check, reason := druglib.Within, ""
	if w.PCADose > 0 {
		dl := druglib.Limits{SoftMin: pl.DoseSoftMin, SoftMax: pl.DoseSoftMax, HardMax: pl.DoseHardMax}
		ck := dl.CheckValue(w.PCADose)
		check, reason = worse(check, reason, ck, limitText("PCA dose", w.PCADose, unit, dl, ck))
		ll := druglib.Limits{SoftMin: pl.LockoutSoftMin, SoftMax: pl.LockoutSoftMax, HardMin: pl.LockoutHardMin}
		ck = ll.CheckValue(w.PCALockout)
		check, reason = worse(check, reason, ck, limitText("lockout", w.PCALockout, "min", ll, ck))
	}
	hour := w.PCAHourLimit
	if hour == 0 {
		hour = pl.HourLimitMax
	}
	hl := druglib.Limits{HardMax: pl.HourLimitMax}
	ck := hl.CheckValue(hour)
	check, reason = worse(check, reason, ck, limitText("hour limit", hour, unit, hl, ck))
	if w.BasalRate > 0 {
		if strings.HasSuffix(e.DoseUnit, "/h") && !e.WeightBased() {
			ck := e.CheckDose(w.BasalRate)
			check, reason = worse(check, reason, ck, limitText("basal", w.BasalRate, e.DoseUnit, e.Dose, ck))
		}
		if hour > 0 && w.BasalRate > hour {
			check, reason = worse(check, reason, druglib.HardHigh, fmt.Sprintf("basal %g %s/h exceeds hour limit %g", w.BasalRate, unit, hour))
		}
	}
	pr.check, pr.reason = check, reason
	pr.doseRate, pr.doseUnit = w.BasalRate, unit+"/h"
	pr.rateMLH = w.BasalRate / pr.conc
	pr.pca = &pcaProgram{dose: w.PCADose, lockout: time.Duration(w.PCALockout * float64(time.Minute)), hourLimit: hour, basal: w.BasalRate}
	return nil
}

// pcaBegin resets the PCA counters when a PCA program starts.
func (p *Pump) pcaBegin(c *channel) {
	p.pcaEnd(c)
	c.pca = pcaState{}
}

// pcaEnd stops the PCA timers (counters stay readable).
func (p *Pump) pcaEnd(c *channel) {
	p.disarm(&c.pca.bolusSlot)
	p.disarm(&c.pca.lockSlot)
	p.disarm(&c.pca.limitSlot)
	c.pca.bolusMLH = 0
	c.pca.limited = false
}

// pcaCutBolus ends a demand dose early (pause, alarm).
func (p *Pump) pcaCutBolus(c *channel) {
	if c.state == ChBolus {
		p.disarm(&c.pca.bolusSlot)
		c.pca.bolusMLH = 0
	}
}

// pcaRunState returns infusing, or pca_lockout (arming its end) while the
// lockout since the last honoured demand runs.
func (p *Pump) pcaRunState(c *channel) ChannelState {
	if !c.pca.hasDose {
		return ChInfusing
	}
	end := c.pca.lastDose.Add(c.prog.pca.lockout)
	if !p.now().Before(end) {
		return ChInfusing
	}
	p.armAt(&c.pca.lockSlot, end, func() {
		if c.state == ChPCALockout {
			c.state = ChInfusing
			p.refresh(c)
		}
	})
	return ChPCALockout
}

// pcaUsed is the nominal drug delivered on c in the last 60 minutes of the
// current program (basal, KVO and demand doses).
func (p *Pump) pcaUsed(c *channel, now time.Time) float64 {
	from := now.Add(-time.Hour)
	if from.Before(c.progStart) {
		from = c.progStart
	}
	_, _, _, a := c.cum(from)
	_, _, _, b := c.cum(now)
	return b - a
}

// PCADemand is the patient pressing the PCA button. The demand is honoured
// (delivered true) when the channel runs, the lockout since the last honoured
// demand has passed and the dose fits the hourly limit; otherwise it is
// counted as rejected. A dose that would exceed the hourly limit puts the
// channel in limit KVO (pca_limit alarm) until the rolling window allows a
// dose again. The dose runs at PCABolusRateMLH on top of the basal.
func (p *Pump) PCADemand(channel string) (delivered bool, err error) {
	p.mu.Lock()
	defer p.unlock()
	c, r := p.channel(channel)
	if r != nil {
		return false, r
	}
	p.addLog(LogEntry{Kind: LogKeypress, Source: "patient", Channel: c.name, Action: "pca_demand"})
	if c.prog == nil || c.prog.pca == nil || c.prog.pca.dose <= 0 || !c.started {
		return false, reject("CH-STATE", "no PCA program running on channel %s", c.name)
	}
	pc := c.prog.pca
	now := p.now()
	c.pca.demands++
	reason := ""
	switch {
	case c.state == ChBolus || c.state == ChPCALockout:
		reason = "lockout"
	case c.pca.hasDose && now.Sub(c.pca.lastDose) < pc.lockout:
		reason = "lockout"
	case c.state == ChKVO && c.pca.limited:
		reason = "hour_limit"
	case c.state != ChInfusing:
		reason = "not_running"
	case pc.hourLimit > 0 && p.pcaUsed(c, now)+pc.dose > pc.hourLimit+1e-9:
		reason = "hour_limit"
		p.pcaLimit(c)
	}
	if reason != "" {
		c.pca.rejected++
		switch reason {
		case "lockout":
			c.pca.rejLockout++
		case "hour_limit":
			c.pca.rejLimit++
		default:
			c.pca.rejState++
		}
		p.emit(pumpwire.EvPCADemand, c, p.pcaParams(c, "rejected", reason))
		return false, nil
	}
	c.pca.delivered++
	c.pca.lastDose, c.pca.hasDose = now, true
	vol := pc.dose / c.prog.conc
	c.pca.bolusMLH = p.cfg.PCABolusRateMLH
	c.state = ChBolus
	p.refresh(c)
	p.emit(pumpwire.EvPCADemand, c, p.pcaParams(c, "delivered", ""))
	p.arm(&c.pca.bolusSlot, hoursToDur(vol/c.pca.bolusMLH), func() {
		c.pca.bolusMLH = 0
		if c.state != ChBolus {
			return
		}
		c.state = p.pcaRunState(c)
		p.refresh(c)
		p.emit(pumpwire.EvBolus, c, map[string]string{"dose": ftoa(pc.dose), "volume_ml": ftoa(vol), "kind": "pca"})
	})
	return true, nil
}

func (p *Pump) pcaParams(c *channel, result, reason string) map[string]string {
	m := map[string]string{"result": result, "dose": ftoa(c.prog.pca.dose),
		"demands": fmt.Sprint(c.pca.demands), "delivered": fmt.Sprint(c.pca.delivered), "rejected": fmt.Sprint(c.pca.rejected)}
	if reason != "" {
		m["reason"] = reason
	}
	return m
}

// pcaLimit enters limit KVO and re-checks the rolling window every minute.
func (p *Pump) pcaLimit(c *channel) {
	c.pca.limited = true
	c.state = ChKVO
	p.refresh(c)
	p.raise(AlarmPCALimit, c.name, fmt.Sprintf("hour limit %g", c.prog.pca.hourLimit))
	p.emit(pumpwire.EvKVO, c, map[string]string{"reason": "hour_limit", "rate_ml_h": ftoa(c.nominalRate())})
	p.arm(&c.pca.limitSlot, time.Minute, func() { p.pcaRecheck(c) })
}

func (p *Pump) pcaRecheck(c *channel) {
	if !c.pca.limited || c.prog == nil || c.prog.pca == nil {
		return
	}
	pc := c.prog.pca
	if p.pcaUsed(c, p.now())+pc.dose > pc.hourLimit+1e-9 {
		p.arm(&c.pca.limitSlot, time.Minute, func() { p.pcaRecheck(c) })
		return
	}
	c.pca.limited = false
	p.endAlarmCode(AlarmPCALimit, c.name, "hour window allows a dose")
	if c.state == ChKVO {
		c.state = p.pcaRunState(c)
		p.refresh(c)
		p.emit(pumpwire.EvDeliveryStart, c, map[string]string{"rate_ml_h": ftoa(c.nominalRate()), "reason": "pca_limit_cleared"})
	}
}

// PCAStats returns the demand counters of channel's current PCA program.
func (p *Pump) PCAStats(channel string) (PCAStats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, r := p.channel(channel)
	if r != nil {
		return PCAStats{}, r
	}
	return c.pca.stats(), nil
}
