package hl7

import (
	"strings"
	"time"
)

// Pump device kinds, choosing the MDS/VMD codes of PCD-01/PCD-10 rows.
const (
	PumpKindLVP     = "LVP"     // 70049 / 70050
	PumpKindSyringe = "SYRINGE" // 70053 / 70054
	PumpKindGeneric = "GENERIC" // 69985 / 69986
)

func pumpCodes(kind string) (mds, vmd Code) {
	switch kind {
	case PumpKindSyringe:
		return MDCPumpSyringeMDS, MDCPumpSyringeVMD
	case PumpKindGeneric:
		return MDCPumpMDS, MDCPumpVMD
	}
	return MDCPumpLVPMDS, MDCPumpLVPVMD
}

func pumpKindOf(f Field) (string, bool) {
	switch {
	case MDCPumpLVPMDS.Matches(f):
		return PumpKindLVP, true
	case MDCPumpSyringeMDS.Matches(f):
		return PumpKindSyringe, true
	case MDCPumpMDS.Matches(f):
		return PumpKindGeneric, true
	}
	return "", false
}

// Infusing status values (184519 MDC_PUMP_INFUSING_STATUS, 184508 MDC_PUMP_STAT).
const (
	StatusInfusing = "pump-status-infusing"
	StatusKVO      = "pump-status-kvo"
	StatusReady    = "pump-status-ready"
	StatusStandby  = "pump-status-standby"
	StatusPaused   = "pump-status-paused"
)

// UnknownDrug is the OBR-4 written when the substance is not known.
var UnknownDrug = C("999999", "Medication Unknown")

func drugField(code, text, system string) Field {
	if code == "" && text == "" {
		return UnknownDrug
	}
	return C(code, text, system)
}

func drugOf(f Field) (code, text, system string) {
	if f.Comp(1) == "999999" {
		return "", "", ""
	}
	return f.Comp(1), f.Comp(2), f.Comp(3)
}

// statusField writes a status as ^text (CWE with only the text).
func statusField(s string) Field {
	if s == "" {
		return nil
	}
	return C("", s)
}

func statusOf(f Field) string {
	if v := f.Comp(2); v != "" {
		return v
	}
	return f.Comp(1)
}

// PumpStatus is a PCD-01 Communicate PCD Data message (ORU^R01^ORU_R01)
// with the observations of one pump channel, REFERENCE.md §4.4 and
// §4.8(e). Rows: 1.0.0.0 MDS, 1.0.0.1 library version, 1.0.0.2 care area,
// 1.1.0.0 VMD, 1.1.1.0 delivery channel, then metrics 1.1.1.1 rate,
// 1.1.1.2 delivered total, 1.1.1.3 infusing status, 1.1.1.4 dose rate,
// 1.1.1.5 volume remaining, 1.1.1.6 drug label. Rate, delivered and status
// are always written; other metrics when set.
type PumpStatus struct {
	Header  Header
	Patient Patient

	OrderID, OrderApp              string    // OBR-2: the PCD-03 order (placer)
	FillerID, FillerApp            string    // OBR-3: this observation set
	DrugCode, DrugText, DrugSystem string    // OBR-4 echo of the give code; empty = 999999^Medication Unknown
	ObsTime                        time.Time // OBR-7

	Kind            string // PumpKindLVP (default), PumpKindSyringe, PumpKindGeneric
	PumpID, PumpEUI string // OBX-18 of the MDS row: PumpID^^EUI^EUI-64
	// Channel is the pump channel label (A, B, ...), written as the VMD
	// index of every VMD and channel row's OBX-4 (A = 1.1.x.x, B = 1.2.x.x);
	// empty means A.
	Channel string

	LibraryVersion string // 184517
	CareArea       string // 184516

	RateMLH      float64 // 157784 MDC_FLOW_FLUID_PUMP (mL/h)
	DeliveredML  float64 // 157993 MDC_VOL_FLUID_DELIV_TOTAL (mL)
	Status       string  // 184519, e.g. pump-status-infusing
	DoseRate     float64 // 157924 MDC_RATE_DOSE
	DoseRateUnit string
	RemainingML  float64 // 157872 MDC_VOL_FLUID_TBI_REMAIN
	DrugLabel    string  // 184514
}

func pumpEquip(id, eui string) Field {
	if eui == "" {
		return C(id)
	}
	return C(id, "", eui, "EUI-64")
}

// BuildPumpStatus encodes s as ORU^R01^ORU_R01 with the PCD-01 profile.
func BuildPumpStatus(s PumpStatus) *Message {
	m := NewMessage(s.Header.msh(MessageType{"ORU", "R01", "ORU_R01"}, ProfilePCD01))
	m.Add(s.Patient.segments()...)
	m.Add(NewSegment("OBR", F("1"), C(s.OrderID, s.OrderApp), C(s.FillerID, s.FillerApp),
		drugField(s.DrugCode, s.DrugText, s.DrugSystem), nil, nil, F(FormatTime(s.ObsTime))))
	mds, vmd := pumpCodes(s.Kind)
	rows := []obx{{id: mds.Field(), sub: "1.0.0.0", status: "X", equip: pumpEquip(s.PumpID, s.PumpEUI)}}
	rows = stRow(rows, MDCLibVersion, "1.0.0.1", s.LibraryVersion, "R")
	rows = stRow(rows, MDCLibCareArea, "1.0.0.2", s.CareArea, "R")
	rows = append(rows,
		obx{id: vmd.Field(), sub: "1.1.0.0", status: "X"},
		obx{id: MDCChanDelivery.Field(), sub: "1.1.1.0", status: "X"},
		obx{typ: "NM", id: MDCFlowPump.Field(), sub: "1.1.1.1", value: F(num(s.RateMLH)), units: UnitField("mL/h"), status: "R"},
		obx{typ: "NM", id: MDCVolDelivTotal.Field(), sub: "1.1.1.2", value: F(num(s.DeliveredML)), units: UnitField("mL"), status: "R"},
		obx{typ: "CWE", id: MDCInfusingStatus.Field(), sub: "1.1.1.3", value: statusField(s.Status), status: "R"},
	)
	rows = nmRow(rows, MDCRateDose, "1.1.1.4", s.DoseRate, s.DoseRateUnit, "R")
	rows = nmRow(rows, MDCVolTBIRemain, "1.1.1.5", s.RemainingML, "mL", "R")
	rows = stRow(rows, MDCDrugLabel, "1.1.1.6", s.DrugLabel, "R")
	m.Add(obxSegments(onChannel(rows, s.Channel))...)
	return m
}

// ParsePumpStatus reads a PCD-01 message: MSH-9 ORU^R01, an OBR and an MDS
// row with the pump ID in OBX-18.
func ParsePumpStatus(m *Message) (PumpStatus, error) {
	var s PumpStatus
	if err := requireType(m, "ORU", "R01"); err != nil {
		return s, err
	}
	h, err := ParseHeader(m)
	if err != nil {
		return s, err
	}
	s.Header, s.Patient = h, patientOf(m)
	obr, oi, err := requireSeg(m, "OBR")
	if err != nil {
		return s, err
	}
	var fr fieldReader
	s.OrderID, s.OrderApp = obr.Comp(2, 1), obr.Comp(2, 2)
	s.FillerID, s.FillerApp = obr.Comp(3, 1), obr.Comp(3, 2)
	s.DrugCode, s.DrugText, s.DrugSystem = drugOf(obr.Field(4))
	s.ObsTime = fr.time(obr, oi, 7, obr.Value(7))
	if ch := channelOfOBX(m); ch != "A" {
		s.Channel = ch
	}
	found := false
	for idx, o := range named(m, "OBX") {
		id, v := o.Field(3), o.Value(5)
		if kind, ok := pumpKindOf(id); ok && !found {
			found = true
			s.Kind = kind
			s.PumpID, s.PumpEUI = equipID(o.Field(18)), o.Comp(18, 3)
			if o.Comp(18, 1) == "" {
				s.PumpEUI = ""
			}
			continue
		}
		switch {
		case MDCLibVersion.Matches(id):
			s.LibraryVersion = v
		case MDCLibCareArea.Matches(id):
			s.CareArea = v
		case MDCFlowPump.Matches(id):
			s.RateMLH = fr.num(o, idx, 5, v)
		case MDCVolDelivTotal.Matches(id):
			s.DeliveredML = fr.num(o, idx, 5, v)
		case MDCInfusingStatus.Matches(id):
			s.Status = statusOf(o.Field(5))
		case MDCRateDose.Matches(id):
			s.DoseRate, s.DoseRateUnit = fr.num(o, idx, 5, v), UnitOf(o.Field(6))
		case MDCVolTBIRemain.Matches(id):
			s.RemainingML = fr.num(o, idx, 5, v)
		case MDCDrugLabel.Matches(id):
			s.DrugLabel = v
		}
	}
	if !found {
		fr.fail(perr("OBX", 0, 3, ErrCodeRequiredMissing, "missing pump MDS row"))
	} else if s.PumpID == "" {
		fr.fail(perr("OBX", 0, 18, ErrCodeRequiredMissing, "missing pump ID in MDS row"))
	}
	return s, fr.result()
}

// InfusionEvent is a PCD-10 Communicate Infusion Event Data message
// (ORU^R42^ORU_R01), one event per message, REFERENCE.md §4.6 and §4.8(c).
// EventTime (OBR-7) is the original time of the event, also when the
// message is sent later from a buffer. Rate and delivered volume are always
// written; other parameters when set.
type InfusionEvent struct {
	Header  Header
	Patient Patient

	OrderID, OrderApp              string    // OBR-2: the PCD-03 order
	EventID, EventApp              string    // OBR-3: unique event ID
	DrugCode, DrugText, DrugSystem string    // OBR-4; empty = 999999^Medication Unknown
	EventTime                      time.Time // OBR-7, original event time

	Kind            string // PumpKindLVP (default), PumpKindSyringe, PumpKindGeneric
	PumpID, PumpEUI string // OBX-18 of the MDS row
	// Channel is the pump channel label (A, B, ...), as in PumpStatus.
	Channel string

	LibraryVersion string // 184517 (1.0.0.1)
	Event          Code   // the event (1.0.0.2), e.g. MDCEvtPumpDelivStrt; see Events

	InfusingStatus    string  // 184519 (1.1.1.1)
	RateMLH           float64 // 157784 (1.1.2.1)
	DoseRate          float64 // 157924 (1.1.2.2)
	DoseRateUnit      string
	VTBIML            float64 // 157884 (1.1.2.3)
	DeliveredML       float64 // 157993 cumulative (1.1.2.4)
	RemainingML       float64 // 157872 (1.1.2.5)
	TimeRemainingMin  float64 // 157916 (1.1.2.6)
	DrugLabel         string  // 184514 (1.1.2.7)
	Concentration     float64 // 157760 (1.1.2.8)
	ConcentrationUnit string  // default mg/mL when Concentration is set
	CareArea          string  // 184516 (1.1.2.9)
	WeightKg          float64 // 68063 (1.1.2.10)
}

// BuildInfusionEvent encodes e as ORU^R42^ORU_R01 with the PCD-10 profile.
func BuildInfusionEvent(e InfusionEvent) *Message {
	m := NewMessage(e.Header.msh(MessageType{"ORU", "R42", "ORU_R01"}, ProfilePCD10))
	m.Add(e.Patient.segments()...)
	m.Add(NewSegment("OBR", F("1"), C(e.OrderID, e.OrderApp), C(e.EventID, e.EventApp),
		drugField(e.DrugCode, e.DrugText, e.DrugSystem), nil, nil, F(FormatTime(e.EventTime))))
	mds, vmd := pumpCodes(e.Kind)
	rows := []obx{{id: mds.Field(), sub: "1.0.0.0", status: "X", equip: pumpEquip(e.PumpID, e.PumpEUI)}}
	rows = stRow(rows, MDCLibVersion, "1.0.0.1", e.LibraryVersion, "R")
	rows = append(rows, obx{typ: "CWE", id: MDCEvtCond.Field(), sub: "1.0.0.2", value: e.Event.Field(), status: "R"})
	rows = append(rows, obx{id: vmd.Field(), sub: "1.1.0.0", status: "X"})
	if e.InfusingStatus != "" {
		rows = append(rows, obx{typ: "CWE", id: MDCInfusingStatus.Field(), sub: "1.1.1.1", value: statusField(e.InfusingStatus), status: "R"})
	}
	rows = append(rows, obx{typ: "NM", id: MDCFlowPump.Field(), sub: "1.1.2.1", value: F(num(e.RateMLH)), units: UnitField("mL/h"), status: "R"})
	rows = nmRow(rows, MDCRateDose, "1.1.2.2", e.DoseRate, e.DoseRateUnit, "R")
	rows = nmRow(rows, MDCVolTBI, "1.1.2.3", e.VTBIML, "mL", "R")
	rows = append(rows, obx{typ: "NM", id: MDCVolDelivTotal.Field(), sub: "1.1.2.4", value: F(num(e.DeliveredML)), units: UnitField("mL"), status: "R"})
	rows = nmRow(rows, MDCVolTBIRemain, "1.1.2.5", e.RemainingML, "mL", "R")
	rows = nmRow(rows, MDCTimeRemain, "1.1.2.6", e.TimeRemainingMin, "min", "R")
	rows = stRow(rows, MDCDrugLabel, "1.1.2.7", e.DrugLabel, "R")
	cu := e.ConcentrationUnit
	if cu == "" {
		cu = "mg/mL"
	}
	rows = nmRow(rows, MDCConcDrug, "1.1.2.8", e.Concentration, cu, "R")
	rows = stRow(rows, MDCLibCareArea, "1.1.2.9", e.CareArea, "R")
	rows = nmRow(rows, MDCPatWeight, "1.1.2.10", e.WeightKg, "kg", "R")
	m.Add(obxSegments(onChannel(rows, e.Channel))...)
	return m
}

// ParseInfusionEvent reads a PCD-10 message: MSH-9 ORU^R42, an OBR with a
// valid OBR-7, an MDS row with the pump ID, and the event row (1.0.0.2).
func ParseInfusionEvent(m *Message) (InfusionEvent, error) {
	var e InfusionEvent
	if err := requireType(m, "ORU", "R42"); err != nil {
		return e, err
	}
	h, err := ParseHeader(m)
	if err != nil {
		return e, err
	}
	e.Header, e.Patient = h, patientOf(m)
	obr, oi, err := requireSeg(m, "OBR")
	if err != nil {
		return e, err
	}
	var fr fieldReader
	e.OrderID, e.OrderApp = obr.Comp(2, 1), obr.Comp(2, 2)
	e.EventID, e.EventApp = obr.Comp(3, 1), obr.Comp(3, 2)
	e.DrugCode, e.DrugText, e.DrugSystem = drugOf(obr.Field(4))
	if ch := channelOfOBX(m); ch != "A" {
		e.Channel = ch
	}
	e.EventTime = fr.time(obr, oi, 7, obr.Value(7))
	foundPump, foundEvent := false, false
	for idx, o := range named(m, "OBX") {
		id, v := o.Field(3), o.Value(5)
		if kind, ok := pumpKindOf(id); ok && !foundPump {
			foundPump = true
			e.Kind = kind
			e.PumpID = equipID(o.Field(18))
			if o.Comp(18, 1) != "" {
				e.PumpEUI = o.Comp(18, 3)
			}
			continue
		}
		switch {
		case MDCEvtCond.Matches(id):
			foundEvent = true
			e.Event = codeOf(o.Field(5))
		case MDCLibVersion.Matches(id):
			e.LibraryVersion = v
		case MDCInfusingStatus.Matches(id):
			e.InfusingStatus = statusOf(o.Field(5))
		case MDCFlowPump.Matches(id):
			e.RateMLH = fr.num(o, idx, 5, v)
		case MDCRateDose.Matches(id):
			e.DoseRate, e.DoseRateUnit = fr.num(o, idx, 5, v), UnitOf(o.Field(6))
		case MDCVolTBI.Matches(id):
			e.VTBIML = fr.num(o, idx, 5, v)
		case MDCVolDelivTotal.Matches(id):
			e.DeliveredML = fr.num(o, idx, 5, v)
		case MDCVolTBIRemain.Matches(id):
			e.RemainingML = fr.num(o, idx, 5, v)
		case MDCTimeRemain.Matches(id):
			e.TimeRemainingMin = toMinutes(fr.num(o, idx, 5, v), UnitOf(o.Field(6)))
		case MDCDrugLabel.Matches(id):
			e.DrugLabel = v
		case MDCConcDrug.Matches(id):
			e.Concentration, e.ConcentrationUnit = fr.num(o, idx, 5, v), UnitOf(o.Field(6))
		case MDCLibCareArea.Matches(id):
			e.CareArea = v
		case MDCPatWeight.Matches(id):
			e.WeightKg = fr.num(o, idx, 5, v)
		}
	}
	if !foundPump {
		fr.fail(perr("OBX", 0, 3, ErrCodeRequiredMissing, "missing pump MDS row"))
	}
	if !foundEvent {
		fr.fail(perr("OBX", 0, 3, ErrCodeRequiredMissing, "missing event row (MDC_ATTR_EVT_COND)"))
	} else if e.Event.Code == 0 && e.Event.Ref == "" {
		fr.fail(perr("OBX", 0, 5, ErrCodeRequiredMissing, "empty event code"))
	}
	if e.Concentration == 0 {
		e.ConcentrationUnit = ""
	}
	return e, fr.result()
}

// EventName returns the event reference ID without the MDC_EVT_ prefix,
// e.g. "PUMP_DELIV_START".
func (e InfusionEvent) EventName() string { return strings.TrimPrefix(e.Event.Ref, "MDC_EVT_") }
