package hl7

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCases(t *testing.T) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			m, err := Parse(c.Raw)
			if c.Valid() {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if got := m.Type().String(); got != c.Type {
					t.Errorf("Type = %q, want %q", got, c.Type)
				}
				checkRoundTrip(t, m)
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", c.Err)
			}
			if !strings.Contains(err.Error(), c.Err) {
				t.Errorf("error %q does not contain %q", err, c.Err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if pe.Location() != c.Field {
				t.Errorf("location = %q, want %q (%v)", pe.Location(), c.Field, err)
			}
			if pe.Code == 0 {
				t.Errorf("no table 0357 code in %v", err)
			}
		})
	}
}

// checkRoundTrip verifies Bytes -> Parse gives the same structure and that
// encoding is stable.
func checkRoundTrip(t *testing.T, m *Message) {
	t.Helper()
	b1 := m.Bytes()
	m2, err := Parse(b1)
	if err != nil {
		t.Fatalf("re-Parse of %q: %v", b1, err)
	}
	if !reflect.DeepEqual(m.Segs, m2.Segs) {
		t.Fatalf("round trip changed segments:\n%#v\n%#v", m.Segs, m2.Segs)
	}
	if m.Delims != m2.Delims {
		t.Fatalf("round trip changed delimiters %+v -> %+v", m.Delims, m2.Delims)
	}
	if b2 := m2.Bytes(); !bytes.Equal(b1, b2) {
		t.Fatalf("encoding not stable:\n%q\n%q", b1, b2)
	}
}

func TestGetSet(t *testing.T) {
	m, err := Parse(ExampleRGV)
	if err != nil {
		t.Fatal(err)
	}
	gets := map[string]string{
		"MSH-1":          "|",
		"MSH-2":          `^~\&`,
		"MSH-9":          "RGV^O15^RGV_O15",
		"MSH-9.1":        "RGV",
		"MSH-9.2":        "O15",
		"MSH-10":         "BCMA000123",
		"MSH-21.3":       "1.3.6.1.4.1.19376.1.6.1.3.1",
		"PID-3":          "MRN4455^^^HOSP^MR",
		"PID-3.4":        "HOSP",
		"PID-5.2":        "Alex",
		"RXG-15":         "0.05",
		"RXG-16.1":       "265619",
		"RXG-16.2":       "MDC_DIM_MICRO_G_PER_KG_PER_MIN",
		"OBX-18":         "^^PUMP-0007^HOSP",
		"OBX-18.3":       "PUMP-0007",
		"OBX(2)-5":       "70",
		"OBX[2]-3.1":     "68063",
		"OBX(3)-5":       "",
		"OBX-3(1).1.1":   "69986",
		"OBX-3(2).1":     "",
		"ORC-19.3":       "Nina",
		"ZZZ-1":          "",
		"bad path":       "",
		"RXG-0":          "",
		"RXG-15.0":       "",
		"RXG-99999999.1": "",
	}
	for path, want := range gets {
		if got := m.Get(path); got != want {
			t.Errorf("Get(%q) = %q, want %q", path, got, want)
		}
	}
	if m.ControlID() != "BCMA000123" || m.Type() != (MessageType{"RGV", "O15", "RGV_O15"}) || !m.Type().Is("RGV", "O15") {
		t.Errorf("ControlID/Type = %q %+v", m.ControlID(), m.Type())
	}
	if n := len(m.Segments("OBX")); n != 2 {
		t.Errorf("Segments(OBX) = %d", n)
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.Set("MSH-10", "REPLAY-1"))
	must(m.Set("OBX(1)-18.3", "PUMP-9999"))
	must(m.Set("RXG-15", "5"))
	must(m.Set("PID-5.1", "Smith|Jones^Jr~&\\x"))
	must(m.Set("PID-3(2).1", "SSN1"))
	must(m.Set("PID-3(2).5", "SS"))
	must(m.Set("PID-13.1.2", "sub2"))
	if err := m.Set("NTE-1", "x"); err == nil {
		t.Error("Set on a missing segment succeeded")
	}
	if err := m.Set("MSH-2", "x"); err == nil {
		t.Error("Set MSH-2 succeeded")
	}
	if err := m.Set("MSH-x", "x"); err == nil {
		t.Error("Set with a bad path succeeded")
	}
	m2, err := Parse(m.Bytes())
	if err != nil {
		t.Fatalf("Parse after Set: %v\n%s", err, m)
	}
	checks := map[string]string{
		"MSH-10":     "REPLAY-1",
		"OBX-18":     "^^PUMP-9999^HOSP",
		"RXG-15":     "5",
		"PID-5.1":    "Smith|Jones^Jr~&\\x",
		"PID-5.2":    "Alex",
		"PID-3(1).1": "MRN4455",
		"PID-3(2).1": "SSN1",
		"PID-3(2).5": "SS",
		"PID-3(2)":   "SSN1^^^^SS",
		"PID-3":      "MRN4455^^^HOSP^MR~SSN1^^^^SS",
		"PID-13.1.2": "sub2",
		"PID-13.1":   "&sub2",
		"PID-13":     "&sub2",
	}
	for path, want := range checks {
		if got := m2.Get(path); got != want {
			t.Errorf("after Set, Get(%q) = %q, want %q", path, got, want)
		}
	}
	if !strings.Contains(string(m.Bytes()), `PID|||MRN4455^^^HOSP^MR~SSN1^^^^SS||Smith\F\Jones\S\Jr\R\\T\\E\x^Alex`) {
		t.Errorf("escaped encoding wrong:\n%s", m)
	}
	if err := m2.SetField("OBX(2)-5", C("a", "b")); err != nil || m2.Get("OBX(2)-5") != "a^b" {
		t.Errorf("SetField: %v %q", err, m2.Get("OBX(2)-5"))
	}
	// Clone is deep.
	c := m2.Clone()
	_ = c.Set("MSH-10", "CLONE")
	if m2.ControlID() != "REPLAY-1" || c.ControlID() != "CLONE" {
		t.Errorf("Clone not deep: %q %q", m2.ControlID(), c.ControlID())
	}
}

// TestConcurrentReads: reading a message (encode, Get, typed views, acks)
// from several goroutines is race-free.
func TestConcurrentReads(t *testing.T) {
	m, err := Parse(ExampleRGV)
	if err != nil {
		t.Fatal(err)
	}
	want := string(m.Bytes())
	done := make(chan string, 8)
	for i := 0; i < 8; i++ {
		go func() {
			for j := 0; j < 50; j++ {
				_ = m.Get("OBX-18")
				_ = m.Get("PID-3(1)")
				_ = m.Field("RXG-16").Rep(1)
				_, _ = ParseRGV(m)
				_ = BuildAck(m, AckCA, nil).Bytes()
			}
			done <- string(m.Bytes())
		}()
	}
	for i := 0; i < 8; i++ {
		if got := <-done; got != want {
			t.Fatalf("encoding changed under concurrent reads")
		}
	}
}

func TestEscapes(t *testing.T) {
	dec := func(name string) *Message {
		for _, c := range Cases {
			if c.Name == name {
				m, err := Parse(c.Raw)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
		}
		t.Fatalf("no case %s", name)
		return nil
	}
	if got, want := dec("escapes-decoded").Get("MSA-3"), `pipe | caret ^ amp & tilde ~ backslash \`; got != want {
		t.Errorf("decoded = %q, want %q", got, want)
	}
	m := dec("escapes-kept-verbatim")
	if got, want := m.Get("MSA-3"), `line\.br\break \H\bold\N\ hex \X0D0A\ local \Zab\`; got != want {
		t.Errorf("verbatim = %q, want %q", got, want)
	}
	for _, name := range []string{"escapes-decoded", "escapes-kept-verbatim", "other-delimiters", "truncation-char-v27", "z-segment-and-repetitions"} {
		var raw []byte
		for _, c := range Cases {
			if c.Name == name {
				raw = c.Raw
			}
		}
		if got := dec(name).Bytes(); string(got) != string(raw) {
			t.Errorf("%s: re-encoding differs:\n got %q\nwant %q", name, got, raw)
		}
	}
	if got := dec("other-delimiters").Get("MSA-3"); got != `a|b^c~d\e&f` {
		t.Errorf("other delimiters MSA-3 = %q", got)
	}
	if got := dec("truncation-char-v27").Get("MSA-3"); got != "hash #" {
		t.Errorf("truncation MSA-3 = %q", got)
	}
	z := dec("z-segment-and-repetitions")
	if z.Get("PID-3(2).1") != "SSN9" || z.Get("ZPL-2.1.2") != "sub" || z.Get("ZPL-2(2)") != "y" {
		t.Errorf("z segment access: %q %q %q", z.Get("PID-3(2).1"), z.Get("ZPL-2.1.2"), z.Get("ZPL-2(2)"))
	}

	// Values with control characters and lone escape characters encode to
	// something that parses and stays stable.
	m = NewMessage(NewSegment("MSH", F("|"), F(`^~\&`), nil, nil, nil, nil, nil, nil, C("ACK"), F("X")),
		NewSegment("NTE", F("1"), nil, F("a\rb\n\x00 \\ \\H\\ \\Q\\ \\")))
	raw := m.Bytes()
	if strings.ContainsAny(string(raw[len("MSH"):]), "\n\x00") || strings.Count(string(raw), "\r") != 1 {
		t.Fatalf("control characters leaked: %q", raw)
	}
	m2, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse(%q): %v", raw, err)
	}
	if got, want := m2.Get("NTE-3"), `a\X0D\b\X0A\\X00\ \ \H\ \Q\ \`; got != want {
		t.Errorf("NTE-3 = %q, want %q", got, want)
	}
	checkRoundTrip(t, m2)
}

func TestParsePath(t *testing.T) {
	good := map[string]Path{
		"MSH-10":       {Segment: "MSH", Field: 10},
		"OBX(2)-18.1":  {Segment: "OBX", SegIndex: 2, Field: 18, Comp: 1},
		"PID-3[2].1.4": {Segment: "PID", Field: 3, Rep: 2, Comp: 1, Sub: 4},
		"ZX1[3]-1(2)":  {Segment: "ZX1", SegIndex: 3, Field: 1, Rep: 2},
	}
	for s, want := range good {
		p, err := ParsePath(s)
		if err != nil || p != want {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", s, p, err, want)
		}
		if p2, _ := ParsePath(p.String()); p2 != p {
			t.Errorf("String round trip of %q: %q", s, p.String())
		}
	}
	for _, s := range []string{"", "MSH", "MSH-", "msh-1", "MSH-0", "MSH-1.", "MSH-1.0", "MSH(0)-1", "MSH(1-1", "MSH-1x", "MSH-1.1.1.1", "MSH-99999999999"} {
		if _, err := ParsePath(s); err == nil {
			t.Errorf("ParsePath(%q) succeeded", s)
		}
	}
}

func TestUnits(t *testing.T) {
	enc := map[string]string{
		"mL/h":              "265266^MDC_DIM_MILLI_L_PER_HR^MDC",
		"mcg/kg/min":        "265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC",
		"mL":                "263762^MDC_DIM_MILLI_L^MDC",
		"mg":                "263890^MDC_DIM_MILLI_G^MDC",
		"kg":                "263875^MDC_DIM_KILO_G^MDC",
		"units/h":           "267840^MDC_DIM_INTL_UNIT_PER_HR^MDC",
		"ug/kg/min":         "265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC",
		"units/kg/h":        "[iU]/kg/h^[iU]/kg/h^UCUM",
		"mEq":               "meq^meq^UCUM",
		"furlong/fortnight": "furlong/fortnight^furlong/fortnight^UCUM",
		"":                  "",
	}
	for unit, want := range enc {
		if got := DefaultDelimiters.EncodeField(UnitField(unit)); got != want {
			t.Errorf("UnitField(%q) = %q, want %q", unit, got, want)
		}
	}
	dec := map[string]string{
		"265266^MDC_DIM_MILLI_L_PER_HR^MDC":   "mL/h",
		"265619":                              "mcg/kg/min",
		"^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC": "mcg/kg/min",
		"ug/kg/min^ug/kg/min^UCUM":            "mcg/kg/min",
		"mL^mL^UCUM":                          "mL",
		"ML/H":                                "mL/h",
		"[iU]/h^^UCUM":                        "units/h",
		"furlong^Furlong^L":                   "furlong",
		"^text only":                          "text only",
	}
	for raw, want := range dec {
		f, err := parseField(raw, DefaultDelimiters)
		if err != nil {
			t.Fatal(err)
		}
		if got := UnitOf(f); got != want {
			t.Errorf("UnitOf(%q) = %q, want %q", raw, got, want)
		}
	}
	for _, u := range Units {
		if got := UnitOf(UnitField(u.Lab)); got != u.Lab {
			t.Errorf("unit %q does not round-trip: %q", u.Lab, got)
		}
		if got := UnitOf(UnitUCUMField(u.Lab)); got != u.Lab {
			t.Errorf("unit %q does not round-trip via UCUM: %q", u.Lab, got)
		}
	}
}

func TestTime(t *testing.T) {
	good := map[string]time.Time{
		"20250301101500-0500":    time.Date(2025, 3, 1, 10, 15, 0, 0, time.FixedZone("", -5*3600)),
		"20250301101500+0130":    time.Date(2025, 3, 1, 10, 15, 0, 0, time.FixedZone("", 5400)),
		"20250301101500":         time.Date(2025, 3, 1, 10, 15, 0, 0, time.UTC),
		"20250301101500.25+0000": time.Date(2025, 3, 1, 10, 15, 0, 250000000, time.UTC),
		"202503011015":           time.Date(2025, 3, 1, 10, 15, 0, 0, time.UTC),
		"2025030110":             time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC),
		"20250301":               time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		"202503":                 time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		"2025":                   time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		"":                       {},
	}
	for s, want := range good {
		got, err := ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
		_, off := got.Zone()
		_, woff := want.Zone()
		if off != woff {
			t.Errorf("ParseTime(%q) offset %d, want %d", s, off, woff)
		}
	}
	for _, s := range []string{"2025-03-01", "20250230", "20251301", "2025030125", "202503011060", "20250301101500-05", "20250301101500-0560", "1", "20250301101500.", "202503011015.5", "20250301101500.12345", "abcd", "20250301101500+-0500"} {
		if _, err := ParseTime(s); err == nil {
			t.Errorf("ParseTime(%q) succeeded", s)
		}
	}
	tm := time.Date(2025, 3, 1, 10, 15, 0, 999, time.FixedZone("", -5*3600))
	if FormatTime(tm) != "20250301101500-0500" || FormatTime(time.Time{}) != "" {
		t.Errorf("FormatTime = %q", FormatTime(tm))
	}
}

func TestParseNM(t *testing.T) {
	for s, want := range map[string]float64{"0.05": 0.05, "250": 250, "-1.5": -1.5, "+2": 2, ".5": 0.5, "5.": 5, " 13.1 ": 13.1} {
		if got, ok := parseNM(s); !ok || got != want {
			t.Errorf("parseNM(%q) = %v, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "1e3", "NaN", "Inf", "0x10", "1_000", "1.2.3", "-", ".", "12a", "1,5"} {
		if _, ok := parseNM(s); ok {
			t.Errorf("parseNM(%q) accepted", s)
		}
	}
}
