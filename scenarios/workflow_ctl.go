package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/lab"
)

// drip is an infusion a control scenario orders through CPOE.
type drip struct {
	Drug, DrugText string
	Dose           float64
	DoseUnit       string
	Amount         float64
	AmountUnit     string
	DiluentML      float64
	VTBI           float64
	WeightKg       float64
	Unit           string // patient location (default 4W ICU)
}

// The drips of the control scenarios (default library, 70 kg).
var (
	// norepi is 0.05 mcg/kg/min of 4 mg/250 mL: 13.125 mL/h.
	norepi = drip{Drug: "NOREPI-4-250", DrugText: "Norepinephrine 4 mg/250 mL", Dose: 0.05, DoseUnit: "mcg/kg/min",
		Amount: 4, AmountUnit: "mg", DiluentML: 250, VTBI: 100, WeightKg: 70}
	// heparin is 18 units/kg/h of 25,000 units/250 mL: 12.6 mL/h.
	heparin = drip{Drug: "HEPARIN-25000-250", DrugText: "Heparin 25,000 units/250 mL", Dose: 18, DoseUnit: "units/kg/h",
		Amount: 25000, AmountUnit: "units", DiluentML: 250, VTBI: 100, WeightKg: 70}
)

// rateMLH is the pump rate a dose of d implies.
func (d drip) rateMLH(dose float64) float64 {
	conc := d.Amount / d.DiluentML // amount per mL
	switch d.DoseUnit {
	case "mcg/kg/min":
		return dose * d.WeightKg * 60 / 1000 / conc
	case "units/kg/h", "mg/kg/h":
		return dose * d.WeightKg / conc
	case "mg/h", "units/h":
		return dose / conc
	}
	return 0
}

// admitOrder admits mrn (when not yet admitted by the caller) and orders
// and verifies d for it; it returns the placer id.
func admitOrder(ctx context.Context, l lab.Lab, mrn string, d drip) (string, error) {
	unit := d.Unit
	if unit == "" {
		unit = "4W ICU"
	}
	c := l.Clinical()
	if err := c.Admit(ctx, lab.Patient{MRN: mrn, Family: "Controlpatient", Given: "Sam", DOB: "19650301", Sex: "M",
		Unit: unit, Room: "7", Bed: "A", WeightKg: d.WeightKg}); err != nil {
		return "", fmt.Errorf("admit %s: %w", mrn, err)
	}
	id, err := c.Order(ctx, lab.Order{MRN: mrn, DrugCode: d.Drug, DrugText: d.DrugText, DoseRate: d.Dose, DoseUnit: d.DoseUnit,
		DrugAmount: d.Amount, DrugUnit: d.AmountUnit, DiluentML: d.DiluentML, VTBI: d.VTBI, Device: "IVP", Prescriber: "MD0007"})
	if err != nil {
		return "", fmt.Errorf("order %s for %s: %w", d.Drug, mrn, err)
	}
	if err := c.Verify(ctx, id, "RPH0001"); err != nil {
		return "", fmt.Errorf("verify %s: %w", id, err)
	}
	return id, nil
}

// refused turns a refused administration into an error. A refusal that a
// posture control caused is a patient-safety event and says so first.
func refused(ctx context.Context, f *harness.Framework, what string, r lab.AdminResult) error {
	if err := f.BlockedTherapy(ctx); err != nil {
		return fmt.Errorf("%s refused: %w", what, err)
	}
	return fmt.Errorf("%s refused: RRG^O16 %s %s %s", what, r.AckCode, r.ErrCode, r.ErrText)
}

// startDrip admits, orders, verifies and scans d onto pumpID channel A,
// waits until the pump delivers (the nurse model confirms, overriding a soft
// limit with a reason) and records the order-to-infusion latency (PCD-03
// sent to the first delivering motor segment, lab time).
func startDrip(ctx context.Context, f *harness.Framework, pumpID, mrn string, d drip) (therapy, error) {
	id, err := admitOrder(ctx, f.Lab, mrn, d)
	if err != nil {
		return therapy{}, err
	}
	res, err := f.Lab.Clinical().Administer(ctx, lab.Scan{Nurse: "RN0042", MRN: mrn, Drug: d.Drug, PumpID: pumpID, Channel: "A"})
	if err != nil {
		return therapy{}, fmt.Errorf("scan %s on %s: %w", id, pumpID, err)
	}
	if !res.Accepted {
		return therapy{}, refused(ctx, f, "PCD-03 "+id, res)
	}
	if err := f.Lab.Devices().WaitState(ctx, pumpID, "A", "infusing"); err != nil {
		return therapy{}, fmt.Errorf("start on %s: %w", pumpID, err)
	}
	started, err := deliveringSince(ctx, f.Lab, pumpID, res.SentAt)
	if err != nil {
		return therapy{}, err
	}
	f.Latency(harness.MetricOrderToInfusion, started.Sub(res.SentAt))
	return therapy{PumpID: pumpID, Channel: "A", OrderID: id, MRN: mrn, RateMLH: d.rateMLH(d.Dose), Started: started}, nil
}

// deliveringSince is the start of the first motor segment after t that
// delivers (the motor truth of "the pump started").
func deliveringSince(ctx context.Context, l lab.Lab, pumpID string, t time.Time) (time.Time, error) {
	segs, err := l.Devices().Segments(ctx, pumpID, "A")
	if err != nil {
		return time.Time{}, err
	}
	for _, s := range segs {
		if !s.Start.Before(t) && s.RateMLH > 0 {
			return s.Start, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s/A has no delivering segment since %s", pumpID, t.Format(time.RFC3339))
}

// rateSince waits until channel A of pumpID runs its motor at want mL/h
// (within 0.1%) and returns when it started to.
func rateSince(ctx context.Context, l lab.Lab, pumpID string, since time.Time, want float64) (time.Time, error) {
	var last float64
	err := poll(ctx, func() (bool, error) {
		segs, err := l.Devices().Segments(ctx, pumpID, "A")
		if err != nil {
			return false, err
		}
		if len(segs) > 0 {
			s := segs[len(segs)-1]
			last = s.RateMLH
			if !s.Start.Before(since) && near(s.RateMLH, want, 0.001) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("%s/A runs %.3f mL/h, waiting for %.3f: %w", pumpID, last, want, err)
	}
	segs, _ := l.Devices().Segments(ctx, pumpID, "A")
	return segs[len(segs)-1].Start, nil
}

func near(a, b, rel float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= rel*b
}

// poll re-checks cond every 20 ms (wall) until it holds: for lab state that
// changes on timers and has no notification of its own.
func poll(ctx context.Context, cond func() (bool, error)) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// until waits until lab time at (a schedule point of the scenario).
func until(ctx context.Context, clk clock.Clock, at time.Time) error {
	if d := at.Sub(clk.Now()); d > 0 {
		return clock.Sleep(ctx, clk, d)
	}
	return nil
}

// recordAlarmLatencies records L_notify and, when accepted, L_ack of an
// alarm record.
func recordAlarmLatencies(f *harness.Framework, a lab.AlarmRecord) {
	if !a.Delivered.IsZero() {
		f.Latency(harness.MetricAlarmToNurse, a.Delivered.Sub(a.Onset))
	}
	if !a.Accepted.IsZero() {
		f.Latency(harness.MetricAlarmToAccept, a.Accepted.Sub(a.Onset))
	}
}

// logHas reports whether a pump log holds an entry of kind with action
// (and, when detail is set, a detail containing it).
func logHas(log []lab.PumpLogEntry, kind, action, detail string) bool {
	for _, e := range log {
		if e.Kind == kind && e.Action == action && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

// docEvents returns the documented events of type typ.
func docEvents(d lab.Documentation, typ string) []lab.DocEvent {
	var out []lab.DocEvent
	for _, e := range d.Events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// expectDone fails the spec when err is set. A posture control that
// blocked something during the scenario is named first, as the
// patient-safety event it is: a wait that times out because a control
// dropped a message must not read as a timeout.
func expectDone(f *harness.Framework, err error, what string, args ...any) {
	GinkgoHelper()
	if err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if blocked := f.BlockedTherapy(ctx); blocked != nil {
		Fail(fmt.Sprintf("%s: %v (%s)", blocked, err, fmt.Sprintf(what, args...)))
	}
	Fail(fmt.Sprintf("%s: %v", fmt.Sprintf(what, args...), err))
}
