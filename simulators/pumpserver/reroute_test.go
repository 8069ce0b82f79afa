package pumpserver

import (
	"testing"

	"github.com/pumplab/pumplab/simulators/pump"
)

// TestRerouteAlarmManager moves the PCD-04 route to another listener (as an
// on-path proxy would be placed): the next alarm goes there, not to the old
// address.
func TestRerouteAlarmManager(t *testing.T) {
	l := newLab(t, nil)
	p, _ := l.addPump(pump.Config{ID: "PUMP-0901"}, nil)
	other := newRecorder(t, "AM2", "")
	old, err := l.srv.Reroute(RouteAM, other.addr())
	if err != nil || old != l.am.addr() {
		t.Fatalf("reroute: old %q err %v, want %q", old, err, l.am.addr())
	}
	if err := p.InjectFault("A", pump.FaultDoorOpen); err != nil {
		t.Fatal(err)
	}
	other.wait(t, "PCD-04 at the new address", isType("ORU", "R40"))
	if n := len(l.am.all(isType("ORU", "R40"))); n != 0 {
		t.Fatalf("old alarm-manager address got %d PCD-04 after the reroute", n)
	}
	if _, err := New(Config{}).Reroute(RouteAM, "127.0.0.1:1"); err == nil {
		t.Fatal("reroute of an unconfigured route did not fail")
	}
}
