package hl7

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testHeartbeat() Heartbeat {
	return Heartbeat{
		Header: Header{SendingApp: ParseHD("PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64"), SendingFacility: HD{Namespace: "HOSP_BIOMED"},
			ReceivingApp: ParseHD("ALERTMGR_SIM^1122334455667788^EUI-64"), ReceivingFacility: HD{Namespace: "HOSP_AM"},
			Time: time.Date(2025, 3, 1, 11, 30, 12, 0, time.FixedZone("", -5*3600)), ControlID: "HB000042", AcceptAck: "AL", AppAck: "NE"},
		App: "PUMPSRV_SIM", Run: "mf3k2a1", Seq: 42, Time: time.Date(2025, 3, 1, 11, 30, 12, 0, time.FixedZone("", -5*3600)),
		Active: []string{"ALR-55123", "ALR-55124"},
	}
}

func TestHeartbeatRoundTrip(t *testing.T) {
	h := testHeartbeat()
	m := BuildHeartbeat(h)
	want := strings.Join([]string{
		`MSH|^~\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|ALERTMGR_SIM^1122334455667788^EUI-64|HOSP_AM|20250301113012-0500||ORU^R40^ORU_R40|HB000042|P|2.6|42||AL|NE|||||IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.4.1^ISO`,
		`OBR|1|HB-mf3k2a1-42^PUMPSRV_SIM||0^MDC_EVT_HEARTBEAT^99PUMPLAB|||20250301113012-0500`,
		`OBX|1|ST|0^MDC_ATTR_REPORTER_RUN^99PUMPLAB|0.0.0.1|mf3k2a1||||||F`,
		`OBX|2|NM|0^MDC_ATTR_ALERT_ACTIVE_COUNT^99PUMPLAB|0.0.0.2|2||||||F`,
		`OBX|3|ST|0^MDC_ATTR_ALERT_ACTIVE^99PUMPLAB|0.0.0.3|ALR-55123^PUMPSRV_SIM||||||F`,
		`OBX|4|ST|0^MDC_ATTR_ALERT_ACTIVE^99PUMPLAB|0.0.0.4|ALR-55124^PUMPSRV_SIM||||||F`,
	}, "\r")
	if got := string(m.Bytes()); got != want {
		t.Fatalf("heartbeat\n%s\nwant\n%s", strings.ReplaceAll(got, "\r", "\n"), strings.ReplaceAll(want, "\r", "\n"))
	}
	parsed, err := Parse(m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !IsHeartbeat(parsed) {
		t.Fatal("IsHeartbeat false")
	}
	got, err := ParseHeartbeat(parsed)
	if err != nil {
		t.Fatal(err)
	}
	got.Header.Type, h.Header.Type = MessageType{}, MessageType{}
	got.Header.Profile, h.Header.Profile = Profile{}, Profile{}
	h.Header.ProcessingID, h.Header.Version = "P", "2.6"
	if !got.Time.Equal(h.Time) || !got.Header.Time.Equal(h.Header.Time) {
		t.Errorf("times %v %v", got.Time, got.Header.Time)
	}
	got.Time, got.Header.Time, h.Time, h.Header.Time = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, h) {
		t.Errorf("round trip\n%+v\nwant\n%+v", got, h)
	}
	// A PCD-04 alert is not a heartbeat.
	if a, _ := Parse(ExampleR40); IsHeartbeat(a) {
		t.Error("PCD-04 alert taken for a heartbeat")
	}
}

func TestHeartbeatErrors(t *testing.T) {
	base := string(BuildHeartbeat(testHeartbeat()).Bytes())
	cases := []struct{ name, from, to, want string }{
		{"no sequence", "|2.6|42|", "|2.6||", "MSH-13"},
		{"sequence not a number", "|2.6|42|", "|2.6|4x2|", "sequence number \"4x2\""},
		{"sequence zero", "|2.6|42|", "|2.6|0|", "sequence number 0"},
		{"sequence too long", "|2.6|42|", "|2.6|1234567890123456789|", "1 to 18 digits"},
		{"count mismatch", "0.0.0.2|2|", "0.0.0.2|3|", "says 3 active alerts and lists 2"},
		{"count not a number", "0.0.0.2|2|", "0.0.0.2|-1|", "active alert count"},
		{"no run", "0.0.0.1|mf3k2a1|", "0.0.0.1||", "reporter run"},
		{"bad alert id", "0.0.0.3|ALR-55123^", "0.0.0.3|ALR 1^", "active alert id"},
		{"bad time", "|||20250301113012-0500\r", "|||2025-03-01\r", "OBR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := strings.Replace(base, tc.from, tc.to, 1)
			if raw == base {
				t.Fatalf("replacement %q not found", tc.from)
			}
			m, err := Parse([]byte(raw))
			if err == nil {
				_, err = ParseHeartbeat(m)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want a *ParseError containing %q", err, tc.want)
			}
		})
	}
}

// FuzzParseHeartbeat: ParseHeartbeat and Sequence never panic and fail only
// with *ParseError; an accepted heartbeat builds back to one that parses to
// the same values.
func FuzzParseHeartbeat(f *testing.F) {
	f.Add(BuildHeartbeat(testHeartbeat()).Bytes())
	h := testHeartbeat()
	h.Active = nil
	f.Add(BuildHeartbeat(h).Bytes())
	f.Add(ExampleR40)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if _, _, err := Sequence(m); err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Sequence error %T: %v", err, err)
			}
		}
		_ = IsHeartbeat(m)
		hb, err := ParseHeartbeat(m)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseHeartbeat error %T: %v", err, err)
			}
			return
		}
		again, err := ParseHeartbeat(BuildHeartbeat(hb))
		if err != nil {
			t.Fatalf("rebuilt heartbeat does not parse: %v", err)
		}
		if again.Seq != hb.Seq || again.Run != hb.Run || !reflect.DeepEqual(again.Active, hb.Active) {
			t.Fatalf("rebuilt heartbeat differs: %+v vs %+v", again, hb)
		}
	})
}
