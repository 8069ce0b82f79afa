package scenarios

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/lab"
)

// CTL-02 Titration of a vasopressor (REFERENCE.md §3.3): a norepinephrine
// drip is titrated six times in one lab hour, each change a new bedside
// scan and a new PCD-03 with ORC-1 XO within the soft limits. Pass: every
// change accepted and confirmed at the pump, DDR 1.00 ± 0.05 over every
// interval between changes, documented == delivered, no harm, no control
// blocked anything.
var _ = Describe("CTL-02 vasopressor titration", harness.Register("CTL-02", "Titration of a vasopressor",
	harness.Kind("control"), harness.Area("AU"), harness.Area("US"), harness.Lifecycle("use"),
	harness.Target("pump"), harness.Target("pumpserver"), harness.Target("emar"), harness.Target("ehr")), func() {
	f := harness.New("ctl-02-vasopressor-titration")
	harness.GuardControlScenario(f)

	It("applies each XO rate change at the pump and delivers exactly what was ordered in every interval", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		ward := harness.LabAs[lab.Ward](f, "ward (ADT transfer and BCMA titration)")
		clk, dev := f.Lab.Clock(), f.Lab.Devices()
		pumpID := f.Lab.Pumps()[2]
		d := norepi
		d.VTBI = 250

		By("starting norepinephrine 0.05 mcg/kg/min through BCMA (PCD-03 RE)")
		t, err := startDrip(w, f, pumpID, "MRN2002", d)
		Expect(err).NotTo(HaveOccurred())

		// Six changes in one lab hour, every 10 lab minutes, all inside the
		// soft range 0.01-0.5 mcg/kg/min.
		doses := []float64{0.08, 0.12, 0.10, 0.15, 0.10, 0.06}
		from, dose := t.Started, d.Dose
		hourStart := clk.Now()
		for i, next := range doses {
			Expect(until(w, clk, hourStart.Add(time.Duration(i+1)*10*time.Minute))).To(Succeed())

			By(fmt.Sprintf("checking DDR over interval %d at %.2f mcg/kg/min", i, dose))
			ddr, err := dev.DDR(w, pumpID, "A", from, clk.Now())
			Expect(err).NotTo(HaveOccurred())
			Expect(ddr).To(BeNumerically("~", 1.0, 0.05), "DDR of interval %d (%.2f mcg/kg/min)", i, dose)
			AddReportEntry(fmt.Sprintf("DDR interval %d", i), fmt.Sprintf("%.4f", ddr))

			By(fmt.Sprintf("titrating to %.2f mcg/kg/min: bedside scan, PCD-03 XO", next))
			res, err := ward.Titrate(w, lab.Titration{Nurse: "RN0042", MRN: t.MRN, OrderID: t.OrderID, DoseRate: next})
			Expect(err).NotTo(HaveOccurred())
			if !res.Accepted {
				Fail(refused(w, f, fmt.Sprintf("XO %d to %.2f", i+1, next), res).Error())
			}
			applied, err := rateSince(w, f.Lab, pumpID, res.SentAt, d.rateMLH(next))
			Expect(err).NotTo(HaveOccurred(), "the pump never ran the titrated rate")
			f.Latency(harness.MetricTitrationToRate, applied.Sub(res.SentAt))
			from, dose = applied, next
		}
		Expect(until(w, clk, hourStart.Add(70*time.Minute))).To(Succeed())
		end := clk.Now()
		ddr, err := dev.DDR(w, pumpID, "A", from, end)
		Expect(err).NotTo(HaveOccurred())
		Expect(ddr).To(BeNumerically("~", 1.0, 0.05), "DDR of the last interval")

		By("the drip still infusing after the last change")
		Expect(dev.WaitState(w, pumpID, "A", "infusing")).To(Succeed())

		By("checking documented == delivered and no harm on the last interval")
		doc, err := f.Lab.Clinical().WaitDocumented(w, t.OrderID, func(d lab.Documentation) bool { return !d.LastObs.Before(end) })
		Expect(err).NotTo(HaveOccurred())
		Expect(docEvents(doc, "MDC_EVT_PUMP_DELIV_START")).To(HaveLen(1), "one delivery start: titrations are rate changes, not new bags")
		harm, err := oracle.Measure(w, f.Lab, oracle.Window{PumpID: pumpID, Channel: "A", From: from, To: end,
			OrderID: t.OrderID, HighAlert: true})
		Expect(err).NotTo(HaveOccurred())
		Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
		Expect(harm.InterruptedMin).To(BeNumerically("<", 0.5))
		AddReportEntry("titrations", fmt.Sprintf("%d in one lab hour", len(doses)))
	})
})
