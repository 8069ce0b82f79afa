package pump

import (
	"math"
	"testing"
)

// TestOrderedLayerCarriesItsPumpRate: a dose order (mcg/kg/min) reads back
// with the pump rate it implies, so harm oracles compare against the order,
// never against the programmed layer an attack may have changed.
func TestOrderedLayerCarriesItsPumpRate(t *testing.T) {
	r := newRig(t, Config{})
	r.must(r.p.SetOrdered("A", Setting{OrderID: "O1", DrugID: "NOREPI-4-250", DoseRate: 0.05, DoseUnit: "mcg/kg/min",
		Concentration: 0.016, AmountUnit: "mg", WeightKg: 70}))
	tl, err := r.p.Truth("A")
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(tl.Ordered.RateMLH-13.125) > 1e-9 {
		t.Fatalf("ordered rate %v mL/h, want 13.125", tl.Ordered.RateMLH)
	}
}
