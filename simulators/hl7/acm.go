package hl7

import (
	"strconv"
	"strings"
	"time"
)

// Alarm priorities (facet 6) and alert types (facet 7).
const (
	PriorityHigh   = "PH"
	PriorityMedium = "PM"
	PriorityLow    = "PL"
	PriorityNone   = "PN"

	AlertPhysiological = "SP"
	AlertTechnical     = "ST"
	AlertAdvisory      = "SA"
)

// Alert phases (facet 3), states (facet 4) and inactivation states (facet 5).
const (
	PhaseStart    = "start"
	PhaseEnd      = "end"
	PhaseContinue = "continue"
	PhaseUpdate   = "update"
	PhaseEscalate = "escalate"
	PhaseTPoint   = "tpoint"

	StateActive   = "active"
	StateInactive = "inactive"
	StateLatched  = "latched"

	InactEnabled      = "enabled"
	InactAudioPaused  = "audio-paused"
	InactAudioOff     = "audio-off"
	InactAlarmPaused  = "alarm-paused"
	InactAlarmOff     = "alarm-off"
	InactAcknowledged = "alert-acknowledged"
)

// DefaultAlertPrefix is the OBX-4 prefix of alert rows (channel 1 of VMD 1).
const DefaultAlertPrefix = "1.1.1.0"

// Alert is a PCD-04 Report Alert (ORU^R40^ORU_R40): one alert per message,
// facets 1-7 as OBX rows sharing an OBX-4 prefix, REFERENCE.md §4.5 and
// §4.8(d).
type Alert struct {
	Header  Header
	Patient Patient

	AlertID, AlertApp string    // OBR-2 and OBR-3 (same value), e.g. ALR-55123^PUMPSRV_SIM
	OnsetTime         time.Time // OBR-7, alarm onset

	PumpID, PumpEUI string // OBX-18 of the facet 1 row
	Prefix          string // OBX-4 prefix, default DefaultAlertPrefix

	Event     Code   // facet 1 OBX-5, e.g. MDC_EVT_FLUID_LINE_AIR
	EventText string // facet 1 OBX-5.9 text, e.g. "Air in line"
	Source    Code   // facet 2, default MDCPumpVMD

	Phase        string // facet 3
	State        string // facet 4
	Inactivation string // facet 5
	Priority     string // facet 6: PH PM PL PN
	Type         string // facet 7: SP ST SA
	// ResultStatus is OBX-11 of every row, default "F".
	ResultStatus string
}

// Active reports whether the alert is active or latched.
func (a Alert) Active() bool { return a.State == StateActive || a.State == StateLatched }

// BuildAlert encodes a as ORU^R40^ORU_R40 with the PCD-04 profile.
func BuildAlert(a Alert) *Message {
	m := NewMessage(a.Header.msh(MessageType{"ORU", "R40", "ORU_R40"}, ProfilePCD04))
	m.Add(a.Patient.segments()...)
	id := C(a.AlertID, a.AlertApp)
	m.Add(NewSegment("OBR", F("1"), id, id, MDCEvtAlarm.Field(), nil, nil, F(FormatTime(a.OnsetTime))))
	prefix := a.Prefix
	if prefix == "" {
		prefix = DefaultAlertPrefix
	}
	status := a.ResultStatus
	if status == "" {
		status = "F"
	}
	src := a.Source
	if src == (Code{}) {
		src = MDCPumpVMD
	}
	ev := a.Event.Field()
	if a.EventText != "" {
		ev = Field{{{strconv.Itoa(a.Event.Code)}, {a.Event.Ref}, {"MDC"}, nil, nil, nil, nil, nil, {a.EventText}}}
	}
	sub := func(f int) string { return prefix + "." + strconv.Itoa(f) }
	rows := []obx{
		{typ: "CWE", id: MDCEvtAlarm.Field(), sub: sub(1), value: ev, status: status, equip: pumpEquip(a.PumpID, a.PumpEUI)},
		{typ: "CWE", id: MDCAlertSource.Field(), sub: sub(2), value: src.Field(), status: status},
	}
	for i, v := range []struct {
		c Code
		v string
	}{{MDCEventPhase, a.Phase}, {MDCAlarmState, a.State}, {MDCInactivation, a.Inactivation}, {MDCAlarmPriority, a.Priority}, {MDCAlertType, a.Type}} {
		if v.v != "" {
			rows = append(rows, obx{typ: "ST", id: v.c.Field(), sub: sub(i + 3), value: F(v.v), status: status})
		}
	}
	m.Add(obxSegments(rows)...)
	return m
}

// facetOf returns the facet number of an alert OBX (5th dotted element of
// OBX-4), or 0.
func facetOf(s *Segment) (prefix string, facet int) {
	sub := s.Value(4)
	i := strings.LastIndexByte(sub, '.')
	if i < 0 || strings.Count(sub, ".") != 4 {
		return "", 0
	}
	n, err := strconv.Atoi(sub[i+1:])
	if err != nil {
		return "", 0
	}
	return sub[:i], n
}

// ParseAlert reads a PCD-04 alert: MSH-9 ORU^R40, OBR with the alert ID in
// OBR-2 (or OBR-3), and the facet 1 row. Facets are found by OBX-4 facet
// number or, failing that, by OBX-3 code. Priority and type missing as
// facet rows are read from the deprecated OBX-8 (abnormal flags) of any
// row.
func ParseAlert(m *Message) (Alert, error) {
	var a Alert
	if err := requireType(m, "ORU", "R40"); err != nil {
		return a, err
	}
	h, err := ParseHeader(m)
	if err != nil {
		return a, err
	}
	a.Header, a.Patient = h, patientOf(m)
	obr, oi, err := requireSeg(m, "OBR")
	if err != nil {
		return a, err
	}
	var fr fieldReader
	a.AlertID, a.AlertApp = obr.Comp(2, 1), obr.Comp(2, 2)
	if a.AlertID == "" {
		a.AlertID, a.AlertApp = obr.Comp(3, 1), obr.Comp(3, 2)
	}
	fr.req(obr, oi, 2, a.AlertID, "alert identifier")
	a.OnsetTime = fr.time(obr, oi, 7, obr.Value(7))
	found := false
	var flags []string
	for _, o := range m.Segments("OBX") {
		prefix, facet := facetOf(o)
		id := o.Field(3)
		if facet == 0 {
			switch {
			case MDCAlertSource.Matches(id):
				facet = 2
			case MDCEventPhase.Matches(id):
				facet = 3
			case MDCAlarmState.Matches(id):
				facet = 4
			case MDCInactivation.Matches(id):
				facet = 5
			case MDCAlarmPriority.Matches(id):
				facet = 6
			case MDCAlertType.Matches(id):
				facet = 7
			case !found:
				facet = 1
			}
		}
		f8 := o.Field(8)
		for r := 1; r <= f8.Reps(); r++ {
			flags = append(flags, f8.At(r, 1, 1))
		}
		v := o.Value(5)
		switch facet {
		case 1:
			if found {
				continue
			}
			found = true
			a.Prefix = prefix
			a.Event = codeOf(o.Field(5))
			a.EventText = o.Comp(5, 9)
			a.PumpID = equipID(o.Field(18))
			if o.Comp(18, 1) != "" {
				a.PumpEUI = o.Comp(18, 3)
			}
			a.ResultStatus = o.Value(11)
		case 2:
			a.Source = codeOf(o.Field(5))
		case 3:
			a.Phase = v
		case 4:
			a.State = v
		case 5:
			a.Inactivation = v
		case 6:
			a.Priority = v
		case 7:
			a.Type = v
		}
	}
	for _, f := range flags {
		switch f {
		case PriorityHigh, PriorityMedium, PriorityLow, PriorityNone:
			if a.Priority == "" {
				a.Priority = f
			}
		case AlertPhysiological, AlertTechnical, AlertAdvisory:
			if a.Type == "" {
				a.Type = f
			}
		}
	}
	if !found {
		fr.fail(perr("OBX", 0, 3, ErrCodeRequiredMissing, "missing alert event row (facet 1)"))
	}
	return a, fr.result()
}

// Alert status values of PCD-05.
const (
	AlertAccepted      = "accepted"
	AlertRejected      = "rejected" // nuisance / false positive
	AlertDelivered     = "delivered"
	AlertUndeliverable = "undeliverable"
	AlertQueued        = "queued"
	AlertEscalated     = "escalated"
	AlertRead          = "read"
	AlertCancelled     = "cancelled"
)

// AlertStatuses lists the valid AlertStatus.Status values.
var AlertStatuses = []string{AlertAccepted, AlertRejected, AlertDelivered, AlertUndeliverable, AlertQueued, AlertEscalated, AlertRead, AlertCancelled}

// AlertStatusCode is the OBX-3 of the PCD-05 status row (a local code: the
// lab's own choice, see docs/hl7.md).
var AlertStatusCode = Code{0, "ALERT_STATUS"}

// AlertStatus is a PCD-05 Report Alert Status (ORA^R41^ORA_R41) from the
// alert manager back to the reporter. Lab layout: MSH, [PID], OBR (alert ID
// in OBR-2/3, status time in OBR-7), OBX status row, [PRT acknowledging
// provider: PRT-4 AAP, PRT-5 person, PRT-10 communicator device].
type AlertStatus struct {
	Header  Header
	Patient Patient

	AlertID, AlertApp string    // OBR-2/3 of the PCD-04 alert
	Time              time.Time // OBR-7, when the status was reached
	Status            string    // one of AlertStatuses
	Provider          Person    // PRT-5 acknowledging provider
	Communicator      string    // PRT-10 device (phone/pager ID)
}

// BuildAlertStatus encodes s as ORA^R41^ORA_R41 with the PCD-05 profile.
func BuildAlertStatus(s AlertStatus) *Message {
	m := NewMessage(s.Header.msh(MessageType{"ORA", "R41", "ORA_R41"}, ProfilePCD05))
	if !s.Patient.IsZero() {
		m.Add(s.Patient.segments()...)
	}
	id := C(s.AlertID, s.AlertApp)
	m.Add(NewSegment("OBR", F("1"), id, id, MDCEvtAlarm.Field(), nil, nil, F(FormatTime(s.Time))))
	m.Add(obx{typ: "ST", id: C("", AlertStatusCode.Ref, "L"), sub: DefaultAlertPrefix + ".8", value: F(s.Status), status: "F"}.segment(1))
	if s.Provider != (Person{}) || s.Communicator != "" {
		prt := NewSegment("PRT", F("1"), F("UC"), nil, C("AAP", "Alert Acknowledging Provider", "HL70912"), s.Provider.field())
		prt.SetField(10, C(s.Communicator))
		m.Add(prt)
	}
	return m
}

// ParseAlertStatus reads a PCD-05 status: MSH-9 ORA^R41, OBR with the alert
// ID, a status row with a known status.
func ParseAlertStatus(m *Message) (AlertStatus, error) {
	var s AlertStatus
	if err := requireType(m, "ORA", "R41"); err != nil {
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
	s.AlertID, s.AlertApp = obr.Comp(2, 1), obr.Comp(2, 2)
	fr.req(obr, oi, 2, s.AlertID, "alert identifier")
	s.Time = fr.time(obr, oi, 7, obr.Value(7))
	var row *Segment
	for _, o := range m.Segments("OBX") {
		if o.Comp(3, 2) == AlertStatusCode.Ref || o.Comp(3, 1) == AlertStatusCode.Ref {
			row = o
			break
		}
	}
	if row == nil {
		fr.fail(perr("OBX", 0, 3, ErrCodeRequiredMissing, "missing alert status row"))
	} else {
		s.Status = row.Value(5)
		known := false
		for _, v := range AlertStatuses {
			known = known || v == s.Status
		}
		if !known {
			fr.fail(perr("OBX", segIndex(m, row), 5, ErrCodeTableValue, "unknown alert status %q", clip(s.Status)))
		}
	}
	if prt := m.Segment("PRT"); prt != nil {
		s.Provider = personOf(prt.Field(5))
		s.Communicator = prt.Comp(10, 1)
	}
	return s, fr.result()
}
