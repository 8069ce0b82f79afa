package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

// Fields are the members of an alert JSON object (docs/alerts.schema.json).
// Members whose name starts with "x_" are extensions and ignored; any other
// unknown member refuses the alert, so a misspelt field is not silently lost.
var Fields = []string{"tool", "time", "severity", "assets", "addresses", "techniques",
	"tactics", "category", "text", "telemetry", "raw"}

// DecodeAlerts decodes an HTTP body or a JSON line: one alert object or an
// array of at most MaxBatch of them. It returns all alerts or, if any is
// malformed, none and a *DecodeError naming the first bad field
// (alerts[3].techniques[0]; alert.tool for a single object; body for the
// whole). Alert.Time and Alert.Source are left for the caller; the tool's
// "time" goes to Alert.Reported.
func DecodeAlerts(body []byte) ([]score.Alert, error) {
	if len(body) > MaxBody {
		return nil, derr("body", "%d bytes, more than the limit of %d", len(body), MaxBody)
	}
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return nil, derr("body", "empty, want an alert object or an array of them")
	}
	switch b[0] {
	case '{':
		if !json.Valid(b) {
			return nil, syntaxErr(b)
		}
		a, err := decodeAlert("alert", b)
		if err != nil {
			return nil, err
		}
		return []score.Alert{a}, nil
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(b, &elems); err != nil {
			return nil, syntaxErr(b)
		}
		if len(elems) == 0 {
			return nil, derr("body", "empty array, want at least one alert")
		}
		if len(elems) > MaxBatch {
			return nil, derr("body", "%d alerts, more than the limit of %d per request", len(elems), MaxBatch)
		}
		out := make([]score.Alert, 0, len(elems))
		for i, e := range elems {
			a, err := decodeAlert(fmt.Sprintf("alerts[%d]", i), e)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
		return out, nil
	default:
		if !json.Valid(b) {
			return nil, syntaxErr(b)
		}
		return nil, derr("body", "a JSON %s, want an alert object or an array of them", jsonKind(b))
	}
}

func syntaxErr(b []byte) error {
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return derr("body", "invalid JSON at byte %d: %s", se.Offset, se.Error())
	}
	if err == nil {
		err = errors.New("unexpected end")
	}
	return derr("body", "invalid JSON: %s", err.Error())
}

func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func jsonString(path string, raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if jsonKind(raw) != "string" || json.Unmarshal(raw, &s) != nil {
		return "", derr(path, "want a string, got a JSON %s", jsonKind(raw))
	}
	return s, nil
}

func jsonStrings(path string, raw json.RawMessage, item listItem) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	if jsonKind(raw) == "string" { // a lone string is a list of one
		s, err := jsonString(path, raw)
		if err != nil {
			return nil, err
		}
		return []string{s}, checkList(path, []string{s}, item)
	}
	var elems []json.RawMessage
	if jsonKind(raw) != "array" || json.Unmarshal(raw, &elems) != nil {
		return nil, derr(path, "want an array of strings, got a JSON %s", jsonKind(raw))
	}
	if len(elems) > MaxListItems {
		return nil, derr(path, "%d items, more than the limit of %d", len(elems), MaxListItems)
	}
	out := make([]string, 0, len(elems))
	for i, e := range elems {
		s, err := jsonString(fmt.Sprintf("%s[%d]", path, i), e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if err := checkList(path, out, item); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func decodeAlert(path string, raw json.RawMessage) (score.Alert, error) {
	var a score.Alert
	if jsonKind(raw) != "object" {
		return a, derr(path, "want an alert object, got a JSON %s", jsonKind(raw))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return a, derr(path, "invalid JSON object: %v", err)
	}
	// Check members in a fixed order so the error names the same field
	// every time.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(Fields, k) && !strings.HasPrefix(k, "x_") {
			return a, derr(path, "unknown field %s (known: %s; extensions start with x_)", quote(k), strings.Join(Fields, ", "))
		}
	}
	var err error
	p := func(f string) string { return path + "." + f }
	raw1, ok := m["tool"]
	if !ok {
		return a, derr(p("tool"), "required, the name of the tool")
	}
	if a.Tool, err = jsonString(p("tool"), raw1); err != nil {
		return a, err
	}
	if err = checkTool(p("tool"), a.Tool); err != nil {
		return a, err
	}
	if r, ok := m["time"]; ok {
		s, err := jsonString(p("time"), r)
		if err != nil {
			return a, err
		}
		if s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return a, derr(p("time"), "%s is not an RFC 3339 time (want 2026-03-01T10:15:00Z)", quote(s))
			}
			a.Reported = t
		}
	}
	strField := func(name string, max int, multiline bool, dst *string) error {
		r, ok := m[name]
		if !ok {
			return nil
		}
		s, err := jsonString(p(name), r)
		if err != nil {
			return err
		}
		if err := checkString(p(name), s, max, multiline); err != nil {
			return err
		}
		*dst = s
		return nil
	}
	if err = strField("severity", MaxShortLen, false, &a.Severity); err != nil {
		return a, err
	}
	if err = strField("category", MaxShortLen, false, &a.Category); err != nil {
		return a, err
	}
	if err = strField("text", MaxTextLen, true, &a.Text); err != nil {
		return a, err
	}
	lists := []struct {
		name string
		item listItem
		dst  *[]string
	}{
		{"assets", nil, &a.Assets},
		{"addresses", checkAddress, &a.Addresses},
		{"techniques", checkTechnique, &a.Techniques},
		{"tactics", checkTactic, &a.Tactics},
	}
	for _, l := range lists {
		if r, ok := m[l.name]; ok {
			if *l.dst, err = jsonStrings(p(l.name), r, l.item); err != nil {
				return a, err
			}
		}
	}
	if r, ok := m["telemetry"]; ok && !isNull(r) {
		if err := json.Unmarshal(r, &a.Telemetry); err != nil || jsonKind(r) != "boolean" {
			return a, derr(p("telemetry"), "want true or false, got a JSON %s", jsonKind(r))
		}
	}
	if r, ok := m["raw"]; ok && !isNull(r) {
		// raw is the tool's original record: a string kept as is, any other
		// JSON value kept as its compact JSON text.
		if jsonKind(r) == "string" {
			a.Raw, _ = jsonString(p("raw"), r)
		} else {
			var buf bytes.Buffer
			_ = json.Compact(&buf, r)
			a.Raw = buf.String()
		}
		if len(a.Raw) > MaxRawLen {
			return a, derr(p("raw"), "%d bytes, more than the limit of %d", len(a.Raw), MaxRawLen)
		}
	}
	return a, nil
}
