package scenarios

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/lab"
)

// CTL-04 PCA with frequent patient demands (REFERENCE.md §3.3): biomed puts
// a PCA pump at a bed (lab.Bedside.ReplacePump); a morphine
// PCA (1 mg per demand, 10-minute lockout, 10 mg per hour, no basal) is
// ordered, verified, scanned and sent to a PCA pump as PCD-03; the patient
// presses the button 20 times in one lab hour. Pass: 6 demands delivered,
// 14 refused for the lockout, 6 mL (6 mg) delivered by the motor (± 5%), the
// hourly limit not reached, no control blocked anything.
var _ = Describe("CTL-04 PCA with frequent demands", harness.Register("CTL-04", "PCA with frequent patient demands",
	harness.Kind("control"), harness.Area("AU"), harness.Lifecycle("use"),
	harness.Target("pump"), harness.Target("pumpserver"), harness.Target("emar")), func() {
	f := harness.New("ctl-04-pca-frequent-demands")
	harness.GuardControlScenario(f)

	It("honours one demand per lockout and refuses the others", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		bed := harness.LabAs[lab.Bedside](f, "bedside (a PCA pump and its button)")
		clk, c := f.Lab.Clock(), f.Lab.Clinical()

		By("biomed swapping the pump at the bed for a PCA pump (it takes over the bed pump's network identity)")
		pca := f.Lab.Pumps()[len(f.Lab.Pumps())-1]
		Expect(bed.ReplacePump(w, pca, "pca")).To(Succeed())

		By("ordering, verifying and scanning morphine PCA 1 mg/demand, lockout 10 min, 10 mg/h (PCD-03)")
		Expect(c.Admit(w, lab.Patient{MRN: "MRN4004", Family: "Controlpatient", Given: "Pat", DOB: "19800202", Sex: "F",
			Unit: "5E Surgical", Room: "9", Bed: "B", WeightKg: 70})).To(Succeed())
		id, err := c.Order(w, lab.Order{MRN: "MRN4004", DrugCode: "MORPHINE-PCA-30-30", DrugText: "Morphine PCA 1 mg/mL (30 mg/30 mL)",
			DoseRate: 1, DoseUnit: "mg", DrugAmount: 30, DrugUnit: "mg", DiluentML: 30, VTBI: 30, Device: "PCA", Prescriber: "MD0007",
			PCALockoutMin: 10, PCAHourLimit: 10})
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Verify(w, id, "RPH0001")).To(Succeed())
		res, err := c.Administer(w, lab.Scan{Nurse: "RN0042", MRN: "MRN4004", Drug: "MORPHINE-PCA-30-30", PumpID: pca, Channel: "A"})
		Expect(err).NotTo(HaveOccurred())
		if !res.Accepted {
			Fail(refused(w, f, "PCA PCD-03 "+id, res).Error())
		}
		Expect(bed.Start(w, pca, "A", "RN0042")).To(Succeed(), "the nurse confirms the PCA program at the pump")
		start := clk.Now()
		f.Latency(harness.MetricOrderToInfusion, start.Sub(res.SentAt))

		By("the patient pressing 20 times in one lab hour")
		// Six presses 11 min apart are honoured; 14 more fall 2, 5 and 8
		// minutes after an honoured press, inside its lockout. Each press is
		// timed from the lab time the previous honoured one returned, so a
		// press the scheduler runs late (x300 on a loaded host) never
		// shortens the next gap. The minute of margin past the lockout is
		// for the pump's own lockout-end timer, which also fires late on a
		// loaded host (the pump refuses while its state still reads
		// pca_lockout).
		honoured, presses := 0, 0
		press := func() {
			ok, err := bed.PCADemand(w, pca, "A")
			Expect(err).NotTo(HaveOccurred(), "press %d", presses+1)
			presses++
			if ok {
				honoured++
			}
		}
		base := start.Add(time.Minute)
		for k := range 6 {
			Expect(until(w, clk, base)).To(Succeed())
			press()
			last := clk.Now()
			extra := []time.Duration{2 * time.Minute, 5 * time.Minute, 8 * time.Minute}
			switch k {
			case 4:
				extra = extra[:2]
			case 5:
				extra = nil
			}
			for _, e := range extra {
				Expect(until(w, clk, last.Add(e))).To(Succeed())
				press()
			}
			base = last.Add(11 * time.Minute)
		}
		Expect(presses).To(Equal(20))
		Expect(clk.Now().Sub(start)).To(BeNumerically("<", 62*time.Minute), "20 presses within about a lab hour")
		Expect(until(w, clk, clk.Now().Add(time.Minute))).To(Succeed())

		By("counting: 6 delivered, 14 refused for the lockout, 6 mg by the motor, limit not reached")
		st, err := bed.PCAStats(w, pca, "A")
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Demands).To(Equal(20))
		Expect(st.Delivered).To(Equal(6), "stats %+v", st)
		Expect(honoured).To(Equal(6))
		Expect(st.Rejected).To(Equal(14))
		Expect(st.RejectedLockout).To(Equal(14))
		Expect(st.RejectedLimit).To(BeZero())
		Expect(st.Limited).To(BeFalse(), "6 mg is within the 10 mg hourly limit")
		Expect(st.DeliveredML/6).To(BeNumerically("~", 1.0, 0.05), "motor truth: six 1 mL doses of 1 mg/mL")
		AddReportEntry("PCA", fmt.Sprintf("demands %d, delivered %d, refused %d (lockout %d), %.3f mL", st.Demands, st.Delivered,
			st.Rejected, st.RejectedLockout, st.DeliveredML))
	})
})
