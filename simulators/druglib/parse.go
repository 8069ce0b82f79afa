package druglib

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxLibraryBytes bounds the size of a library document accepted by Parse,
// ParseJSON and the HTTP server.
const MaxLibraryBytes = 8 << 20

// Load reads and validates the library file at path (YAML; JSON is accepted
// too, as it is YAML). Errors name the file, the line and the field.
func Load(path string) (*Library, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("druglib: load: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes and validates a library document. name is used in error
// messages (usually the file name; may be empty). The document is YAML (a
// JSON document is valid YAML and is accepted as well). Unknown fields,
// duplicate keys, YAML aliases and a second document are rejected. On
// failure the error is a *ValidationError whose problems carry the line and
// the field path, e.g.
//
//	druglib: default.yaml:42: entries[3].dose.hard_max: 0.5 is below soft_max 1
func Parse(data []byte, name string) (*Library, error) {
	if len(data) > MaxLibraryBytes {
		return nil, fmt.Errorf("druglib: parse %s: %d bytes exceeds the %d-byte limit", name, len(data), MaxLibraryBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ValidationError{Problems: []*FieldError{{File: name, Msg: "empty document"}}}
		}
		return nil, fmt.Errorf("druglib: parse %s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, fmt.Errorf("druglib: parse %s: %w", name, err)
		}
		return nil, &ValidationError{Problems: []*FieldError{{File: name, Line: line, Msg: "a second YAML document is not allowed"}}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d := &decoder{lines: map[string]int{}}
	lib := new(Library)
	d.decode(root, reflect.ValueOf(lib).Elem(), "")
	if ve := d.errs.withFile(name); ve != nil {
		return nil, ve
	}
	if err := lib.Validate(); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				p.File = name
				p.Line = d.lineFor(p.Field)
			}
			return nil, ve
		}
		return nil, err
	}
	return lib, nil
}

// ParseJSON decodes and validates a library in JSON, the encoding used over
// HTTP. Unknown fields and trailing data are rejected. Validation problems
// name the field but no line.
func ParseJSON(data []byte) (*Library, error) {
	if len(data) > MaxLibraryBytes {
		return nil, fmt.Errorf("druglib: parse JSON: %d bytes exceeds the %d-byte limit", len(data), MaxLibraryBytes)
	}
	lib := new(Library)
	if err := strictJSON(data, lib); err != nil {
		return nil, fmt.Errorf("druglib: parse JSON: %w", err)
	}
	if err := lib.Validate(); err != nil {
		return nil, err
	}
	return lib, nil
}

// strictJSON decodes exactly one JSON value into v, refusing unknown fields.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// decoder fills Go values from a yaml.Node tree, recording the line of every
// field path and collecting problems instead of stopping at the first.
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
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.errs.full() {
		return // enough problems reported; stop decoding
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
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // leave the zero value
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
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
		if n.Kind != yaml.ScalarNode {
			d.fail(n.Line, path, "expected a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			d.fail(n.Line, path, "expected a number, got %s", kindName(n))
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			// yaml.v3 refuses some integer forms for float64 targets.
			pf, perr := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
			if perr != nil {
				d.fail(n.Line, path, "%q is not a number", n.Value)
				return
			}
			f = pf
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n.Line, path, "%q is not a finite number", n.Value)
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n.Line, path, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	default:
		d.fail(n.Line, path, "cannot decode into %s", v.Type())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, path, "mapping key must be a string, got %s", kindName(k))
			continue
		}
		sub := k.Value
		if path != "" {
			sub = path + "." + k.Value
		}
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k.Line, sub, "unknown field")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, sub, "field set twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		d.decode(val, v.Field(idx), sub)
		// Point the field at its key line (same as the value for scalars,
		// the key line is what a reader looks for with nested values).
		d.lines[sub] = k.Line
	}
}

// yamlFields maps the yaml names of t's fields to their index.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	return m
}
