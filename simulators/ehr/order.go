package ehr

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pumplab/pumplab/simulators/hl7"
)

// Order controls (ORC-1) of the pharmacy messages.
const (
	ControlNew         = "NW" // new order (OMP^O09, RDE^O11)
	ControlDiscontinue = "DC" // discontinue (RDE^O11 to the eMAR)
)

// Device types (RXR-3, HL7 table 0164), as in PCD-03.
const (
	DeviceLVP     = hl7.DeviceLVP     // large-volume pump
	DevicePCA     = hl7.DevicePCA     // PCA pump
	DeviceSyringe = hl7.DeviceSyringe // syringe pump
)

// DefaultGiveSystem is the coding system of give codes (RXO-1.3, RXE-2.3,
// RXG-4.3): the hospital formulary shared by the EHR, the eMAR and the drug
// library.
const DefaultGiveSystem = "HOSPFORM"

// Order is an infusion order as CPOE enters it and as it travels in
// OMP^O09 (CPOE -> pharmacy) and RDE^O11 (pharmacy -> eMAR). See BuildOMP
// for the field layout.
type Order struct {
	// PlacerID is ORC-2.1, the order number; Order generates ORD-000001,
	// ORD-000002, ... when it is empty.
	PlacerID string
	// PlacerApp is ORC-2.2, the application that placed the order (the
	// EHR's App, e.g. EHR_SIM).
	PlacerApp string
	// FillerID is ORC-3.1, the pharmacy's number, assigned on verification
	// (RX-000001, ...).
	FillerID string
	// Control is ORC-1: NW (default) or DC.
	Control string
	MRN     string // PID-3.1

	DrugCode   string // give code, e.g. NOREPI-4-250 (RXO-1.1 / RXE-2.1)
	DrugText   string // e.g. Norepinephrine 4 mg/250 mL
	GiveSystem string // default HOSPFORM

	DoseRate float64 // ordered dose rate, e.g. 0.05 (RXO-2 / RXE-3)
	DoseUnit string  // e.g. mcg/kg/min, mL/h (RXO-4 / RXE-5)
	RateMLH  float64 // ordered pump rate in mL/h (RXO-21 / RXE-23)

	DrugAmount float64 // drug in the container, e.g. 4 (RXC A)
	DrugUnit   string  // e.g. mg
	DiluentML  float64 // container volume, e.g. 250 (RXC B)
	VTBI       float64 // volume to be infused in mL (RXO-11 / RXE-10)

	Route  string // RXR-1.2, default IV
	Device string // RXR-3.2: IVP (default), PCA, SYR

	Prescriber string // ORC-12.1, e.g. MD0007
	Verifier   string // RXE-14.1, the verifying pharmacist (RDE only)

	OrderedAt time.Time // ORC-9
	WeightKg  float64   // OBX body weight at ordering/verification (LOINC 29463-7)

	PCA *PCA // PCA programming parameters (Device PCA)
}

// PCA are the patient-controlled analgesia parameters of an order. They
// travel as OBX rows with the PCD-03 MDC codes (REFERENCE.md §4.3).
type PCA struct {
	// DemandDose is the dose per patient demand (OBX
	// 0^MDC_DOSE_PCA_PATIENT, code pending in IEEE 11073), in DemandUnit.
	DemandDose float64
	DemandUnit string // e.g. mg
	// LockoutMin is the lockout between demands (157989 MDC_TIME_PCA_LOCKOUT).
	LockoutMin float64
	// MaxDosesPerHour (157988 MDC_RATE_PCA_MAX_DOSES_PER_HOUR).
	MaxDosesPerHour float64
	// DoseLimit is the amount allowed per LimitPeriodMin (157985
	// MDC_DOSE_PCA_LIMIT), in DemandUnit.
	DoseLimit float64
	// LimitPeriodMin is the period of DoseLimit (157987
	// MDC_TIME_PD_PCA_DOSE_LIMIT), 60 when DoseLimit is set and this is 0.
	LimitPeriodMin float64
}

// WeightBased reports whether the dose unit is per kilogram (mcg/kg/min...).
func (o Order) WeightBased() bool { return strings.Contains(o.DoseUnit, "/kg") }

// Concentration returns DrugAmount/DiluentML (0 when either is missing).
func (o Order) Concentration() float64 {
	if o.DrugAmount == 0 || o.DiluentML == 0 {
		return 0
	}
	return o.DrugAmount / o.DiluentML
}

// MDC codes of the PCA rows (the per-demand dose code is pending in IEEE
// 11073-10101 and is matched by reference ID).
var (
	MDCPCAPatientDose = hl7.Code{Code: 0, Ref: "MDC_DOSE_PCA_PATIENT"}
)

// Applications of the pharmacy messages (MSH-3/5 and ORC-2.2/ORC-3.2).
const (
	PharmacyApp      = "PHARM_SIM"
	PharmacyFacility = "HOSP_PHARM"
)

func (o Order) pharmacyOrder(h hl7.Header, p hl7.Patient) hl7.PharmacyOrder {
	sys := o.GiveSystem
	if sys == "" {
		sys = DefaultGiveSystem
	}
	route := o.Route
	if route == "" {
		route = "IV"
	}
	ctl := o.Control
	if ctl == "" {
		ctl = ControlNew
	}
	return hl7.PharmacyOrder{
		Header:           h,
		Patient:          p,
		OrderControl:     ctl,
		PlacerOrder:      o.PlacerID,
		PlacerApp:        o.PlacerApp,
		FillerOrder:      o.FillerID,
		FillerApp:        fillerApp(o.FillerID),
		OrderTime:        o.OrderedAt,
		OrderingProvider: hl7.Person{ID: o.Prescriber},
		Verifier:         hl7.Person{ID: o.Verifier},
		GiveCode:         o.DrugCode,
		GiveText:         o.DrugText,
		GiveSystem:       sys,
		Dose:             o.DoseRate,
		DoseUnit:         o.DoseUnit,
		DrugAmount:       o.DrugAmount,
		DrugAmountUnit:   o.DrugUnit,
		DiluentVolume:    o.DiluentML,
		Route:            route,
		WeightKg:         o.WeightKg,
	}
}

func fillerApp(filler string) string {
	if filler == "" {
		return ""
	}
	return PharmacyApp
}

// BuildOMP encodes o as the CPOE order OMP^O09^OMP_O09 with header h
// (MSH-9 is set here) and patient p (PID, PV1). Layout, on top of
// hl7.BuildOMP:
//
//	ORC-1 NW, ORC-2 placer^app, ORC-9 ordered at, ORC-12 prescriber
//	RXO-1 give code^text^HOSPFORM, RXO-2 dose rate, RXO-4 dose unit (UCUM)
//	RXO-11/12 VTBI^mL, RXO-21/22 pump rate^mL/h
//	RXR-1 ^route^HL70162, RXR-3 ^device^HL70164
//	RXC B diluent volume, RXC A drug amount
//	OBX body weight (LOINC 29463-7), OBX PCA rows (MDC codes of PCD-03)
func BuildOMP(h hl7.Header, p hl7.Patient, o Order) *hl7.Message {
	h.Type = hl7.MessageType{Code: "OMP", Trigger: "O09", Structure: "OMP_O09"}
	m := hl7.BuildOMP(o.pharmacyOrder(h, p))
	if rx := m.Segment("RXO"); rx != nil {
		rx.SetField(11, optNum(o.VTBI))
		rx.SetField(12, unitIf(o.VTBI, "mL"))
		rx.SetField(21, optNum(o.RateMLH))
		rx.SetField(22, unitIf(o.RateMLH, "mL/h"))
	}
	finishOrder(m, o)
	return m
}

// BuildRDE encodes o as the verified order RDE^O11^RDE_O11 sent by the
// pharmacy to the eMAR. Same layout as BuildOMP with RXE instead of RXO:
//
//	ORC-3 filler^PHARM_SIM
//	RXE-2 give code, RXE-3 dose rate, RXE-5 dose unit,
//	RXE-10/11 VTBI^mL, RXE-14 verifier, RXE-23/24 pump rate^mL/h
func BuildRDE(h hl7.Header, p hl7.Patient, o Order) *hl7.Message {
	h.Type = hl7.MessageType{Code: "RDE", Trigger: "O11", Structure: "RDE_O11"}
	m := hl7.BuildRDE(o.pharmacyOrder(h, p))
	if rx := m.Segment("RXE"); rx != nil {
		rx.SetField(10, optNum(o.VTBI))
		rx.SetField(11, unitIf(o.VTBI, "mL"))
		rx.SetField(23, optNum(o.RateMLH))
		rx.SetField(24, unitIf(o.RateMLH, "mL/h"))
	}
	finishOrder(m, o)
	return m
}

// finishOrder adds RXR-3 (device) and the PCA rows.
func finishOrder(m *hl7.Message, o Order) {
	dev := o.Device
	if dev == "" {
		dev = DeviceLVP
	}
	if rxr := m.Segment("RXR"); rxr != nil {
		rxr.SetField(3, hl7.C("", dev, "HL70164"))
	}
	if o.PCA == nil {
		return
	}
	n := len(m.Segments("OBX"))
	add := func(c hl7.Code, v float64, unit string) {
		if v == 0 {
			return
		}
		n++
		m.Add(hl7.NewSegment("OBX", hl7.F(strconv.Itoa(n)), hl7.F("NM"), c.Field(), nil,
			hl7.F(num(v)), hl7.UnitField(unit), nil, nil, nil, nil, hl7.F("F")))
	}
	p := o.PCA
	period := p.LimitPeriodMin
	if period == 0 && p.DoseLimit != 0 {
		period = 60
	}
	add(MDCPCAPatientDose, p.DemandDose, p.DemandUnit)
	add(hl7.MDCPCALockout, p.LockoutMin, "min")
	add(hl7.MDCPCAMaxDoses, p.MaxDosesPerHour, "")
	add(hl7.MDCPCADoseLimit, p.DoseLimit, p.DemandUnit)
	add(hl7.MDCPCALimitPeriod, period, "min")
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func optNum(v float64) hl7.Field {
	if v == 0 {
		return nil
	}
	return hl7.F(num(v))
}

func unitIf(v float64, unit string) hl7.Field {
	if v == 0 {
		return nil
	}
	return hl7.UnitUCUMField(unit)
}

// ParseOrder reads an OMP^O09 or RDE^O11 written by BuildOMP/BuildRDE (or
// any sender following the same layout) and returns the order and the
// patient. Required: ORC-2, the give code, ORC-3 for RDE. Numbers must be
// HL7 NM values; errors are *hl7.ParseError naming the segment and field.
func ParseOrder(m *hl7.Message) (Order, hl7.Patient, error) {
	var o Order
	if m == nil {
		return o, hl7.Patient{}, fmt.Errorf("ehr: parse order: nil message")
	}
	var po hl7.PharmacyOrder
	var err error
	var rxName string
	var vtbiF, rateF int
	switch t := m.Type(); {
	case t.Is("OMP", "O09"):
		po, err = hl7.ParseOMP(m)
		rxName, vtbiF, rateF = "RXO", 11, 21
	case t.Is("RDE", "O11"):
		po, err = hl7.ParseRDE(m)
		rxName, vtbiF, rateF = "RXE", 10, 23
	default:
		return o, hl7.Patient{}, &hl7.ParseError{Segment: "MSH", Index: 1, Field: 9, Code: hl7.ErrCodeUnsupportedType,
			Msg: fmt.Sprintf("message type %s, want OMP^O09 or RDE^O11", t)}
	}
	if err != nil {
		return o, po.Patient, err
	}
	o = Order{
		PlacerID:   po.PlacerOrder,
		PlacerApp:  po.PlacerApp,
		FillerID:   po.FillerOrder,
		Control:    po.OrderControl,
		MRN:        po.Patient.MRN,
		DrugCode:   po.GiveCode,
		DrugText:   po.GiveText,
		GiveSystem: po.GiveSystem,
		DoseRate:   po.Dose,
		DoseUnit:   po.DoseUnit,
		DrugAmount: po.DrugAmount,
		DrugUnit:   po.DrugAmountUnit,
		DiluentML:  po.DiluentVolume,
		Route:      po.Route,
		Prescriber: po.OrderingProvider.ID,
		Verifier:   po.Verifier.ID,
		OrderedAt:  po.OrderTime,
		WeightKg:   po.WeightKg,
	}
	rx := m.Segment(rxName)
	idx := segIndex(m, rx)
	if o.VTBI, err = nmField(rx, idx, vtbiF); err != nil {
		return o, po.Patient, err
	}
	if o.RateMLH, err = nmField(rx, idx, rateF); err != nil {
		return o, po.Patient, err
	}
	if rxr := m.Segment("RXR"); rxr != nil {
		o.Device = rxr.Comp(3, 2)
	}
	var pca PCA
	for _, s := range m.Segments("OBX") {
		id := s.Field(3)
		var dst *float64
		switch {
		case MDCPCAPatientDose.Matches(id):
			dst = &pca.DemandDose
			pca.DemandUnit = hl7.UnitOf(s.Field(6))
		case hl7.MDCPCALockout.Matches(id):
			dst = &pca.LockoutMin
		case hl7.MDCPCAMaxDoses.Matches(id):
			dst = &pca.MaxDosesPerHour
		case hl7.MDCPCADoseLimit.Matches(id):
			dst = &pca.DoseLimit
			if pca.DemandUnit == "" {
				pca.DemandUnit = hl7.UnitOf(s.Field(6))
			}
		case hl7.MDCPCALimitPeriod.Matches(id):
			dst = &pca.LimitPeriodMin
		default:
			continue
		}
		v, err := nmField(s, segIndex(m, s), 5)
		if err != nil {
			return o, po.Patient, err
		}
		*dst = v
	}
	if pca != (PCA{}) {
		o.PCA = &pca
	}
	return o, po.Patient, nil
}

// nmField reads field f of s as an optional HL7 NM value.
func nmField(s *hl7.Segment, idx, f int) (float64, error) {
	v := strings.TrimSpace(s.Value(f))
	if v == "" {
		return 0, nil
	}
	if !isNM(v) {
		return 0, &hl7.ParseError{Segment: s.Name, Index: idx, Field: f, Code: hl7.ErrCodeDataType,
			Msg: fmt.Sprintf("not a number: %q", clip(v))}
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, &hl7.ParseError{Segment: s.Name, Index: idx, Field: f, Code: hl7.ErrCodeDataType,
			Msg: fmt.Sprintf("not a number: %q", clip(v))}
	}
	return x, nil
}

// isNM accepts [+-]digits[.digits] (HL7 NM): no exponent, NaN or Inf.
func isNM(s string) bool {
	i, digits, dot := 0, false, false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		i++
	}
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func segIndex(m *hl7.Message, s *hl7.Segment) int {
	for i, x := range m.Segs {
		if x == s {
			return i + 1
		}
	}
	return 0
}
