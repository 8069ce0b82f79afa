package posture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxBytes bounds the size of a posture document accepted by Parse.
const MaxBytes = 1 << 20

// maxProblems bounds the problems reported for one document.
const maxProblems = 20

// FieldError is one problem of a posture: where it is and what is wrong.
type FieldError struct {
	File  string // file name given to Parse; "" when not from a file
	Line  int    // 1-based line; 0 when unknown
	Field string // dotted path, e.g. controls.rate-limit.per_second
	Msg   string
}

// Error formats the problem as FILE:LINE: FIELD: MSG, leaving out the
// parts that are unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ValidationError lists every problem found in a posture (at most 20).
type ValidationError struct {
	Problems []*FieldError
}

// Error gives one problem per line, each prefixed "posture: ".
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "posture: " + p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.As on *FieldError.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

type problems []*FieldError

func (ps *problems) add(p *FieldError) {
	if len(*ps) < maxProblems {
		*ps = append(*ps, p)
	}
}

func (ps problems) full() bool { return len(ps) >= maxProblems }

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// Load reads the posture file at path. Errors name the file, the line and
// the field. A file without a name: takes its base name without extension.
func Load(path string) (*Posture, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("posture: load: %w", err)
	}
	p, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	p.Source = path
	return p, nil
}

// Parse decodes and validates a posture document (YAML; JSON is accepted as
// it is YAML). file is used in error messages and, when the document has no
// name, to name the posture. Parameters a document leaves out keep their
// defaults (Defaults). Unknown fields, duplicate keys, aliases, wrong types,
// out-of-range values, unmet dependencies and a second document are refused;
// the error is a *ValidationError whose problems carry file, line and field:
//
//	posture: postures/nccoe.yaml:14: controls.rate-limit.per_second: -3 must be > 0
func Parse(data []byte, file string) (*Posture, error) {
	fail := func(line int, format string, args ...any) error {
		return &ValidationError{Problems: []*FieldError{{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}}}
	}
	if len(data) > MaxBytes {
		return nil, fail(0, "%d bytes exceeds the %d-byte limit", len(data), MaxBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(0, "empty document")
		}
		return nil, fail(yamlErrLine(err), "%s", yamlErrMsg(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fail(yamlErrLine(err), "%s", yamlErrMsg(err))
		}
		return nil, fail(extra.Line, "a second YAML document is not allowed")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "a posture is a mapping (name, description, controls, weaknesses), got %s", kindName(root))
	}
	p := Defaults()
	d := &decoder{lines: map[string]int{}}
	d.decode(root, reflect.ValueOf(p).Elem(), "")
	if d.errs != nil {
		for _, e := range d.errs {
			e.File = file
		}
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		return nil, &ValidationError{Problems: d.errs}
	}
	if p.Name == "" {
		if _, given := d.lines["name"]; !given {
			base := filepath.Base(file)
			p.Name = strings.TrimSuffix(base, filepath.Ext(base))
		}
	}
	if err := p.Validate(); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			for _, pr := range ve.Problems {
				pr.File = file
				pr.Line = d.lineFor(pr.Field)
			}
		}
		return nil, err
	}
	p.Source = file
	return p, nil
}

// FormatDuration writes d as Go does, without zero trailing units:
// 720h, 10m, 1h30m, 30s, 1.5s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// yamlErrLine extracts the line of a yaml.v3 syntax error ("yaml: line 3: ...").
func yamlErrLine(err error) int {
	var line int
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		fmt.Sscanf(msg[i:], "line %d", &line)
	}
	return line
}

// yamlErrMsg strips the "yaml: line N: " prefix of a yaml.v3 error.
func yamlErrMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
	}
	return "invalid YAML: " + msg
}

// decoder fills Go values from a yaml.Node tree, recording the line of
// every field path and collecting problems instead of stopping at the first.
type decoder struct {
	lines map[string]int
	errs  problems
}

func (d *decoder) fail(line int, path, format string, args ...any) {
	d.errs.add(&FieldError{Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// lineFor returns the line of path, or of its closest recorded ancestor.
func (d *decoder) lineFor(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			path = ""
		} else {
			path = path[:i]
		}
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("%q", v)
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

var durationType = reflect.TypeOf(time.Duration(0))

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.errs.full() {
		return
	}
	if n.Kind == yaml.AliasNode {
		d.fail(n.Line, path, "YAML aliases are not supported")
		return
	}
	if n.Kind == yaml.DocumentNode {
		d.fail(n.Line, path, "unexpected document node")
		return
	}
	d.lines[path] = n.Line
	if v.Type() == durationType {
		d.decodeDuration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n.Line, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			d.fail(n.Line, path, "expected a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.fail(n.Line, path, "expected true or false, got %s", kindName(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.fail(n.Line, path, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		var i int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil || i != int64(int(i)) {
			d.fail(n.Line, path, "expected a whole number, got %s", kindName(n))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
			d.fail(n.Line, path, "expected a number, got %s", kindName(n))
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n.Line, path, "expected a finite number, got %s", kindName(n))
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("posture: decoder: unsupported kind %s at %s", v.Kind(), path))
	}
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		d.fail(n.Line, path, "expected a duration such as \"30s\" or \"12h\", got %s", kindName(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(n.Line, path, "expected a duration such as \"30s\" or \"12h\", got %s", kindName(n))
		return
	}
	v.SetInt(int64(dur))
}

// mappingPairs checks that n is a mapping with unique scalar keys and
// returns its key and value nodes.
func (d *decoder) mappingPairs(n *yaml.Node, path string) (keys, vals []*yaml.Node, ok bool) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, path, "keys must be plain names, got %s", kindName(k))
			return nil, nil, false
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, join(path, k.Value), "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		keys = append(keys, k)
		vals = append(vals, val)
	}
	return keys, vals, true
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	en := v.FieldByName("Enabled")
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" && en.IsValid() {
		// Shorthand: `pki: true` switches a control with default parameters.
		d.decode(n, en, join(path, "enabled"))
		return
	}
	if n.Kind != yaml.MappingNode {
		if en.IsValid() {
			d.fail(n.Line, path, "expected a mapping or true/false, got %s", kindName(n))
		} else {
			d.fail(n.Line, path, "expected a mapping, got %s", kindName(n))
		}
		return
	}
	fields := map[string]int{}
	var known []string
	for i := 0; i < t.NumField(); i++ {
		name := yamlName(t.Field(i))
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		known = append(known, name)
	}
	keys, vals, ok := d.mappingPairs(n, path)
	if !ok {
		return
	}
	for i, k := range keys {
		idx, found := fields[k.Value]
		if !found {
			d.fail(k.Line, join(path, k.Value), "unknown field (known: %s)", strings.Join(known, ", "))
			continue
		}
		d.decode(vals[i], v.Field(idx), join(path, k.Value))
		d.lines[join(path, k.Value)] = k.Line // a field is where its key is
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, "expected a mapping, got %s", kindName(n))
		return
	}
	keys, vals, ok := d.mappingPairs(n, path)
	if !ok {
		return
	}
	if len(keys) == 0 {
		v.Set(reflect.Zero(v.Type())) // an empty mapping is the same as none
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(keys))
	for i, k := range keys {
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(vals[i], e, join(path, k.Value))
		d.lines[join(path, k.Value)] = k.Line
		m.SetMapIndex(reflect.ValueOf(k.Value), e)
	}
	v.Set(m)
}

// Marshal encodes p as a posture document that Parse reads back to the same
// posture (durations as strings such as "30s", every parameter written).
// The run directory keeps it as the exact posture of a run.
func (p *Posture) Marshal() ([]byte, error) {
	n := encode(reflect.ValueOf(p).Elem())
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("posture: marshal %s: %w", p.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("posture: marshal %s: %w", p.Name, err)
	}
	return b.Bytes(), nil
}

func encode(v reflect.Value) *yaml.Node {
	scalar := func(tag, val string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: val}
	}
	if v.Type() == durationType {
		return scalar("!!str", FormatDuration(time.Duration(v.Int())))
	}
	switch v.Kind() {
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i < v.NumField(); i++ {
			name := yamlName(v.Type().Field(i))
			if name == "" || name == "-" {
				continue
			}
			m.Content = append(m.Content, scalar("!!str", name), encode(v.Field(i)))
		}
		return m
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			m.Content = append(m.Content, scalar("!!str", k), encode(v.MapIndex(reflect.ValueOf(k))))
		}
		return m
	case reflect.Slice:
		s := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := 0; i < v.Len(); i++ {
			s.Content = append(s.Content, encode(v.Index(i)))
		}
		return s
	case reflect.String:
		n := scalar("!!str", v.String())
		if strings.ContainsAny(n.Value, "\n\r\t") {
			n.Style = yaml.DoubleQuotedStyle // literal blocks lose leading newlines
		}
		return n
	case reflect.Bool:
		return scalar("", strconv.FormatBool(v.Bool()))
	case reflect.Int:
		return scalar("", strconv.FormatInt(v.Int(), 10))
	case reflect.Float64:
		return scalar("", strconv.FormatFloat(v.Float(), 'g', -1, 64))
	}
	panic(fmt.Sprintf("posture: encode: unsupported kind %s", v.Kind()))
}
