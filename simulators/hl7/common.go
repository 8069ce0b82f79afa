package hl7

import (
	"iter"
	"math"
	"strconv"
	"strings"
	"time"
)

// Person is an XCN (ORC-19, ORC-12, RXA-10, PRT-5, RXE-14): ID^Family^Given.
type Person struct {
	ID, Family, Given string
}

func (p Person) field() Field { return C(p.ID, p.Family, p.Given) }

func personOf(f Field) Person { return Person{f.Comp(1), f.Comp(2), f.Comp(3)} }

// Location is a PV1-3 point of care: unit^room^bed, e.g. "4W ICU^12^A".
type Location struct {
	Unit, Room, Bed string
}

func (l Location) field() Field { return C(l.Unit, l.Room, l.Bed) }

// String returns "unit^room^bed" without trailing empty parts.
func (l Location) String() string { return DefaultDelimiters.EncodeField(l.field()) }

func locationOf(f Field) Location { return Location{f.Comp(1), f.Comp(2), f.Comp(3)} }

// Patient is PID (and PV1) content shared by the typed messages.
type Patient struct {
	MRN       string // PID-3.1 (written MRN^^^Authority^MR)
	Authority string // PID-3.4 assigning authority, e.g. HOSP
	Family    string // PID-5.1
	Given     string // PID-5.2 (name type L is written in PID-5.7)
	DOB       string // PID-7, YYYYMMDD
	Sex       string // PID-8: F, M, O, U
	// Class is PV1-2 (I inpatient, E emergency, O outpatient); PV1 is written
	// when Class or Location is set, with Class "I" by default.
	Class    string
	Location Location // PV1-3
}

// IsZero reports whether nothing is set.
func (p Patient) IsZero() bool { return p == Patient{} }

func (p Patient) pid() *Segment {
	var id, name Field
	if p.MRN != "" || p.Authority != "" {
		id = C(p.MRN, "", "", p.Authority, "MR")
	}
	if p.Family != "" || p.Given != "" {
		name = C(p.Family, p.Given, "", "", "", "", "L")
	}
	return NewSegment("PID", nil, nil, id, nil, name, nil, F(p.DOB), F(p.Sex))
}

func (p Patient) pv1(prior Location) *Segment {
	if p.Class == "" && p.Location == (Location{}) && prior == (Location{}) {
		return nil
	}
	class := p.Class
	if class == "" {
		class = "I"
	}
	return NewSegment("PV1", nil, F(class), p.Location.field(), nil, nil, prior.field())
}

// segments returns PID and, when needed, PV1.
func (p Patient) segments() []*Segment {
	segs := []*Segment{p.pid()}
	if pv1 := p.pv1(Location{}); pv1 != nil {
		segs = append(segs, pv1)
	}
	return segs
}

// patientOf reads the first PID and PV1 of m.
func patientOf(m *Message) Patient {
	var p Patient
	if pid := m.Segment("PID"); pid != nil {
		ids := pid.Field(3)
		pick := 1
		for r := 1; r <= ids.Reps(); r++ {
			if ids.At(r, 5, 1) == "MR" {
				pick = r
				break
			}
		}
		p.MRN, p.Authority = ids.At(pick, 1, 1), ids.At(pick, 4, 1)
		p.Family, p.Given = pid.Comp(5, 1), pid.Comp(5, 2)
		p.DOB, p.Sex = pid.Value(7), pid.Value(8)
	}
	if pv1 := m.Segment("PV1"); pv1 != nil {
		p.Class = pv1.Value(2)
		p.Location = locationOf(pv1.Field(3))
	}
	return p
}

// num formats v for an NM field.
func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// optNum returns an NM field, empty for 0.
func optNum(v float64) Field {
	if v == 0 {
		return nil
	}
	return F(num(v))
}

// parseNM parses an HL7 NM value: [+-]digits[.digits] (also .5 and 5.).
// Exponents, NaN, Inf and hex are refused.
func parseNM(s string) (float64, bool) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, false
	}
	i := 0
	if t[0] == '+' || t[0] == '-' {
		i++
	}
	digitsSeen, dot := false, false
	for ; i < len(t); i++ {
		switch c := t[i]; {
		case c >= '0' && c <= '9':
			digitsSeen = true
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if !digitsSeen {
		return 0, false
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

// fieldReader collects typed values from segments, keeping the first error.
type fieldReader struct {
	err *ParseError
}

func (r *fieldReader) fail(e *ParseError) {
	if r.err == nil {
		r.err = e
	}
}

// num reads an optional NM field (0 when empty).
func (r *fieldReader) num(s *Segment, idx, field int, v string) float64 {
	if v == "" {
		return 0
	}
	f, ok := parseNM(v)
	if !ok {
		r.fail(perr(s.Name, idx, field, ErrCodeDataType, "not a number: %q", clip(v)))
	}
	return f
}

// reqNum reads a required NM field.
func (r *fieldReader) reqNum(s *Segment, idx, field int, v string, what string) float64 {
	if v == "" {
		r.fail(perr(s.Name, idx, field, ErrCodeRequiredMissing, "missing %s", what))
		return 0
	}
	return r.num(s, idx, field, v)
}

// req checks a required string.
func (r *fieldReader) req(s *Segment, idx, field int, v string, what string) string {
	if v == "" {
		r.fail(perr(s.Name, idx, field, ErrCodeRequiredMissing, "missing %s", what))
	}
	return v
}

// time reads an optional DTM field.
func (r *fieldReader) time(s *Segment, idx, field int, v string) time.Time {
	t, err := ParseTime(v)
	if err != nil {
		r.fail(perr(s.Name, idx, field, ErrCodeDataType, "%v", err))
	}
	return t
}

func (r *fieldReader) result() error {
	if r.err == nil {
		return nil
	}
	return r.err
}

// named yields the 1-based position and the segment of every segment called
// name (linear in the message: views must stay O(n) on hostile input).
func named(m *Message, name string) iter.Seq2[int, *Segment] {
	return func(yield func(int, *Segment) bool) {
		for i, s := range m.Segs {
			if s.Name == name && !yield(i+1, s) {
				return
			}
		}
	}
}

// segIndex returns the 1-based position of s in m (0 when absent). It is
// linear: call it once per error or per single segment, never in a loop.
func segIndex(m *Message, s *Segment) int {
	for i, x := range m.Segs {
		if x == s {
			return i + 1
		}
	}
	return 0
}

// requireType checks MSH-9 code and trigger.
func requireType(m *Message, code, trigger string) error {
	if m == nil {
		return perr("", 0, 0, ErrCodeSegmentSequence, "nil message")
	}
	if len(m.Segs) == 0 || m.Segs[0].Name != "MSH" {
		return perr("MSH", 1, 0, ErrCodeSegmentSequence, "message must start with MSH")
	}
	t := m.Type()
	if t.Code != code || (trigger != "" && t.Trigger != trigger) {
		want := code
		if trigger != "" {
			want += "^" + trigger
		}
		return perr("MSH", 1, 9, ErrCodeUnsupportedType, "message type %s, want %s", t, want)
	}
	return nil
}

// requireSeg returns the first segment called name after position from
// (0-based index into m.Segs), or a segment-sequence error.
func requireSeg(m *Message, name string) (*Segment, int, error) {
	for i, s := range m.Segs {
		if s.Name == name {
			return s, i + 1, nil
		}
	}
	return nil, 0, perr(name, 0, 0, ErrCodeSegmentSequence, "missing %s segment", name)
}

// obx is one OBX row to write.
type obx struct {
	typ    string // OBX-2
	id     Field  // OBX-3
	sub    string // OBX-4
	value  Field  // OBX-5
	units  Field  // OBX-6
	flags  Field  // OBX-8
	status string // OBX-11
	equip  Field  // OBX-18
}

func (o obx) segment(setID int) *Segment {
	return NewSegment("OBX",
		F(strconv.Itoa(setID)), F(o.typ), o.id, F(o.sub), o.value, o.units,
		nil, o.flags, nil, nil, F(o.status),
		nil, nil, nil, nil, nil, nil, o.equip)
}

func obxSegments(rows []obx) []*Segment {
	out := make([]*Segment, len(rows))
	for i, r := range rows {
		out[i] = r.segment(i + 1)
	}
	return out
}

// nmRow is an NM OBX row (omitted when v is 0).
func nmRow(rows []obx, c Code, sub string, v float64, unit, status string) []obx {
	if v == 0 {
		return rows
	}
	return append(rows, obx{typ: "NM", id: c.Field(), sub: sub, value: F(num(v)), units: UnitField(unit), status: status})
}

// stRow is an ST OBX row (omitted when v is "").
func stRow(rows []obx, c Code, sub, v, status string) []obx {
	if v == "" {
		return rows
	}
	return append(rows, obx{typ: "ST", id: c.Field(), sub: sub, value: F(v), status: status})
}

// convertTime converts v in unit (h, min, s) to minutes; other units are
// returned unchanged.
func toMinutes(v float64, unit string) float64 {
	switch unit {
	case "h":
		return v * 60
	case "s":
		return v / 60
	}
	return v
}

// equipID reads an OBX-18 equipment instance identifier (EI): the entity ID
// in component 1, else the universal ID in component 3.
func equipID(f Field) string {
	if v := f.Comp(1); v != "" {
		return v
	}
	return f.Comp(3)
}

// ChannelIndex maps a pump channel label to its VMD index in OBX-4 dotted
// notation: "" and "A" are 1, "B" 2, ... (labels outside A-Z give 1).
func ChannelIndex(label string) int {
	if len(label) == 1 && label[0] >= 'A' && label[0] <= 'Z' {
		return int(label[0]-'A') + 1
	}
	return 1
}

// ChannelLabel maps the VMD index of an OBX-4 sub-ID (1.2.1.0 -> 2) to a
// channel label (B); "A" when the sub-ID has none.
func ChannelLabel(sub string) string {
	parts := strings.Split(sub, ".")
	if len(parts) >= 2 {
		if n, err := strconv.Atoi(parts[1]); err == nil && n >= 1 && n <= 26 {
			return string(rune('A' + n - 1))
		}
	}
	return "A"
}

// onChannel moves the VMD and channel rows (1.1.x.x) of a device to the
// channel's VMD index.
func onChannel(rows []obx, channel string) []obx {
	n := ChannelIndex(channel)
	if n == 1 {
		return rows
	}
	prefix := "1." + strconv.Itoa(n) + "."
	for i := range rows {
		if strings.HasPrefix(rows[i].sub, "1.1.") {
			rows[i].sub = prefix + rows[i].sub[len("1.1."):]
		}
	}
	return rows
}

// channelOfOBX reads the channel label from the first VMD row of a device
// observation message ("A" without one). Parsers leave Channel empty for A,
// so that building and parsing round-trip.
func channelOfOBX(m *Message) string {
	for _, o := range m.Segments("OBX") {
		id := o.Field(3)
		if MDCPumpVMD.Matches(id) || MDCPumpLVPVMD.Matches(id) || MDCPumpSyringeVMD.Matches(id) {
			return ChannelLabel(o.Value(4))
		}
	}
	return "A"
}
