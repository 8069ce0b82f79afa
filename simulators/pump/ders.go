package pump

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// Care-area defaults used when the pump has no library or the named care
// area is not in it.
const (
	DefaultMaxRateMLH  = 999
	DefaultCallbackMin = 2
	DefaultKVORateMLH  = 1
)

// MaxRateMLH is the mechanical maximum of every channel.
const MaxRateMLH = 1200

// program is an accepted infusion program.
type program struct {
	wire     pumpwire.Program
	src      Source
	entry    *druglib.Entry // nil for basic infusion
	drugName string
	doseRate float64 // in doseUnit (PCA: basal per hour)
	doseUnit string
	rateMLH  float64 // programmed rate (PCA: basal)
	conc     float64 // amount per mL (0 for basic fluids)
	amtUnit  string
	kvoMLH   float64
	check    druglib.Check // worst check
	reason   string        // text of the worst check
	pca      *pcaProgram
	at       time.Time

	overridden                   bool
	overrideReason, overrideUser string
}

// setting is the programmed truth layer of pr.
func (pr *program) setting(at time.Time) Setting {
	return Setting{
		At: at, OrderID: pr.wire.OrderID, DrugID: pr.wire.DrugID, DrugName: pr.drugName,
		DoseRate: pr.doseRate, DoseUnit: pr.doseUnit, RateMLH: pr.rateMLH,
		Concentration: pr.conc, AmountUnit: pr.amtUnit, VTBI: pr.wire.VTBI, WeightKg: pr.wire.WeightKg,
	}
}

// careAreaDef returns the active care area with defaults filled in.
func (p *Pump) careAreaDef() druglib.CareArea {
	ca := druglib.CareArea{Name: p.careArea, BasicAllowed: true}
	if p.lib != nil {
		if x, ok := p.lib.CareArea(p.careArea); ok {
			ca = *x
		}
	}
	if ca.MaxRateMLH <= 0 {
		ca.MaxRateMLH = DefaultMaxRateMLH
	}
	if ca.CallbackMin <= 0 {
		ca.CallbackMin = DefaultCallbackMin
	}
	if ca.KVORateMLH <= 0 {
		ca.KVORateMLH = DefaultKVORateMLH
	}
	return ca
}

// worse keeps the more severe of two checks and its reason.
func worse(c druglib.Check, reason string, d druglib.Check, why string) (druglib.Check, string) {
	if d > c {
		return d, why
	}
	return c, reason
}

func limitText(what string, v float64, unit string, l druglib.Limits, c druglib.Check) string {
	var lim float64
	switch c {
	case druglib.SoftLow:
		lim = l.SoftMin
	case druglib.SoftHigh:
		lim = l.SoftMax
	case druglib.HardLow:
		lim = l.HardMin
	case druglib.HardHigh:
		lim = l.HardMax
	}
	return fmt.Sprintf("%s %g %s is %s (limit %g)", what, v, unit, c, lim)
}

// ders runs the dose error reduction checks of w on channel c. Caller holds
// p.mu. Hard limits and structural problems are refusals; soft limits are
// recorded in program.check.
func (p *Pump) ders(c *channel, w pumpwire.Program, src Source) (*program, *Rejection) {
	ca := p.careAreaDef()
	pr := &program{wire: w, src: src, drugName: w.DrugName}
	if w.WeightKg > 0 && ca.WeightMaxKg > 0 && (w.WeightKg < ca.WeightMinKg || w.WeightKg > ca.WeightMaxKg) {
		return nil, reject("LIB-WEIGHT", "weight %g kg outside care area %s bounds %g-%g kg", w.WeightKg, ca.Name, ca.WeightMinKg, ca.WeightMaxKg)
	}
	if w.DrugID == "" {
		if !ca.BasicAllowed {
			return nil, reject("LIB-NOBASIC", "basic infusion not allowed in care area %s", ca.Name)
		}
		if c.typ == PCA {
			return nil, reject("LIB-NOPCA", "PCA channel needs a library drug")
		}
		rate := w.RateMLH
		if rate == 0 && (w.DoseUnit == "" || w.DoseUnit == "mL/h") {
			rate = w.DoseRate
		}
		if rate <= 0 {
			return nil, reject("BAD-PROGRAM", "basic infusion needs rate_ml_h")
		}
		if pr.drugName == "" {
			pr.drugName = "Basic infusion"
		}
		pr.rateMLH, pr.doseRate, pr.doseUnit = rate, rate, "mL/h"
	} else {
		if p.lib == nil {
			return nil, reject("LIB-NOTFOUND", "no drug library loaded")
		}
		e, ok := p.lib.Lookup(w.DrugID, p.careArea)
		if !ok {
			return nil, reject("LIB-NOTFOUND", "drug %q not in library %s care area %s", w.DrugID, p.lib.Version, p.careArea)
		}
		ec := *e
		pr.entry = &ec
		if pr.drugName == "" {
			pr.drugName = e.Name
		}
		if len(e.Channels) > 0 && !containsFold(e.Channels, string(c.typ)) {
			return nil, reject("LIB-CHANNEL", "drug %s not allowed on %s channel", e.ID, c.typ)
		}
		if e.WeightBased() && w.WeightKg <= 0 {
			return nil, reject("LIB-WEIGHT", "drug %s is dosed per kg: weight missing", e.ID)
		}
		pr.conc, pr.amtUnit = e.Concentration(), e.AmountUnit
		if w.DrugAmount > 0 && w.DiluentML > 0 {
			pr.conc = w.DrugAmount / w.DiluentML
			if w.DrugUnit != "" {
				pr.amtUnit = w.DrugUnit
			}
		}
		if c.typ == PCA || w.PCADose > 0 {
			if r := p.dersPCA(c, pr, e); r != nil {
				return nil, r
			}
		} else if r := p.dersContinuous(pr, e); r != nil {
			return nil, r
		}
	}
	if pr.rateMLH > ca.MaxRateMLH {
		return nil, reject("LIB-MAXRATE", "rate %.4g mL/h above care area %s max %g mL/h", pr.rateMLH, ca.Name, ca.MaxRateMLH)
	}
	if pr.rateMLH > MaxRateMLH || math.IsNaN(pr.rateMLH) {
		return nil, reject("BAD-PROGRAM", "rate %.4g mL/h above the pump's %d mL/h", pr.rateMLH, MaxRateMLH)
	}
	if pr.check.Hard() {
		return nil, reject(pr.check.Code(), "%s", pr.reason)
	}
	pr.kvoMLH = math.Min(ca.KVORateMLH, pr.rateMLH)
	return pr, nil
}

func (p *Pump) dersContinuous(pr *program, e *druglib.Entry) *Rejection {
	w := pr.wire
	if w.DoseRate > 0 && w.DoseUnit != "" && !strings.EqualFold(w.DoseUnit, e.DoseUnit) {
		return reject("LIB-UNIT", "dose unit %s does not match library unit %s", w.DoseUnit, e.DoseUnit)
	}
	per1, err := druglib.DoseToRate(1, e.DoseUnit, pr.conc, pr.amtUnit, w.WeightKg)
	if err != nil || per1 <= 0 || math.IsInf(per1, 0) || math.IsNaN(per1) {
		return reject("LIB-UNIT", "cannot convert %s to mL/h: %v", e.DoseUnit, err)
	}
	switch {
	case w.DoseRate > 0:
		// Convert the dose itself (not dose x rate-of-1) so that the result is
		// bit-identical to druglib.DoseToRate on the ordered layer.
		pr.doseRate = w.DoseRate
		pr.rateMLH, _ = druglib.DoseToRate(w.DoseRate, e.DoseUnit, pr.conc, pr.amtUnit, w.WeightKg)
	case w.RateMLH > 0:
		pr.rateMLH = w.RateMLH
		pr.doseRate = w.RateMLH / per1
	default:
		return reject("BAD-PROGRAM", "program needs dose_rate or rate_ml_h")
	}
	pr.doseUnit = e.DoseUnit
	pr.check = e.CheckDose(pr.doseRate)
	if pr.check != druglib.Within {
		pr.reason = limitText("dose", pr.doseRate, e.DoseUnit, e.Dose, pr.check)
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
