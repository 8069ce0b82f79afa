package hl7

import (
	"strconv"
	"time"
)

// Order control codes (ORC-1) used by PCD-03.
const (
	OrderNew    = "RE" // start of a new bag/container
	OrderChange = "XO" // change of dose/rate on a running infusion
	OrderBolus  = "CH" // bolus from an existing infusion (2019 CP)
)

// Device types of RXR-3 (HL7 table 0164).
const (
	DeviceLVP     = "IVP"
	DevicePCA     = "PCA"
	DeviceSyringe = "SYR"
)

// RGV is a PCD-03 Communicate Infusion Order (RGV^O15^RGV_O15) from the IOP
// (BCMA) to the IOC (pump server), REFERENCE.md §4.3 and §4.8(a). Numeric
// fields that are optional are omitted when 0. Only the first
// ORC/RXG/RXR/OBX group of a message is read.
type RGV struct {
	Header  Header
	Patient Patient

	OrderControl string    // ORC-1: RE, XO (CH)
	PlacerOrder  string    // ORC-2.1 (required)
	PlacerApp    string    // ORC-2.2, e.g. BCMA_SIM
	TxnTime      time.Time // ORC-9
	Nurse        Person    // ORC-19 action by

	Duration time.Duration // TQ1-13 occurrence duration (dose over time); 0 = no TQ1

	GiveSubID                      string  // RXG-1, default "1"
	GiveCode, GiveText, GiveSystem string  // RXG-4 (e.g. NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM)
	VTBI                           float64 // RXG-5, empty for XO
	VTBIUnit                       string  // RXG-7, default mL when VTBI is set
	DoseRate                       float64 // RXG-15 rate / dose rate (required)
	DoseRateUnit                   string  // RXG-16, e.g. mL/h, mcg/kg/min
	DrugAmount                     float64 // RXG-17
	DrugAmountUnit                 string  // RXG-18, e.g. mg
	DiluentVolume                  float64 // RXG-23
	DiluentUnit                    string  // RXG-24, default mL when DiluentVolume is set

	Route  string // RXR-1.2, e.g. IV (HL70162)
	Device string // RXR-3.2: IVP, PCA, SYR (HL70164)
	Method string // RXR-4.2: IV primary, IVPB piggyback (HL70165)

	PumpID        string // OBX-18 of the 69986 pump row (written ^^PumpID^PumpAuthority)
	PumpAuthority string // OBX-18.4, e.g. HOSP

	WeightKg         float64 // OBX 68063 (kg)
	HeightCm         float64 // OBX 68060 (cm)
	BSA              float64 // OBX 188744 (m2)
	ContainerStartML float64 // OBX 157994
	PCA              *PCAParams
}

// PCAParams are the PCA programming parameters of PCD-03 (OBX 157985-157989).
type PCAParams struct {
	DoseLimit       float64 // 157985 MDC_DOSE_PCA_LIMIT
	DoseLimitUnit   string  // e.g. mg
	VolumeLimitML   float64 // 157986 MDC_VOL_PCA_DOSE_LIMIT
	LimitPeriodMin  float64 // 157987 MDC_TIME_PD_PCA_DOSE_LIMIT
	MaxDosesPerHour float64 // 157988 MDC_RATE_PCA_MAX_DOSES_PER_HOUR
	LockoutMin      float64 // 157989 MDC_TIME_PCA_LOCKOUT
}

// Concentration returns DrugAmount/DiluentVolume (0 when either is missing).
func (r RGV) Concentration() float64 {
	if r.DrugAmount == 0 || r.DiluentVolume == 0 {
		return 0
	}
	return r.DrugAmount / r.DiluentVolume
}

// BuildRGV encodes r as RGV^O15^RGV_O15 with the PCD-03 profile.
func BuildRGV(r RGV) *Message {
	m := NewMessage(r.Header.msh(MessageType{"RGV", "O15", "RGV_O15"}, ProfilePCD03))
	m.Add(r.Patient.segments()...)
	m.Add(NewSegment("ORC", F(r.OrderControl), C(r.PlacerOrder, r.PlacerApp),
		nil, nil, nil, nil, nil, nil, F(FormatTime(r.TxnTime)),
		nil, nil, nil, nil, nil, nil, nil, nil, nil, r.Nurse.field()))
	if r.Duration > 0 {
		mins := r.Duration.Minutes()
		m.Add(NewSegment("TQ1", F("1"), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
			Field{{{num(mins)}, {strconv.Itoa(MDCUnitMin.Code), MDCUnitMin.Ref, "MDC"}}}))
	}
	sub := r.GiveSubID
	if sub == "" {
		sub = "1"
	}
	vtbiUnit := r.VTBIUnit
	if vtbiUnit == "" && r.VTBI != 0 {
		vtbiUnit = "mL"
	}
	dilUnit := r.DiluentUnit
	if dilUnit == "" && r.DiluentVolume != 0 {
		dilUnit = "mL"
	}
	rxg := NewSegment("RXG", F(sub), nil, nil, C(r.GiveCode, r.GiveText, r.GiveSystem))
	rxg.SetField(5, optNum(r.VTBI))
	rxg.SetField(7, UnitField(vtbiUnit))
	rxg.SetField(15, F(num(r.DoseRate)))
	rxg.SetField(16, UnitField(r.DoseRateUnit))
	rxg.SetField(17, optNum(r.DrugAmount))
	rxg.SetField(18, UnitField(r.DrugAmountUnit))
	rxg.SetField(23, optNum(r.DiluentVolume))
	rxg.SetField(24, UnitField(dilUnit))
	m.Add(rxg)
	if r.Route != "" || r.Device != "" || r.Method != "" {
		m.Add(NewSegment("RXR", codedIf(r.Route, "HL70162"), nil, codedIf(r.Device, "HL70164"), codedIf(r.Method, "HL70165")))
	}
	rows := []obx{{id: MDCPumpVMD.Field(), equip: C("", "", r.PumpID, r.PumpAuthority)}}
	rows = nmRow(rows, MDCPatWeight, "", r.WeightKg, "kg", "")
	rows = nmRow(rows, MDCPatHeight, "", r.HeightCm, "cm", "")
	rows = nmRow(rows, MDCPatBSA, "", r.BSA, "m2", "")
	rows = nmRow(rows, MDCVolContainer, "", r.ContainerStartML, "mL", "")
	if p := r.PCA; p != nil {
		rows = nmRow(rows, MDCPCADoseLimit, "", p.DoseLimit, p.DoseLimitUnit, "")
		rows = nmRow(rows, MDCPCAVolLimit, "", p.VolumeLimitML, "mL", "")
		rows = nmRow(rows, MDCPCALimitPeriod, "", p.LimitPeriodMin, "min", "")
		rows = nmRow(rows, MDCPCAMaxDoses, "", p.MaxDosesPerHour, "", "")
		rows = nmRow(rows, MDCPCALockout, "", p.LockoutMin, "min", "")
	}
	m.Add(obxSegments(rows)...)
	return m
}

// MDCUnitMin is the minute unit code used in TQ1-13.
var MDCUnitMin = Code{264352, "MDC_DIM_MIN"}

func codedIf(v, table string) Field {
	if v == "" {
		return nil
	}
	return C("", v, table)
}

// ParseRGV reads a PCD-03 order. It checks what an IOC must: MSH-9
// RGV^O15, PID, ORC with ORC-1 RE/XO/CH and ORC-2, RXG with RXG-4 and a
// numeric RXG-15, numeric optional quantities, exactly one pump-ID OBX
// (69986) with OBX-18. Errors are *ParseError with the table 0357 code.
func ParseRGV(m *Message) (RGV, error) {
	var r RGV
	if err := requireType(m, "RGV", "O15"); err != nil {
		return r, err
	}
	h, err := ParseHeader(m)
	if err != nil {
		return r, err
	}
	r.Header = h
	if _, _, err := requireSeg(m, "PID"); err != nil {
		return r, err
	}
	r.Patient = patientOf(m)
	orc, orcIdx, err := requireSeg(m, "ORC")
	if err != nil {
		return r, err
	}
	var fr fieldReader
	r.OrderControl = fr.req(orc, orcIdx, 1, orc.Value(1), "order control")
	switch r.OrderControl {
	case "", OrderNew, OrderChange, OrderBolus:
	default:
		fr.fail(perr("ORC", orcIdx, 1, ErrCodeTableValue, "unknown order control %q", clip(r.OrderControl)))
	}
	r.PlacerOrder = fr.req(orc, orcIdx, 2, orc.Comp(2, 1), "placer order number")
	r.PlacerApp = orc.Comp(2, 2)
	r.TxnTime = fr.time(orc, orcIdx, 9, orc.Value(9))
	r.Nurse = personOf(orc.Field(19))
	if err := fr.result(); err != nil {
		return r, err
	}

	// The order group: segments after ORC up to the next ORC.
	var group []*Segment
	for _, s := range m.Segs[orcIdx:] {
		if s.Name == "ORC" {
			break
		}
		group = append(group, s)
	}
	// pos is the 1-based position in m of group[j].
	pos := func(j int) int { return orcIdx + j + 1 }
	var rxg, rxr, tq1 *Segment
	var gi, ti int
	var pumpRows []int
	for j, s := range group {
		switch s.Name {
		case "RXG":
			if rxg == nil {
				rxg, gi = s, pos(j)
			}
		case "RXR":
			if rxr == nil {
				rxr = s
			}
		case "TQ1":
			if tq1 == nil {
				tq1, ti = s, pos(j)
			}
		}
	}
	if rxg == nil {
		return r, perr("RXG", 0, 0, ErrCodeSegmentSequence, "missing RXG segment after ORC")
	}
	if tq1 != nil {
		q := tq1.Field(13)
		v := fr.num(tq1, ti, 13, q.Comp(1))
		unit := q.At(1, 2, 2)
		if unit == "" {
			unit = q.At(1, 2, 1)
		}
		if u, ok := LookupUnit(unit); ok {
			unit = u.Lab
		}
		r.Duration = time.Duration(toMinutes(v, unit) * float64(time.Minute))
	}
	r.GiveSubID = rxg.Value(1)
	r.GiveCode = fr.req(rxg, gi, 4, rxg.Comp(4, 1), "give code")
	r.GiveText, r.GiveSystem = rxg.Comp(4, 2), rxg.Comp(4, 3)
	r.VTBI = fr.num(rxg, gi, 5, rxg.Value(5))
	r.VTBIUnit = UnitOf(rxg.Field(7))
	r.DoseRate = fr.reqNum(rxg, gi, 15, rxg.Value(15), "give rate/dose (RXG-15)")
	r.DoseRateUnit = UnitOf(rxg.Field(16))
	r.DrugAmount = fr.num(rxg, gi, 17, rxg.Value(17))
	r.DrugAmountUnit = UnitOf(rxg.Field(18))
	r.DiluentVolume = fr.num(rxg, gi, 23, rxg.Value(23))
	r.DiluentUnit = UnitOf(rxg.Field(24))
	if rxr != nil {
		r.Route, r.Device, r.Method = rxr.Comp(1, 2), rxr.Comp(3, 2), rxr.Comp(4, 2)
	}
	var pca PCAParams
	for j, s := range group {
		if s.Name != "OBX" {
			continue
		}
		idx := pos(j)
		id := s.Field(3)
		v := s.Value(5)
		unit := UnitOf(s.Field(6))
		switch {
		case MDCPumpVMD.Matches(id):
			pumpRows = append(pumpRows, idx)
		case MDCPatWeight.Matches(id):
			r.WeightKg = fr.num(s, idx, 5, v)
		case MDCPatHeight.Matches(id):
			r.HeightCm = fr.num(s, idx, 5, v)
		case MDCPatBSA.Matches(id):
			r.BSA = fr.num(s, idx, 5, v)
		case MDCVolContainer.Matches(id):
			r.ContainerStartML = fr.num(s, idx, 5, v)
		case MDCPCADoseLimit.Matches(id):
			pca.DoseLimit, pca.DoseLimitUnit = fr.num(s, idx, 5, v), unit
		case MDCPCAVolLimit.Matches(id):
			pca.VolumeLimitML = fr.num(s, idx, 5, v)
		case MDCPCALimitPeriod.Matches(id):
			pca.LimitPeriodMin = toMinutes(fr.num(s, idx, 5, v), unit)
		case MDCPCAMaxDoses.Matches(id):
			pca.MaxDosesPerHour = fr.num(s, idx, 5, v)
		case MDCPCALockout.Matches(id):
			pca.LockoutMin = toMinutes(fr.num(s, idx, 5, v), unit)
		}
	}
	if pca != (PCAParams{}) {
		r.PCA = &pca
	}
	switch len(pumpRows) {
	case 0:
		fr.fail(perr("OBX", 0, 3, ErrCodeRequiredMissing, "missing pump ID row (69986^MDC_DEV_PUMP_INFUS_VMD)"))
	case 1:
		s := m.Segs[pumpRows[0]-1]
		eq := s.Field(18)
		r.PumpID = equipID(eq)
		if eq.Comp(1) == "" {
			r.PumpAuthority = eq.Comp(4)
		}
		if r.PumpID == "" {
			fr.fail(perr("OBX", pumpRows[0], 18, ErrCodeRequiredMissing, "missing pump ID"))
		}
	default:
		fr.fail(perr("OBX", pumpRows[1], 3, ErrCodeSegmentSequence, "more than one pump ID row"))
	}
	return r, fr.result()
}
