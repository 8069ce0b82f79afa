package oracle

import (
	"math"
	"testing"
	"time"

	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
)

var t0 = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

func at(min float64) time.Time { return t0.Add(time.Duration(min * float64(time.Minute))) }

// A norepinephrine infusion at 13.125 mL/h (16 mcg/mL = 0.016 mg/mL) paused
// for 10 minutes, then doubled by an attack for 20 minutes.
var segs = []lab.Segment{
	{Start: at(0), RateMLH: 13.125, Conc: 0.016},
	{Start: at(30), RateMLH: 0, Conc: 0.016},
	{Start: at(40), RateMLH: 26.25, Conc: 0.016},
	{Start: at(60), RateMLH: 13.125, Conc: 0.016},
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s = %.9f, want %.9f", what, got, want)
	}
}

func TestDelivered(t *testing.T) {
	vol, drug := Delivered(segs, at(0), at(60))
	near(t, "volume", vol, 13.125*0.5+26.25/3)
	near(t, "drug", drug, (13.125*0.5+26.25/3)*0.016)
	vol, _ = Delivered(segs, at(35), at(45)) // 5 min stopped, 5 min at double
	near(t, "partial window", vol, 26.25/12)
}

func TestDDRAndExcess(t *testing.T) {
	o := Order{RateMLH: 13.125, Conc: 0.016}
	ddr, err := DDR(segs, o, at(0), at(30))
	if err != nil {
		t.Fatal(err)
	}
	near(t, "clean ddr", ddr, 1)
	ddr, _ = DDR(segs, o, at(40), at(60))
	near(t, "attack ddr", ddr, 2)
	near(t, "excess during attack", ExcessDrug(segs, o, at(40), at(60)), 13.125/3*0.016)
	near(t, "no excess when under", ExcessDrug(segs, o, at(30), at(40)), 0)
	if _, err := DDR(segs, Order{}, at(0), at(10)); err == nil {
		t.Fatal("DDR without an order did not fail")
	}
}

func TestInterruptedMinutes(t *testing.T) {
	near(t, "interruption", InterruptedMinutes(segs, at(0), at(90)), 10)
	near(t, "window inside the pause", InterruptedMinutes(segs, at(32), at(35)), 3)
	near(t, "before the therapy", InterruptedMinutes(segs, at(-5), at(0)), 5)
}

func TestAlarmHarm(t *testing.T) {
	recs := []lab.AlarmRecord{
		{Onset: at(1), Delivered: at(1).Add(5 * time.Second)},
		{Onset: at(2), Delivered: at(2).Add(2 * time.Minute)},
		{Onset: at(3)},
		{Onset: at(59.5)}, // not delivered, but too young to judge at 60
		{Onset: at(100)},  // outside the window
	}
	missed, late := AlarmHarm(recs, at(0), at(60), at(60), time.Minute)
	if missed != 1 || late != 1 {
		t.Fatalf("missed %d late %d, want 1 and 1", missed, late)
	}
}

func TestDocMismatch(t *testing.T) {
	doc := lab.Documentation{LastObs: at(30), VolumeML: 13.125 / 2}
	if DocMismatch(segs, at(0), doc, 0.01) {
		t.Fatal("documented == delivered flagged")
	}
	doc.VolumeML = 3
	if !DocMismatch(segs, at(0), doc, 0.01) {
		t.Fatal("mismatch not flagged")
	}
}

func TestHarmful(t *testing.T) {
	for _, tc := range []struct {
		h    score.Harm
		want bool
	}{
		{score.Harm{DDR: 1.0, HighAlert: true}, false},
		{score.Harm{DDR: 1.15, HighAlert: true}, true},
		{score.Harm{DDR: 1.15}, false},
		{score.Harm{DDR: 2}, true},
		{score.Harm{HighAlert: true, InterruptedMin: 3}, true},
		{score.Harm{AlarmsMissed: 1}, true},
		{score.Harm{DocMismatch: true}, true},
	} {
		if got := Harmful(tc.h); got != tc.want {
			t.Errorf("Harmful(%+v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}
