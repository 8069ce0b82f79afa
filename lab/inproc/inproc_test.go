package inproc

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/lab"
)

// TestClosedLoopPIV drives the CTL-01 workflow through every component of
// the in-process lab over its real sockets.
func TestClosedLoopPIV(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, lab.Topology{Pumps: 3, Speed: 300, Seed: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := l.Clinical()
	if err := c.Admit(ctx, lab.Patient{MRN: "MRN4455", Family: "Testpatient", Given: "Alex", DOB: "19700101", Sex: "F", Unit: "4W ICU", Room: "12", Bed: "A", WeightKg: 70}); err != nil {
		t.Fatal(err)
	}
	id, err := c.Order(ctx, lab.Order{MRN: "MRN4455", DrugCode: "NOREPI-4-250", DrugText: "Norepinephrine 4 mg/250 mL",
		DoseRate: 0.05, DoseUnit: "mcg/kg/min", DrugAmount: 4, DrugUnit: "mg", DiluentML: 250, VTBI: 10, Device: "IVP", Prescriber: "MD0007"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctx, id, "RPH0001"); err != nil {
		t.Fatal(err)
	}
	res, err := c.Administer(ctx, lab.Scan{Nurse: "RN0042", MRN: "MRN4455", Drug: "NOREPI-4-250", PumpID: "PUMP-0002", Channel: "A"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Accepted {
		t.Fatalf("program refused: %+v", res)
	}
	dev := l.Devices()
	if err := dev.WaitState(ctx, "PUMP-0002", "A", "kvo"); err != nil {
		t.Fatal(err)
	}
	doc, err := c.WaitDocumented(ctx, id, func(d lab.Documentation) bool {
		return d.Has("MDC_EVT_PUMP_DELIV_START") && d.Has("MDC_EVT_PUMP_DELIV_COMP") && d.Observations > 0
	})
	if err != nil {
		t.Fatalf("%v (documented so far %+v)", err, doc)
	}
	var start, done lab.DocEvent
	for _, e := range doc.Events {
		switch e.Type {
		case "MDC_EVT_PUMP_DELIV_START":
			start = e
		case "MDC_EVT_PUMP_DELIV_COMP":
			done = e
		}
	}
	ddr, err := dev.DDR(ctx, "PUMP-0002", "A", start.At, done.At)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(ddr-1) > 0.05 {
		t.Fatalf("DDR %.4f", ddr)
	}
	t.Logf("DDR %.4f, documented at completion %.3f mL, start %s complete %s", ddr, done.VolumeML, start.At, done.At)
	if math.Abs(done.VolumeML-10) > 0.01 {
		t.Fatalf("documented volume at completion %.3f, want 10", done.VolumeML)
	}
	if err := dev.InjectFault(ctx, "PUMP-0002", "A", "occlusion_downstream"); err != nil {
		t.Fatal(err)
	}
	a, err := l.Alarms().WaitAlarm(ctx, func(a lab.AlarmRecord) bool {
		return a.PumpID == "PUMP-0002" && strings.Contains(a.Code, "OCCL") && !a.Delivered.IsZero()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("alarm %+v", a)
}
