package hl7

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
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
