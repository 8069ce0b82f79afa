package report

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

// A small validator for the subset of JSON Schema (draft 2020-12) that
// docs/scorecard.schema.json uses: type, required, properties,
// additionalProperties (false or a schema), items, enum, pattern, minimum,
// format date-time and $ref to #/$defs/. Any other keyword (besides
// annotations) makes the test fail, so the schema cannot silently use
// something this validator ignores.

type schemaDoc struct {
	root map[string]any
	defs map[string]any
}

var knownKeywords = map[string]bool{
	"$schema": true, "$id": true, "$defs": true, "$ref": true, "title": true, "description": true,
	"type": true, "required": true, "properties": true, "additionalProperties": true, "items": true,
	"enum": true, "pattern": true, "minimum": true, "format": true,
}

func loadSchema(t *testing.T) schemaDoc {
	t.Helper()
	b, err := os.ReadFile("../../docs/scorecard.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatalf("schema does not parse: %v", err)
	}
	if root["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Fatalf("$schema %v", root["$schema"])
	}
	defs, _ := root["$defs"].(map[string]any)
	return schemaDoc{root: root, defs: defs}
}

func (d schemaDoc) resolve(s map[string]any) (map[string]any, error) {
	for i := 0; i < 16; i++ {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s, nil
		}
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		if !ok {
			return nil, fmt.Errorf("unsupported $ref %q", ref)
		}
		def, ok := d.defs[name].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: no such definition", ref)
		}
		// Sibling keywords of $ref (description) are annotations only.
		s = def
	}
	return nil, fmt.Errorf("$ref loop")
}

func typeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func typeMatches(want any, got string) bool {
	var ws []string
	switch w := want.(type) {
	case string:
		ws = []string{w}
	case []any:
		for _, x := range w {
			ws = append(ws, fmt.Sprint(x))
		}
	}
	for _, w := range ws {
		if w == got || (w == "number" && got == "integer") {
			return true
		}
	}
	return false
}

// validate returns every violation of v against s, with JSON pointers.
func (d schemaDoc) validate(s map[string]any, v any, path string) []string {
	s, err := d.resolve(s)
	if err != nil {
		return []string{path + ": " + err.Error()}
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	for k := range s {
		if !knownKeywords[k] {
			fail("schema keyword %q is not supported by this validator", k)
		}
	}
	if t, ok := s["type"]; ok && !typeMatches(t, typeOf(v)) {
		fail("type %s, want %v", typeOf(v), t)
		return errs
	}
	if e, ok := s["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return reflect.DeepEqual(x, v) }) {
		fail("%v is not one of %v", v, e)
	}
	if p, ok := s["pattern"].(string); ok {
		if str, ok := v.(string); ok && !regexp.MustCompile(p).MatchString(str) {
			fail("%q does not match %s", str, p)
		}
	}
	if f, ok := s["format"].(string); ok && f == "date-time" {
		if str, ok := v.(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				fail("%q is not a date-time", str)
			}
		}
	}
	if m, ok := s["minimum"].(float64); ok {
		if n, ok := v.(float64); ok && n < m {
			fail("%g < minimum %g", n, m)
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					fail("required property %q missing", r)
				}
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, d.validate(ps, obj[k], path+"/"+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("property %q is not allowed", k)
				}
			case map[string]any:
				errs = append(errs, d.validate(ap, obj[k], path+"/"+k)...)
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range arr {
				errs = append(errs, d.validate(items, x, fmt.Sprintf("%s/%d", path, i))...)
			}
		}
	}
	return errs
}

func (d schemaDoc) validateJSON(t *testing.T, b []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return d.validate(d.root, v, "")
}

func TestScorecardMatchesSchema(t *testing.T) {
	d := loadSchema(t)
	in, _, _ := fixture()
	cards := map[string]Scorecard{"fixture": Build(in), "empty input": Build(Input{})}
	// Every optional field set: an evidence reason, a reported time, a
	// tool scope, delayed and correlated detections, all harm metrics.
	full := Build(in)
	full.Steps[0].Tools[0].Correlated, full.Steps[0].Tools[0].Delayed = true, true
	full.Steps[0].Harm.Metrics = score.Harm{DDR: 2, ExcessDrug: 1, InterruptedMin: 1, AlarmsMissed: 1, AlarmsLate: 1,
		DocMismatch: true, PHIExposed: 1, CredsExposed: 1, PumpMinutesOffline: 1, HighAlert: true}
	full.FalsePositives[1].Alerts[0].Reported = at(time.Hour)
	full.FalsePositives[1].Alerts[0].Techniques = []string{"T0831"}
	full.FalsePositives[1].Alerts[0].Tactics = []string{"TA0106"}
	full.FalsePositives[1].Alerts[0].Addresses = []string{"10.0.0.1"}
	full.FalsePositives[1].Alerts[0].Telemetry = true
	full.FalsePositives[1].Alerts[0].Raw = "{}"
	full.Run.Tools[0].Techniques = []string{"T0831"}
	cards["all optional fields"] = full
	for name, sc := range cards {
		b, err := MarshalScorecard(sc)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range d.validateJSON(t, b) {
			t.Errorf("%s: %s", name, e)
		}
	}
}

// TestSchemaRejects checks that the validator and the schema can fail.
func TestSchemaRejects(t *testing.T) {
	d := loadSchema(t)
	in, _, _ := fixture()
	b, err := MarshalScorecard(Build(in))
	if err != nil {
		t.Fatal(err)
	}
	mutations := []struct {
		name string
		f    func(m map[string]any)
		want string
	}{
		{"extra top-level field", func(m map[string]any) { m["extra"] = 1 }, `property "extra" is not allowed`},
		{"missing run", func(m map[string]any) { delete(m, "run") }, `required property "run" missing`},
		{"bad version", func(m map[string]any) { m["schema_version"] = "2.0.0" }, `does not match`},
		{"bad state", func(m map[string]any) { m["scenarios"].([]any)[0].(map[string]any)["state"] = "ok" }, `is not one of`},
		{"negative duration", func(m map[string]any) { m["scenarios"].([]any)[0].(map[string]any)["duration_ms"] = -1.0 }, `minimum`},
		{"string seed", func(m map[string]any) { m["run"].(map[string]any)["seed"] = "42" }, `type string, want integer`},
		{"fractional pumps", func(m map[string]any) { m["run"].(map[string]any)["pumps"] = 1.5 }, `type number, want integer`},
		{"bad time", func(m map[string]any) { m["run"].(map[string]any)["start"] = "yesterday" }, `not a date-time`},
		{"bad outcome key", func(m map[string]any) {
			m["aggregates"].([]any)[0].(map[string]any)["outcomes"].(map[string]any)["won"] = 1.0
		}, `property "won" is not allowed`},
		{"null list", func(m map[string]any) { m["notes"] = nil }, `type null, want array`},
	}
	for _, c := range mutations {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		c.f(m)
		errs := d.validate(d.root, m, "")
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, c.want) }) {
			t.Errorf("%s: want an error with %q, got %v", c.name, c.want, errs)
		}
	}
}

var timeType = reflect.TypeOf(time.Time{})

// checkType compares a Go type with its schema, both ways: every JSON
// field of every struct is a property and every property a field;
// required lists exactly the fields without omitempty/omitzero; objects
// are closed (additionalProperties: false); JSON types agree.
func (d schemaDoc) checkType(t reflect.Type, s map[string]any, path string) []string {
	s, err := d.resolve(s)
	if err != nil {
		return []string{path + ": " + err.Error()}
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	want := ""
	switch {
	case t == timeType:
		want = "string"
		if s["format"] != "date-time" {
			fail("time without format date-time")
		}
	case t.Kind() == reflect.Struct, t.Kind() == reflect.Map:
		want = "object"
	case t.Kind() == reflect.Slice:
		want = "array"
	case t.Kind() == reflect.String:
		want = "string"
	case t.Kind() == reflect.Bool:
		want = "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		want = "integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		want = "number"
	default:
		fail("Go kind %s not handled", t.Kind())
		return errs
	}
	if s["type"] != want {
		fail("schema type %v, Go %s wants %q", s["type"], t, want)
		return errs
	}
	props, _ := s["properties"].(map[string]any)
	switch {
	case t == timeType:
	case t.Kind() == reflect.Struct:
		if s["additionalProperties"] != false {
			fail("object without additionalProperties: false")
		}
		fields := map[string]bool{}
		var required []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if !f.IsExported() || tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "" {
				name = f.Name
			}
			fields[name] = true
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				required = append(required, name)
			}
			ps, ok := props[name].(map[string]any)
			if !ok {
				fail("Go field %s.%s (%q) is not in the schema", t.Name(), f.Name, name)
				continue
			}
			errs = append(errs, d.checkType(f.Type, ps, path+"/"+name)...)
		}
		for p := range props {
			if !fields[p] {
				fail("schema property %q is not a field of Go %s", p, t)
			}
		}
		var req []string
		for _, r := range asSlice(s["required"]) {
			req = append(req, r.(string))
		}
		sort.Strings(req)
		sort.Strings(required)
		if !slices.Equal(req, required) {
			fail("required %v, Go non-omitempty fields %v", req, required)
		}
	case t.Kind() == reflect.Map:
		if ap, ok := s["additionalProperties"].(map[string]any); ok {
			errs = append(errs, d.checkType(t.Elem(), ap, path+"/*")...)
		} else if s["additionalProperties"] != false || len(props) == 0 {
			fail("map without a value schema")
		}
		for p, ps := range props {
			errs = append(errs, d.checkType(t.Elem(), ps.(map[string]any), path+"/"+p)...)
		}
	case t.Kind() == reflect.Slice:
		items, ok := s["items"].(map[string]any)
		if !ok {
			fail("array without items")
			break
		}
		errs = append(errs, d.checkType(t.Elem(), items, path+"/items")...)
	}
	return errs
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func TestSchemaMatchesGoTypes(t *testing.T) {
	d := loadSchema(t)
	for _, e := range d.checkType(reflect.TypeOf(Scorecard{}), d.root, "") {
		t.Error(e)
	}
}

// TestSchemaCheckCanFail: a Go type with a field the schema lacks, and
// a schema with a property the type lacks, are both reported.
func TestSchemaCheckCanFail(t *testing.T) {
	d := loadSchema(t)
	s := map[string]any{"type": "object", "additionalProperties": false, "required": []any{"name", "version"},
		"properties": map[string]any{"name": map[string]any{"type": "string"}, "version": map[string]any{"type": "string"},
			"gone": map[string]any{"type": "string"}}}
	errs := d.checkType(reflect.TypeOf(Tool{}), s, "")
	if !slices.ContainsFunc(errs, func(e string) bool {
		return strings.Contains(e, `Go field Tool.Assets ("assets") is not in the schema`)
	}) ||
		!slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, `schema property "gone" is not a field`) }) {
		t.Errorf("check misses a difference: %v", errs)
	}
	type withExtra struct {
		Name  string `json:"name"`
		Extra int    `json:"extra"`
	}
	errs = d.checkType(reflect.TypeOf(withExtra{}), d.defs["posture"].(map[string]any), "")
	if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, `"extra"`) }) ||
		!slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, `"controls"`) }) {
		t.Errorf("check misses a difference: %v", errs)
	}
}

// TestSchemaEnums checks the enums against the score package's constants.
func TestSchemaEnums(t *testing.T) {
	d := loadSchema(t)
	enum := func(def string, prop ...string) []string {
		s := d.defs[def].(map[string]any)
		for _, p := range prop {
			s = s["properties"].(map[string]any)[p].(map[string]any)
		}
		var out []string
		for _, e := range asSlice(s["enum"]) {
			out = append(out, e.(string))
		}
		return out
	}
	var outcomes []string
	for _, o := range score.Outcomes {
		outcomes = append(outcomes, string(o))
	}
	cases := []struct {
		name      string
		got, want []string
	}{
		{"outcome", enum("outcome"), outcomes},
		{"category", enum("tool_detection", "category"), []string{string(score.CategoryNotApplicable), string(score.CategoryNone),
			string(score.CategoryTelemetry), string(score.CategoryGeneral), string(score.CategoryTactic), string(score.CategoryTechnique)}},
		{"protection", enum("step_verdict", "protection"), []string{string(score.ProtectionBlocked), string(score.ProtectionNone), string(score.ProtectionNotApplicable)}},
		{"safety", enum("step_verdict", "safety"), []string{string(score.SafetyCaught), string(score.SafetyNone)}},
		{"state", enum("scenario", "state"), []string{StatePassed, StateFailed, StateSkipped, StateNotApplicable}},
		{"kind", enum("scenario", "kind"), []string{KindAttack, KindControl}},
	}
	for _, c := range cases {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s enum %v, want %v", c.name, c.got, c.want)
		}
	}
	var keys []string
	for k := range d.defs["tool_score"].(map[string]any)["properties"].(map[string]any)["outcomes"].(map[string]any)["properties"].(map[string]any) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := slices.Clone(outcomes)
	sort.Strings(want)
	if !slices.Equal(keys, want) {
		t.Errorf("tool_score.outcomes properties %v, want %v", keys, want)
	}
}
