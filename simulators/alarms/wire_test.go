package alarms

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeResponseCases(t *testing.T) {
	for _, tc := range ResponseCases {
		t.Run(tc.Name, func(t *testing.T) {
			got, err := DecodeResponse([]byte(tc.JSON))
			if tc.Err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.Err) {
					t.Fatalf("error %v, want one containing %q", err, tc.Err)
				}
				if !strings.HasPrefix(err.Error(), "alarms: decode response: ") {
					t.Errorf("error %q does not name the component and operation", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.Want {
				t.Errorf("got %+v, want %+v", got, tc.Want)
			}
		})
	}
}

func TestDecodeMessageCases(t *testing.T) {
	for _, tc := range MessageCases {
		t.Run(tc.Name, func(t *testing.T) {
			got, err := DecodeMessage([]byte(tc.JSON))
			if tc.Err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.Err) {
					t.Fatalf("error %v, want one containing %q", err, tc.Err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.Want) {
				t.Errorf("got %+v, want %+v", got, tc.Want)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	b := []byte(`{"alert_id":"A","status":"read","reason":"` + strings.Repeat("x", MaxBodySize) + `"}`)
	if _, err := DecodeResponse(b); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized body: %v", err)
	}
}

// roundTrip checks that a decoded value encodes and decodes to itself.
func roundTrip[T comparable](t *testing.T, v T, decode func([]byte) (T, error)) {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %+v: %v", v, err)
	}
	again, err := decode(b)
	if err != nil {
		t.Fatalf("re-decode %s: %v", b, err)
	}
	if again != v {
		t.Fatalf("round trip changed %+v into %+v", v, again)
	}
}

func FuzzResponseJSON(f *testing.F) {
	for _, tc := range ResponseCases {
		f.Add([]byte(tc.JSON))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponse(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "alarms: decode response: ") {
				t.Fatalf("unnamed error %q", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded value does not validate: %v", err)
		}
		roundTrip(t, r, DecodeResponse)
	})
}

func FuzzMessageJSON(f *testing.F) {
	for _, tc := range MessageCases {
		f.Add([]byte(tc.JSON))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded value does not validate: %v", err)
		}
		// Times compare with ==; normalise the location first.
		m.Onset, m.Sent = m.Onset.UTC(), m.Sent.UTC()
		b2, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := DecodeMessage(b2)
		if err != nil {
			t.Fatalf("re-decode %s: %v", b2, err)
		}
		if !again.Onset.Equal(m.Onset) || !again.Sent.Equal(m.Sent) || again.AlertID != m.AlertID || again.Callback != m.Callback || again.Text != m.Text {
			t.Fatalf("round trip changed %+v into %+v", m, again)
		}
	})
}
