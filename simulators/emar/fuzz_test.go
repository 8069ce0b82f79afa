package emar

import (
	"context"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// FuzzInbound feeds arbitrary messages to the eMAR's listener handler (ADT,
// RDE^O11, RRG^O16) and reads the pump ID and channel of any message as an
// IOC would: no panic, and the eMAR's state stays consistent.
func FuzzInbound(f *testing.F) {
	for _, c := range Cases {
		f.Add([]byte(c.Raw))
	}
	e := New(Config{Clock: clock.NewFake(time.Time{})})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := hl7.Parse(b)
		if err != nil {
			return
		}
		_, _ = PumpChannel(m)
		_, _ = e.handler(context.Background(), m, hl7.ConnMeta{})
		for _, o := range e.Orders() {
			if o.PlacerID == "" {
				t.Fatalf("order without placer ID: %+v", o)
			}
			switch o.State {
			case StateVerified, StateAdministered, StateCompleted, StateDiscontinued:
			default:
				t.Fatalf("order %s in state %q", o.PlacerID, o.State)
			}
		}
		if s := e.Stats(); s.UnmatchedRRG > s.RRG {
			t.Fatalf("stats %+v", s)
		}
	})
}
