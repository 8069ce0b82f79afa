package harness

import (
	"testing"

	"github.com/pumplab/pumplab/lab"
)

func TestMergeOverlaysSetFields(t *testing.T) {
	base := lab.Topology{Pumps: 20, Speed: 300, Seed: 1, Broker: "mosquitto"}
	got := merge(base, lab.Topology{Pumps: 3})
	if got.Pumps != 3 || got.Speed != 300 || got.Seed != 1 || got.Broker != "mosquitto" {
		t.Fatalf("merge %+v", got)
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
