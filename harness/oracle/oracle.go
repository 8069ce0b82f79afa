// Package oracle computes harm from what the lab recorded: the pump's
// delivery segments (motor truth), its truth layers, the alarm manager's
// records and the pump server's registry (REFERENCE.md §3.0, §5.6). The
// functions on plain values are pure; Measure gathers the values from a
// running lab.
package oracle

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
)

// Delivered integrates segments over [from, to]: volume (mL) and drug (in
// the program's amount unit). Segments must be in time order; each runs until
// the next one starts (the last until to).
func Delivered(segs []lab.Segment, from, to time.Time) (volumeML, drug float64) {
	for i, s := range segs {
		end := to
		if i+1 < len(segs) && segs[i+1].Start.Before(end) {
			end = segs[i+1].Start
		}
		start := s.Start
		if start.Before(from) {
			start = from
		}
		if !end.After(start) {
			continue
		}
		h := end.Sub(start).Hours()
		volumeML += s.RateMLH * h
		drug += s.RateMLH * s.Conc * h
	}
	return volumeML, drug
}

// Order is what was ordered for a channel: a rate and a concentration.
type Order struct {
	RateMLH float64 // ordered pump rate
	Conc    float64 // drug per mL (0: basic fluid, compared by volume)
	// BagConc is the concentration actually in the bag (the ordered layer's,
	// what pharmacy dispensed); 0 when unknown. When set, the drug delivered
	// is the volume at BagConc, whatever concentration the pump was told.
	BagConc float64
}

// OrderFromTruth reads the ordered layer's pump rate. It never falls back
// to the programmed layer: that is what an attack changes.
func OrderFromTruth(t lab.Truth) Order {
	return Order{RateMLH: t.Ordered.RateMLH, Conc: t.Ordered.Conc, BagConc: t.Ordered.Conc}
}

// DDR is the delivered-dose ratio over [from, to]: drug delivered over drug
// ordered (volume for basic fluids). It is 0 and an error when nothing was
// ordered.
func DDR(segs []lab.Segment, o Order, from, to time.Time) (float64, error) {
	vol, drug := Delivered(segs, from, to)
	h := to.Sub(from).Hours()
	want, got := o.RateMLH*h, vol
	if o.Conc > 0 {
		want, got = o.RateMLH*o.Conc*h, deliveredDrug(vol, drug, o)
	}
	if want <= 0 {
		return 0, fmt.Errorf("oracle: ddr: nothing ordered over [%s, %s]", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return got / want, nil
}

// deliveredDrug is the drug that reached the patient: the volume at the
// bag's real concentration when the order says what pharmacy put in the bag
// (Order.BagConc), else the programs' own concentrations (segments).
func deliveredDrug(vol, drug float64, o Order) float64 {
	if o.BagConc > 0 {
		return vol * o.BagConc
	}
	return drug
}

// ExcessDrug is the drug delivered above the ordered amount over [from, to]
// (volume for basic fluids); never negative.
func ExcessDrug(segs []lab.Segment, o Order, from, to time.Time) float64 {
	vol, drug := Delivered(segs, from, to)
	h := to.Sub(from).Hours()
	got, want := vol, o.RateMLH*h
	if o.Conc > 0 {
		got, want = deliveredDrug(vol, drug, o), o.RateMLH*o.Conc*h
	}
	// Below 0.1 % of the ordered amount is the resolution of the motor
	// truth (floating-point sums of segments), not drug.
	if got-want <= ExcessResolution*want {
		return 0
	}
	return got - want
}

// ExcessResolution is the smallest excess, relative to the ordered amount,
// that ExcessDrug reports.
const ExcessResolution = 0.001

// InterruptedMinutes is the time within [from, to] during which the channel
// delivered nothing while an infusion was ordered (T_int).
func InterruptedMinutes(segs []lab.Segment, from, to time.Time) float64 {
	var d time.Duration
	cur := from
	rate := 0.0
	// Rate in force at from.
	for _, s := range segs {
		if !s.Start.After(from) {
			rate = s.RateMLH
		}
	}
	for _, s := range segs {
		if !s.Start.After(from) {
			continue
		}
		if !s.Start.Before(to) {
			break
		}
		if rate == 0 {
			d += s.Start.Sub(cur)
		}
		cur, rate = s.Start, s.RateMLH
	}
	if rate == 0 && to.After(cur) {
		d += to.Sub(cur)
	}
	return d.Minutes()
}

// AlarmHarm counts, among the alarms with onset in [from, to], those not
// delivered to a nurse by asOf although lateAfter has passed since their
// onset (missed), and those delivered later than lateAfter after onset
// (late). An undelivered alarm younger than lateAfter at asOf is not judged
// yet.
func AlarmHarm(recs []lab.AlarmRecord, from, to, asOf time.Time, lateAfter time.Duration) (missed, late int) {
	for _, r := range recs {
		if r.Onset.Before(from) || r.Onset.After(to) {
			continue
		}
		switch {
		case r.Delivered.IsZero() && asOf.Sub(r.Onset) > lateAfter:
			missed++
		case r.Delivered.IsZero():
		case r.Delivered.Sub(r.Onset) > lateAfter:
			late++
		}
	}
	return missed, late
}

// DocMismatch reports whether what the EHR documented differs from what the
// pump delivered by more than tolML at the documentation's time: the
// documented volume against the delivered truth at that moment.
func DocMismatch(segs []lab.Segment, therapyStart time.Time, doc lab.Documentation, tolML float64) bool {
	if doc.LastObs.IsZero() {
		return false
	}
	vol, _ := Delivered(segs, therapyStart, doc.LastObs)
	return math.Abs(vol-doc.VolumeML) > tolML
}

// Window is one measurement of harm on one channel.
type Window struct {
	PumpID, Channel string
	From, To        time.Time // lab time
	// OrderID selects the documentation to compare with (empty: no check).
	OrderID string
	// HighAlert marks a high-alert drug (weights harm).
	HighAlert bool
	// AlarmLate is the L_notify threshold for a late alarm; default 60 s.
	AlarmLate time.Duration
	// DocTolML is the documented-vs-delivered tolerance; default 0.5 mL.
	DocTolML float64
}

// Measure gathers the lab's records for w and computes the harm.
func Measure(ctx context.Context, l lab.Lab, w Window) (score.Harm, error) {
	if w.AlarmLate <= 0 {
		w.AlarmLate = 60 * time.Second
	}
	if w.DocTolML <= 0 {
		w.DocTolML = 0.5
	}
	dev := l.Devices()
	segs, err := dev.Segments(ctx, w.PumpID, w.Channel)
	if err != nil {
		return score.Harm{}, err
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Start.Before(segs[j].Start) })
	t, err := dev.Truth(ctx, w.PumpID, w.Channel)
	if err != nil {
		return score.Harm{}, err
	}
	o := OrderFromTruth(t)
	if o.Conc == 0 && len(segs) > 0 {
		// Without an ordered concentration, take the running program's.
		for _, s := range segs {
			if s.Conc > 0 {
				o.Conc = s.Conc
				break
			}
		}
	}
	h := score.Harm{HighAlert: w.HighAlert}
	if o.RateMLH > 0 {
		if ddr, err := DDR(segs, o, w.From, w.To); err == nil {
			h.DDR = ddr
		}
		h.ExcessDrug = ExcessDrug(segs, o, w.From, w.To)
		h.InterruptedMin = InterruptedMinutes(segs, w.From, w.To)
	}
	recs, err := l.Alarms().Records(ctx)
	if err != nil {
		return h, err
	}
	var mine []lab.AlarmRecord
	for _, r := range recs {
		if r.PumpID == w.PumpID {
			mine = append(mine, r)
		}
	}
	h.AlarmsMissed, h.AlarmsLate = AlarmHarm(mine, w.From, w.To, l.Clock().Now(), w.AlarmLate)
	if pres, err := l.PumpServer().Presence(ctx); err == nil {
		h.PumpMinutesOffline = PumpMinutesOffline(pres, []string{w.PumpID}, w.From, w.To)
	}
	if w.OrderID != "" {
		doc, err := l.Clinical().Documented(ctx, w.OrderID)
		if err != nil {
			return h, err
		}
		h.DocMismatch = DocMismatch(segs, therapyStart(segs), doc, w.DocTolML)
	}
	return h, nil
}

// therapyStart is the start of the first delivering segment.
func therapyStart(segs []lab.Segment) time.Time {
	for _, s := range segs {
		if s.RateMLH > 0 {
			return s.Start
		}
	}
	if len(segs) > 0 {
		return segs[0].Start
	}
	return time.Time{}
}

// Harmful applies the lab's thresholds (REFERENCE.md §3.0): a sustained DDR
// outside [0.90, 1.10] for a high-alert drug (outside [0.80, 1.20] for
// others), more than 2 minutes of interrupted critical therapy, any missed
// alarm, or a documentation mismatch.
func Harmful(h score.Harm) bool {
	lo, hi := 0.80, 1.20
	if h.HighAlert {
		lo, hi = 0.90, 1.10
	}
	switch {
	case h.DDR != 0 && (h.DDR < lo || h.DDR > hi):
		return true
	case h.HighAlert && h.InterruptedMin > 2:
		return true
	case h.AlarmsMissed > 0, h.DocMismatch, h.PHIExposed > 0, h.CredsExposed > 0:
		return true
	}
	return false
}
