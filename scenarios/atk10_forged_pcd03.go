package scenarios

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/harness/score"
)

// ATK-10 Rogue Infusion Order Programmer sends forged PCD-03 (REFERENCE.md
// §3.1): a host that is not the BCMA sends RGV^O15 for a real patient and
// pump with three times the ordered dose; the nurse sees "auto-programmed"
// and confirms. Harm: DDR about 3 while it runs.
var _ = Describe("ATK-10 forged PCD-03 from a rogue programmer", harness.Register("ATK-10", "Rogue Infusion Order Programmer sends forged PCD-03",
	harness.Kind("attack"), harness.Technique("T0855"), harness.Technique("T0848"), harness.Technique("T0836"), harness.Technique("T0831"),
	harness.Area("AU"), harness.Area("US"), harness.Lifecycle("use"), harness.Target("pumpserver"), harness.Target("pump")), func() {
	f := harness.New("atk-10-forged-pcd03")

	It("triples a running vasopressor dose through the pump server", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumpID := f.Lab.Pumps()[0]

		By("starting a legitimate norepinephrine drip through the clinical workflow")
		th, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5501", 250)
		Expect(err).NotTo(HaveOccurred())
		ioc, err := endpoint(f.Lab, "pumpserver-ioc")
		Expect(err).NotTo(HaveOccurred())

		By("the rogue programmer, on a compromised BCMA workstation, taking its certificate")
		foot, err := foothold(w, f.Lab, "emar-bcma")
		Expect(err).NotTo(HaveOccurred())

		By("the rogue programmer sending a forged PCD-03 (ORC-1 XO) at 0.15 mcg/kg/min")
		step := attack.Step{ScenarioID: "ATK-10", StepID: "ATK-10/1",
			Techniques: []string{"T0855", "T0848", "T0836", "T0831"}, Tactic: "TA0106",
			Assets: []string{pumpID, "pumpserver"}, Correlation: []string{"mllp:" + ioc}, Criteria: "the pump delivers the forged dose",
			Control: "order-crosscheck", Window: 15 * time.Minute}
		err = f.Attack(w, step, func(ctx context.Context) error {
			m := attack.ForgeRGV(attack.ForgedOrder{PumpID: pumpID, MRN: th.MRN, PlacerOrder: th.OrderID, OrderControl: "XO",
				DoseRate: 0.15, ControlID: "ROGUE0001", Time: f.Lab.Clock().Now()})
			ack, err := attack.SendHL7(ctx, nil, ioc, foot.TLS, m)
			if err != nil {
				return err
			}
			if code := ack.Get("MSA-1"); code != "CA" && code != "AA" {
				return fmt.Errorf("pump server refused the forged order: MSA-1 %s %s", code, ack.Get("ERR-8"))
			}
			return nil
		})
		Expect(err).NotTo(HaveOccurred())

		if f.ControlOn("order-crosscheck") {
			By("the order cross-check refusing the PCD-03: no BCMA scan matches it")
			Eventually(func(g Gomega) {
				ev, err := f.Lab.Evidence(w)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(ev).To(ContainElement(HaveField("Control", "order-crosscheck")))
			}).WithContext(w).WithPolling(20 * time.Millisecond).Should(Succeed())
			from := f.Lab.Clock().Now()
			Expect(clock.Sleep(w, f.Lab.Clock(), 10*time.Minute)).To(Succeed())
			harm, err := oracle.Measure(w, f.Lab, oracle.Window{PumpID: pumpID, Channel: "A", From: from, To: f.Lab.Clock().Now(), HighAlert: true})
			Expect(err).NotTo(HaveOccurred())
			t, err := f.Lab.Devices().Truth(w, pumpID, "A")
			Expect(err).NotTo(HaveOccurred())
			f.Observe(step.StepID, score.Observed{Effect: t.Delivered.RateMLH > 1.5*th.RateMLH, Harm: harm})
			AddReportEntry("DDR", fmt.Sprintf("%.3f", harm.DDR))
			Expect(t.Delivered.RateMLH).To(BeNumerically("~", th.RateMLH, 0.01), "the pump keeps the ordered rate")
			Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
			return
		}

		By("the pump running the forged rate after the nurse confirmed the auto-programmed change")
		Eventually(func(g Gomega) {
			t, err := f.Lab.Devices().Truth(w, pumpID, "A")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(t.Delivered.RateMLH).To(BeNumerically("~", 3*th.RateMLH, 0.01))
		}).WithContext(w).WithPolling(20 * time.Millisecond).Should(Succeed())
		from := f.Lab.Clock().Now()
		Expect(clock.Sleep(w, f.Lab.Clock(), 30*time.Minute)).To(Succeed())
		to := f.Lab.Clock().Now()

		By("measuring the harm over the next 30 lab minutes")
		harm, err := oracle.Measure(w, f.Lab, oracle.Window{PumpID: pumpID, Channel: "A", From: from, To: to, HighAlert: true})
		Expect(err).NotTo(HaveOccurred())
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
		AddReportEntry("DDR", fmt.Sprintf("%.3f", harm.DDR))
		AddReportEntry("excess norepinephrine (mg)", fmt.Sprintf("%.4f", harm.ExcessDrug))
		Expect(harm.DDR).To(BeNumerically("~", 3.0, 0.05), "without the order cross-check the forged dose reaches the patient")
		Expect(oracle.Harmful(harm)).To(BeTrue())
	})
})
