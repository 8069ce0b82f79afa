package hl7

import (
	"strconv"
	"strings"
	"time"
)

// The lab's codes of the alert reporter heartbeat. IEEE 11073 has no term
// for it, so they are in the lab's local coding system (99PUMPLAB, code 0)
// and written in the MDC style.
var (
	LabEvtHeartbeat      = C("0", "MDC_EVT_HEARTBEAT", "99PUMPLAB")
	LabAttrReporterRun   = C("0", "MDC_ATTR_REPORTER_RUN", "99PUMPLAB")
	LabAttrActiveAlerts  = C("0", "MDC_ATTR_ALERT_ACTIVE_COUNT", "99PUMPLAB")
	LabAttrActiveAlertID = C("0", "MDC_ATTR_ALERT_ACTIVE", "99PUMPLAB")
)

// MaxSequenceDigits bounds MSH-13: a sequence number is 1 to 18 digits (it
// fits an int64).
const MaxSequenceDigits = 18

// SetSequence writes the reporter's sequence number in MSH-13 (HL7 v2
// "Sequence Number", NM). The alarm manager's alarm-heartbeat control reads
// it to refuse replayed and out-of-order PCD-04 messages.
func SetSequence(m *Message, seq uint64) {
	if msh := m.Segment("MSH"); msh != nil {
		msh.SetField(13, F(strconv.FormatUint(seq, 10)))
	}
}

// Sequence reads MSH-13. ok is false when it is empty; a value that is not
// 1 to MaxSequenceDigits digits, or is 0, is an error at MSH-13.
func Sequence(m *Message) (seq uint64, ok bool, err error) {
	msh := m.Segment("MSH")
	if msh == nil {
		return 0, false, perr("MSH", 1, 0, ErrCodeSegmentSequence, "missing MSH segment")
	}
	v := msh.Value(13)
	if v == "" {
		return 0, false, nil
	}
	if len(v) > MaxSequenceDigits || !digits(v) {
		return 0, false, perr("MSH", 1, 13, ErrCodeDataType, "sequence number %q: want 1 to %d digits", clipValue(v), MaxSequenceDigits)
	}
	seq, _ = strconv.ParseUint(v, 10, 64)
	if seq == 0 {
		return 0, false, perr("MSH", 1, 13, ErrCodeDataType, "sequence number 0: numbers start at 1")
	}
	return seq, true, nil
}

func clipValue(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// Heartbeat is the alert reporter's periodic heartbeat to the alarm manager
// (posture control alarm-heartbeat), a PCD-04-compatible ORU^R40:
//
//	MSH|^~\&|PUMPSRV_SIM^...|HOSP_BIOMED|ALERTMGR_SIM^...|HOSP_AM|<time>||ORU^R40^ORU_R40|<id>|P|2.6|<seq>||AL|NE|||||IHE_PCD_ACM_001^...
//	OBR|1|HB-<run>-<seq>^<app>||0^MDC_EVT_HEARTBEAT^99PUMPLAB|||<time>
//	OBX|1|ST|0^MDC_ATTR_REPORTER_RUN^99PUMPLAB|0.0.0.1|<run>||||||F
//	OBX|2|NM|0^MDC_ATTR_ALERT_ACTIVE_COUNT^99PUMPLAB|0.0.0.2|<n>||||||F
//	OBX|3|ST|0^MDC_ATTR_ALERT_ACTIVE^99PUMPLAB|0.0.0.3|<alert id>^<alert app>||||||F   (one per active alert)
//
// MSH-13 carries the reporter's sequence number (the same counter as its
// PCD-04 messages).
type Heartbeat struct {
	Header Header
	// App is the alert namespace (OBR-2.2), e.g. PUMPSRV_SIM.
	App string
	// Run identifies one run of the reporter: it changes when the reporter
	// restarts (its sequence numbers then start again at 1).
	Run string
	// Seq is MSH-13.
	Seq uint64
	// Time is OBR-7, the lab time of the heartbeat.
	Time time.Time
	// Active lists the ids of the alerts active at the reporter.
	Active []string
}

// BuildHeartbeat encodes h.
func BuildHeartbeat(h Heartbeat) *Message {
	m := NewMessage(h.Header.msh(MessageType{"ORU", "R40", "ORU_R40"}, ProfilePCD04))
	SetSequence(m, h.Seq)
	m.Add(NewSegment("OBR", F("1"), C("HB-"+h.Run+"-"+strconv.FormatUint(h.Seq, 10), h.App), nil,
		LabEvtHeartbeat, nil, nil, F(FormatTime(h.Time))))
	rows := []obx{
		{typ: "ST", id: LabAttrReporterRun, sub: "0.0.0.1", value: F(h.Run), status: "F"},
		{typ: "NM", id: LabAttrActiveAlerts, sub: "0.0.0.2", value: F(strconv.Itoa(len(h.Active))), status: "F"},
	}
	for i, id := range h.Active {
		rows = append(rows, obx{typ: "ST", id: LabAttrActiveAlertID, sub: "0.0.0." + strconv.Itoa(i+3), value: C(id, h.App), status: "F"})
	}
	m.Add(obxSegments(rows)...)
	return m
}

// IsHeartbeat reports whether m is an ORU^R40 whose OBR-4 is the heartbeat
// code (ParseHeartbeat may still refuse it).
func IsHeartbeat(m *Message) bool {
	if m == nil || !m.Type().Is("ORU", "R40") {
		return false
	}
	obr := m.Segment("OBR")
	return obr != nil && obr.Comp(4, 2) == "MDC_EVT_HEARTBEAT" && obr.Comp(4, 3) == "99PUMPLAB"
}

// ParseHeartbeat decodes a heartbeat. Errors name the segment and field.
func ParseHeartbeat(m *Message) (Heartbeat, error) {
	var h Heartbeat
	if err := requireType(m, "ORU", "R40"); err != nil {
		return h, err
	}
	hdr, err := ParseHeader(m)
	if err != nil {
		return h, err
	}
	h.Header = hdr
	seq, ok, err := Sequence(m)
	if err != nil {
		return h, err
	}
	if !ok {
		return h, perr("MSH", 1, 13, ErrCodeRequiredMissing, "heartbeat without a sequence number")
	}
	h.Seq = seq
	obr, oi, err := requireSeg(m, "OBR")
	if err != nil {
		return h, err
	}
	if !IsHeartbeat(m) {
		return h, perr("OBR", oi, 4, ErrCodeTableValue, "OBR-4 %q is not MDC_EVT_HEARTBEAT^99PUMPLAB", clipValue(obr.Value(4)))
	}
	h.App = obr.Comp(2, 2)
	var fr fieldReader
	h.Time = fr.time(obr, oi, 7, obr.Value(7))
	if fr.err != nil {
		return h, fr.err
	}
	count := -1
	for i, s := range m.Segs {
		if s.Name != "OBX" {
			continue
		}
		id, v := s.Field(3), s.Field(5)
		switch id.Comp(2) {
		case "MDC_ATTR_REPORTER_RUN":
			h.Run = v.Value()
		case "MDC_ATTR_ALERT_ACTIVE_COUNT":
			n, err := strconv.Atoi(v.Value())
			if err != nil || n < 0 || !digits(v.Value()) {
				return h, perr("OBX", i+1, 5, ErrCodeDataType, "active alert count %q is not a number", clipValue(v.Value()))
			}
			count = n
		case "MDC_ATTR_ALERT_ACTIVE":
			a := v.Comp(1)
			if a == "" || len(a) > 64 || strings.ContainsAny(a, " /") {
				return h, perr("OBX", i+1, 5, ErrCodeDataType, "active alert id %q: want 1 to 64 characters without spaces or '/'", clipValue(a))
			}
			h.Active = append(h.Active, a)
		}
	}
	switch {
	case h.Run == "" || len(h.Run) > 64:
		return h, perr("OBX", 0, 5, ErrCodeRequiredMissing, "heartbeat without a reporter run (MDC_ATTR_REPORTER_RUN, 1 to 64 characters)")
	case count < 0:
		return h, perr("OBX", 0, 5, ErrCodeRequiredMissing, "heartbeat without an active alert count (MDC_ATTR_ALERT_ACTIVE_COUNT)")
	case count != len(h.Active):
		return h, perr("OBX", 0, 5, ErrCodeDataType, "heartbeat says %d active alerts and lists %d", count, len(h.Active))
	}
	return h, nil
}
