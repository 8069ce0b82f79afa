// Package toolspec reads tool manifests: YAML files that describe a security
// tool under test (a detector or an inline control) to the lab — how to start
// it, what it reads, how it reports its alerts and what it claims to cover
// (docs/tools.md). Parsing is strict: an unknown key, a wrong type or a
// missing field is an error that names the file, the line and the field.
package toolspec

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Kinds of tool.
const (
	KindDetector      = "detector"       // watches and alerts
	KindInlineControl = "inline-control" // sits on a path and may block
)

// When a tool runs.
const (
	WhenDuring = "during" // started before the first scenario, stopped after the last
	WhenAfter  = "after"  // started once the suite is over, on the run's pcap (offline analysis)
)

// Inputs a tool may read (Manifest.Reads).
const (
	ReadPcap        = "pcap"         // the run's traffic.pcapng ($PUMPLAB_PCAP; growing during the run)
	ReadInterface   = "interface"    // the live capture interface ($PUMPLAB_INTERFACE)
	ReadMQTTMonitor = "mqtt-monitor" // the broker with the monitor credential ($PUMPLAB_LAB_EVENTS)
	ReadSyslog      = "syslog"       // the lab's audit syslog feed
	ReadLabEvents   = "lab-events"   // lab start/stop records with endpoints ($PUMPLAB_LAB_EVENTS)
)

// Ways a tool reports (Report.Via).
const (
	ViaHTTP   = "http"   // POST $PUMPLAB_ALERTS_URL
	ViaSyslog = "syslog" // RFC 5424 to $PUMPLAB_SYSLOG_TCP or $PUMPLAB_SYSLOG_UDP
	ViaFile   = "file"   // a JSON-lines or eve.json file the tool writes (Report.Path)
)

// Manifest is one tool under test.
type Manifest struct {
	// File is the manifest's path (set by Load).
	File string `json:"file,omitempty"`
	// Name is the tool's name: the `tool` field of its alerts and its row in
	// the scorecard. Letters, digits, '-', '_', '.'; at most 64 bytes.
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// Kind is KindDetector or KindInlineControl.
	Kind  string   `json:"kind"`
	Start Start    `json:"start"`
	Reads []string `json:"reads"`
	// Report says how alerts reach the lab.
	Report Report `json:"report"`
	// Scope is what the tool claims; steps outside it are Not Applicable.
	Scope Scope `json:"scope"`
}

// Start says how the lab starts the tool.
type Start struct {
	// Command is the program (looked up in PATH) and Args its arguments;
	// both may use ${VAR} for the variables of docs/tools.md.
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// Dir is the working directory; relative to the manifest's directory;
	// default the manifest's directory.
	Dir string `json:"dir,omitempty"`
	// Image is a container image, for the container lab.
	Image string `json:"image,omitempty"`
	// When is WhenDuring (default) or WhenAfter.
	When string `json:"when"`
	// Ready is a line the tool writes to stdout or stderr once it is ready;
	// the lab waits for it (up to Timeout) before the first scenario.
	Ready string `json:"ready,omitempty"`
	// Timeout bounds the wait for Ready (during) or the whole run of the
	// tool (after); default 60s.
	Timeout time.Duration `json:"timeout"`
}

// Report says how a tool reports.
type Report struct {
	Via string `json:"via"`
	// Path is the file a ViaFile tool writes (may use ${VAR}).
	Path string `json:"path,omitempty"`
	// Format is "jsonl" or "eve" for ViaFile.
	Format string `json:"format,omitempty"`
	// Time is "receive" (default: the time the lab received the alert) or
	// "packet" (the alert's own timestamp, for offline tools that analyse the
	// pcap after the run; their alerts carry the time of the packets).
	Time string `json:"time"`
}

// Scope is the declared coverage; empty lists claim everything.
type Scope struct {
	Assets     []string `json:"assets,omitempty"`
	Techniques []string `json:"techniques,omitempty"`
}

// FieldError is one problem of a manifest.
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	fmt.Fprintf(&b, ": %s", e.Msg)
	return b.String()
}

// Error is every problem found in one manifest.
type Error struct{ Problems []*FieldError }

func (e *Error) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.Error()
	}
	return strings.Join(s, "; ")
}

// Unwrap returns the problems.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// Load reads and parses a manifest file.
func Load(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tool manifest: %w", err)
	}
	return Parse(b, path)
}

var (
	nameRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	techniqueRE = regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)
	envRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	varRE       = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
)

type parser struct {
	file string
	errs []*FieldError
}

func (p *parser) fail(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	if len(p.errs) < 20 {
		p.errs = append(p.errs, &FieldError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
}

// Parse parses manifest bytes; file names them in errors.
func Parse(data []byte, file string) (*Manifest, error) {
	p := &parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if _, err := fmt.Sscanf(msg, "line %d:", &line); err == nil {
			msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
		}
		return nil, &Error{Problems: []*FieldError{{File: file, Line: line, Msg: "YAML: " + msg}}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{Problems: []*FieldError{{File: file, Msg: "empty manifest (want name, kind, start, reads, report)"}}}
	}
	root := doc.Content[0]
	m := &Manifest{File: file}
	fields := p.mapping(root, "", map[string]bool{"name": true, "version": false, "kind": true, "start": true,
		"reads": true, "report": true, "scope": false})
	if fields == nil {
		return nil, &Error{Problems: p.errs}
	}
	m.Name = p.str(fields["name"], "name")
	m.Version = p.str(fields["version"], "version")
	m.Kind = p.str(fields["kind"], "kind")
	if n := fields["start"]; n != nil {
		sf := p.mapping(n, "start", map[string]bool{"command": false, "args": false, "env": false, "dir": false,
			"image": false, "when": false, "ready": false, "timeout": false})
		m.Start.Command = p.str(sf["command"], "start.command")
		m.Start.Args = p.strs(sf["args"], "start.args")
		m.Start.Env = p.strMap(sf["env"], "start.env")
		m.Start.Dir = p.str(sf["dir"], "start.dir")
		m.Start.Image = p.str(sf["image"], "start.image")
		m.Start.When = p.str(sf["when"], "start.when")
		m.Start.Ready = p.str(sf["ready"], "start.ready")
		if t := sf["timeout"]; t != nil {
			d, err := time.ParseDuration(p.str(t, "start.timeout"))
			if err != nil || d <= 0 {
				p.fail(t, "start.timeout", "%q is not a positive duration (e.g. 60s, 2m)", t.Value)
			}
			m.Start.Timeout = d
		}
		if m.Start.Command == "" && m.Start.Image == "" && sf != nil {
			p.fail(n, "start", "needs a command (or an image for the container lab)")
		}
		if m.Start.When == "" {
			m.Start.When = WhenDuring
		} else if m.Start.When != WhenDuring && m.Start.When != WhenAfter {
			p.fail(sf["when"], "start.when", "%q is not during or after", m.Start.When)
		}
		if m.Start.Timeout == 0 {
			m.Start.Timeout = 60 * time.Second
		}
		for k := range m.Start.Env {
			if !envRE.MatchString(k) {
				p.fail(sf["env"], "start.env."+k, "%q is not an environment variable name", k)
			}
		}
	}
	m.Reads = p.strs(fields["reads"], "reads")
	if fields["reads"] != nil && len(m.Reads) == 0 {
		p.fail(fields["reads"], "reads", "empty: name at least one input (pcap, interface, mqtt-monitor, syslog, lab-events)")
	}
	for i, r := range m.Reads {
		switch r {
		case ReadPcap, ReadInterface, ReadMQTTMonitor, ReadSyslog, ReadLabEvents:
		default:
			p.fail(item(fields["reads"], i), fmt.Sprintf("reads[%d]", i), "%q is not an input (pcap, interface, mqtt-monitor, syslog, lab-events)", r)
		}
	}
	if n := fields["report"]; n != nil {
		rf := p.mapping(n, "report", map[string]bool{"via": true, "path": false, "format": false, "time": false})
		m.Report.Via = p.str(rf["via"], "report.via")
		m.Report.Path = p.str(rf["path"], "report.path")
		m.Report.Format = p.str(rf["format"], "report.format")
		m.Report.Time = p.str(rf["time"], "report.time")
		switch m.Report.Via {
		case ViaHTTP, ViaSyslog:
		case ViaFile:
			if m.Report.Path == "" {
				p.fail(n, "report.path", "missing: a file tool names the file it writes")
			}
			switch m.Report.Format {
			case "":
				m.Report.Format = "jsonl"
			case "jsonl", "eve":
			default:
				p.fail(rf["format"], "report.format", "%q is not jsonl or eve", m.Report.Format)
			}
		default:
			if rf["via"] != nil {
				p.fail(rf["via"], "report.via", "%q is not http, syslog or file", m.Report.Via)
			}
		}
		switch m.Report.Time {
		case "":
			m.Report.Time = "receive"
		case "receive", "packet":
		default:
			p.fail(rf["time"], "report.time", "%q is not receive or packet", m.Report.Time)
		}
	}
	if n := fields["scope"]; n != nil {
		sf := p.mapping(n, "scope", map[string]bool{"assets": false, "techniques": false})
		m.Scope.Assets = p.strs(sf["assets"], "scope.assets")
		m.Scope.Techniques = p.strs(sf["techniques"], "scope.techniques")
		for i, t := range m.Scope.Techniques {
			if !techniqueRE.MatchString(t) {
				p.fail(item(sf["techniques"], i), fmt.Sprintf("scope.techniques[%d]", i), "%q is not an ATT&CK technique id (want T0831 or T1234.001)", t)
			}
		}
	}
	if fields["name"] != nil && !nameRE.MatchString(m.Name) {
		p.fail(fields["name"], "name", "%q: use 1-64 letters, digits, '.', '-' or '_', starting with a letter or digit", m.Name)
	}
	if fields["kind"] != nil && m.Kind != KindDetector && m.Kind != KindInlineControl {
		p.fail(fields["kind"], "kind", "%q is not detector or inline-control", m.Kind)
	}
	if m.Start.When == WhenAfter && m.Report.Time == "receive" && fields["report"] != nil {
		// An offline tool reports after every step has ended: by receive
		// time it could never match one.
		p.fail(fields["report"], "report.time", "a tool started after the run must report time: packet")
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, &Error{Problems: p.errs}
	}
	return m, nil
}

// mapping checks that n is a mapping with only the known keys and every
// required one; it returns the value nodes by key.
func (p *parser) mapping(n *yaml.Node, path string, keys map[string]bool) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		name := path
		if name == "" {
			name = "manifest"
		}
		p.fail(n, path, "%s must be a mapping, got %s", name, kind(n))
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := k.Value
		if path != "" {
			field = path + "." + k.Value
		}
		if _, ok := keys[k.Value]; !ok {
			known := make([]string, 0, len(keys))
			for x := range keys {
				known = append(known, x)
			}
			sort.Strings(known)
			p.fail(k, field, "unknown field (known: %s)", strings.Join(known, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.fail(k, field, "given twice")
		}
		out[k.Value] = v
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if keys[k] && out[k] == nil {
			field := k
			if path != "" {
				field = path + "." + k
			}
			p.fail(n, field, "missing")
		}
	}
	return out
}

func (p *parser) str(n *yaml.Node, field string) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, field, "want a string, got %s", kind(n))
		return ""
	}
	return n.Value
}

func (p *parser) strs(n *yaml.Node, field string) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, field, "want a list of strings, got %s", kind(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		out = append(out, p.str(c, fmt.Sprintf("%s[%d]", field, i)))
	}
	return out
}

func (p *parser) strMap(n *yaml.Node, field string) map[string]string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, field, "want a mapping of strings, got %s", kind(n))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = p.str(n.Content[i+1], field+"."+n.Content[i].Value)
	}
	return out
}

// item is the i-th element node of a list, or n itself for a scalar
// written in place of a one-element list.
func item(n *yaml.Node, i int) *yaml.Node {
	if n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing (null)"
		}
		return fmt.Sprintf("the scalar %q", n.Value)
	}
	return "something else"
}

// Expand replaces ${VAR} in s with vars[VAR]; an unknown variable is an
// error naming it.
func Expand(s string, vars map[string]string) (string, error) {
	var bad []string
	out := varRE.ReplaceAllStringFunc(s, func(m string) string {
		k := m[2 : len(m)-1]
		v, ok := vars[k]
		if !ok {
			bad = append(bad, k)
		}
		return v
	})
	if len(bad) > 0 {
		return "", fmt.Errorf("unknown variable ${%s} (known: %s)", bad[0], strings.Join(sortedKeys(vars), ", "))
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

// ErrNoCommand is returned by Command for a manifest that only has an image.
var ErrNoCommand = errors.New("the manifest has no start.command (only an image, which the in-process lab cannot run)")
