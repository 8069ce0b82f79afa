package hl7

import (
	"time"
)

// PharmacyOrder is a CPOE order (OMP^O09^OMP_O09, to pharmacy) or a
// pharmacy-verified order (RDE^O11^RDE_O11, to eMAR/BCMA). Layout:
// MSH, PID, [PV1], ORC, RXO (OMP) or RXE (RDE), [RXR], RXC B (diluent),
// RXC A (drug), [OBX weight].
//
//	ORC-1 control (NW), ORC-2 placer, ORC-3 filler, ORC-9 time, ORC-12 orderer
//	RXO-1 give code, RXO-2 dose, RXO-4 dose unit          (OMP)
//	RXE-2 give code, RXE-3 dose, RXE-5 dose unit, RXE-14 verifier (RDE)
//	RXC|B|diluent|volume|unit  RXC|A|drug|amount|unit
type PharmacyOrder struct {
	Header  Header
	Patient Patient

	OrderControl           string    // ORC-1, default NW
	PlacerOrder, PlacerApp string    // ORC-2 (required)
	FillerOrder, FillerApp string    // ORC-3 (required for RDE)
	OrderTime              time.Time // ORC-9
	OrderingProvider       Person    // ORC-12
	Verifier               Person    // RXE-14 verifying pharmacist (RDE only)

	GiveCode, GiveText, GiveSystem string  // RXO-1 / RXE-2
	Dose                           float64 // RXO-2 / RXE-3, e.g. 0.05
	DoseUnit                       string  // RXO-4 / RXE-5, e.g. mcg/kg/min

	DrugAmount               float64 // RXC A amount, e.g. 4
	DrugAmountUnit           string  // e.g. mg
	DiluentVolume            float64 // RXC B amount, e.g. 250
	DiluentUnit              string  // default mL
	DiluentCode, DiluentText string  // RXC B component, e.g. NS^Sodium chloride 0.9%
	Route                    string  // RXR-1.2
	WeightKg                 float64 // OBX body weight (LOINC 29463-7)
}

// LOINC codes the EHR uses for body measurements (ADT, orders).
var (
	LOINCWeight = C("29463-7", "Body weight", "LN")
	LOINCHeight = C("8302-2", "Body height", "LN")
)

func (o PharmacyOrder) build(t MessageType, rx *Segment) *Message {
	m := NewMessage(o.Header.msh(t, Profile{}))
	m.Add(o.Patient.segments()...)
	ctl := o.OrderControl
	if ctl == "" {
		ctl = "NW"
	}
	m.Add(NewSegment("ORC", F(ctl), C(o.PlacerOrder, o.PlacerApp), C(o.FillerOrder, o.FillerApp),
		nil, nil, nil, nil, nil, F(FormatTime(o.OrderTime)), nil, nil, o.OrderingProvider.field()))
	m.Add(rx)
	if o.Route != "" {
		m.Add(NewSegment("RXR", codedIf(o.Route, "HL70162")))
	}
	dil := o.DiluentUnit
	if dil == "" && o.DiluentVolume != 0 {
		dil = "mL"
	}
	if o.DiluentVolume != 0 || o.DiluentCode != "" {
		m.Add(NewSegment("RXC", F("B"), C(o.DiluentCode, o.DiluentText), optNum(o.DiluentVolume), UnitUCUMField(dil)))
	}
	if o.DrugAmount != 0 {
		m.Add(NewSegment("RXC", F("A"), C(o.GiveCode, o.GiveText, o.GiveSystem), optNum(o.DrugAmount), UnitUCUMField(o.DrugAmountUnit)))
	}
	if o.WeightKg != 0 {
		m.Add(obx{typ: "NM", id: LOINCWeight, value: F(num(o.WeightKg)), units: UnitUCUMField("kg"), status: "F"}.segment(1))
	}
	return m
}

// BuildOMP encodes o as OMP^O09^OMP_O09 (CPOE order).
func BuildOMP(o PharmacyOrder) *Message {
	rxo := NewSegment("RXO", C(o.GiveCode, o.GiveText, o.GiveSystem), optNum(o.Dose), nil, UnitUCUMField(o.DoseUnit))
	return o.build(MessageType{"OMP", "O09", "OMP_O09"}, rxo)
}

// BuildRDE encodes o as RDE^O11^RDE_O11 (pharmacy-verified order).
func BuildRDE(o PharmacyOrder) *Message {
	rxe := NewSegment("RXE", nil, C(o.GiveCode, o.GiveText, o.GiveSystem), optNum(o.Dose), nil, UnitUCUMField(o.DoseUnit))
	rxe.SetField(14, o.Verifier.field())
	return o.build(MessageType{"RDE", "O11", "RDE_O11"}, rxe)
}

func parseOrder(m *Message, rxName string) (PharmacyOrder, *Segment, *fieldReader, error) {
	var o PharmacyOrder
	var fr fieldReader
	h, err := ParseHeader(m)
	if err != nil {
		return o, nil, &fr, err
	}
	o.Header, o.Patient = h, patientOf(m)
	orc, oi, err := requireSeg(m, "ORC")
	if err != nil {
		return o, nil, &fr, err
	}
	o.OrderControl = orc.Value(1)
	o.PlacerOrder = fr.req(orc, oi, 2, orc.Comp(2, 1), "placer order number")
	o.PlacerApp = orc.Comp(2, 2)
	o.FillerOrder, o.FillerApp = orc.Comp(3, 1), orc.Comp(3, 2)
	o.OrderTime = fr.time(orc, oi, 9, orc.Value(9))
	o.OrderingProvider = personOf(orc.Field(12))
	rx, _, err := requireSeg(m, rxName)
	if err != nil {
		return o, nil, &fr, err
	}
	if rxr := m.Segment("RXR"); rxr != nil {
		o.Route = rxr.Comp(1, 2)
	}
	for ci, c := range named(m, "RXC") {
		switch c.Value(1) {
		case "B":
			o.DiluentCode, o.DiluentText = c.Comp(2, 1), c.Comp(2, 2)
			o.DiluentVolume = fr.num(c, ci, 3, c.Value(3))
			o.DiluentUnit = UnitOf(c.Field(4))
		case "A":
			o.DrugAmount = fr.num(c, ci, 3, c.Value(3))
			o.DrugAmountUnit = UnitOf(c.Field(4))
		}
	}
	o.WeightKg = weightOf(m, &fr)
	return o, rx, &fr, nil
}

// weightOf reads a body weight OBX (LOINC 29463-7 or MDC 68063).
func weightOf(m *Message, fr *fieldReader) float64 {
	for idx, o := range named(m, "OBX") {
		id := o.Field(3)
		if id.Comp(1) == "29463-7" || MDCPatWeight.Matches(id) {
			v := fr.num(o, idx, 5, o.Value(5))
			if UnitOf(o.Field(6)) == "g" {
				v /= 1000
			}
			return v
		}
	}
	return 0
}

// ParseOMP reads a CPOE order (OMP^O09): ORC-2 and RXO-1 are required.
func ParseOMP(m *Message) (PharmacyOrder, error) {
	if err := requireType(m, "OMP", "O09"); err != nil {
		return PharmacyOrder{}, err
	}
	o, rxo, fr, err := parseOrder(m, "RXO")
	if err != nil {
		return o, err
	}
	ri := segIndex(m, rxo)
	o.GiveCode = fr.req(rxo, ri, 1, rxo.Comp(1, 1), "requested give code")
	o.GiveText, o.GiveSystem = rxo.Comp(1, 2), rxo.Comp(1, 3)
	o.Dose = fr.num(rxo, ri, 2, rxo.Value(2))
	o.DoseUnit = UnitOf(rxo.Field(4))
	return o, fr.result()
}

// ParseRDE reads a verified order (RDE^O11): ORC-2, ORC-3 and RXE-2 are
// required.
func ParseRDE(m *Message) (PharmacyOrder, error) {
	if err := requireType(m, "RDE", "O11"); err != nil {
		return PharmacyOrder{}, err
	}
	o, rxe, fr, err := parseOrder(m, "RXE")
	if err != nil {
		return o, err
	}
	if orc := m.Segment("ORC"); orc != nil {
		fr.req(orc, segIndex(m, orc), 3, o.FillerOrder, "filler order number")
	}
	ri := segIndex(m, rxe)
	o.GiveCode = fr.req(rxe, ri, 2, rxe.Comp(2, 1), "give code")
	o.GiveText, o.GiveSystem = rxe.Comp(2, 2), rxe.Comp(2, 3)
	o.Dose = fr.num(rxe, ri, 3, rxe.Value(3))
	o.DoseUnit = UnitOf(rxe.Field(5))
	o.Verifier = personOf(rxe.Field(14))
	return o, fr.result()
}

// ADT is an admit (A01), transfer (A02), discharge (A03) or update (A08):
// MSH, EVN, PID, PV1 (PV1-6 prior location on A02), [OBX weight, height].
type ADT struct {
	Header        Header
	Event         string    // trigger: A01, A02, A03, A08
	EventTime     time.Time // EVN-2
	Patient       Patient
	PriorLocation Location // PV1-6 (transfers)
	WeightKg      float64  // OBX LOINC 29463-7 (kg)
	HeightCm      float64  // OBX LOINC 8302-2 (cm)
}

// ADT trigger events.
const (
	ADTAdmit     = "A01"
	ADTTransfer  = "A02"
	ADTDischarge = "A03"
	ADTUpdate    = "A08"
)

// BuildADT encodes a as ADT^<Event>^<structure> (A01, A08 use ADT_A01).
func BuildADT(a ADT) *Message {
	ev := a.Event
	if ev == "" {
		ev = ADTAdmit
	}
	structure := "ADT_A01"
	switch ev {
	case ADTTransfer:
		structure = "ADT_A02"
	case ADTDischarge:
		structure = "ADT_A03"
	}
	m := NewMessage(a.Header.msh(MessageType{"ADT", ev, structure}, Profile{}))
	m.Add(NewSegment("EVN", F(ev), F(FormatTime(a.EventTime))))
	m.Add(a.Patient.pid())
	p := a.Patient
	if p.Class == "" {
		p.Class = "I"
	}
	m.Add(p.pv1(a.PriorLocation))
	var rows []obx
	if a.WeightKg != 0 {
		rows = append(rows, obx{typ: "NM", id: LOINCWeight, value: F(num(a.WeightKg)), units: UnitUCUMField("kg"), status: "F"})
	}
	if a.HeightCm != 0 {
		rows = append(rows, obx{typ: "NM", id: LOINCHeight, value: F(num(a.HeightCm)), units: UnitUCUMField("cm"), status: "F"})
	}
	m.Add(obxSegments(rows)...)
	return m
}

// ParseADT reads an ADT message (any trigger): PID with PID-3 is required.
func ParseADT(m *Message) (ADT, error) {
	var a ADT
	if err := requireType(m, "ADT", ""); err != nil {
		return a, err
	}
	h, err := ParseHeader(m)
	if err != nil {
		return a, err
	}
	a.Header, a.Event, a.Patient = h, h.Type.Trigger, patientOf(m)
	var fr fieldReader
	if evn := m.Segment("EVN"); evn != nil {
		a.EventTime = fr.time(evn, segIndex(m, evn), 2, evn.Value(2))
	}
	pid, pi, err := requireSeg(m, "PID")
	if err != nil {
		return a, err
	}
	fr.req(pid, pi, 3, a.Patient.MRN, "patient identifier")
	if pv1 := m.Segment("PV1"); pv1 != nil {
		a.PriorLocation = locationOf(pv1.Field(6))
	}
	a.WeightKg = weightOf(m, &fr)
	for idx, o := range named(m, "OBX") {
		id := o.Field(3)
		if id.Comp(1) == "8302-2" || MDCPatHeight.Matches(id) {
			a.HeightCm = fr.num(o, idx, 5, o.Value(5))
		}
	}
	return a, fr.result()
}

// Administration is administration documentation (RAS^O17^RAS_O17) from
// BCMA to the EHR: MSH, PID, [PV1], ORC, RXA, [RXR], [OBX pump, rate].
//
//	ORC-2 placer order, ORC-3 filler order
//	RXA-3/4 start/end, RXA-5 give code, RXA-6/7 amount given and unit,
//	RXA-10 nurse, RXA-20 completion status (CP, PA, NA, RE)
type Administration struct {
	Header  Header
	Patient Patient

	PlacerOrder, PlacerApp string // ORC-2 (required)
	FillerOrder            string // ORC-3

	Start, End                     time.Time // RXA-3, RXA-4
	GiveCode, GiveText, GiveSystem string    // RXA-5
	Amount                         float64   // RXA-6 amount/volume given
	AmountUnit                     string    // RXA-7, e.g. mL
	Nurse                          Person    // RXA-10
	CompletionStatus               string    // RXA-20, default CP
	Route                          string    // RXR-1.2

	PumpID  string  // OBX-18 of a 69986 row
	RateMLH float64 // OBX 157784
}

// BuildAdministration encodes a as RAS^O17^RAS_O17.
func BuildAdministration(a Administration) *Message {
	m := NewMessage(a.Header.msh(MessageType{"RAS", "O17", "RAS_O17"}, Profile{}))
	m.Add(a.Patient.segments()...)
	m.Add(NewSegment("ORC", F("RE"), C(a.PlacerOrder, a.PlacerApp), C(a.FillerOrder)))
	status := a.CompletionStatus
	if status == "" {
		status = "CP"
	}
	amount := F(num(a.Amount))
	rxa := NewSegment("RXA", F("0"), F("1"), F(FormatTime(a.Start)), F(FormatTime(a.End)),
		C(a.GiveCode, a.GiveText, a.GiveSystem), amount, UnitField(a.AmountUnit))
	rxa.SetField(10, a.Nurse.field())
	rxa.SetField(20, F(status))
	m.Add(rxa)
	if a.Route != "" {
		m.Add(NewSegment("RXR", codedIf(a.Route, "HL70162")))
	}
	var rows []obx
	if a.PumpID != "" {
		rows = append(rows, obx{id: MDCPumpVMD.Field(), equip: C(a.PumpID)})
	}
	rows = nmRow(rows, MDCFlowPump, "", a.RateMLH, "mL/h", "F")
	m.Add(obxSegments(rows)...)
	return m
}

// ParseAdministration reads RAS^O17: ORC-2, RXA-5 and a numeric RXA-6 are
// required.
func ParseAdministration(m *Message) (Administration, error) {
	var a Administration
	if err := requireType(m, "RAS", "O17"); err != nil {
		return a, err
	}
	h, err := ParseHeader(m)
	if err != nil {
		return a, err
	}
	a.Header, a.Patient = h, patientOf(m)
	orc, oi, err := requireSeg(m, "ORC")
	if err != nil {
		return a, err
	}
	var fr fieldReader
	a.PlacerOrder = fr.req(orc, oi, 2, orc.Comp(2, 1), "placer order number")
	a.PlacerApp, a.FillerOrder = orc.Comp(2, 2), orc.Comp(3, 1)
	rxa, ri, err := requireSeg(m, "RXA")
	if err != nil {
		return a, err
	}
	a.Start = fr.time(rxa, ri, 3, rxa.Value(3))
	a.End = fr.time(rxa, ri, 4, rxa.Value(4))
	a.GiveCode = fr.req(rxa, ri, 5, rxa.Comp(5, 1), "administered code")
	a.GiveText, a.GiveSystem = rxa.Comp(5, 2), rxa.Comp(5, 3)
	a.Amount = fr.reqNum(rxa, ri, 6, rxa.Value(6), "administered amount")
	a.AmountUnit = UnitOf(rxa.Field(7))
	a.Nurse = personOf(rxa.Field(10))
	a.CompletionStatus = rxa.Value(20)
	if rxr := m.Segment("RXR"); rxr != nil {
		a.Route = rxr.Comp(1, 2)
	}
	for idx, o := range named(m, "OBX") {
		id := o.Field(3)
		switch {
		case MDCPumpVMD.Matches(id):
			a.PumpID = equipID(o.Field(18))
		case MDCFlowPump.Matches(id):
			a.RateMLH = fr.num(o, idx, 5, o.Value(5))
		}
	}
	return a, fr.result()
}
