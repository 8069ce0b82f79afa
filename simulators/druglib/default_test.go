package druglib

import (
	"math"
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	if _, err := Parse(DefaultYAML(), "default.yaml"); err != nil {
		t.Fatalf("default.yaml: %v", err)
	}
	lib := Default()
	if err := lib.Validate(); err != nil {
		t.Fatal(err)
	}
	if lib.Version != "ADULT-2026.01" {
		t.Fatalf("version %q", lib.Version)
	}
	if !strings.Contains(string(DefaultYAML()), "NOT CLINICAL GUIDANCE") {
		t.Fatal("default.yaml lost its not-clinical-guidance header")
	}
	var names []string
	for _, a := range lib.CareAreas {
		names = append(names, a.Name)
		if a.CallbackMin < 2 || a.CallbackMin > 5 || a.KVORateMLH < 1 || a.KVORateMLH > 5 || a.WeightMinKg <= 0 || a.WeightMaxKg <= a.WeightMinKg {
			t.Errorf("care area %+v outside the lab's ranges", a)
		}
	}
	if got := strings.Join(names, ","); got != "Adult ICU,Med-Surg,Peds,NICU,Oncology,Anesthesia/OR,L&D" {
		t.Fatalf("care areas %s", got)
	}
}

// The illustrative table of REFERENCE.md §5.3.
func TestDefaultMatchesReferenceTable(t *testing.T) {
	lib := Default()
	for _, c := range []struct {
		id, area, unit    string
		conc              float64 // amount per mL
		softMin, softMax  float64
		hardMax           float64
		highAlert         bool
		channelsIncluding string
	}{
		{"NOREPI-4-250", "Adult ICU", "mcg/kg/min", 0.016, 0.01, 0.5, 1, true, "lvp"},
		{"DOPAMINE-400-250", "Adult ICU", "mcg/kg/min", 1.6, 2, 20, 30, true, "lvp"},
		{"DOPAMINE-800-250", "Adult ICU", "mcg/kg/min", 3.2, 2, 20, 30, true, "lvp"},
		{"HEPARIN-25000-250", "Med-Surg", "units/kg/h", 100, 10, 25, 40, true, "lvp"},
		{"INSULIN-100-100", "Adult ICU", "units/h", 1, 0.5, 15, 30, true, "lvp"},
		{"PROPOFOL-1000-100", "Anesthesia/OR", "mcg/kg/min", 10, 5, 50, 100, true, "syringe"},
		{"KCL-20-100", "Adult ICU", "mEq/h", 0.2, 5, 10, 20, true, "lvp"},
		{"NS-BASIC", "Med-Surg", "mL/h", 0, 1, 500, 999, false, "lvp"},
		{"OXYTOCIN-30-500", "L&D", "milliunits/min", 0.06, 1, 20, 30, true, "lvp"},
	} {
		e, ok := lib.Lookup(c.id, c.area)
		if !ok {
			t.Errorf("%s not found in %s", c.id, c.area)
			continue
		}
		if e.DoseUnit != c.unit || math.Abs(e.Concentration()-c.conc) > 1e-9 || e.Dose.SoftMin != c.softMin ||
			e.Dose.SoftMax != c.softMax || e.Dose.HardMax != c.hardMax || e.HighAlert != c.highAlert ||
			!containsFold(e.Channels, c.channelsIncluding) {
			t.Errorf("%s = %+v", c.id, e)
		}
	}
	m, ok := lib.Lookup("morphine-pca-30-30", "Oncology")
	if !ok || m.PCA == nil {
		t.Fatal("morphine PCA missing")
	}
	if p := m.PCA; p.DoseSoftMin != 0.5 || p.DoseSoftMax != 2 || p.DoseHardMax != 3 || p.LockoutSoftMin != 6 ||
		p.LockoutSoftMax != 60 || p.LockoutHardMin != 5 || p.HourLimitMax <= 0 || m.Concentration() != 1 {
		t.Fatalf("morphine PCA limits %+v", p)
	}
	// Care-area restrictions hold: no adult norepinephrine in the NICU.
	if _, ok := lib.Lookup("NOREPI-4-250", "NICU"); ok {
		t.Fatal("NOREPI-4-250 usable in NICU")
	}
	// Alternative codes match.
	if e, ok := lib.Lookup("FORM-10001", "Adult ICU"); !ok || e.ID != "NOREPI-4-250" {
		t.Fatalf("lookup by code gave %v %v", e, ok)
	}
}

func TestDefaultDoseConversions(t *testing.T) {
	lib := Default()
	for _, c := range []struct {
		id     string
		dose   float64
		weight float64
		mlh    float64
	}{
		{"NOREPI-4-250", 0.05, 70, 13.125},  // the pumpwire example program
		{"HEPARIN-25000-250", 18, 80, 14.4}, // 1440 units/h at 100 units/mL
		{"OXYTOCIN-30-500", 2, 0, 2},        // 0.12 units/h at 0.06 units/mL
		{"MAGNESIUM-20-500", 2, 0, 50},      // 2 g/h at 40 mg/mL
		{"FENTANYL-2500-250", 100, 0, 10},   // 100 mcg/h at 10 mcg/mL
		{"NS-BASIC", 125, 0, 125},
	} {
		e, ok := lib.Lookup(c.id, "")
		if !ok {
			t.Fatalf("%s missing", c.id)
		}
		got, err := e.RateMLH(c.dose, c.weight)
		if err != nil || math.Abs(got-c.mlh) > 1e-9 {
			t.Errorf("%s %g %s at %g kg = %g mL/h, %v; want %g", c.id, c.dose, e.DoseUnit, c.weight, got, err, c.mlh)
		}
	}
	// Every entry converts its soft max for a 70 kg patient.
	for _, e := range lib.Entries {
		dose := e.Dose.SoftMax
		if dose == 0 {
			dose = 1
		}
		if _, err := e.RateMLH(dose, 70); err != nil {
			t.Errorf("%s: %v", e.ID, err)
		}
	}
}

func TestDefaultReturnsCopies(t *testing.T) {
	a := Default()
	a.Entries[0].Dose.HardMax = 99
	a.Entries[0].Channels[0] = "pca"
	a.CareAreas[0].Name = "changed"
	b := Default()
	if b.Entries[0].Dose.HardMax == 99 || b.Entries[0].Channels[0] == "pca" || b.CareAreas[0].Name == "changed" {
		t.Fatal("Default shares memory between calls")
	}
}
