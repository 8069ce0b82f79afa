package harness

import (
	"testing"
	"time"

	"github.com/pumplab/pumplab/lab"
)

func TestMergeOverlaysSetFields(t *testing.T) {
	base := lab.Topology{Pumps: 20, Speed: 300, Seed: 1, Broker: "mosquitto"}
	got := merge(base, lab.Topology{Pumps: 30})
	if got.Pumps != 30 || got.Speed != 300 || got.Seed != 1 || got.Broker != "mosquitto" {
		t.Fatalf("merge %+v", got)
	}
	if got := merge(base, lab.Topology{Pumps: 3}); got.Pumps != MinFleet {
		t.Fatalf("a fleet of 3 became %d pumps, want the minimum %d", got.Pumps, MinFleet)
	}
	if got := merge(base, lab.Topology{}); got != base {
		t.Fatalf("empty override changed the topology: %+v", got)
	}
}

func TestUseAndCurrent(t *testing.T) {
	Use("inproc", lab.Topology{Pumps: 7})
	p, topo := Current()
	if p != "inproc" || topo.Pumps != 7 {
		t.Fatalf("%s %+v", p, topo)
	}
}

func TestScoreOptionsScaleWithTheClock(t *testing.T) {
	o := NewRun("r", 300).ScoreOptions()
	if o.Tolerance != 500*time.Millisecond || o.MaxLateness != 6*time.Second {
		t.Fatalf("x300: %+v, want tolerance 0.5 s (floor) and lateness 6 s", o)
	}
	if o := NewRun("r", 1).ScoreOptions(); o.Tolerance != 30*time.Second || o.MaxLateness != 30*time.Minute {
		t.Fatalf("x1: %+v", o)
	}
}
