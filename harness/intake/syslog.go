package intake

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pumplab/pumplab/harness/score"
)

// SDID is the structured-data id the lab reads alert fields from (32473 is
// the example enterprise number of RFC 5612). Any "pumplab@<number>" and a
// bare "pumplab" are read the same way; other SD elements are parsed and
// ignored.
const SDID = "pumplab@32473"

// SDParams are the parameters of the pumplab SD element. technique,
// tactic, asset and address may repeat; any other parameter refuses the
// message.
var SDParams = []string{"tool", "technique", "tactic", "asset", "address", "severity", "category", "telemetry"}

// SyslogMessage is a parsed RFC 5424 message.
type SyslogMessage struct {
	Priority  int       // PRI: Facility*8 + Severity
	Version   int       // always 1
	Timestamp time.Time // zero for the NILVALUE
	Hostname  string    // "" for the NILVALUE, also below
	AppName   string
	ProcID    string
	MsgID     string
	SD        []SDElement
	Msg       string // without a leading UTF-8 BOM
}

// SDElement is one structured-data element.
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one PARAM-NAME="PARAM-VALUE" pair, the value unescaped.
type SDParam struct{ Name, Value string }

// Facility and Severity split the PRI.
func (m *SyslogMessage) Facility() int { return m.Priority / 8 }

// Severity is the syslog severity 0 (emergency) .. 7 (debug).
func (m *SyslogMessage) Severity() int { return m.Priority % 8 }

var severityNames = [8]string{"emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"}

type sysParser struct {
	b []byte
	i int
}

func (p *sysParser) eof() bool { return p.i >= len(p.b) }

// sp consumes the single space that ends field.
func (p *sysParser) sp(field string) error {
	if p.eof() {
		return derr(field, "message ends after it, want SP and the next field")
	}
	if p.b[p.i] != ' ' {
		return derr(field, "want SP after it, got %q", p.b[p.i])
	}
	p.i++
	return nil
}

// token reads a header field: "-" (returns "") or 1..max PRINTUSASCII.
func (p *sysParser) token(field string, max int) (string, error) {
	start := p.i
	for !p.eof() && p.b[p.i] != ' ' {
		c := p.b[p.i]
		if c < 33 || c > 126 {
			return "", derr(field, "byte 0x%02x at offset %d, want printable US-ASCII", c, p.i)
		}
		p.i++
	}
	tok := string(p.b[start:p.i])
	switch {
	case tok == "":
		return "", derr(field, "empty at offset %d, want a value or -", start)
	case len(tok) > max:
		return "", derr(field, "%d characters, more than %d", len(tok), max)
	case tok == "-":
		return "", nil
	}
	return tok, nil
}

// ParseSyslog parses one RFC 5424 message (without transport framing; a
// trailing LF, CR LF or NUL is ignored). Errors are *DecodeError naming the
// header field (PRI, VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID,
// STRUCTURED-DATA).
func ParseSyslog(msg []byte) (*SyslogMessage, error) {
	msg = bytes.TrimRight(msg, "\r\n\x00")
	p := &sysParser{b: msg}
	m := &SyslogMessage{}
	if p.eof() {
		return nil, derr("PRI", "empty message")
	}
	if p.b[0] != '<' {
		return nil, derr("PRI", "message starts with %q, want '<'", p.b[0])
	}
	p.i = 1
	start := p.i
	for !p.eof() && p.b[p.i] >= '0' && p.b[p.i] <= '9' && p.i-start < 4 {
		p.i++
	}
	digits := string(p.b[start:p.i])
	if digits == "" || len(digits) > 3 || p.eof() || p.b[p.i] != '>' {
		return nil, derr("PRI", "want <0> .. <191>")
	}
	m.Priority, _ = strconv.Atoi(digits)
	if m.Priority > 191 {
		return nil, derr("PRI", "%d out of range 0..191", m.Priority)
	}
	p.i++
	start = p.i
	for !p.eof() && p.b[p.i] >= '0' && p.b[p.i] <= '9' && p.i-start < 4 {
		p.i++
	}
	if p.i == start {
		return nil, derr("VERSION", "missing after PRI: RFC 3164 (BSD) syslog is not supported, send RFC 5424 (logger --rfc5424)")
	}
	if v := string(p.b[start:p.i]); v != "1" {
		return nil, derr("VERSION", "%q unsupported, want 1", v)
	}
	m.Version = 1
	if err := p.sp("VERSION"); err != nil {
		return nil, err
	}
	ts, err := p.token("TIMESTAMP", 64)
	if err != nil {
		return nil, err
	}
	if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, derr("TIMESTAMP", "%s is not an RFC 3339 time", quote(ts))
		}
		m.Timestamp = t
	}
	fields := []struct {
		name string
		max  int
		dst  *string
	}{
		{"HOSTNAME", 255, &m.Hostname},
		{"APP-NAME", 48, &m.AppName},
		{"PROCID", 128, &m.ProcID},
		{"MSGID", 32, &m.MsgID},
	}
	prev := "TIMESTAMP"
	for _, f := range fields {
		if err := p.sp(prev); err != nil {
			return nil, err
		}
		if *f.dst, err = p.token(f.name, f.max); err != nil {
			return nil, err
		}
		prev = f.name
	}
	if err := p.sp("MSGID"); err != nil {
		return nil, err
	}
	if m.SD, err = p.structuredData(); err != nil {
		return nil, err
	}
	if !p.eof() {
		if p.b[p.i] != ' ' {
			return nil, derr("STRUCTURED-DATA", "want SP or end after it, got %q at offset %d", p.b[p.i], p.i)
		}
		rest := p.b[p.i+1:]
		rest = bytes.TrimPrefix(rest, []byte("\xEF\xBB\xBF"))
		m.Msg = strings.ToValidUTF8(string(rest), "\uFFFD")
	}
	return m, nil
}

func isSDName(c byte) bool { return c >= 33 && c <= 126 && c != '=' && c != ']' && c != '"' }

func (p *sysParser) sdName(what string) (string, error) {
	start := p.i
	for !p.eof() && isSDName(p.b[p.i]) {
		p.i++
	}
	n := string(p.b[start:p.i])
	if n == "" {
		if p.eof() {
			return "", derr("STRUCTURED-DATA", "message ends where %s is expected", what)
		}
		return "", derr("STRUCTURED-DATA", "want %s at offset %d, got %q", what, start, p.b[start])
	}
	if len(n) > 32 {
		return "", derr("STRUCTURED-DATA", "%s %s longer than 32", what, quote(n))
	}
	return n, nil
}

func (p *sysParser) structuredData() ([]SDElement, error) {
	if p.eof() {
		return nil, derr("STRUCTURED-DATA", "missing, want - or [id ...]")
	}
	if p.b[p.i] == '-' {
		p.i++
		return nil, nil
	}
	if p.b[p.i] != '[' {
		return nil, derr("STRUCTURED-DATA", "want - or '[', got %q", p.b[p.i])
	}
	var out []SDElement
	for !p.eof() && p.b[p.i] == '[' {
		p.i++
		id, err := p.sdName("SD-ID")
		if err != nil {
			return nil, err
		}
		el := SDElement{ID: id}
		for {
			if p.eof() {
				return nil, derr("STRUCTURED-DATA", "element [%s not closed with ']'", id)
			}
			c := p.b[p.i]
			if c == ']' {
				p.i++
				break
			}
			if c != ' ' {
				return nil, derr("STRUCTURED-DATA", "[%s: want SP or ']' at offset %d, got %q", id, p.i, c)
			}
			p.i++
			name, err := p.sdName("PARAM-NAME")
			if err != nil {
				return nil, err
			}
			if p.eof() || p.b[p.i] != '=' {
				return nil, derr("STRUCTURED-DATA", "[%s %s: want '=\"value\"'", id, name)
			}
			p.i++
			if p.eof() || p.b[p.i] != '"' {
				return nil, derr("STRUCTURED-DATA", "[%s %s: value must be in double quotes", id, name)
			}
			p.i++
			var val []byte
			closed := false
			for !p.eof() {
				c := p.b[p.i]
				if c == '\\' && p.i+1 < len(p.b) && (p.b[p.i+1] == '"' || p.b[p.i+1] == '\\' || p.b[p.i+1] == ']') {
					val = append(val, p.b[p.i+1])
					p.i += 2
					continue
				}
				p.i++
				if c == '"' {
					closed = true
					break
				}
				val = append(val, c)
			}
			if !closed {
				return nil, derr("STRUCTURED-DATA", "[%s %s: value not closed with '\"'", id, name)
			}
			if !utf8.Valid(val) {
				return nil, derr("STRUCTURED-DATA", "[%s %s: value not valid UTF-8", id, name)
			}
			el.Params = append(el.Params, SDParam{Name: name, Value: string(val)})
		}
		out = append(out, el)
	}
	return out, nil
}

// isLabSDID reports whether an SD-ID is the lab's element.
func isLabSDID(id string) bool {
	if id == "pumplab" {
		return true
	}
	num, ok := strings.CutPrefix(id, "pumplab@")
	if !ok || num == "" {
		return false
	}
	for _, c := range num {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

// Alert maps the message to an alert: Tool is the tool param of the
// pumplab SD element, else APP-NAME; Severity the severity param, else the
// name of the PRI severity; Reported the TIMESTAMP; Text the MSG; Raw the
// whole message as given to ParseSyslog. Time and Source are left for the
// caller.
func (m *SyslogMessage) Alert(raw []byte) (score.Alert, error) {
	a := score.Alert{Tool: m.AppName, Reported: m.Timestamp, Text: m.Msg}
	a.Severity = severityNames[m.Severity()]
	for _, el := range m.SD {
		if !isLabSDID(el.ID) {
			continue
		}
		path := "SD " + el.ID
		for _, prm := range el.Params {
			pp := path + " " + prm.Name
			v := prm.Value
			switch prm.Name {
			case "tool":
				a.Tool = v
			case "technique":
				a.Techniques = append(a.Techniques, v)
			case "tactic":
				a.Tactics = append(a.Tactics, v)
			case "asset":
				a.Assets = append(a.Assets, v)
			case "address":
				a.Addresses = append(a.Addresses, v)
			case "severity":
				a.Severity = v
			case "category":
				a.Category = v
			case "telemetry":
				b, err := strconv.ParseBool(v)
				if err != nil {
					return a, derr(pp, "%s, want true or false", quote(v))
				}
				a.Telemetry = b
			default:
				return a, derr(path, "unknown param %s (known: %s)", quote(prm.Name), strings.Join(SDParams, ", "))
			}
		}
	}
	labPath := "SD " + SDID
	if a.Tool == "" {
		return a, derr("APP-NAME", "nil and no tool param in [%s ...]: the alert names no tool", SDID)
	}
	checks := []error{
		checkTool("tool (APP-NAME or SD tool)", a.Tool),
		checkList(labPath+" technique", a.Techniques, checkTechnique),
		checkList(labPath+" tactic", a.Tactics, checkTactic),
		checkList(labPath+" asset", a.Assets, nil),
		checkList(labPath+" address", a.Addresses, checkAddress),
		checkShort(labPath+" severity", a.Severity),
		checkShort(labPath+" category", a.Category),
		checkString("MSG", a.Text, MaxTextLen, true),
	}
	for _, err := range checks {
		if err != nil {
			return a, err
		}
	}
	raw = bytes.TrimRight(raw, "\r\n\x00")
	if len(raw) > MaxRawLen {
		raw = raw[:MaxRawLen]
	}
	a.Raw = strings.ToValidUTF8(string(raw), "\uFFFD")
	return a, nil
}

// DecodeSyslog parses one message and maps it to an alert.
func DecodeSyslog(msg []byte) (score.Alert, error) {
	m, err := ParseSyslog(msg)
	if err != nil {
		return score.Alert{}, err
	}
	return m.Alert(msg)
}

// String renders the message back in RFC 5424 form (for tests and docs).
func (m *SyslogMessage) String() string {
	nil_ := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	ts := "-"
	if !m.Timestamp.IsZero() {
		ts = m.Timestamp.Format(time.RFC3339Nano)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s %s %s %s ", m.Priority, ts, nil_(m.Hostname), nil_(m.AppName), nil_(m.ProcID), nil_(m.MsgID))
	if len(m.SD) == 0 {
		b.WriteString("-")
	}
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)
	for _, el := range m.SD {
		b.WriteString("[" + el.ID)
		for _, p := range el.Params {
			fmt.Fprintf(&b, ` %s="%s"`, p.Name, esc.Replace(p.Value))
		}
		b.WriteString("]")
	}
	if m.Msg != "" {
		b.WriteString(" " + m.Msg)
	}
	return b.String()
}
