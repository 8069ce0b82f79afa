package pump

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// testLib is a small library in Go literals (the lab's default library is
// somebody else's file).
func testLib(version string) *druglib.Library {
	return &druglib.Library{
		Version: version,
		CareAreas: []druglib.CareArea{
			{Name: "ICU", MaxRateMLH: 500, CallbackMin: 2, KVORateMLH: 2, WeightMinKg: 1, WeightMaxKg: 300, BasicAllowed: true},
			{Name: "NICU", MaxRateMLH: 50, CallbackMin: 1, KVORateMLH: 0.5, WeightMinKg: 0.3, WeightMaxKg: 8},
		},
		Entries: []druglib.Entry{
			{ID: "NOREPI-4-250", Name: "Norepinephrine", Channels: []string{"lvp", "syringe"}, HighAlert: true,
				Amount: 4, AmountUnit: "mg", VolumeML: 250, DoseUnit: "mcg/kg/min",
				Dose: druglib.Limits{SoftMin: 0.01, SoftMax: 0.5, HardMax: 1}},
			{ID: "HEP-25K", Name: "Heparin", Channels: []string{"lvp"}, HighAlert: true,
				Amount: 25000, AmountUnit: "units", VolumeML: 250, DoseUnit: "units/h",
				Dose: druglib.Limits{SoftMin: 500, SoftMax: 2000, HardMax: 3000}},
			{ID: "MORPH-PCA", Name: "Morphine PCA", Channels: []string{"pca"}, HighAlert: true,
				Amount: 30, AmountUnit: "mg", VolumeML: 30, DoseUnit: "mg/h",
				Dose: druglib.Limits{SoftMax: 2, HardMax: 5},
				PCA: &druglib.PCALimits{DoseSoftMin: 0.5, DoseSoftMax: 2, DoseHardMax: 3, LockoutSoftMin: 6,
					LockoutSoftMax: 60, LockoutHardMin: 5, HourLimitMax: 10}},
		},
	}
}

// rig is a pump on a fake clock that records every output.
type rig struct {
	t   *testing.T
	clk *clock.Fake
	p   *Pump
	mu  sync.Mutex
	out []Output
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := &rig{t: t, clk: clock.NewFake(time.Time{})}
	cfg.Clock = r.clk
	if cfg.Library == nil {
		cfg.Library = testLib("TEST-1")
	}
	if cfg.CareArea == "" {
		cfg.CareArea = "ICU"
	}
	cfg.OnOutput = func(o Output) {
		r.mu.Lock()
		r.out = append(r.out, o)
		r.mu.Unlock()
	}
	r.p = New(cfg)
	return r
}

func (r *rig) outputs() []Output {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Output(nil), r.out...)
}

func (r *rig) events(typ string) []Output {
	var res []Output
	for _, o := range r.outputs() {
		if o.Event != nil && o.Event.Type == typ {
			res = append(res, o)
		}
	}
	return res
}

func (r *rig) alarms(code AlarmCode, phase string) []Output {
	var res []Output
	for _, o := range r.outputs() {
		if o.Alarm != nil && o.Alarm.Code == string(code) && o.Alarm.Phase == phase {
			res = append(res, o)
		}
	}
	return res
}

func (r *rig) snap(ch string) Snapshot {
	r.t.Helper()
	s, err := r.p.Snapshot(ch)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *rig) must(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) program(w pumpwire.Program, ch string) Result {
	r.t.Helper()
	res, err := r.p.Program(Local, w, ch)
	if err != nil {
		r.t.Fatalf("program %+v: %v", w, err)
	}
	return res
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestDDRExactlyOneForConstantInfusion(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    pumpwire.Program
		rate float64
	}{
		{"heparin units/h", pumpwire.Program{OrderID: "O1", DrugID: "HEP-25K", DoseRate: 1000, DoseUnit: "units/h"}, 10},
		{"norepinephrine mcg/kg/min", pumpwire.Program{OrderID: "O2", DrugID: "NOREPI-4-250", DoseRate: 0.1, DoseUnit: "mcg/kg/min", WeightKg: 70}, 0.1 * 70 * 60 / 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			start := r.clk.Now()
			e, _ := r.p.cfg.Library.Lookup(tc.w.DrugID, "")
			r.must(r.p.SetOrdered("A", Setting{OrderID: tc.w.OrderID, DrugID: tc.w.DrugID, DoseRate: tc.w.DoseRate,
				DoseUnit: tc.w.DoseUnit, Concentration: e.Concentration(), AmountUnit: e.AmountUnit, WeightKg: tc.w.WeightKg}))
			res := r.program(tc.w, "A")
			if !near(res.RateMLH, tc.rate) {
				t.Fatalf("rate %v mL/h, want %v", res.RateMLH, tc.rate)
			}
			r.must(r.p.Start("A", "RN1"))
			r.clk.Advance(time.Hour)
			ddr, err := r.p.DDR("A", start, start.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if ddr != 1.0 {
				t.Fatalf("DDR = %.17g, want exactly 1", ddr)
			}
			// 1 Hz samples: volume is linear in time.
			ss, err := r.p.Samples("A", start, start.Add(time.Hour), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(ss) != 3601 {
				t.Fatalf("%d samples, want 3601", len(ss))
			}
			if !near(ss[1800].VolumeML, tc.rate/2) || !near(ss[3600].VolumeML, tc.rate) || ss[0].VolumeML != 0 {
				t.Fatalf("samples: v(0)=%v v(30m)=%v v(60m)=%v, rate %v", ss[0].VolumeML, ss[1800].VolumeML, ss[3600].VolumeML, tc.rate)
			}
			// Half-rate window: DDR 0.5 if the pump had run only half the time.
			r.must(r.p.Pause("A", "RN1"))
			r.clk.Advance(time.Hour)
			ddr, _ = r.p.DDR("A", start, start.Add(2*time.Hour))
			if !near(ddr, 0.5) {
				t.Fatalf("DDR with one hour paused = %v, want 0.5", ddr)
			}
		})
	}
}

func TestVTBICompleteAtExactTimeThenKVO(t *testing.T) {
	r := newRig(t, Config{})
	r.program(pumpwire.Program{OrderID: "O1", RateMLH: 100, VTBI: 50}, "A")
	r.must(r.p.Start("A", "RN1"))
	start := r.clk.Now()
	r.clk.Advance(30*time.Minute - time.Second)
	if s := r.snap("A"); s.State != ChInfusing || !near(s.RemainingML, 100.0/3600) {
		t.Fatalf("before completion: %s remaining %v", s.State, s.RemainingML)
	}
	r.clk.Advance(time.Second)
	done := r.events(pumpwire.EvDeliveryComplete)
	if len(done) != 1 || !done[0].Time.Equal(start.Add(30*time.Minute)) {
		t.Fatalf("delivery_complete events %v, want one at %v", done, start.Add(30*time.Minute))
	}
	if a := r.alarms(AlarmInfusionComplete, pumpwire.PhaseStart); len(a) != 1 || a[0].Alarm.Priority != "PM" {
		t.Fatalf("infusion complete alarm: %+v", a)
	}
	s := r.snap("A")
	if s.State != ChKVO || s.RateMLH != 2 || !near(s.VolumeML, 50) {
		t.Fatalf("after completion: %s rate %v vol %v, want kvo 2 mL/h 50 mL", s.State, s.RateMLH, s.VolumeML)
	}
	r.clk.Advance(30 * time.Minute)
	if s := r.snap("A"); !near(s.VolumeML, 51) {
		t.Fatalf("after 30 min KVO volume %v, want 51", s.VolumeML)
	}
	// KVO is the programmed rate when that is lower than the care area's.
	r.must(r.p.Stop("A", "RN1"))
	if a := r.alarms(AlarmInfusionComplete, pumpwire.PhaseEnd); len(a) != 1 {
		t.Fatalf("stop should end the infusion-complete alarm: %v", a)
	}
	r.must(r.p.ClearProgram("A", "RN1"))
	r.program(pumpwire.Program{OrderID: "O2", RateMLH: 1, VTBI: 0.5}, "A")
	r.must(r.p.Start("A", "RN1"))
	r.clk.Advance(31 * time.Minute)
	if s := r.snap("A"); s.State != ChKVO || s.RateMLH != 1 {
		t.Fatalf("low-rate KVO: %s %v mL/h, want kvo 1", s.State, s.RateMLH)
	}
}

func TestSoftLimitNeedsOverride(t *testing.T) {
	r := newRig(t, Config{})
	res := r.program(pumpwire.Program{OrderID: "O1", DrugID: "NOREPI-4-250", DoseRate: 0.7, DoseUnit: "mcg/kg/min", WeightKg: 70}, "A")
	if !res.NeedsOverride || res.Code != "LIB-SOFTMAX" || res.Check != druglib.SoftHigh {
		t.Fatalf("result %+v, want soft-high override", res)
	}
	var rej *Rejection
	if err := r.p.Start("A", "RN1"); !errors.As(err, &rej) || rej.Code != "NEEDS-OVERRIDE" {
		t.Fatalf("start without override: %v", err)
	}
	if err := r.p.Override("A", "", "RN1"); !errors.As(err, &rej) || rej.Code != "OVERRIDE-REASON" {
		t.Fatalf("override without reason: %v", err)
	}
	r.must(r.p.Override("A", "septic shock, per MD", "RN1"))
	r.must(r.p.Start("A", "RN1"))
	if s := r.snap("A"); s.State != ChInfusing {
		t.Fatalf("state %s", s.State)
	}
	ov := r.events(pumpwire.EvOverride)
	if len(ov) != 1 || ov[0].Event.Params["reason"] != "septic shock, per MD" || ov[0].Event.Params["code"] != "LIB-SOFTMAX" {
		t.Fatalf("override events %+v", ov)
	}
	found := false
	for _, l := range r.p.Log() {
		if l.Kind == LogOverride && l.User == "RN1" && l.Code == "LIB-SOFTMAX" {
			found = true
		}
	}
	if !found {
		t.Fatal("override not in the pump log")
	}
}

func TestDERSRefusals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		careArea string
		channels []ChannelType
		w        pumpwire.Program
		code     string
	}{
		{"hard max", "ICU", nil, pumpwire.Program{OrderID: "O", DrugID: "NOREPI-4-250", DoseRate: 1.5, DoseUnit: "mcg/kg/min", WeightKg: 70}, "LIB-HARDMAX"},
		{"hard max from rate", "ICU", nil, pumpwire.Program{OrderID: "O", DrugID: "HEP-25K", RateMLH: 35}, "LIB-HARDMAX"},
		{"unknown drug", "ICU", nil, pumpwire.Program{OrderID: "O", DrugID: "NOPE", DoseRate: 1, DoseUnit: "mg/h"}, "LIB-NOTFOUND"},
		{"weight missing", "ICU", nil, pumpwire.Program{OrderID: "O", DrugID: "NOREPI-4-250", DoseRate: 0.1, DoseUnit: "mcg/kg/min"}, "LIB-WEIGHT"},
		{"weight out of care area", "ICU", nil, pumpwire.Program{OrderID: "O", DrugID: "NOREPI-4-250", DoseRate: 0.1, DoseUnit: "mcg/kg/min", WeightKg: 400}, "LIB-WEIGHT"},
		{"care area max rate", "ICU", nil, pumpwire.Program{OrderID: "O", RateMLH: 600}, "LIB-MAXRATE"},
		{"basic not allowed", "NICU", nil, pumpwire.Program{OrderID: "O", RateMLH: 5}, "LIB-NOBASIC"},
		{"wrong channel type", "ICU", nil, pumpwire.Program{OrderID: "O", DrugID: "MORPH-PCA", PCADose: 1, PCALockout: 10}, "LIB-CHANNEL"},
		{"unit mismatch", "ICU", nil, pumpwire.Program{OrderID: "O", DrugID: "HEP-25K", DoseRate: 10, DoseUnit: "units/kg/h", WeightKg: 70}, "LIB-UNIT"},
		{"pca dose hard max", "ICU", []ChannelType{PCA}, pumpwire.Program{OrderID: "O", DrugID: "MORPH-PCA", PCADose: 4, PCALockout: 10}, "LIB-HARDMAX"},
		{"pca lockout hard min", "ICU", []ChannelType{PCA}, pumpwire.Program{OrderID: "O", DrugID: "MORPH-PCA", PCADose: 1, PCALockout: 2}, "LIB-HARDMIN"},
		{"negative", "ICU", nil, pumpwire.Program{OrderID: "O", RateMLH: -1}, "BAD-PROGRAM"},
		{"NaN", "ICU", nil, pumpwire.Program{OrderID: "O", RateMLH: math.NaN()}, "BAD-PROGRAM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{CareArea: tc.careArea, Channels: tc.channels})
			res, err := r.p.Program(Remote, tc.w, "A")
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Code != tc.code || res.Code != tc.code || res.Accepted {
				t.Fatalf("got %+v, %v; want refusal %s", res, err, tc.code)
			}
			if s := r.snap("A"); s.State != ChIdle || s.Program != nil {
				t.Fatalf("refused program left channel %s", s.State)
			}
			ev := r.events(pumpwire.EvProgramRejected)
			if len(ev) != 1 || ev[0].Event.Params["code"] != tc.code || ev[0].Event.OrderID != "O" {
				t.Fatalf("program_rejected events %+v", ev)
			}
		})
	}
}

func TestOcclusionStopsDelivery(t *testing.T) {
	r := newRig(t, Config{})
	r.program(pumpwire.Program{OrderID: "O1", RateMLH: 100}, "A")
	r.must(r.p.Start("A", "RN1"))
	r.clk.Advance(time.Minute)
	r.must(r.p.InjectFault("A", FaultOcclusionDown))
	// 0.5 mL build-up at 100 mL/h: 18 s to the pressure alarm.
	r.clk.Advance(17 * time.Second)
	if s := r.snap("A"); s.State != ChInfusing {
		t.Fatalf("alarm before build-up: %s", s.State)
	}
	r.clk.Advance(time.Second)
	a := r.alarms(AlarmOcclusionDown, pumpwire.PhaseStart)
	if len(a) != 1 || !a[0].Alarm.Stops || a[0].Alarm.Priority != "PH" || a[0].Alarm.MDC != 196940 || a[0].Alarm.Channel != "A" {
		t.Fatalf("occlusion alarm %+v", a)
	}
	s := r.snap("A")
	if s.State != ChAlarming || s.RateMLH != 0 {
		t.Fatalf("after occlusion: %s %v mL/h", s.State, s.RateMLH)
	}
	vol := s.VolumeML
	r.clk.Advance(10 * time.Minute)
	if s := r.snap("A"); s.VolumeML != vol {
		t.Fatalf("delivery continued during occlusion: %v -> %v", vol, s.VolumeML)
	}
	if st := r.p.Status(); st.State != string(StateAlarm) {
		t.Fatalf("pump state %s", st.State)
	}
	var rej *Rejection
	if err := r.p.Resume("A", "RN1"); !errors.As(err, &rej) {
		t.Fatalf("resume under an active occlusion: %v", err)
	}
	r.must(r.p.ClearAlarm(a[0].Alarm.AlarmID, "RN1"))
	if e := r.alarms(AlarmOcclusionDown, pumpwire.PhaseEnd); len(e) != 1 || e[0].Alarm.AlarmID != a[0].Alarm.AlarmID {
		t.Fatalf("alarm end %+v, want same alarm id", e)
	}
	if s := r.snap("A"); s.State != ChPaused {
		t.Fatalf("after clear: %s, want paused", s.State)
	}
	r.must(r.p.Resume("A", "RN1"))
	r.clk.Advance(36 * time.Second)
	if s := r.snap("A"); !near(s.VolumeML, vol+1) {
		t.Fatalf("after resume: %v mL, want %v", s.VolumeML, vol+1)
	}
}

func TestPausedTooLong(t *testing.T) {
	r := newRig(t, Config{})
	r.program(pumpwire.Program{OrderID: "O1", RateMLH: 60}, "A")
	r.must(r.p.Start("A", "RN1"))
	r.clk.Advance(time.Minute)
	r.must(r.p.Pause("A", "RN1"))
	paused := r.clk.Now()
	r.clk.Advance(2*time.Minute - time.Millisecond)
	if a := r.alarms(AlarmPausedTooLong, pumpwire.PhaseStart); len(a) != 0 {
		t.Fatalf("early callback alarm %v", a)
	}
	r.clk.Advance(time.Millisecond)
	a := r.alarms(AlarmPausedTooLong, pumpwire.PhaseStart)
	if len(a) != 1 || !a[0].Time.Equal(paused.Add(2*time.Minute)) || a[0].Alarm.Stops {
		t.Fatalf("paused-too-long alarm %+v", a)
	}
	if s := r.snap("A"); s.State != ChPaused || !near(s.VolumeML, 1) {
		t.Fatalf("state %s vol %v", s.State, s.VolumeML)
	}
	r.must(r.p.Resume("A", "RN1"))
	if e := r.alarms(AlarmPausedTooLong, pumpwire.PhaseEnd); len(e) != 1 {
		t.Fatalf("resume should end the callback alarm: %v", e)
	}
}

func TestLibraryDeferredWhileInfusing(t *testing.T) {
	r := newRig(t, Config{LibraryHash: "h1"})
	r.program(pumpwire.Program{OrderID: "O1", RateMLH: 50}, "A")
	r.must(r.p.Start("A", "RN1"))
	now, err := r.p.StageLibrary(testLib("TEST-2"), "h2")
	if err != nil || now {
		t.Fatalf("stage while infusing: activated %v err %v", now, err)
	}
	st := r.p.Status()
	if st.LibraryVersion != "TEST-1" || st.PendingLibrary != "TEST-2" {
		t.Fatalf("status library %q pending %q", st.LibraryVersion, st.PendingLibrary)
	}
	r.must(r.p.Pause("A", "RN1"))
	if len(r.events(pumpwire.EvLibraryActivated)) != 0 {
		t.Fatal("library activated while a channel is paused")
	}
	r.must(r.p.Stop("A", "RN1"))
	ev := r.events(pumpwire.EvLibraryActivated)
	if len(ev) != 1 || ev[0].Event.Params["version"] != "TEST-2" || ev[0].Event.Params["previous"] != "TEST-1" {
		t.Fatalf("library_activated %+v", ev)
	}
	st = r.p.Status()
	if st.LibraryVersion != "TEST-2" || st.LibraryHash != "h2" || st.PendingLibrary != "" {
		t.Fatalf("after stop: %q %q pending %q", st.LibraryVersion, st.LibraryHash, st.PendingLibrary)
	}
	// Idle: immediate; firmware likewise.
	if now, _ := r.p.StageLibrary(testLib("TEST-3"), "h3"); !now {
		t.Fatal("idle pump should activate at once")
	}
	if now, _ := r.p.StageFirmware("2.0.0"); !now || r.p.Firmware() != "2.0.0" {
		t.Fatal("idle pump should apply firmware at once")
	}
}

// TestPCACTL04 is control scenario CTL-04: the patient presses 20 times in
// an hour with a 10-minute lockout; 6 demands are honoured, 14 rejected. The
// presses come in 10-minute blocks (at +0, +3, +6 and in two blocks +9), so
// that every honoured demand is exactly one lockout after the previous one —
// evenly spaced presses every 3 minutes would only reach 5 (every 12 min).
func TestPCACTL04(t *testing.T) {
	r := newRig(t, Config{Channels: []ChannelType{PCA}})
	res := r.program(pumpwire.Program{OrderID: "PCA1", DrugID: "MORPH-PCA", PCADose: 1, PCALockout: 10, PCAHourLimit: 10, DrugUnit: "mg"}, "A")
	if res.Check != druglib.Within {
		t.Fatalf("PCA program check %s: %s", res.Check, res.Reason)
	}
	r.must(r.p.Start("A", "RN1"))
	start := r.clk.Now()
	var at []time.Duration
	for b := 0; b < 6; b++ {
		for _, m := range []int{0, 3, 6} {
			at = append(at, time.Duration(b*10+m)*time.Minute)
		}
		if b == 1 || b == 4 {
			at = append(at, time.Duration(b*10+9)*time.Minute)
		}
	}
	if len(at) != 20 {
		t.Fatalf("%d demands", len(at))
	}
	delivered := 0
	for _, d := range at {
		r.clk.Advance(start.Add(d).Sub(r.clk.Now()))
		ok, err := r.p.PCADemand("A")
		r.must(err)
		if ok {
			delivered++
		}
	}
	r.clk.Advance(start.Add(time.Hour).Sub(r.clk.Now()))
	st, _ := r.p.PCAStats("A")
	if st.Demands != 20 || st.Delivered != 6 || st.Rejected != 14 || st.RejectedLockout != 14 || delivered != 6 {
		t.Fatalf("CTL-04 stats %+v (delivered %d), want 20/6/14", st, delivered)
	}
	if s := r.snap("A"); !near(s.Drug, 6) || s.State != ChInfusing {
		t.Fatalf("drug delivered %v mg state %s, want 6 mg infusing", s.Drug, s.State)
	}
	if n := len(r.events(pumpwire.EvPCADemand)); n != 20 {
		t.Fatalf("%d pca_demand events", n)
	}
	if n := len(r.events(pumpwire.EvBolus)); n != 6 {
		t.Fatalf("%d bolus events", n)
	}
}

func TestPCAHourLimitKVO(t *testing.T) {
	r := newRig(t, Config{Channels: []ChannelType{PCA}})
	r.program(pumpwire.Program{OrderID: "PCA1", DrugID: "MORPH-PCA", PCADose: 2, PCALockout: 6, PCAHourLimit: 6, BasalRate: 0}, "A")
	r.must(r.p.Start("A", "RN1"))
	start := r.clk.Now()
	for i, want := range []bool{true, true, true, false} {
		r.clk.Advance(start.Add(time.Duration(i*10) * time.Minute).Sub(r.clk.Now()))
		ok, err := r.p.PCADemand("A")
		r.must(err)
		if ok != want {
			t.Fatalf("demand %d honoured %v, want %v", i, ok, want)
		}
	}
	st, _ := r.p.PCAStats("A")
	if st.RejectedLimit != 1 || !st.Limited {
		t.Fatalf("stats %+v", st)
	}
	if s := r.snap("A"); s.State != ChKVO || s.RateMLH != 0 {
		t.Fatalf("limit state %s %v mL/h, want kvo 0 (no basal)", s.State, s.RateMLH)
	}
	if a := r.alarms(AlarmPCALimit, pumpwire.PhaseStart); len(a) != 1 {
		t.Fatalf("pca limit alarm %v", a)
	}
	// The first dose (0..1 min) leaves the rolling window at 61 min.
	r.clk.Advance(start.Add(60 * time.Minute).Sub(r.clk.Now()))
	if s := r.snap("A"); s.State != ChKVO {
		t.Fatalf("at 60 min: %s", s.State)
	}
	r.clk.Advance(time.Minute)
	if s := r.snap("A"); s.State != ChInfusing {
		t.Fatalf("at 61 min: %s, want infusing", s.State)
	}
	if a := r.alarms(AlarmPCALimit, pumpwire.PhaseEnd); len(a) != 1 {
		t.Fatalf("pca limit alarm end %v", a)
	}
}

func TestRemoteProfiles(t *testing.T) {
	t.Run("secure", func(t *testing.T) {
		r := newRig(t, Config{})
		res, err := r.p.Program(Remote, pumpwire.Program{OrderID: "O1", Action: "RE", RateMLH: 50}, "A")
		if err != nil || !res.NeedsConfirm {
			t.Fatalf("%+v %v", res, err)
		}
		var rej *Rejection
		if err := r.p.RemoteStart("A", "srv"); !errors.As(err, &rej) || rej.Code != "REMOTE-DISABLED" {
			t.Fatalf("remote start on a secure pump: %v", err)
		}
		r.must(r.p.Start("A", "RN1"))
		res, err = r.p.Program(Remote, pumpwire.Program{OrderID: "O1", Action: "XO", RateMLH: 80}, "A")
		if err != nil || res.Applied || !res.NeedsConfirm {
			t.Fatalf("XO: %+v %v", res, err)
		}
		if s := r.snap("A"); s.RateMLH != 50 || s.Pending == nil {
			t.Fatalf("XO applied without confirmation: %v", s.RateMLH)
		}
		r.must(r.p.Confirm("A", "RN1"))
		if s := r.snap("A"); s.RateMLH != 80 || s.Pending != nil {
			t.Fatalf("after confirm %v", s.RateMLH)
		}
	})
	t.Run("legacy", func(t *testing.T) {
		r := newRig(t, Config{RemoteStartAllowed: true})
		_, err := r.p.Program(Remote, pumpwire.Program{OrderID: "O1", Action: "RE", RateMLH: 50}, "A")
		r.must(err)
		r.must(r.p.RemoteStart("A", "srv"))
		res, err := r.p.Program(Remote, pumpwire.Program{OrderID: "O1", Action: "XO", RateMLH: 80}, "A")
		if err != nil || !res.Applied {
			t.Fatalf("legacy XO %+v %v", res, err)
		}
		if s := r.snap("A"); s.RateMLH != 80 {
			t.Fatalf("legacy XO not applied: %v", s.RateMLH)
		}
		if ev := r.events(pumpwire.EvRateChange); len(ev) != 1 || ev[0].Event.Params["source"] != "remote" {
			t.Fatalf("rate_change %+v", ev)
		}
	})
}

func TestBatteryLowThenDepleted(t *testing.T) {
	r := newRig(t, Config{OnBattery: true, Battery: Battery{RuntimeMin: 120, LowMin: 30}})
	r.program(pumpwire.Program{OrderID: "O1", RateMLH: 10}, "A")
	r.must(r.p.Start("A", "RN1"))
	start := r.clk.Now()
	r.clk.Advance(90 * time.Minute)
	low := r.alarms(AlarmBatteryLow, pumpwire.PhaseStart)
	if len(low) != 1 || !low[0].Time.Equal(start.Add(90*time.Minute)) {
		t.Fatalf("battery low %+v", low)
	}
	if s := r.snap("A"); s.State != ChInfusing {
		t.Fatalf("low battery stopped delivery: %s", s.State)
	}
	if b := r.p.Status().Battery; b != 25 {
		t.Fatalf("battery %v%%, want 25", b)
	}
	r.clk.Advance(30 * time.Minute)
	if a := r.alarms(AlarmBatteryDepleted, pumpwire.PhaseStart); len(a) != 1 || !a[0].Alarm.Stops {
		t.Fatalf("battery depleted %+v", a)
	}
	if s := r.snap("A"); s.State != ChAlarming || !near(s.VolumeML, 20) {
		t.Fatalf("after depletion: %s %v mL", s.State, s.VolumeML)
	}
	r.p.SetMains(true)
	if s := r.snap("A"); s.State != ChPaused {
		t.Fatalf("on mains: %s, want paused", s.State)
	}
	if len(r.alarms(AlarmBatteryDepleted, pumpwire.PhaseEnd)) != 1 || len(r.alarms(AlarmBatteryLow, pumpwire.PhaseEnd)) != 1 {
		t.Fatal("mains should end both battery alarms")
	}
}

func TestTruthLayersSplitUnderTampering(t *testing.T) {
	r := newRig(t, Config{})
	r.must(r.p.SetOrdered("A", Setting{OrderID: "O1", RateMLH: 100}))
	r.program(pumpwire.Program{OrderID: "O1", RateMLH: 100}, "A")
	r.must(r.p.Start("A", "RN1"))
	r.must(r.p.TamperDelivery("A", 2))
	r.clk.Advance(30 * time.Minute)
	tl, err := r.p.Truth("A")
	r.must(err)
	if !near(tl.Delivered.VolumeML, 100) || !near(tl.Displayed.VolumeML, 50) || tl.Programmed.RateMLH != 100 || tl.Delivered.RateMLH != 200 {
		t.Fatalf("truth %+v", tl)
	}
	st := r.p.Status()
	if !near(st.Channels[0].VolumeInfused, 50) || st.Channels[0].RateMLH != 100 {
		t.Fatalf("status reports %+v, want the pump's belief", st.Channels[0])
	}
	r.p.RecordReported(st.Channels[0], r.clk.Now())
	r.must(r.p.SetDocumented("A", Setting{OrderID: "O1", VolumeML: 50}))
	tl, _ = r.p.Truth("A")
	if !near(tl.Reported.VolumeML, 50) || tl.Documented.VolumeML != 50 || tl.Ordered.RateMLH != 100 {
		t.Fatalf("reported/documented %+v %+v", tl.Reported, tl.Documented)
	}
	ddr, _ := r.p.DDR("A", r.clk.Now().Add(-30*time.Minute), r.clk.Now())
	if !near(ddr, 2) {
		t.Fatalf("DDR under tampering %v, want 2", ddr)
	}
}

func TestFlowErrorIsSeeded(t *testing.T) {
	run := func(seed uint64) float64 {
		r := newRig(t, Config{Seed: seed, FlowError: 0.05})
		r.program(pumpwire.Program{OrderID: "O1", RateMLH: 100}, "A")
		r.must(r.p.Start("A", "RN1"))
		r.clk.Advance(time.Hour)
		return r.snap("A").VolumeML
	}
	a, b, c := run(7), run(7), run(8)
	if a != b || a == c || a < 95 || a > 105 {
		t.Fatalf("volumes %v %v %v: same seed must repeat, another seed differ, within 5%%", a, b, c)
	}
}

func TestListenerMayCallBack(t *testing.T) {
	r := newRig(t, Config{})
	var states []string
	cancel := r.p.Listen(func(o Output) {
		if o.Event != nil && o.Event.Type == pumpwire.EvDeliveryStart {
			states = append(states, r.p.Status().State)
			// a listener may even act on the pump
			_ = r.p.Pause("A", "listener")
		}
	})
	defer cancel()
	r.program(pumpwire.Program{OrderID: "O1", RateMLH: 10}, "A")
	r.must(r.p.Start("A", "RN1"))
	if len(states) != 1 || states[0] != string(StateInfusing) {
		t.Fatalf("listener saw %v", states)
	}
	if s := r.snap("A"); s.State != ChPaused {
		t.Fatalf("state %s", s.State)
	}
	// Outputs stay in emission order.
	var types []string
	for _, o := range r.outputs() {
		if o.Event != nil {
			types = append(types, o.Event.Type)
		}
	}
	want := []string{pumpwire.EvProgramAccepted, pumpwire.EvDeliveryStart, pumpwire.EvDeliveryStop}
	if len(types) != 3 || types[0] != want[0] || types[1] != want[1] || types[2] != want[2] {
		t.Fatalf("event order %v, want %v", types, want)
	}
}

func TestDoorAndServiceMode(t *testing.T) {
	r := newRig(t, Config{})
	r.program(pumpwire.Program{OrderID: "O1", RateMLH: 10}, "A")
	r.must(r.p.Start("A", "RN1"))
	var rej *Rejection
	if err := r.p.EnterService("1234", "bio"); !errors.As(err, &rej) || rej.Code != "CH-BUSY" {
		t.Fatalf("service while infusing: %v", err)
	}
	r.must(r.p.OpenDoor("A", "RN1"))
	if s := r.snap("A"); s.State != ChAlarming {
		t.Fatalf("door open while running: %s", s.State)
	}
	r.must(r.p.CloseDoor("A", "RN1"))
	if s := r.snap("A"); s.State != ChPaused {
		t.Fatalf("door closed: %s", s.State)
	}
	r.must(r.p.Stop("A", "RN1"))
	if err := r.p.EnterService("0000", "bio"); !errors.As(err, &rej) || rej.Code != "SERVICE-CODE" {
		t.Fatalf("wrong code: %v", err)
	}
	r.must(r.p.EnterService("1234", "bio"))
	if r.p.State() != StateService {
		t.Fatal("not in service")
	}
	if _, err := r.p.Program(Local, pumpwire.Program{RateMLH: 5}, "A"); !errors.As(err, &rej) || rej.Code != "PUMP-STATE" {
		t.Fatalf("program in service mode: %v", err)
	}
}

func TestSystemFaultNeedsPowerCycle(t *testing.T) {
	r := newRig(t, Config{Channels: []ChannelType{LVP, Syringe}})
	r.program(pumpwire.Program{OrderID: "O1", RateMLH: 10}, "A")
	r.program(pumpwire.Program{OrderID: "O2", RateMLH: 5}, "B")
	r.must(r.p.Start("A", "RN1"))
	r.must(r.p.Start("B", "RN1"))
	r.must(r.p.InjectFault("", FaultSystem))
	if r.p.State() != StateFault || r.snap("A").RateMLH != 0 || r.snap("B").RateMLH != 0 {
		t.Fatalf("fault: %s", r.p.State())
	}
	a := r.p.Alarms()
	if len(a) != 1 || a[0].Def.Code != AlarmSystemFault {
		t.Fatalf("alarms %+v", a)
	}
	if err := r.p.ClearAlarm(a[0].AlarmID, "RN1"); err == nil {
		t.Fatal("system fault cleared without power cycle")
	}
	r.p.PowerOff("RN1")
	r.p.PowerOn("RN1")
	if r.p.State() != StateReady || len(r.p.Alarms()) != 0 {
		t.Fatalf("after power cycle: %s %v", r.p.State(), r.p.Alarms())
	}
}
