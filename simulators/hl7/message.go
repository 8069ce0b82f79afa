package hl7

import (
	"fmt"
	"strings"
)

// MaxMessageSize is the default size cap, in bytes, for a message (Parse) and
// an MLLP frame (ReadFrame, Server, Client).
const MaxMessageSize = 1 << 20

// Delimiters are the ER7 separators announced in MSH-1 and MSH-2.
type Delimiters struct {
	Field        byte // MSH-1, usually '|'
	Component    byte // usually '^'
	Repetition   byte // usually '~'
	Escape       byte // usually '\\'
	Subcomponent byte // usually '&'
	// Truncation is the optional fifth MSH-2 character (v2.7 '#'); 0 when
	// MSH-2 has four characters.
	Truncation byte
}

// DefaultDelimiters are `|^~\&`.
var DefaultDelimiters = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// EncodingChars returns the MSH-2 value of d.
func (d Delimiters) EncodingChars() string {
	s := string([]byte{d.Component, d.Repetition, d.Escape, d.Subcomponent})
	if d.Truncation != 0 {
		s += string(d.Truncation)
	}
	return s
}

func (d Delimiters) isZero() bool { return d.Field == 0 }

// Field is one field value: repetitions of components of subcomponents, each
// leaf decoded (no escape sequences). An empty field has no repetitions.
// Values are kept canonical by the codec: trailing empty repetitions,
// components and subcomponents are dropped.
type Field [][][]string

// F returns a field holding the single value v (empty for "").
func F(v string) Field {
	if v == "" {
		return nil
	}
	return Field{{{v}}}
}

// C returns a field with one repetition made of the given components.
func C(comps ...string) Field {
	rep := make([][]string, len(comps))
	for i, c := range comps {
		if c != "" {
			rep[i] = []string{c}
		}
	}
	return canonField(Field{rep})
}

// R returns a field whose repetitions are the first repetition of each given
// field, in order.
func R(reps ...Field) Field {
	var f Field
	for _, r := range reps {
		if len(r) == 0 {
			f = append(f, nil)
			continue
		}
		f = append(f, Field{r[0]}.clone()[0])
	}
	return canonField(f)
}

// At returns the decoded leaf at repetition r, component c, subcomponent s
// (all 1-based), or "" when absent.
func (f Field) At(r, c, s int) string {
	if r < 1 || c < 1 || s < 1 || r > len(f) {
		return ""
	}
	rep := f[r-1]
	if c > len(rep) {
		return ""
	}
	comp := rep[c-1]
	if s > len(comp) {
		return ""
	}
	return comp[s-1]
}

// Value returns the first leaf of the field.
func (f Field) Value() string { return f.At(1, 1, 1) }

// Comp returns component c (1-based) of the first repetition.
func (f Field) Comp(c int) string { return f.At(1, c, 1) }

// Reps returns the number of repetitions.
func (f Field) Reps() int { return len(f) }

// Rep returns repetition r (1-based) as a field of its own.
func (f Field) Rep(r int) Field {
	if r < 1 || r > len(f) {
		return nil
	}
	return canonField(Field{f[r-1]}.clone())
}

// Empty reports whether the field has no value.
func (f Field) Empty() bool {
	for _, rep := range f {
		for _, comp := range rep {
			for _, v := range comp {
				if v != "" {
					return false
				}
			}
		}
	}
	return true
}

// atomic reports whether the field is at most one leaf.
func (f Field) atomic() bool {
	return len(f) <= 1 && (len(f) == 0 || len(f[0]) <= 1 && (len(f[0]) == 0 || len(f[0][0]) <= 1))
}

func (f Field) clone() Field {
	if f == nil {
		return nil
	}
	out := make(Field, len(f))
	for i, rep := range f {
		if rep == nil {
			continue
		}
		out[i] = make([][]string, len(rep))
		for j, comp := range rep {
			if comp != nil {
				out[i][j] = append([]string(nil), comp...)
			}
		}
	}
	return out
}

// canonField drops trailing empty subcomponents, components and repetitions.
// It rewrites f in place: call it only on data being written, never on a
// read path (messages may be read concurrently).
func canonField(f Field) Field {
	for i, rep := range f {
		for j, comp := range rep {
			n := len(comp)
			for n > 0 && comp[n-1] == "" {
				n--
			}
			if n == 0 {
				rep[j] = nil
			} else {
				rep[j] = comp[:n]
			}
		}
		n := len(rep)
		for n > 0 && len(rep[n-1]) == 0 {
			n--
		}
		if n == 0 {
			f[i] = nil
		} else {
			f[i] = rep[:n]
		}
	}
	n := len(f)
	for n > 0 && len(f[n-1]) == 0 {
		n--
	}
	if n == 0 {
		return nil
	}
	return f[:n]
}

// Segment is one segment: its three-character name and its fields.
// Fields[0] is field 1. For MSH, Fields[0] is MSH-1 (the field separator)
// and Fields[1] is MSH-2 (the encoding characters); both are rewritten from
// the message's Delimiters when encoding.
type Segment struct {
	Name   string
	Fields []Field
}

// NewSegment returns a segment with the given fields (fields[0] is field 1).
func NewSegment(name string, fields ...Field) *Segment {
	for i := range fields {
		// Canonicalise a copy: callers pass shared values (package-level
		// codes such as UnknownDrug) that other goroutines encode at the
		// same time.
		fields[i] = canonField(fields[i].clone())
	}
	s := &Segment{Name: name, Fields: fields}
	s.trim()
	return s
}

// Field returns field n (1-based), or nil when absent.
func (s *Segment) Field(n int) Field {
	if s == nil || n < 1 || n > len(s.Fields) {
		return nil
	}
	return s.Fields[n-1]
}

// Value returns the first leaf of field n.
func (s *Segment) Value(n int) string { return s.Field(n).Value() }

// Comp returns component c of the first repetition of field n.
func (s *Segment) Comp(n, c int) string { return s.Field(n).Comp(c) }

// SetField replaces field n (1-based), growing the segment as needed.
func (s *Segment) SetField(n int, f Field) {
	if n < 1 {
		return
	}
	for len(s.Fields) < n {
		s.Fields = append(s.Fields, nil)
	}
	s.Fields[n-1] = canonField(f)
	s.trim()
}

func (s *Segment) trim() {
	n := len(s.Fields)
	for n > 0 && s.Fields[n-1].Empty() {
		n--
	}
	if n == 0 {
		s.Fields = nil
		return
	}
	s.Fields = s.Fields[:n]
}

func (s *Segment) clone() *Segment {
	out := &Segment{Name: s.Name, Fields: make([]Field, len(s.Fields))}
	for i, f := range s.Fields {
		out.Fields[i] = f.clone()
	}
	return out
}

// Message is a decoded HL7 v2 message.
type Message struct {
	// Delims are the separators used to encode the message; zero means
	// DefaultDelimiters.
	Delims Delimiters
	// Segs are the segments in order; Segs[0] is MSH.
	Segs []*Segment
}

// NewMessage returns a message made of the given segments, using the default
// delimiters.
func NewMessage(segs ...*Segment) *Message {
	return &Message{Delims: DefaultDelimiters, Segs: segs}
}

func (m *Message) delims() Delimiters {
	if m.Delims.isZero() {
		return DefaultDelimiters
	}
	return m.Delims
}

// Add appends segments.
func (m *Message) Add(segs ...*Segment) { m.Segs = append(m.Segs, segs...) }

// Segment returns the first segment called name, or nil.
func (m *Message) Segment(name string) *Segment {
	for _, s := range m.Segs {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Segments returns every segment called name, in order.
func (m *Message) Segments(name string) []*Segment {
	var out []*Segment
	for _, s := range m.Segs {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Clone returns a deep copy of m.
func (m *Message) Clone() *Message {
	out := &Message{Delims: m.Delims, Segs: make([]*Segment, len(m.Segs))}
	for i, s := range m.Segs {
		out.Segs[i] = s.clone()
	}
	return out
}

// MessageType is MSH-9: message code, trigger event and structure.
type MessageType struct {
	Code, Trigger, Structure string
}

// String returns "CODE^TRIGGER" (or "CODE" without a trigger).
func (t MessageType) String() string {
	if t.Trigger == "" {
		return t.Code
	}
	return t.Code + "^" + t.Trigger
}

// Is reports whether the type is code^trigger.
func (t MessageType) Is(code, trigger string) bool { return t.Code == code && t.Trigger == trigger }

// Type returns MSH-9.
func (m *Message) Type() MessageType {
	f := m.Segment("MSH").Field(9)
	return MessageType{Code: f.Comp(1), Trigger: f.Comp(2), Structure: f.Comp(3)}
}

// ControlID returns MSH-10.
func (m *Message) ControlID() string { return m.Segment("MSH").Value(10) }

// Path addresses a value: segment (and its occurrence), field, repetition,
// component, subcomponent. Zero indexes mean "first" for the segment
// occurrence and "whole" for repetition, component and subcomponent.
type Path struct {
	Segment  string
	SegIndex int // 1-based occurrence of the segment; 0 = first
	Field    int // 1-based
	Rep      int // 1-based; 0 = all repetitions (or the first when Comp > 0)
	Comp     int // 1-based; 0 = whole repetition
	Sub      int // 1-based; 0 = whole component
}

// ParsePath parses "SEG[(n)]-F[(r)][.C[.S]]", e.g. "MSH-10", "OBX-18.1",
// "PID-3(2).1", "OBX(2)-5.1.1". Square brackets may replace parentheses.
func ParsePath(s string) (Path, error) {
	var p Path
	bad := func(why string) (Path, error) { return Path{}, fmt.Errorf("hl7: path %q: %s", s, why) }
	if len(s) < 5 {
		return bad("too short")
	}
	p.Segment = s[:3]
	if !validSegName(p.Segment) {
		return bad("bad segment name")
	}
	rest := s[3:]
	var err error
	if p.SegIndex, rest, err = pathIndex(rest); err != nil {
		return bad(err.Error())
	}
	if rest == "" || rest[0] != '-' {
		return bad("missing -field")
	}
	rest = rest[1:]
	if p.Field, rest, err = pathNum(rest); err != nil {
		return bad("field: " + err.Error())
	}
	if p.Rep, rest, err = pathIndex(rest); err != nil {
		return bad(err.Error())
	}
	if rest != "" {
		if rest[0] != '.' {
			return bad("unexpected " + rest)
		}
		if p.Comp, rest, err = pathNum(rest[1:]); err != nil {
			return bad("component: " + err.Error())
		}
	}
	if rest != "" {
		if rest[0] != '.' {
			return bad("unexpected " + rest)
		}
		if p.Sub, rest, err = pathNum(rest[1:]); err != nil {
			return bad("subcomponent: " + err.Error())
		}
	}
	if rest != "" {
		return bad("unexpected " + rest)
	}
	return p, nil
}

func pathNum(s string) (int, string, error) {
	n, i := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		n = n*10 + int(s[i]-'0')
		if n > 1<<20 {
			return 0, s, fmt.Errorf("number too large")
		}
		i++
	}
	if i == 0 || n == 0 {
		return 0, s, fmt.Errorf("want a number >= 1")
	}
	return n, s[i:], nil
}

func pathIndex(s string) (int, string, error) {
	if s == "" || (s[0] != '(' && s[0] != '[') {
		return 0, s, nil
	}
	closer := byte(')')
	if s[0] == '[' {
		closer = ']'
	}
	n, rest, err := pathNum(s[1:])
	if err != nil {
		return 0, s, fmt.Errorf("index: %v", err)
	}
	if rest == "" || rest[0] != closer {
		return 0, s, fmt.Errorf("index: missing %c", closer)
	}
	return n, rest[1:], nil
}

// String formats the path.
func (p Path) String() string {
	var b strings.Builder
	b.WriteString(p.Segment)
	if p.SegIndex > 0 {
		fmt.Fprintf(&b, "(%d)", p.SegIndex)
	}
	fmt.Fprintf(&b, "-%d", p.Field)
	if p.Rep > 0 {
		fmt.Fprintf(&b, "(%d)", p.Rep)
	}
	if p.Comp > 0 {
		fmt.Fprintf(&b, ".%d", p.Comp)
		if p.Sub > 0 {
			fmt.Fprintf(&b, ".%d", p.Sub)
		}
	}
	return b.String()
}

func (m *Message) segAt(p Path) *Segment {
	n := p.SegIndex
	if n == 0 {
		n = 1
	}
	for _, s := range m.Segs {
		if s.Name == p.Segment {
			n--
			if n == 0 {
				return s
			}
		}
	}
	return nil
}

// Field returns the field addressed by path (its segment, occurrence and
// field number; the rest of the path is ignored), or nil.
func (m *Message) Field(path string) Field {
	p, err := ParsePath(path)
	if err != nil {
		return nil
	}
	return m.segAt(p).Field(p.Field)
}

// Get returns the value at path, or "" when absent or the path is invalid.
// A leaf (or an element holding a single leaf) comes back decoded; an element
// with inner structure (several components, subcomponents or repetitions)
// comes back in ER7 form, escaped, as on the wire. Without a repetition
// index, "SEG-F" is the whole field (all repetitions) and "SEG-F.C" reads the
// first repetition.
func (m *Message) Get(path string) string {
	p, err := ParsePath(path)
	if err != nil {
		return ""
	}
	if p.Segment == "MSH" && (p.Field == 1 || p.Field == 2) {
		d := m.delims()
		if p.Field == 1 {
			return string(d.Field)
		}
		return d.EncodingChars()
	}
	f := m.segAt(p).Field(p.Field)
	d := m.delims()
	if p.Comp == 0 {
		if p.Rep > 0 {
			f = f.Rep(p.Rep)
		}
		if f.atomic() {
			return f.Value()
		}
		return d.EncodeField(f)
	}
	r := p.Rep
	if r == 0 {
		r = 1
	}
	if r > len(f) || p.Comp > len(f[r-1]) {
		return ""
	}
	comp := f[r-1][p.Comp-1]
	if p.Sub > 0 {
		if p.Sub > len(comp) {
			return ""
		}
		return comp[p.Sub-1]
	}
	if len(comp) <= 1 {
		if len(comp) == 0 {
			return ""
		}
		return comp[0]
	}
	parts := make([]string, len(comp))
	for i, s := range comp {
		parts[i] = d.escape(s)
	}
	return strings.Join(parts, string(d.Subcomponent))
}

// Set stores the (unescaped) value v at path, growing fields, repetitions and
// components as needed. The segment must exist. MSH-1 and MSH-2 cannot be set
// (change Delims instead).
func (m *Message) Set(path, v string) error {
	p, err := ParsePath(path)
	if err != nil {
		return err
	}
	return m.set(p, v, nil)
}

// SetField replaces the whole field addressed by path (repetition, component
// and subcomponent indexes are ignored).
func (m *Message) SetField(path string, f Field) error {
	p, err := ParsePath(path)
	if err != nil {
		return err
	}
	p.Rep, p.Comp, p.Sub = 0, 0, 0
	return m.set(p, "", f.clone())
}

func (m *Message) set(p Path, v string, whole Field) error {
	if p.Segment == "MSH" && (p.Field == 1 || p.Field == 2) {
		return fmt.Errorf("hl7: set %s: MSH-1 and MSH-2 follow Delims", p)
	}
	s := m.segAt(p)
	if s == nil {
		return fmt.Errorf("hl7: set %s: no such segment", p)
	}
	if p.Comp == 0 && p.Rep == 0 {
		if whole == nil {
			whole = F(v)
		}
		s.SetField(p.Field, whole)
		return nil
	}
	f := s.Field(p.Field).clone()
	r := max(p.Rep, 1)
	for len(f) < r {
		f = append(f, nil)
	}
	if p.Comp == 0 {
		f[r-1] = [][]string{{v}}
		s.SetField(p.Field, f)
		return nil
	}
	for len(f[r-1]) < p.Comp {
		f[r-1] = append(f[r-1], nil)
	}
	if p.Sub == 0 {
		f[r-1][p.Comp-1] = []string{v}
	} else {
		comp := f[r-1][p.Comp-1]
		for len(comp) < p.Sub {
			comp = append(comp, "")
		}
		comp[p.Sub-1] = v
		f[r-1][p.Comp-1] = comp
	}
	s.SetField(p.Field, f)
	return nil
}

// Bytes encodes the message in ER7, segments separated by CR (no trailing
// CR after the last segment).
func (m *Message) Bytes() []byte {
	d := m.delims()
	var b strings.Builder
	for i, s := range m.Segs {
		if i > 0 {
			b.WriteByte('\r')
		}
		b.WriteString(s.Name)
		start := 0
		if s.Name == "MSH" {
			b.WriteByte(d.Field)
			b.WriteString(d.EncodingChars())
			start = 2
		}
		n := len(s.Fields)
		for n > start && s.Fields[n-1].Empty() {
			n--
		}
		for j := start; j < n; j++ {
			b.WriteByte(d.Field)
			b.WriteString(d.EncodeField(s.Fields[j]))
		}
	}
	return []byte(b.String())
}

// String returns the ER7 encoding with segments on separate lines ("\n"),
// for logs and test output.
func (m *Message) String() string {
	return strings.ReplaceAll(string(m.Bytes()), "\r", "\n")
}

// EncodeField returns the ER7 text of f with d's separators and escapes.
func (d Delimiters) EncodeField(f Field) string {
	var b strings.Builder
	for i, rep := range f {
		if i > 0 {
			b.WriteByte(d.Repetition)
		}
		n := len(rep)
		for n > 0 && len(rep[n-1]) == 0 {
			n--
		}
		for j := 0; j < n; j++ {
			if j > 0 {
				b.WriteByte(d.Component)
			}
			comp := rep[j]
			k := len(comp)
			for k > 0 && comp[k-1] == "" {
				k--
			}
			for l := 0; l < k; l++ {
				if l > 0 {
					b.WriteByte(d.Subcomponent)
				}
				b.WriteString(d.escape(comp[l]))
			}
		}
	}
	return b.String()
}
