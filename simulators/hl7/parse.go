package hl7

import (
	"bytes"
	"fmt"
	"strings"
)

// HL7 table 0357 (message error condition codes) used in ERR-3.
const (
	ErrCodeAccepted         = 0
	ErrCodeSegmentSequence  = 100
	ErrCodeRequiredMissing  = 101
	ErrCodeDataType         = 102
	ErrCodeTableValue       = 103
	ErrCodeUnsupportedType  = 200
	ErrCodeUnsupportedEvent = 201
	ErrCodeUnsupportedProc  = 202
	ErrCodeUnsupportedVer   = 203
	ErrCodeUnknownKey       = 204
	ErrCodeDuplicateKey     = 205
	ErrCodeRecordLocked     = 206
	ErrCodeInternal         = 207
)

// ErrCodeText returns the HL7 table 0357 text of code.
func ErrCodeText(code int) string {
	switch code {
	case ErrCodeAccepted:
		return "Message accepted"
	case ErrCodeSegmentSequence:
		return "Segment sequence error"
	case ErrCodeRequiredMissing:
		return "Required field missing"
	case ErrCodeDataType:
		return "Data type error"
	case ErrCodeTableValue:
		return "Table value not found"
	case ErrCodeUnsupportedType:
		return "Unsupported message type"
	case ErrCodeUnsupportedEvent:
		return "Unsupported event code"
	case ErrCodeUnsupportedProc:
		return "Unsupported processing id"
	case ErrCodeUnsupportedVer:
		return "Unsupported version id"
	case ErrCodeUnknownKey:
		return "Unknown key identifier"
	case ErrCodeDuplicateKey:
		return "Duplicate key identifier"
	case ErrCodeRecordLocked:
		return "Application record locked"
	case ErrCodeInternal:
		return "Application internal error"
	}
	return "Error"
}

// ParseError reports malformed input: which segment and field, and why.
// Parse and the typed Parse... views return it.
type ParseError struct {
	Segment string // segment name, "" when unknown
	Index   int    // 1-based position of the segment in the message, 0 when unknown
	Field   int    // field number, 0 when the error is about the whole segment or message
	Code    int    // HL7 table 0357 code for ERR-3 (100, 101, 102, 200, 207...)
	Msg     string // what is wrong
}

func (e *ParseError) Error() string {
	switch {
	case e.Segment != "" && e.Field > 0:
		return fmt.Sprintf("hl7: %s-%d: %s", e.Segment, e.Field, e.Msg)
	case e.Segment != "":
		return fmt.Sprintf("hl7: %s: %s", e.Segment, e.Msg)
	case e.Index > 0:
		return fmt.Sprintf("hl7: segment %d: %s", e.Index, e.Msg)
	}
	return "hl7: " + e.Msg
}

// Location returns "SEG-F" (or "SEG", or "") for the error's position.
func (e *ParseError) Location() string {
	if e.Segment != "" && e.Field > 0 {
		return fmt.Sprintf("%s-%d", e.Segment, e.Field)
	}
	return e.Segment
}

func perr(seg string, idx, field, code int, format string, args ...any) *ParseError {
	return &ParseError{Segment: seg, Index: idx, Field: field, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Parse decodes an ER7 message of at most MaxMessageSize bytes. Segments may
// be separated by CR, LF or CRLF. The delimiters come from MSH-1 and MSH-2.
// Parse checks the envelope (MSH first, valid MSH-2, MSH-9 message type and
// MSH-10 control ID present, three-character upper-case alphanumeric segment
// names, no control characters, valid escape sequences), not the content of
// any message type: the typed Parse... views do that.
func Parse(b []byte) (*Message, error) { return ParseLimit(b, MaxMessageSize) }

// ParseLimit is Parse with a size cap of limit bytes (<= 0 means
// MaxMessageSize).
func ParseLimit(b []byte, limit int) (*Message, error) {
	if limit <= 0 {
		limit = MaxMessageSize
	}
	if len(b) == 0 {
		return nil, perr("", 0, 0, ErrCodeSegmentSequence, "empty message")
	}
	if len(b) > limit {
		return nil, perr("", 0, 0, ErrCodeInternal, "message of %d bytes exceeds the %d-byte limit", len(b), limit)
	}
	if !bytes.HasPrefix(b, []byte("MSH")) {
		return nil, perr("MSH", 1, 0, ErrCodeSegmentSequence, "message must start with MSH")
	}
	if len(b) < 4 || b[3] == '\r' || b[3] == '\n' {
		return nil, perr("MSH", 1, 1, ErrCodeRequiredMissing, "missing field separator")
	}
	var d Delimiters
	d.Field = b[3]
	if !validDelim(d.Field) {
		return nil, perr("MSH", 1, 1, ErrCodeDataType, "invalid field separator %q", d.Field)
	}
	enc := b[4:]
	if i := bytes.IndexAny(enc, string([]byte{d.Field, '\r', '\n'})); i >= 0 {
		enc = enc[:i]
	}
	if len(enc) < 4 || len(enc) > 5 {
		return nil, perr("MSH", 1, 2, ErrCodeDataType, "encoding characters %q: want 4 or 5 characters", enc)
	}
	d.Component, d.Repetition, d.Escape, d.Subcomponent = enc[0], enc[1], enc[2], enc[3]
	if len(enc) == 5 {
		d.Truncation = enc[4]
	}
	seen := map[byte]bool{d.Field: true}
	for _, c := range enc {
		if !validDelim(c) || seen[c] {
			return nil, perr("MSH", 1, 2, ErrCodeDataType, "invalid encoding characters %q", enc)
		}
		seen[c] = true
	}

	m := &Message{Delims: d}
	idx := 0
	for line := range splitSegments(b) {
		idx++
		seg, err := parseSegment(line, d, idx)
		if err != nil {
			return nil, err
		}
		if idx > 1 && seg.Name == "MSH" {
			return nil, perr("MSH", idx, 0, ErrCodeSegmentSequence, "second MSH segment")
		}
		m.Segs = append(m.Segs, seg)
	}
	msh := m.Segs[0]
	if msh.Field(9).Empty() {
		return nil, perr("MSH", 1, 9, ErrCodeRequiredMissing, "missing message type")
	}
	typ := m.Type()
	if !validCode(typ.Code, 3, 3) {
		return nil, perr("MSH", 1, 9, ErrCodeDataType, "bad message type %q", typ.Code)
	}
	if typ.Trigger != "" && !validCode(typ.Trigger, 1, 3) {
		return nil, perr("MSH", 1, 9, ErrCodeDataType, "bad trigger event %q", typ.Trigger)
	}
	if m.ControlID() == "" {
		return nil, perr("MSH", 1, 10, ErrCodeRequiredMissing, "missing message control ID")
	}
	return m, nil
}

// splitSegments yields the non-empty lines of b split at CR, LF or CRLF.
func splitSegments(b []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			i := bytes.IndexAny(b, "\r\n")
			var line []byte
			if i < 0 {
				line, b = b, nil
			} else {
				line, b = b[:i], b[i+1:]
			}
			if len(line) == 0 {
				continue
			}
			if !yield(line) {
				return
			}
		}
	}
}

func validDelim(c byte) bool {
	return c > ' ' && c < 0x7f && !isAlnum(c)
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func validSegName(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validCode(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

func parseSegment(line []byte, d Delimiters, idx int) (*Segment, error) {
	nameEnd := bytes.IndexByte(line, d.Field)
	if nameEnd < 0 {
		nameEnd = len(line)
	}
	name := string(line[:nameEnd])
	if !validSegName(name) {
		shown := name
		if len(shown) > 16 {
			shown = shown[:16] + "..."
		}
		return nil, perr("", idx, 0, ErrCodeSegmentSequence, "bad segment name %q", shown)
	}
	for i, c := range line {
		if c < ' ' && c != '\t' || c == 0x7f {
			field := bytes.Count(line[:i], []byte{d.Field})
			if name == "MSH" {
				field++
			}
			return nil, perr(name, idx, field, ErrCodeDataType, "control character 0x%02x", c)
		}
	}
	seg := &Segment{Name: name}
	rest := string(line[nameEnd:])
	fieldNo := 1
	if name == "MSH" {
		// A repeated MSH (a second message glued to the first) must carry
		// the separator too.
		if rest == "" {
			return nil, perr(name, idx, 1, ErrCodeRequiredMissing, "MSH without field separator")
		}
		// MSH-1 is the separator itself, MSH-2 the encoding characters.
		enc := rest[1:]
		if i := strings.IndexByte(enc, d.Field); i >= 0 {
			enc, rest = enc[:i], enc[i:]
		} else {
			rest = ""
		}
		seg.Fields = append(seg.Fields, F(string(d.Field)), F(enc))
		fieldNo = 3
	}
	if rest != "" {
		rest = rest[1:] // drop the separator after the name (or MSH-2)
		for _, raw := range strings.Split(rest, string(d.Field)) {
			f, err := parseField(raw, d)
			if err != nil {
				return nil, perr(name, idx, fieldNo, ErrCodeDataType, "%v", err)
			}
			seg.Fields = append(seg.Fields, f)
			fieldNo++
		}
	}
	seg.trim()
	return seg, nil
}

func parseField(raw string, d Delimiters) (Field, error) {
	if raw == "" {
		return nil, nil
	}
	reps := strings.Split(raw, string(d.Repetition))
	f := make(Field, len(reps))
	for i, r := range reps {
		comps := strings.Split(r, string(d.Component))
		rep := make([][]string, len(comps))
		for j, c := range comps {
			subs := strings.Split(c, string(d.Subcomponent))
			for k, s := range subs {
				v, err := d.unescape(s)
				if err != nil {
					return nil, err
				}
				subs[k] = v
			}
			rep[j] = subs
		}
		f[i] = rep
	}
	return canonField(f), nil
}

// preservedEscape reports whether content (between two escape characters)
// is an escape kept verbatim: \H\ \N\ (highlighting), \Xhh..\ \Zxx..\
// \Cxxxx\ \Mxxxxxx\ (hex data, locally defined, character sets) and
// formatting commands such as \.br\ or \.sp2\.
func preservedEscape(content string) bool {
	if content == "" {
		return false
	}
	switch content[0] {
	case 'H', 'N':
		return len(content) == 1
	case 'X', 'Z', 'C', 'M':
		for i := 1; i < len(content); i++ {
			if !isAlnum(content[i]) {
				return false
			}
		}
		return true
	case '.':
		if len(content) < 2 {
			return false
		}
		for i := 1; i < len(content); i++ {
			c := content[i]
			if !isAlnum(c) && c != '+' && c != '-' {
				return false
			}
		}
		return true
	}
	return false
}

// unescape decodes \F\ \S\ \T\ \R\ \E\ (and \P\ when a truncation character
// is declared); preserved escapes stay verbatim; anything else is an error.
func (d Delimiters) unescape(s string) (string, error) {
	if strings.IndexByte(s, d.Escape) < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != d.Escape {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+1:], d.Escape)
		if end < 0 {
			return "", fmt.Errorf("unterminated escape sequence at %q", clip(s[i:]))
		}
		content := s[i+1 : i+1+end]
		switch {
		case content == "F":
			b.WriteByte(d.Field)
		case content == "S":
			b.WriteByte(d.Component)
		case content == "T":
			b.WriteByte(d.Subcomponent)
		case content == "R":
			b.WriteByte(d.Repetition)
		case content == "E":
			b.WriteByte(d.Escape)
		case content == "P" && d.Truncation != 0:
			b.WriteByte(d.Truncation)
		case preservedEscape(content):
			b.WriteByte(d.Escape)
			b.WriteString(content)
			b.WriteByte(d.Escape)
		default:
			return "", fmt.Errorf("bad escape sequence %q", clip(s[i:i+2+end]))
		}
		i += end + 1
	}
	return b.String(), nil
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

// escape encodes the delimiters in s; escape sequences that unescape keeps
// verbatim (\H\, \X0D\, ...) are written verbatim too, so that decoding the
// result gives s back.
func (d Delimiters) escape(s string) string {
	if strings.IndexFunc(s, func(r rune) bool {
		return r < 0x20 && r != '\t' || r == 0x7f || r < 0x80 && d.special(byte(r))
	}) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == d.Escape:
			if end := strings.IndexByte(s[i+1:], d.Escape); end >= 0 && preservedEscape(s[i+1:i+1+end]) {
				b.WriteString(s[i : i+2+end])
				i += end + 1
				continue
			}
			b.WriteByte(d.Escape)
			b.WriteByte('E')
			b.WriteByte(d.Escape)
		case c == d.Field:
			b.WriteByte(d.Escape)
			b.WriteByte('F')
			b.WriteByte(d.Escape)
		case c == d.Component:
			b.WriteByte(d.Escape)
			b.WriteByte('S')
			b.WriteByte(d.Escape)
		case c == d.Subcomponent:
			b.WriteByte(d.Escape)
			b.WriteByte('T')
			b.WriteByte(d.Escape)
		case c == d.Repetition:
			b.WriteByte(d.Escape)
			b.WriteByte('R')
			b.WriteByte(d.Escape)
		case d.Truncation != 0 && c == d.Truncation:
			b.WriteByte(d.Escape)
			b.WriteByte('P')
			b.WriteByte(d.Escape)
		case c < 0x20 && c != '\t' || c == 0x7f:
			// Control characters (CR, LF...) cannot appear in ER7: write
			// them as hex data, which decodes verbatim as \Xhh\.
			const hex = "0123456789ABCDEF"
			b.WriteByte(d.Escape)
			b.WriteByte('X')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			b.WriteByte(d.Escape)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (d Delimiters) special(c byte) bool {
	return c == d.Escape || c == d.Field || c == d.Component || c == d.Subcomponent ||
		c == d.Repetition || (d.Truncation != 0 && c == d.Truncation)
}
