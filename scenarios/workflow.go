package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/pumplab/pumplab/lab"
)

// therapy is a running infusion a scenario set up through the clinical
// workflow (admit, order, verify, scan, PCD-03, nurse start).
type therapy struct {
	PumpID, Channel, OrderID, MRN string
	RateMLH                       float64
	Started                       time.Time // lab time the pump started delivering
}

// startNorepinephrine runs the CTL-01 workflow for a norepinephrine drip
// (0.05 mcg/kg/min, 4 mg/250 mL, 70 kg: 13.125 mL/h) on pumpID channel A and
// returns once the pump infuses. Helpers return errors; specs assert.
func startNorepinephrine(ctx context.Context, l lab.Lab, pumpID, mrn string, vtbi float64) (therapy, error) {
	c := l.Clinical()
	if err := c.Admit(ctx, lab.Patient{MRN: mrn, Family: "Testpatient", Given: "Alex", DOB: "19700101", Sex: "F",
		Unit: "4W ICU", Room: "12", Bed: "A", WeightKg: 70}); err != nil {
		return therapy{}, fmt.Errorf("admit %s: %w", mrn, err)
	}
	id, err := c.Order(ctx, lab.Order{MRN: mrn, DrugCode: "NOREPI-4-250", DrugText: "Norepinephrine 4 mg/250 mL",
		DoseRate: 0.05, DoseUnit: "mcg/kg/min", DrugAmount: 4, DrugUnit: "mg", DiluentML: 250, VTBI: vtbi, Device: "IVP", Prescriber: "MD0007"})
	if err != nil {
		return therapy{}, fmt.Errorf("order for %s: %w", mrn, err)
	}
	if err := c.Verify(ctx, id, "RPH0001"); err != nil {
		return therapy{}, fmt.Errorf("verify %s: %w", id, err)
	}
	res, err := c.Administer(ctx, lab.Scan{Nurse: "RN0042", MRN: mrn, Drug: "NOREPI-4-250", PumpID: pumpID, Channel: "A"})
	if err != nil {
		return therapy{}, fmt.Errorf("scan %s on %s: %w", id, pumpID, err)
	}
	if !res.Accepted {
		return therapy{}, fmt.Errorf("PCD-03 %s refused: %s %s %s", id, res.AckCode, res.ErrCode, res.ErrText)
	}
	if err := l.Devices().WaitState(ctx, pumpID, "A", "infusing"); err != nil {
		return therapy{}, fmt.Errorf("start on %s: %w", pumpID, err)
	}
	return therapy{PumpID: pumpID, Channel: "A", OrderID: id, MRN: mrn, RateMLH: 13.125, Started: l.Clock().Now()}, nil
}

// endpoint returns the address of a named lab endpoint.
func endpoint(l lab.Lab, name string) (string, error) {
	for _, e := range l.Endpoints() {
		if e.Name == name {
			return e.Address, nil
		}
	}
	return "", fmt.Errorf("lab has no endpoint %q", name)
}

// foothold returns what an attacker who compromised identity holds; labs
// without the lab.Adversary capability make the spec Not Applicable.
func foothold(ctx context.Context, l lab.Lab, identity string) (lab.Foothold, error) {
	adv, ok := l.(lab.Adversary)
	if !ok {
		return lab.Foothold{}, fmt.Errorf("the %s lab cannot hand out a foothold on %s", l.Provider(), identity)
	}
	return adv.Compromise(ctx, identity)
}
