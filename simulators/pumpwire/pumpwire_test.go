package pumpwire

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCases(t *testing.T) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			_, _, body, err := Decode(c.Topic, []byte(c.Payload))
			if c.Err == "" {
				if err != nil {
					t.Fatalf("valid case: %v", err)
				}
				if body == nil {
					t.Fatal("valid case decoded to a nil body")
				}
				return
			}
			if err == nil {
				t.Fatalf("want error containing %q, got none", c.Err)
			}
			if !strings.Contains(err.Error(), c.Err) {
				t.Fatalf("error %q does not contain %q", err, c.Err)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	ts := time.Date(2026, 3, 1, 10, 15, 0, 123e6, time.UTC)
	in := Alarm{AlarmID: "P-1-A7", Code: "air_in_line", Phase: PhaseStart, Priority: "PH", Type: "ST", Channel: "A", Stops: true}
	b, err := Encode("m-9", "P-1", ts, 42, in)
	if err != nil {
		t.Fatal(err)
	}
	id, env, body, err := Decode(Topic("P-1", KindAlarm), b)
	if err != nil {
		t.Fatal(err)
	}
	if id != "P-1" || env.Seq != 42 || !env.TS.Equal(ts) || env.ID != "m-9" {
		t.Fatalf("envelope %+v", env)
	}
	if got := *body.(*Alarm); !reflect.DeepEqual(got, in) {
		t.Fatalf("body %+v, want %+v", got, in)
	}
}

func TestTopics(t *testing.T) {
	if got := Topic("PUMP-0007", KindAck); got != "pumplab/v1/pumps/PUMP-0007/cmd/ack" {
		t.Fatal(got)
	}
	id, k, err := ParseTopic("pumplab/v1/pumps/PUMP-0007/cmd/ack")
	if err != nil || id != "PUMP-0007" || k != KindAck {
		t.Fatalf("%s %s %v", id, k, err)
	}
	if Filter(KindStatus) != "pumplab/v1/pumps/+/status" {
		t.Fatal(Filter(KindStatus))
	}
}

func TestOversizeRefused(t *testing.T) {
	big := make([]byte, MaxPayload+1)
	if _, err := DecodeEnvelope(big); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversize payload: %v", err)
	}
}
