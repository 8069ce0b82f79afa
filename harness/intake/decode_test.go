package intake

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pumplab/pumplab/harness/score"
)

func TestDecodeAlerts(t *testing.T) {
	for _, c := range AlertCases {
		t.Run(c.Name, func(t *testing.T) {
			got, err := DecodeAlerts([]byte(c.Body))
			if c.Err != "" {
				if err == nil || err.Error() != c.Err {
					t.Fatalf("err = %v, want %q", err, c.Err)
				}
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("err %T is not a *DecodeError", err)
				}
				if got != nil {
					t.Fatalf("refused body returned %d alerts", len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.Want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.Want)
			}
		})
	}
}

func TestDecodeAlertsBodyLimit(t *testing.T) {
	big := `{"tool":"t","text":"` + strings.Repeat("x", MaxBody) + `"}`
	_, err := DecodeAlerts([]byte(big))
	if err == nil || !strings.Contains(err.Error(), "more than the limit of 1048576") {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeSyslog(t *testing.T) {
	for _, c := range SyslogCases {
		t.Run(c.Name, func(t *testing.T) {
			got, err := DecodeSyslog([]byte(c.Msg))
			if c.Err != "" {
				if err == nil || !strings.Contains(err.Error(), c.Err) {
					t.Fatalf("err = %v, want it to contain %q", err, c.Err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Raw != strings.TrimRight(c.Msg, "\n") {
				t.Errorf("Raw = %q", got.Raw)
			}
			got.Raw = ""
			if !reflect.DeepEqual(got, c.Want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.Want)
			}
		})
	}
}

// TestSyslogRoundTrip checks that String renders what ParseSyslog reads.
func TestSyslogRoundTrip(t *testing.T) {
	for _, c := range SyslogCases {
		m, err := ParseSyslog([]byte(c.Msg))
		if err != nil {
			continue
		}
		m2, err := ParseSyslog([]byte(m.String()))
		if err != nil {
			t.Fatalf("%s: reparse %q: %v", c.Name, m.String(), err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", c.Name, m2, m)
		}
	}
}

// readFrames drains a FrameReader: frames, bad frames, the final error.
func readFrames(r io.Reader, max int) (frames []string, bad int, final error) {
	fr := NewFrameReader(r, max)
	for range 10000 {
		f, err := fr.Next()
		var fe *FrameError
		switch {
		case errors.As(err, &fe):
			bad++
		case err != nil:
			return frames, bad, err
		default:
			frames = append(frames, string(f))
		}
	}
	panic("FrameReader made no progress")
}

func TestFrameReader(t *testing.T) {
	for _, c := range FramingCases {
		t.Run(c.Name, func(t *testing.T) {
			frames, bad, final := readFrames(strings.NewReader(c.Stream), FramingMax)
			if !slices.Equal(frames, c.Frames) {
				t.Errorf("frames = %q, want %q", frames, c.Frames)
			}
			if bad != c.BadFrames {
				t.Errorf("bad frames = %d, want %d", bad, c.BadFrames)
			}
			if c.Final == "" && final != io.EOF || c.Final != "" && (final == nil || !strings.Contains(final.Error(), c.Final)) {
				t.Errorf("final error = %v, want %q", final, c.Final)
			}
		})
	}
}

func TestDecodeFileLine(t *testing.T) {
	for _, c := range EveCases {
		t.Run(c.Name, func(t *testing.T) {
			got, err := DecodeFileLine([]byte(c.Line), "")
			switch {
			case c.Skip:
				if !errors.Is(err, ErrNotAlert) {
					t.Fatalf("err = %v, want ErrNotAlert", err)
				}
				return
			case c.Err != "":
				if err == nil || !strings.Contains(err.Error(), c.Err) {
					t.Fatalf("err = %v, want it to contain %q", err, c.Err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d alerts", len(got))
			}
			a := got[0]
			if strings.Contains(c.Line, "event_type") && a.Raw != strings.TrimSpace(c.Line) {
				t.Errorf("Raw = %q", a.Raw)
			}
			a.Raw = ""
			if !a.Reported.Equal(c.Want.Reported) {
				t.Errorf("Reported = %v, want %v", a.Reported, c.Want.Reported)
			}
			a.Reported = c.Want.Reported
			if !reflect.DeepEqual(a, c.Want) {
				t.Fatalf("got  %+v\nwant %+v", a, c.Want)
			}
		})
	}
}

func TestEveToolName(t *testing.T) {
	got, err := DecodeFileLine([]byte(ExampleEveAlert), "suricata-lab")
	if err != nil || got[0].Tool != "suricata-lab" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// TestSchemaFile checks docs/alerts.schema.json against the decoder: it
// parses, its properties are Fields, score.Alert has a JSON field for each
// (time is Alert.Reported), and only tool is required.
func TestSchemaFile(t *testing.T) {
	b, err := os.ReadFile("../../docs/alerts.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Schema string `json:"$schema"`
		Defs   map[string]struct {
			Properties           map[string]json.RawMessage `json:"properties"`
			Required             []string                   `json:"required"`
			AdditionalProperties bool                       `json:"additionalProperties"`
		} `json:"$defs"`
		OneOf []json.RawMessage `json:"oneOf"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("schema does not parse: %v", err)
	}
	alert, ok := schema.Defs["alert"]
	if !ok || len(schema.OneOf) != 2 {
		t.Fatalf("schema wants $defs.alert and oneOf [alert, array of alert]")
	}
	var props []string
	for k := range alert.Properties {
		props = append(props, k)
	}
	slices.Sort(props)
	want := slices.Sorted(slices.Values(Fields))
	if !slices.Equal(props, want) {
		t.Errorf("schema properties %v, decoder Fields %v", props, want)
	}
	if !slices.Equal(alert.Required, []string{"tool"}) {
		t.Errorf("required = %v, want [tool]", alert.Required)
	}
	// Every field is a JSON field of score.Alert ("time" maps to reported).
	tags := map[string]bool{}
	rt := reflect.TypeFor[score.Alert]()
	for i := range rt.NumField() {
		tags[strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	for _, f := range Fields {
		name := f
		if f == "time" {
			name = "reported"
		}
		if !tags[name] {
			t.Errorf("field %q has no score.Alert field %q", f, name)
		}
	}
	for tag := range tags {
		if tag != "reported" && tag != "source" && !slices.Contains(Fields, tag) {
			t.Errorf("score.Alert field %q missing from the schema", tag)
		}
	}
}
