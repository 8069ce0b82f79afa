package alarms

import (
	"context"
	"testing"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// FuzzPCD04 feeds arbitrary bytes through the manager's PCD-04 path (hl7
// parse, then the handler) on a manager with no communicators: it must
// never panic, and an accepted message must leave a consistent record.
func FuzzPCD04(f *testing.F) {
	for _, phase := range []string{hl7.PhaseStart, hl7.PhaseEnd, hl7.PhaseContinue, "sideways", ""} {
		for _, state := range []string{hl7.StateActive, hl7.StateInactive, ""} {
			f.Add(hl7.BuildAlert(pcd04("ALR-F", phase, state, onsetBase)).Bytes())
		}
	}
	f.Add([]byte("MSH|^~\\&|A|B|C|D|20260101||ORU^R40^ORU_R40|1|P|2.6\rOBR|1|X/Y"))
	f.Add([]byte("garbage"))
	f.Add(beat(1, "r1", onsetBase, "ALR-F").Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := hl7.Parse(b)
		if err != nil {
			return
		}
		m := New(Config{Clock: clock.NewFake(onsetBase)})
		_, herr := m.handlePCD04(context.Background(), msg, hl7.ConnMeta{RemoteAddr: "fuzz"})
		s := m.Stats()
		if herr != nil {
			if s.Received != 0 || len(m.Alerts()) != 0 {
				t.Fatalf("rejected message changed state: %+v", s)
			}
			return
		}
		if hl7.IsHeartbeat(msg) {
			if s.Heartbeats != 1 || s.Received != 0 || len(m.Alerts()) != 0 {
				t.Fatalf("accepted heartbeat not accounted for: %+v", s)
			}
			return
		}
		if s.Received != 1 || s.Alerts+s.UnknownEnds != 1 {
			t.Fatalf("accepted message not accounted for: %+v", s)
		}
		for _, r := range m.Alerts() {
			if checkID("id", r.ID, true) != nil || r.Status != RecordUndeliverable || r.Onset.IsZero() {
				t.Fatalf("bad record %+v", r)
			}
		}
	})
}
