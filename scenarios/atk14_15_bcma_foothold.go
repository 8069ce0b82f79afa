package scenarios

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// sendFromBCMA sends m to the pump server with the compromised BCMA's
// certificate and reports whether the pump server took it (MSA-1 CA/AA).
func sendFromBCMA(ctx context.Context, l lab.Lab, m *hl7.Message) (bool, error) {
	foot, err := foothold(ctx, l, "emar-bcma")
	if err != nil {
		return false, err
	}
	ioc, err := endpoint(l, "pumpserver-ioc")
	if err != nil {
		return false, err
	}
	ack, err := attack.SendHL7(ctx, nil, ioc, foot.TLS, m)
	if err != nil {
		return false, err
	}
	code := ack.Get("MSA-1")
	return code == "CA" || code == "AA", nil
}

// ATK-14 Pump / channel association swap (REFERENCE.md §3.1): malware on a
// BCMA workstation re-sends a patient's verified PCD-03 with another pump's
// id in OBX-18, so that patient A's order (three times the dose) programs
// patient B's running pump.
var _ = Describe("ATK-14 pump association swap", harness.Register("ATK-14", "Pump / channel association swap (wrong patient)",
	harness.Kind("attack"), harness.Technique("T0855"), harness.Technique("T0831"),
	harness.Area("US"), harness.Area("AM"), harness.Lifecycle("use"), harness.Target("pumpserver"), harness.Target("pump")), func() {
	f := harness.New("atk-14-association-swap")

	It("programs patient B's pump with patient A's order", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumps := f.Lab.Pumps()
		pumpA, pumpB := pumps[3], pumps[4]

		By("patient B on norepinephrine 0.05 mcg/kg/min on pump B")
		thB, err := startNorepinephrine(w, f.Lab, pumpB, "MRN5514", 250)
		Expect(err).NotTo(HaveOccurred())

		By("patient A ordered 0.15 mcg/kg/min, scanned with pump A")
		cl := f.Lab.Clinical()
		Expect(cl.Admit(w, lab.Patient{MRN: "MRN5515", Family: "Testpatient", Given: "Ana", DOB: "19580101", Sex: "F",
			Unit: "4W ICU", Room: "15", Bed: "A", WeightKg: 70})).To(Succeed())
		orderA, err := cl.Order(w, lab.Order{MRN: "MRN5515", DrugCode: "NOREPI-4-250", DrugText: "Norepinephrine 4 mg/250 mL",
			DoseRate: 0.15, DoseUnit: "mcg/kg/min", DrugAmount: 4, DrugUnit: "mg", DiluentML: 250, VTBI: 250, Device: "IVP", Prescriber: "MD0007"})
		Expect(err).NotTo(HaveOccurred())
		Expect(cl.Verify(w, orderA, "RPH0001")).To(Succeed())
		resA, err := cl.Administer(w, lab.Scan{Nurse: "RN0042", MRN: "MRN5515", Drug: "NOREPI-4-250", PumpID: pumpA, Channel: "A"})
		Expect(err).NotTo(HaveOccurred())
		Expect(resA.Accepted).To(BeTrue())

		By("the BCMA malware re-sending A's PCD-03 as a change (XO) for pump B")
		step := attack.Step{ScenarioID: "ATK-14", StepID: "ATK-14/1", Techniques: []string{"T0855", "T0831"}, Tactic: "TA0106",
			Assets: []string{pumpB, "pumpserver", "emar-bcma"}, Correlation: []string{"hl7:" + resA.ControlID + "-B"},
			Criteria: "patient B's pump runs patient A's order", Control: "order-crosscheck", Window: 15 * time.Minute}
		var took bool
		err = f.Attack(w, step, func(ctx context.Context) error {
			m := attack.ForgeRGV(attack.ForgedOrder{PumpID: pumpB, MRN: "MRN5515", PlacerOrder: orderA, OrderControl: "XO",
				DoseRate: 0.15, ControlID: resA.ControlID + "-B", Time: f.Lab.Clock().Now()})
			var err error
			took, err = sendFromBCMA(ctx, f.Lab, m)
			return err
		})
		Expect(err).NotTo(HaveOccurred())

		if f.ControlOn("order-crosscheck") {
			By("the order cross-check refusing a PCD-03 for a pump the nurse did not scan")
			ev := expectBlocked(w, f.Lab, "order-crosscheck")
			AddReportEntry("order-crosscheck", ev.Reason)
			observeBlocked(w, f, step.StepID, thB, 10*time.Minute)
			return
		}
		Expect(took).To(BeTrue())
		By("pump B running patient A's dose")
		Eventually(func(g Gomega) {
			t, err := f.Lab.Devices().Truth(w, pumpB, "A")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(t.Delivered.RateMLH).To(BeNumerically("~", 3*thB.RateMLH, 0.01))
		}).WithContext(w).WithPolling(20 * time.Millisecond).Should(Succeed())
		harm, err := harmOver(w, f.Lab, thB, 30*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
		AddReportEntry("DDR patient B", fmt.Sprintf("%.3f", harm.DDR))
		Expect(harm.DDR).To(BeNumerically("~", 3.0, 0.05))
	})
})

// ATK-15 Replay of a previously valid PCD-03 (REFERENCE.md §3.1): the
// attacker, with the BCMA's logs and certificate, replays a completed
// loading-dose order byte for byte; the pump runs the loading dose again.
var _ = Describe("ATK-15 replayed PCD-03", harness.Register("ATK-15", "Replay of a previously valid PCD-03 (bolus / loading dose)",
	harness.Kind("attack"), harness.Technique("T0855"), harness.Technique("T0830"),
	harness.Area("AU"), harness.Lifecycle("use"), harness.Target("pumpserver"), harness.Target("pump")), func() {
	f := harness.New("atk-15-replay-pcd03")

	It("runs a completed loading dose a second time", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumpID := f.Lab.Pumps()[5]

		By("a 5 mL norepinephrine loading volume running to completion")
		_, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5516", 5)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Lab.Devices().WaitState(w, pumpID, "A", "kvo")).To(Succeed())
		Expect(f.Lab.Devices().Stop(w, pumpID, "A", "RN0042")).To(Succeed())

		By("the attacker reading that PCD-03 from the compromised BCMA workstation's message log")
		foot, err := foothold(w, f.Lab, "emar-bcma")
		Expect(err).NotTo(HaveOccurred())
		Expect(foot.Outbox).NotTo(BeNil(), "the BCMA keeps no message log in this lab")
		sent, err := foot.Outbox(w)
		Expect(err).NotTo(HaveOccurred())
		var orig *hl7.Message
		for _, b := range sent {
			if m, err := hl7.Parse(b); err == nil && m.Type().Is("RGV", "O15") {
				orig = m
			}
		}
		Expect(orig).NotTo(BeNil(), "no PCD-03 in the BCMA's log")

		By("replaying the same PCD-03 ten lab minutes later")
		Expect(sleepLab(w, f.Lab, 10*time.Minute)).To(Succeed())
		step := attack.Step{ScenarioID: "ATK-15", StepID: "ATK-15/1", Techniques: []string{"T0855", "T0830"}, Tactic: "TA0106",
			Assets: []string{pumpID, "pumpserver"}, Correlation: []string{"hl7:" + orig.ControlID()},
			Criteria: "the pump runs the replayed loading dose again", Control: "order-crosscheck", Window: 15 * time.Minute}
		var took bool
		from := f.Lab.Clock().Now()
		err = f.Attack(w, step, func(ctx context.Context) error {
			var err error
			took, err = sendFromBCMA(ctx, f.Lab, orig)
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		if f.ControlOn("order-crosscheck") {
			By("the order cross-check refusing a PCD-03 whose scan already programmed a pump")
			ev := expectBlocked(w, f.Lab, "order-crosscheck")
			AddReportEntry("order-crosscheck", ev.Reason)
			Expect(sleepLab(w, f.Lab, 5*time.Minute)).To(Succeed())
			vol, err := volumeSince(w, f.Lab, pumpID, from)
			Expect(err).NotTo(HaveOccurred())
			f.Observe(step.StepID, score.Observed{Effect: vol > 1, Harm: score.Harm{HighAlert: true}})
			Expect(vol).To(BeNumerically("<", 1), "mL delivered after the replay (KVO only)")
			return
		}
		Expect(took).To(BeTrue())
		By("the nurse confirming the re-appeared program; the pump runs the 5 mL again")
		Expect(f.Lab.Devices().WaitState(w, pumpID, "A", "infusing")).To(Succeed())
		Expect(f.Lab.Devices().WaitState(w, pumpID, "A", "kvo")).To(Succeed())
		Expect(f.Lab.Devices().Stop(w, pumpID, "A", "RN0042")).To(Succeed())
		vol, err := volumeSince(w, f.Lab, pumpID, from)
		Expect(err).NotTo(HaveOccurred())
		excess := vol * 4.0 / 250 // mg of norepinephrine in the replayed volume
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: score.Harm{ExcessDrug: excess, HighAlert: true, DDR: 2}})
		AddReportEntry("replayed volume (mL)", fmt.Sprintf("%.2f", vol))
		AddReportEntry("excess norepinephrine (mg)", fmt.Sprintf("%.3f", excess))
		Expect(vol).To(BeNumerically(">=", 5), "the loading volume ran again")
	})
})

// sleepLab waits d of lab time.
func sleepLab(ctx context.Context, l lab.Lab, d time.Duration) error {
	return clockSleep(ctx, l, d)
}

// volumeSince is the motor-truth volume a channel A delivered since from.
func volumeSince(ctx context.Context, l lab.Lab, pumpID string, from time.Time) (float64, error) {
	segs, err := l.Devices().Segments(ctx, pumpID, "A")
	if err != nil {
		return 0, err
	}
	vol, _ := deliveredIn(segs, from, l.Clock().Now())
	return vol, nil
}
