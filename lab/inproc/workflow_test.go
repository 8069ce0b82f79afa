package inproc

import (
	"context"
	"testing"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/pumpserver"
)

// TestWorkflowInterfaces drives the optional interfaces of the in-process
// lab once each: a PCA pump replacing a fleet pump under its identity,
// keypad programming with a soft-limit override, a pump-server and a broker
// outage the fleet rides through, and mains power.
func TestWorkflowInterfaces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, lab.Topology{Pumps: 3, Speed: 300, Nurse: lab.NurseModel{Disabled: true}}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var (
		bed lab.Bedside  = l
		fac lab.Facility = l
	)

	// A PCA pump takes over PUMP-0003's identity and comes online.
	if err := bed.ReplacePump(ctx, "PUMP-0003", "pca"); err != nil {
		t.Fatal(err)
	}
	if err := bed.ReplacePump(ctx, "PUMP-0003", "pca"); err == nil {
		t.Fatal("a second replacement of the same bed was accepted")
	}
	if err := bed.ReplacePump(ctx, "PUMP-0009", "pca"); err == nil {
		t.Fatal("replacing a pump that is not in the fleet was accepted")
	}
	if err := bed.ReplacePump(ctx, "PUMP-0002", "cassette"); err == nil {
		t.Fatal("an unknown channel type was accepted")
	}
	r, err := bed.ManualProgram(ctx, "PUMP-0003", "A", "RN1", lab.ManualProgram{DrugID: "MORPHINE-PCA-30-30", DrugAmount: 30,
		DrugUnit: "mg", DiluentML: 30, PCADose: 1, PCALockoutMin: 10, PCAHourLimit: 10, VTBI: 30})
	if err != nil || !r.Accepted {
		t.Fatalf("PCA program on the replacement: %+v %v", r, err)
	}
	if err := bed.Start(ctx, "PUMP-0003", "A", "RN1"); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		ok, err := bed.PCADemand(ctx, "PUMP-0003", "A")
		if err != nil || ok != want {
			t.Fatalf("demand %d: delivered %v (%v), want %v", i+1, ok, err, want)
		}
	}
	st, err := bed.PCAStats(ctx, "PUMP-0003", "A")
	if err != nil || st.Demands != 2 || st.Delivered != 1 || st.RejectedLockout != 1 {
		t.Fatalf("PCA stats %+v %v", st, err)
	}

	// Keypad programming above the soft limit needs an override with a reason.
	r, err = bed.ManualProgram(ctx, "PUMP-0001", "A", "RN1", lab.ManualProgram{DrugID: "NOREPI-4-250", DoseRate: 0.7,
		DoseUnit: "mcg/kg/min", DrugAmount: 4, DrugUnit: "mg", DiluentML: 250, WeightKg: 70, VTBI: 50})
	if err != nil || !r.Accepted || !r.NeedsOverride {
		t.Fatalf("soft-limit program: %+v %v", r, err)
	}
	if err := bed.Start(ctx, "PUMP-0001", "A", "RN1"); err == nil {
		t.Fatal("started without the soft-limit override")
	}
	if err := bed.Override(ctx, "PUMP-0001", "A", "code blue", "RN1"); err != nil {
		t.Fatal(err)
	}
	if err := bed.Start(ctx, "PUMP-0001", "A", "RN1"); err != nil {
		t.Fatal(err)
	}
	log, err := bed.PumpLog(ctx, "PUMP-0001")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range log {
		found = found || (e.Kind == "override" && e.Detail == "code blue")
	}
	if !found {
		t.Fatal("the override is not in the pump's log")
	}
	if err := bed.SetCareArea(ctx, "PUMP-0001", "Med-Surg", "RN1"); err == nil {
		t.Fatal("care area changed while infusing")
	}

	// The pump server goes down and comes back; the fleet is online again.
	if err := fac.StopPumpServer(ctx); err != nil {
		t.Fatal(err)
	}
	down := l.clk.Now()
	if err := fac.StartPumpServer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Server.Wait(ctx, func(v pumpserver.View) bool {
		for _, id := range []string{"PUMP-0001", "PUMP-0002", "PUMP-0003"} {
			if p, ok := v.Pump(id); !ok || !p.Online || !p.LastSeen.After(down) {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("fleet after the pump-server restart: %v", err)
	}

	// The broker goes down: pumps lose their session and keep infusing.
	if err := fac.StopBroker(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, func() bool { c, _ := bed.Connected(ctx, "PUMP-0001"); return !c }, "PUMP-0001 to notice the outage")
	if s, _ := l.PumpModels["PUMP-0001"].Snapshot("A"); s.State != "infusing" {
		t.Fatalf("PUMP-0001 is %s during the broker outage", s.State)
	}
	if err := fac.StartBroker(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, func() bool { c, _ := bed.Connected(ctx, "PUMP-0003"); return c }, "the replacement to reconnect")

	// Mains off and on.
	if err := fac.Mains(ctx, false, "PUMP-0002"); err != nil {
		t.Fatal(err)
	}
	if l.PumpModels["PUMP-0002"].Status().OnMains {
		t.Fatal("PUMP-0002 still on mains")
	}
	if err := fac.Mains(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := fac.Mains(ctx, true, "PUMP-0042"); err == nil {
		t.Fatal("mains of an unknown pump accepted")
	}
}
