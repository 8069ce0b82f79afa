package scenarios

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/druglib"
)

// The drug-library attacks (REFERENCE.md ATK-19..21) start from the pump
// server's administrator ("Pre: attacker has server admin (ATK-07/08)"):
// the attacker can push any library to the fleet through the server, and its
// commands are signed by the server; only the pharmacy's signature on the
// bundle (signed-library) stands in the way.

// heparin is the lab's heparin entry: 25,000 units/250 mL (100 units/mL),
// dosed per kg, soft max 25 and hard max 40 units/kg/h in the default library.
const (
	heparinID       = "HEPARIN-25000-250"
	heparinIntended = 18.0 // units/kg/h: the dose the prescriber meant
	heparinConc     = 100.0
)

// currentLibrary returns the library bundle the druglib server publishes.
func currentLibrary(ctx context.Context, l lab.Lab) (*druglib.Bundle, *druglib.Client, error) {
	url, err := endpoint(l, "druglib")
	if err != nil {
		return nil, nil, err
	}
	cl := &druglib.Client{BaseURL: url}
	b, err := cl.Current(ctx)
	return b, cl, err
}

// pushFromAttacker serves bundle on the attacker's own host and makes the
// compromised pump server push it to pumpID. It returns the pump's answer.
func pushFromAttacker(ctx context.Context, l lab.Lab, bundle *druglib.Bundle, pumpID string) (lab.LibraryPush, error) {
	foot, err := foothold(ctx, l, "pumpserver")
	if err != nil {
		return lab.LibraryPush{}, err
	}
	if foot.PushLibrary == nil {
		return lab.LibraryPush{}, fmt.Errorf("the %s lab's pump-server foothold cannot push libraries", l.Provider())
	}
	path := "/lib/" + bundle.Library.Version + ".json"
	fs, err := attack.ServeJSON(context.WithoutCancel(ctx), nil, "", map[string]any{path: bundle})
	if err != nil {
		return lab.LibraryPush{}, err
	}
	DeferCleanup(fs.Close)
	acks, err := foot.PushLibrary(ctx, bundle.Library.Version, fs.URL(path), bundle.Hash, pumpID)
	if a, ok := acks[pumpID]; ok {
		return a, nil
	}
	if err == nil {
		err = fmt.Errorf("no answer from %s", pumpID)
	}
	return lab.LibraryPush{}, err
}

// orderHeparin runs a heparin order of dose units/kg/h (70 kg) through the
// clinical workflow on pumpID and reports whether the pump took it.
func orderHeparin(ctx context.Context, l lab.Lab, pumpID, mrn string, dose float64) (therapy, lab.AdminResult, error) {
	c := l.Clinical()
	if err := c.Admit(ctx, lab.Patient{MRN: mrn, Family: "Testpatient", Given: "Lee", DOB: "19600606", Sex: "M",
		Unit: "4W ICU", Room: "20", Bed: "A", WeightKg: 70}); err != nil {
		return therapy{}, lab.AdminResult{}, err
	}
	id, err := c.Order(ctx, lab.Order{MRN: mrn, DrugCode: heparinID, DrugText: "Heparin 25,000 units/250 mL", DoseRate: dose,
		DoseUnit: "units/kg/h", DrugAmount: 25000, DrugUnit: "units", DiluentML: 250, VTBI: 250, Device: "IVP", Prescriber: "MD0007"})
	if err != nil {
		return therapy{}, lab.AdminResult{}, err
	}
	if err := c.Verify(ctx, id, "RPH0001"); err != nil {
		return therapy{}, lab.AdminResult{}, err
	}
	res, err := c.Administer(ctx, lab.Scan{Nurse: "RN0042", MRN: mrn, Drug: heparinID, PumpID: pumpID, Channel: "A"})
	th := therapy{PumpID: pumpID, Channel: "A", OrderID: id, MRN: mrn, RateMLH: dose * 70 / heparinConc}
	return th, res, err
}

// heparinHarm measures 15 lab minutes of the heparin channel against the
// dose the prescriber meant (the order itself was the fat finger).
func heparinHarm(ctx context.Context, l lab.Lab, pumpID string) (score.Harm, error) {
	from := l.Clock().Now()
	if err := clockSleep(ctx, l, 15*time.Minute); err != nil {
		return score.Harm{}, err
	}
	to := l.Clock().Now()
	segs, err := l.Devices().Segments(ctx, pumpID, "A")
	if err != nil {
		return score.Harm{}, err
	}
	o := oracle.Order{RateMLH: heparinIntended * 70 / heparinConc, Conc: heparinConc, BagConc: heparinConc}
	h := score.Harm{HighAlert: true}
	if ddr, err := oracle.DDR(segs, o, from, to); err == nil {
		h.DDR = ddr
	}
	h.ExcessDrug = oracle.ExcessDrug(segs, o, from, to)
	return h, nil
}

// libraryAttack is one library scenario: prepare (optional), the attacker's
// push in the step, then a clinical order that the genuine library refuses.
type libraryAttack struct {
	id, mrn    string
	techniques []string
	criteria   string
	// bundle builds what the attacker pushes, given the published bundle.
	bundle func(ctx context.Context, f *harness.Framework, pumpID string) *druglib.Bundle
	// dose is the heparin order (units/kg/h) the genuine library refuses.
	dose float64
}

func runLibraryAttack(ctx context.Context, f *harness.Framework, a libraryAttack) {
	w, cancel := f.Context(ctx, f.Timeouts.Therapy)
	defer cancel()
	pumpID := f.Lab.Pumps()[8]
	b := a.bundle(w, f, pumpID)

	By("the attacker, with pump-server admin, pushing library " + b.Library.Version + " from its own host")
	step, ack := pushStep(w, f, a.id, a.techniques, a.criteria, b, pumpID)

	By(fmt.Sprintf("a heparin order of %g units/kg/h (meant: %g) reaching the pump", a.dose, heparinIntended))
	_, res, err := orderHeparin(w, f.Lab, pumpID, a.mrn, a.dose)
	Expect(err).NotTo(HaveOccurred())
	AddReportEntry("RRG^O16", fmt.Sprintf("%s %s %s", res.AckCode, res.ErrCode, res.ErrText))

	if f.ControlOn("signed-library") {
		By("the pump refusing the library; its genuine hard limit refusing the order")
		ev := expectBlocked(w, f.Lab, "signed-library")
		AddReportEntry("signed-library", ev.Reason)
		Expect(ack.Result).To(Equal("rejected"))
		Expect(res.Accepted).To(BeFalse(), "the genuine library must refuse %g units/kg/h", a.dose)
		harm, err := heparinHarm(w, f.Lab, pumpID)
		Expect(err).NotTo(HaveOccurred())
		f.Observe(step.StepID, score.Observed{Effect: false, SafetyCaught: true, Harm: harm})
		Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
		return
	}
	By("the pump running the order its tampered library lets through")
	Expect(ack.Result).To(BeElementOf("accepted", "deferred"))
	Expect(res.Accepted).To(BeTrue(), "RRG^O16 %s %s %s", res.AckCode, res.ErrCode, res.ErrText)
	Expect(f.Lab.Devices().WaitState(w, pumpID, "A", "infusing")).To(Succeed())
	harm, err := heparinHarm(w, f.Lab, pumpID)
	Expect(err).NotTo(HaveOccurred())
	f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
	AddReportEntry("DDR vs the intended dose", fmt.Sprintf("%.2f", harm.DDR))
	Expect(oracle.Harmful(harm)).To(BeTrue(), "harm %+v", harm)
}

// tampered returns an unsigned bundle of a copy of the published library
// under a new version, with entry id changed by edit (the attacker has no
// pharmacy key).
func tampered(ctx context.Context, l lab.Lab, version, id string, edit func(*druglib.Entry)) *druglib.Bundle {
	cur, _, err := currentLibrary(ctx, l)
	Expect(err).NotTo(HaveOccurred())
	lib := cur.Library.Clone()
	lib.Version = version
	found := false
	for i := range lib.Entries {
		if lib.Entries[i].ID == id {
			edit(&lib.Entries[i])
			found = true
		}
	}
	Expect(found).To(BeTrue(), "the library has %s", id)
	return &druglib.Bundle{Library: lib, Hash: lib.Hash()}
}

// pushStep is the attacker's push of bundle to pumpID as the step of a
// library scenario (expected control: signed-library); it returns the
// step and the pump's answer.
func pushStep(ctx context.Context, f *harness.Framework, id string, techniques []string, criteria string,
	b *druglib.Bundle, pumpID string) (attack.Step, lab.LibraryPush) {
	step := attack.Step{ScenarioID: id, StepID: id + "/1", Techniques: techniques, Tactic: "TA0106",
		Assets: []string{pumpID, "pumpserver", "druglib"}, Correlation: []string{"library:" + b.Library.Version, "library:" + b.Hash},
		Criteria: criteria, Control: "signed-library", Window: 15 * time.Minute}
	var ack lab.LibraryPush
	err := f.Attack(ctx, step, func(ctx context.Context) error {
		var err error
		ack, err = pushFromAttacker(ctx, f.Lab, b, pumpID)
		return err
	})
	Expect(err).NotTo(HaveOccurred())
	AddReportEntry("pump's answer to the push", fmt.Sprintf("%s %s %s", ack.Result, ack.Code, ack.Reason))
	return step, ack
}

var _ = Describe("ATK-19 drug-library hard-limit widening", harness.Register("ATK-19", "Drug-library hard-limit widening via unsigned library push",
	harness.Kind("attack"), harness.Technique("T0843"), harness.Technique("T0836"), harness.Technique("T0837"), harness.Technique("T0880"),
	harness.Area("DL"), harness.Area("AU"), harness.Area("MU"), harness.Lifecycle("use"), harness.Target("pumpserver"), harness.Target("pump")), func() {
	f := harness.New("atk-19-library-hard-limit")

	It("widens heparin's hard limit tenfold so a tenfold fat-finger order runs", func(ctx SpecContext) {
		runLibraryAttack(ctx, f, libraryAttack{id: "ATK-19", mrn: "MRN5519", dose: 10 * heparinIntended,
			techniques: []string{"T0843", "T0836", "T0837", "T0880"},
			criteria:   "the pump activates a library whose heparin hard limit is ten times the approved one",
			bundle: func(ctx context.Context, f *harness.Framework, pumpID string) *druglib.Bundle {
				return tampered(ctx, f.Lab, "ADULT-2026.01-X", heparinID, func(e *druglib.Entry) {
					e.Dose.SoftMax, e.Dose.HardMax = 250, 400
				})
			}})
	})
})

var _ = Describe("ATK-21 drug-library rollback", harness.Register("ATK-21", "Drug-library rollback to a stale/withdrawn version",
	harness.Kind("attack"), harness.Technique("T0843"), harness.Technique("T0836"),
	harness.Area("DL"), harness.Area("MU"), harness.Lifecycle("use"), harness.Target("pumpserver"), harness.Target("pump")), func() {
	f := harness.New("atk-21-library-rollback")

	It("replays the previous approved library after heparin's limit was tightened", func(ctx SpecContext) {
		runLibraryAttack(ctx, f, libraryAttack{id: "ATK-21", mrn: "MRN5521", dose: 35,
			techniques: []string{"T0843", "T0836"},
			criteria:   "the pump goes back to the library version before the tightened heparin limit",
			bundle: func(ctx context.Context, f *harness.Framework, pumpID string) *druglib.Bundle {
				ph := harness.LabAs[lab.Pharmacy](f, "pharmacy (library push to the fleet)")
				old, cl, err := currentLibrary(ctx, f.Lab)
				Expect(err).NotTo(HaveOccurred())
				By("pharmacy tightening heparin's hard limit to 30 units/kg/h in a new approved version, pushed to the pump")
				lib := old.Library.Clone()
				lib.Version = "ADULT-2026.02"
				for i := range lib.Entries {
					if lib.Entries[i].ID == heparinID {
						lib.Entries[i].Dose.HardMax = 30
					}
				}
				_, err = cl.Draft(ctx, lib, "rph.alvarez")
				Expect(err).NotTo(HaveOccurred())
				_, err = cl.Finalize(ctx, lib.Version, "rph.alvarez")
				Expect(err).NotTo(HaveOccurred())
				_, err = cl.Approve(ctx, lib.Version, "rph.chen")
				Expect(err).NotTo(HaveOccurred())
				_, err = cl.Publish(ctx, lib.Version, "rph.chen")
				Expect(err).NotTo(HaveOccurred())
				acks, err := ph.PushLibrary(ctx, lib.Version, pumpID)
				Expect(err).NotTo(HaveOccurred())
				Expect(acks[pumpID].Result).To(Equal("accepted"), "%+v", acks[pumpID])
				return old // the stale bundle, as published (signed in a signing posture)
			}})
	})
})

// ATK-20 Library concentration falsification (REFERENCE.md §3.1): the
// attacker halves norepinephrine's concentration in a pushed library; a
// nurse keying the drip in at the pump by dose (the library supplies the
// concentration) gets twice the mL/h while the screen shows the ordered
// dose.
var _ = Describe("ATK-20 drug-library concentration falsification", harness.Register("ATK-20", "Library concentration/unit falsification (view vs delivery)",
	harness.Kind("attack"), harness.Technique("T0843"), harness.Technique("T0836"), harness.Technique("T0832"),
	harness.Area("DL"), harness.Lifecycle("use"), harness.Target("pumpserver"), harness.Target("pump")), func() {
	f := harness.New("atk-20-library-concentration")

	It("makes a dose keyed in at the pump run at twice the rate", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		bed := harness.LabAs[lab.Bedside](f, "bedside programming at the pump")
		pumpID := f.Lab.Pumps()[9]
		// 2 mg in 250 mL on the library; the bag holds 4 mg.
		b := tampered(w, f.Lab, "ADULT-2026.01-C", "NOREPI-4-250", func(e *druglib.Entry) { e.Amount = 2 })

		By("the attacker, with pump-server admin, pushing a library with norepinephrine at half its concentration")
		step, ack := pushStep(w, f, "ATK-20", []string{"T0843", "T0836", "T0832"},
			"the pump activates a library whose norepinephrine concentration is half the dispensed bag's", b, pumpID)

		By("a nurse keying in norepinephrine 0.05 mcg/kg/min, 70 kg, at the pump (4 mg/250 mL bag)")
		res, err := bed.ManualProgram(w, pumpID, "A", "RN0042", lab.ManualProgram{OrderID: "ORD-ATK20", DrugID: "NOREPI-4-250",
			DoseRate: 0.05, DoseUnit: "mcg/kg/min", WeightKg: 70, VTBI: 250})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Accepted).To(BeTrue(), "%+v", res)
		if res.NeedsOverride {
			Expect(bed.Override(w, pumpID, "A", "clinically indicated", "RN0042")).To(Succeed())
		}
		Expect(bed.Start(w, pumpID, "A", "RN0042")).To(Succeed())
		AddReportEntry("pump rate (mL/h)", fmt.Sprintf("%.4g (ordered 13.125)", res.RateMLH))

		from := f.Lab.Clock().Now()
		Expect(clockSleep(w, f.Lab, 15*time.Minute)).To(Succeed())
		segs, err := f.Lab.Devices().Segments(w, pumpID, "A")
		Expect(err).NotTo(HaveOccurred())
		o := oracle.Order{RateMLH: 13.125, Conc: 0.016, BagConc: 0.016}
		h := score.Harm{HighAlert: true}
		if ddr, err := oracle.DDR(segs, o, from, f.Lab.Clock().Now()); err == nil {
			h.DDR = ddr
		}
		h.ExcessDrug = oracle.ExcessDrug(segs, o, from, f.Lab.Clock().Now())
		AddReportEntry("DDR", fmt.Sprintf("%.3f", h.DDR))

		if f.ControlOn("signed-library") {
			By("the pump refusing the unsigned library: the genuine concentration gives the ordered rate")
			ev := expectBlocked(w, f.Lab, "signed-library")
			AddReportEntry("signed-library", ev.Reason)
			f.Observe(step.StepID, score.Observed{Effect: false, Harm: h})
			Expect(ack.Result).To(Equal("rejected"))
			Expect(oracle.Harmful(h)).To(BeFalse(), "harm %+v", h)
			return
		}
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: h})
		Expect(ack.Result).To(BeElementOf("accepted", "deferred"))
		Expect(h.DDR).To(BeNumerically("~", 2.0, 0.05), "twice the drug for the displayed dose")
	})
})
