package lab

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestTopologyDefaults(t *testing.T) {
	d := Topology{}.WithDefaults()
	if d.Pumps != 20 || d.Seed != 1 || d.Speed != 60 || d.CareArea != "Adult ICU" || d.Nurses != 2 {
		t.Fatalf("defaults %+v", d)
	}
	if d.Nurse.ConfirmMedian != 20*time.Second || d.Nurse.AlarmAcceptMedian != 45*time.Second {
		t.Fatalf("nurse defaults %+v", d.Nurse)
	}
	o := Topology{Pumps: 3, Speed: 5, Seed: 9}.WithDefaults()
	if o.Pumps != 3 || o.Speed != 5 || o.Seed != 9 {
		t.Fatalf("set fields overwritten: %+v", o)
	}
	if PumpID(7) != "PUMP-0007" {
		t.Fatal(PumpID(7))
	}
}

type fakeProvider struct{ name string }

func (f fakeProvider) Name() string { return f.name }
func (f fakeProvider) Start(context.Context, Topology) (Lab, error) {
	return nil, nil
}

func TestProviderRegistry(t *testing.T) {
	Register(fakeProvider{"test-registry"})
	if p, err := Lookup("test-registry"); err != nil || p.Name() != "test-registry" {
		t.Fatalf("lookup: %v %v", p, err)
	}
	if _, err := Lookup("nope"); err == nil || !strings.Contains(err.Error(), "test-registry") {
		t.Fatalf("unknown provider error should list the registered ones: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a name twice did not panic")
		}
	}()
	Register(fakeProvider{"test-registry"})
}

func TestDocumentationHas(t *testing.T) {
	d := Documentation{Events: []DocEvent{{Type: "MDC_EVT_PUMP_DELIV_START"}}}
	if !d.Has("MDC_EVT_PUMP_DELIV_START") || d.Has("MDC_EVT_PUMP_DELIV_COMP") {
		t.Fatal("Has")
	}
}
