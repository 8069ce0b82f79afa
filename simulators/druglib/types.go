// Package druglib is the drug library of the lab: versioned bundles of care
// areas and drug entries with soft and hard dose limits (the data behind a
// pump's dose error reduction system, DERS), an approval workflow, and HTTP
// distribution to the pump server.
package druglib

import (
	"fmt"
	"strings"
)

// Library is one drug-library bundle.
type Library struct {
	Version    string     `json:"version" yaml:"version"`
	CreatedBy  string     `json:"created_by" yaml:"created_by"`
	ApprovedBy string     `json:"approved_by,omitempty" yaml:"approved_by,omitempty"`
	CareAreas  []CareArea `json:"care_areas" yaml:"care_areas"`
	Entries    []Entry    `json:"entries" yaml:"entries"`
}

// CareArea is a DERS profile (Adult ICU, Med-Surg, ...).
type CareArea struct {
	Name         string  `json:"name" yaml:"name"`
	MaxRateMLH   float64 `json:"max_rate_ml_h" yaml:"max_rate_ml_h"`
	CallbackMin  float64 `json:"callback_min" yaml:"callback_min"` // paused-too-long alarm after this many minutes
	KVORateMLH   float64 `json:"kvo_rate_ml_h" yaml:"kvo_rate_ml_h"`
	WeightMinKg  float64 `json:"weight_min_kg" yaml:"weight_min_kg"`
	WeightMaxKg  float64 `json:"weight_max_kg" yaml:"weight_max_kg"`
	BasicAllowed bool    `json:"basic_infusion_allowed" yaml:"basic_infusion_allowed"`
}

// Limits are the dose limits of an entry, in the entry's DoseUnit. A zero
// limit is not set.
type Limits struct {
	SoftMin float64 `json:"soft_min,omitempty" yaml:"soft_min,omitempty"`
	SoftMax float64 `json:"soft_max,omitempty" yaml:"soft_max,omitempty"`
	HardMin float64 `json:"hard_min,omitempty" yaml:"hard_min,omitempty"`
	HardMax float64 `json:"hard_max,omitempty" yaml:"hard_max,omitempty"`
}

// PCALimits are the patient-controlled analgesia limits of an entry.
type PCALimits struct {
	DoseSoftMin    float64 `json:"dose_soft_min" yaml:"dose_soft_min"` // per demand, in the amount unit
	DoseSoftMax    float64 `json:"dose_soft_max" yaml:"dose_soft_max"`
	DoseHardMax    float64 `json:"dose_hard_max" yaml:"dose_hard_max"`
	LockoutSoftMin float64 `json:"lockout_soft_min" yaml:"lockout_soft_min"` // minutes
	LockoutSoftMax float64 `json:"lockout_soft_max" yaml:"lockout_soft_max"`
	LockoutHardMin float64 `json:"lockout_hard_min" yaml:"lockout_hard_min"`
	HourLimitMax   float64 `json:"hour_limit_max" yaml:"hour_limit_max"` // amount per hour
	FourHourMax    float64 `json:"four_hour_max,omitempty" yaml:"four_hour_max,omitempty"`
}

// Entry is one drug (at one concentration) in the library.
type Entry struct {
	ID        string   `json:"id" yaml:"id"`                           // give code matched against RXG-4
	Codes     []string `json:"codes,omitempty" yaml:"codes,omitempty"` // other codes (NDC) that match
	Name      string   `json:"name" yaml:"name"`
	CareAreas []string `json:"care_areas,omitempty" yaml:"care_areas,omitempty"` // empty: every care area
	Channels  []string `json:"channels" yaml:"channels"`                         // lvp, syringe, pca
	HighAlert bool     `json:"high_alert" yaml:"high_alert"`
	// Concentration: AmountPerVolume AmountUnit in VolumeML mL. Zero for basic
	// fluids (dose unit mL/h).
	Amount     float64    `json:"amount,omitempty" yaml:"amount,omitempty"`
	AmountUnit string     `json:"amount_unit,omitempty" yaml:"amount_unit,omitempty"` // one of AmountUnits: mcg, mg, g, units, mEq
	VolumeML   float64    `json:"volume_ml,omitempty" yaml:"volume_ml,omitempty"`
	DoseUnit   string     `json:"dose_unit" yaml:"dose_unit"` // one of DoseUnits: mL/h, mg/h, mcg/kg/min, units/h, milliunits/min, mEq/h, ...
	Dose       Limits     `json:"dose" yaml:"dose"`
	PCA        *PCALimits `json:"pca,omitempty" yaml:"pca,omitempty"`
	Advisory   string     `json:"advisory,omitempty" yaml:"advisory,omitempty"`
}

// Concentration returns the amount per mL (0 for basic fluids).
func (e *Entry) Concentration() float64 {
	if e.VolumeML <= 0 {
		return 0
	}
	return e.Amount / e.VolumeML
}

// WeightBased reports whether the dose unit is per kg.
func (e *Entry) WeightBased() bool { return strings.Contains(e.DoseUnit, "/kg/") }

// Lookup finds the entry for a give code (ID or any of Codes, case-insensitive)
// usable in care area (empty: any).
func (l *Library) Lookup(code, careArea string) (*Entry, bool) {
	for i := range l.Entries {
		e := &l.Entries[i]
		if !strings.EqualFold(e.ID, code) && !containsFold(e.Codes, code) {
			continue
		}
		if careArea != "" && len(e.CareAreas) > 0 && !containsFold(e.CareAreas, careArea) {
			continue
		}
		return e, true
	}
	return nil, false
}

// CareArea returns the named care area.
func (l *Library) CareArea(name string) (*CareArea, bool) {
	for i := range l.CareAreas {
		if strings.EqualFold(l.CareAreas[i].Name, name) {
			return &l.CareAreas[i], true
		}
	}
	return nil, false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Check is the outcome of a DERS limit check.
type Check int

// Limit check outcomes, in increasing severity.
const (
	Within Check = iota
	SoftLow
	SoftHigh
	HardLow
	HardHigh
)

func (c Check) String() string {
	return [...]string{"within", "soft-low", "soft-high", "hard-low", "hard-high"}[c]
}

// Hard reports whether the check refuses the program.
func (c Check) Hard() bool { return c == HardLow || c == HardHigh }

// Soft reports whether the check needs an override with a reason.
func (c Check) Soft() bool { return c == SoftLow || c == SoftHigh }

// Code is the reason code used in acks and ERR segments.
func (c Check) Code() string {
	return [...]string{"", "LIB-SOFTMIN", "LIB-SOFTMAX", "LIB-HARDMIN", "LIB-HARDMAX"}[c]
}

// CheckValue checks v against l.
func (l Limits) CheckValue(v float64) Check {
	switch {
	case l.HardMax > 0 && v > l.HardMax:
		return HardHigh
	case l.HardMin > 0 && v < l.HardMin:
		return HardLow
	case l.SoftMax > 0 && v > l.SoftMax:
		return SoftHigh
	case l.SoftMin > 0 && v < l.SoftMin:
		return SoftLow
	}
	return Within
}

// CheckDose checks a continuous dose (in the entry's DoseUnit).
func (e *Entry) CheckDose(dose float64) Check { return e.Dose.CheckValue(dose) }

// RateMLH converts a dose in the entry's DoseUnit to mL/h for a patient of
// weightKg (REFERENCE.md §5.4): mL/h = dose x (weight if per kg) x (60 if per
// minute) / concentration, with mcg/mg conversion when the dose and amount
// units differ.
func (e *Entry) RateMLH(dose, weightKg float64) (float64, error) {
	return DoseToRate(dose, e.DoseUnit, e.Concentration(), e.AmountUnit, weightKg)
}

// DoseToRate converts dose in doseUnit to mL/h, given concentration conc
// (amountUnit per mL) and weight. doseUnit "mL/h" returns dose itself.
func DoseToRate(dose float64, doseUnit string, conc float64, amountUnit string, weightKg float64) (float64, error) {
	if doseUnit == "mL/h" || doseUnit == "" {
		return dose, nil
	}
	parts := strings.Split(doseUnit, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("druglib: dose unit %q not understood", doseUnit)
	}
	amt, per := parts[0], parts[len(parts)-1]
	v := dose
	if len(parts) == 3 {
		if parts[1] != "kg" {
			return 0, fmt.Errorf("druglib: dose unit %q not understood", doseUnit)
		}
		if weightKg <= 0 {
			return 0, fmt.Errorf("druglib: dose unit %q needs a patient weight", doseUnit)
		}
		v *= weightKg
	}
	switch per {
	case "min":
		v *= 60
	case "h":
	default:
		return 0, fmt.Errorf("druglib: dose unit %q: time unit %q not understood", doseUnit, per)
	}
	f, err := unitFactor(amt, amountUnit)
	if err != nil {
		return 0, fmt.Errorf("druglib: dose unit %q: %w", doseUnit, err)
	}
	if conc <= 0 {
		return 0, fmt.Errorf("druglib: dose unit %q needs a concentration", doseUnit)
	}
	return v * f / conc, nil
}

// unitFactor converts an amount in unit from into unit to.
func unitFactor(from, to string) (float64, error) {
	if strings.EqualFold(from, to) {
		return 1, nil
	}
	for _, scale := range []map[string]float64{
		{"mcg": 1e-6, "mg": 1e-3, "g": 1},
		{"milliunits": 1e-3, "units": 1},
	} {
		a, ok1 := scale[from]
		b, ok2 := scale[to]
		if ok1 && ok2 {
			return a / b, nil
		}
	}
	return 0, fmt.Errorf("cannot convert %s to %s", from, to)
}
