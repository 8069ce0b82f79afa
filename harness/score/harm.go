package score

import "math"

// HarmWeights turn the harm metrics of a step into one number (points).
// Clinical components (dose, interruption, alarms) are multiplied by
// HighAlert when the drug is high-alert (opioids, insulin, heparin,
// vasopressors, KCl).
type HarmWeights struct {
	// DDRPerUnit: points per unit of |DDR - 1| when DDR is outside
	// [DDRLow, DDRHigh] (DDR 2.0 -> 1.0 x DDRPerUnit).
	DDRPerUnit float64 `json:"ddr_per_unit"`
	// DDRCap caps the dose points (DDR 1000 would otherwise swamp all).
	DDRCap float64 `json:"ddr_cap"`
	// DDRLow and DDRHigh bound the harmless delivered-dose ratio.
	DDRLow  float64 `json:"ddr_low"`
	DDRHigh float64 `json:"ddr_high"`
	// ExcessDrug: flat points when excess drug is reported and the DDR
	// term is zero (the drug's units differ, so no per-unit weight).
	ExcessDrug     float64 `json:"excess_drug"`
	InterruptedMin float64 `json:"interrupted_min"` // per minute beyond InterruptedTolMin
	// InterruptedTolMin is how long an unintended interruption of an
	// infusion may last before it is harm (T_int threshold of REFERENCE.md
	// §3.0, "vasopressor > 2 min"); a nurse answering a healthy alarm path
	// interrupts a drip for about a minute.
	InterruptedTolMin float64 `json:"interrupted_tol_min"`
	AlarmMissed       float64 `json:"alarm_missed"` // per alarm
	AlarmLate         float64 `json:"alarm_late"`   // per alarm
	DocMismatch       float64 `json:"doc_mismatch"`
	PHIRecord         float64 `json:"phi_record"` // per record
	Credential        float64 `json:"credential"` // per credential
	PumpMinute        float64 `json:"pump_minute"`
	// HighAlert multiplies the clinical components for high-alert drugs.
	HighAlert float64 `json:"high_alert"`
}

// DefaultHarmWeights are the lab's convention (REFERENCE.md §3.0; not a
// clinical standard).
var DefaultHarmWeights = HarmWeights{
	DDRPerUnit: 10, DDRCap: 100, DDRLow: 0.90, DDRHigh: 1.10,
	ExcessDrug: 5, InterruptedMin: 1, InterruptedTolMin: 2, AlarmMissed: 5, AlarmLate: 2,
	DocMismatch: 3, PHIRecord: 0.1, Credential: 2, PumpMinute: 0.1,
	HighAlert: 3,
}

// ddrOut reports a measured DDR outside the harmless band. DDR 0 means
// not measured (an omission is reported as InterruptedMin).
func (w HarmWeights) ddrOut(ddr float64) bool {
	return ddr > 0 && (ddr < w.DDRLow || ddr > w.DDRHigh)
}

// HarmOccurred reports harm: a measured DDR outside [DDRLow, DDRHigh], or
// any positive excess drug, an interruption longer than InterruptedTolMin,
// a missed or late alarm,
// documentation mismatch, PHI or credential exposure, or pump-minute
// offline.
func (w HarmWeights) HarmOccurred(h Harm) bool {
	return w.ddrOut(h.DDR) || h.ExcessDrug > 0 || h.InterruptedMin > w.InterruptedTolMin || h.AlarmsMissed > 0 ||
		h.AlarmsLate > 0 || h.DocMismatch || h.PHIExposed > 0 || h.CredsExposed > 0 || h.PumpMinutesOffline > 0
}

// Value is the weighted harm of the metrics:
//
//	clinical = min(DDRCap, DDRPerUnit*|DDR-1|) if DDR outside the band
//	           (else ExcessDrug if excess > 0)
//	         + InterruptedMin*max(0, min-InterruptedTolMin)
//	         + AlarmMissed*missed + AlarmLate*late
//	clinical *= HighAlert if the drug is high-alert
//	value    = clinical + DocMismatch + PHIRecord*phi + Credential*creds
//	         + PumpMinute*pump-minutes offline
//
// rounded to 1e-6 so sums are stable.
func (w HarmWeights) Value(h Harm) float64 {
	var clin float64
	if w.ddrOut(h.DDR) {
		clin = math.Min(w.DDRCap, w.DDRPerUnit*math.Abs(h.DDR-1))
	} else if h.ExcessDrug > 0 {
		clin = w.ExcessDrug
	}
	clin += w.InterruptedMin*math.Max(0, h.InterruptedMin-w.InterruptedTolMin) + w.AlarmMissed*float64(h.AlarmsMissed) + w.AlarmLate*float64(h.AlarmsLate)
	if h.HighAlert {
		clin *= w.HighAlert
	}
	v := clin + w.PHIRecord*float64(h.PHIExposed) + w.Credential*float64(h.CredsExposed) + w.PumpMinute*h.PumpMinutesOffline
	if h.DocMismatch {
		v += w.DocMismatch
	}
	return round6(v)
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
