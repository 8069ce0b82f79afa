package hl7

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// HD is an HL7 hierarchic designator (MSH-3..6): namespace^universal
// ID^universal ID type, e.g. BCMA_SIM^0011223344556677^EUI-64.
type HD struct {
	Namespace, UniversalID, UniversalIDType string
}

// ParseHD splits "NAME^ID^TYPE" (missing parts are empty).
func ParseHD(s string) HD {
	p := strings.SplitN(s, "^", 3)
	for len(p) < 3 {
		p = append(p, "")
	}
	return HD{p[0], p[1], p[2]}
}

// String returns "NAME^ID^TYPE" without trailing empty parts.
func (h HD) String() string { return DefaultDelimiters.EncodeField(h.field()) }

func (h HD) field() Field { return C(h.Namespace, h.UniversalID, h.UniversalIDType) }

func hdOf(f Field) HD { return HD{f.Comp(1), f.Comp(2), f.Comp(3)} }

// Profile is an MSH-21 message profile identifier (EI).
type Profile struct {
	ID, Namespace, OID, OIDType string
}

func (p Profile) field() Field { return C(p.ID, p.Namespace, p.OID, p.OIDType) }

// IHE PCD message profiles (MSH-21), REFERENCE.md §4.1.
var (
	ProfilePCD01 = Profile{"IHE_PCD_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.1.1", "ISO"}
	ProfilePCD03 = Profile{"IHE_PCD_PIV_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.3.1", "ISO"}
	ProfileRRG   = Profile{"IHE_PCD_PIV_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.3.2", "ISO"}
	ProfilePCD04 = Profile{"IHE_PCD_ACM_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.4.1", "ISO"}
	ProfilePCD05 = Profile{"IHE_PCD_ACM_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.5.1", "ISO"}
	ProfilePCD10 = Profile{"IHE_PCD_010", "IHE PCD", "1.3.6.1.4.1.19376.1.6.4.10", "ISO"}
)

// Header is the MSH content a builder needs. Its zero value works (empty
// applications, empty MSH-7); builders fill MSH-9 and, unless Profile is
// set, MSH-21.
type Header struct {
	SendingApp, SendingFacility     HD // MSH-3, MSH-4
	ReceivingApp, ReceivingFacility HD // MSH-5, MSH-6
	// Time is MSH-7, the lab time of the message (never read from the wall
	// clock by builders). Zero leaves MSH-7 empty.
	Time time.Time
	// ControlID is MSH-10; builders do not invent one (Parse requires it).
	ControlID    string
	ProcessingID string // MSH-11, default "P"
	Version      string // MSH-12, default "2.6"
	AcceptAck    string // MSH-15: AL, NE, ER, SU or ""
	AppAck       string // MSH-16: AL, NE, ER, SU or ""
	Charset      string // MSH-18, e.g. "UNICODE UTF-8"
	Language     string // MSH-19 code, e.g. "en" (written en^English^ISO639)
	// Profile is MSH-21; zero means the message type's IHE PCD profile
	// (none for non-PCD messages).
	Profile Profile
	// Type is MSH-9. ParseHeader fills it; builders overwrite it.
	Type MessageType
}

func (h Header) msh(t MessageType, def Profile) *Segment {
	proc := h.ProcessingID
	if proc == "" {
		proc = "P"
	}
	ver := h.Version
	if ver == "" {
		ver = "2.6"
	}
	prof := h.Profile
	if prof == (Profile{}) {
		prof = def
	}
	var lang Field
	switch h.Language {
	case "":
	case "en":
		lang = C("en", "English", "ISO639")
	default:
		lang = C(h.Language, "", "ISO639")
	}
	return NewSegment("MSH",
		F("|"), F("^~\\&"),
		h.SendingApp.field(), h.SendingFacility.field(),
		h.ReceivingApp.field(), h.ReceivingFacility.field(),
		F(FormatTime(h.Time)), nil,
		C(t.Code, t.Trigger, t.Structure),
		F(h.ControlID), F(proc), F(ver),
		nil, nil, F(h.AcceptAck), F(h.AppAck), nil,
		F(h.Charset), lang, nil, prof.field(),
	)
}

// ParseHeader reads MSH. A malformed MSH-7 is reported as a *ParseError.
func ParseHeader(m *Message) (Header, error) {
	msh := m.Segment("MSH")
	if msh == nil {
		return Header{}, perr("MSH", 1, 0, ErrCodeSegmentSequence, "missing MSH segment")
	}
	h := Header{
		SendingApp:        hdOf(msh.Field(3)),
		SendingFacility:   hdOf(msh.Field(4)),
		ReceivingApp:      hdOf(msh.Field(5)),
		ReceivingFacility: hdOf(msh.Field(6)),
		ControlID:         msh.Value(10),
		ProcessingID:      msh.Value(11),
		Version:           msh.Value(12),
		AcceptAck:         msh.Value(15),
		AppAck:            msh.Value(16),
		Charset:           msh.Value(18),
		Language:          msh.Value(19),
		Type:              m.Type(),
	}
	p := msh.Field(21)
	h.Profile = Profile{p.Comp(1), p.Comp(2), p.Comp(3), p.Comp(4)}
	t, err := ParseTime(msh.Value(7))
	if err != nil {
		return h, perr("MSH", 1, 7, ErrCodeDataType, "%v", err)
	}
	h.Time = t
	return h, nil
}

// Reply returns a header for a message answering one with header h:
// applications and facilities swapped, same processing ID and version.
// Time, ControlID and acknowledgement modes are left for the caller.
func (h Header) Reply() Header {
	return Header{
		SendingApp: h.ReceivingApp, SendingFacility: h.ReceivingFacility,
		ReceivingApp: h.SendingApp, ReceivingFacility: h.SendingFacility,
		ProcessingID: h.ProcessingID, Version: h.Version,
	}
}

// TimeLayout is the HL7 DTM layout the builders write: second precision
// with the zone offset, e.g. 20250301101500-0500.
const TimeLayout = "20060102150405-0700"

// FormatTime writes t as an HL7 DTM (TimeLayout); zero gives "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(TimeLayout)
}

// ParseTime reads an HL7 DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ].
// A time without offset (or with +0000) is in time.UTC. "" gives the zero
// time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	bad := func() (time.Time, error) { return time.Time{}, fmt.Errorf("bad HL7 time %q", clip(s)) }
	body, zone := s, ""
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		body, zone = s[:i], s[i:]
	}
	frac := ""
	if i := strings.IndexByte(body, '.'); i >= 0 {
		body, frac = body[:i], body[i+1:]
		if len(body) != 14 || len(frac) < 1 || len(frac) > 4 || !digits(frac) {
			return bad()
		}
	}
	switch len(body) {
	case 4, 6, 8, 10, 12, 14:
	default:
		return bad()
	}
	if !digits(body) {
		return bad()
	}
	num := func(i, j int, def int) int {
		if len(body) < j {
			return def
		}
		n, _ := strconv.Atoi(body[i:j])
		return n
	}
	year, mon, day := num(0, 4, 0), num(4, 6, 1), num(6, 8, 1)
	hh, mm, ss := num(8, 10, 0), num(10, 12, 0), num(12, 14, 0)
	if mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return bad()
	}
	ns := 0
	if frac != "" {
		f, _ := strconv.Atoi(frac)
		for i := len(frac); i < 9; i++ {
			f *= 10
		}
		ns = f
	}
	loc := time.UTC
	if zone != "" {
		if len(zone) != 5 || !digits(zone[1:]) {
			return bad()
		}
		zh, _ := strconv.Atoi(zone[1:3])
		zm, _ := strconv.Atoi(zone[3:5])
		if zh > 23 || zm > 59 {
			return bad()
		}
		off := zh*3600 + zm*60
		if zone[0] == '-' {
			off = -off
		}
		if off != 0 {
			loc = time.FixedZone("", off)
		}
	}
	t := time.Date(year, time.Month(mon), day, hh, mm, ss, ns, loc)
	if t.Day() != day {
		return bad()
	}
	return t, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Stamp sets MSH-7 to t and MSH-10 to controlID (when not empty).
func (m *Message) Stamp(t time.Time, controlID string) {
	msh := m.Segment("MSH")
	if msh == nil {
		return
	}
	msh.SetField(7, F(FormatTime(t)))
	if controlID != "" {
		msh.SetField(10, F(controlID))
	}
}
