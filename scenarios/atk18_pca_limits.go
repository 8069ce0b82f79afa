package scenarios

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/druglib"
)

// ATK-18 PCA safety-limit tampering (REFERENCE.md §3.1): from the pump
// server's administrator, the attacker pushes a library whose morphine PCA
// limits allow a 1-minute lockout and a 100 mg hourly limit. A PCA order
// keyed with lockout 1 instead of 10 (a fat finger the genuine library
// refuses: hard minimum 5 min) then lets the patient take a dose every few
// minutes.
var _ = Describe("ATK-18 PCA safety-limit tampering", harness.Register("ATK-18", "PCA safety-limit tampering",
	harness.Kind("attack"), harness.Technique("T0836"), harness.Technique("T0880"), harness.Technique("T0837"),
	harness.Area("DL"), harness.Area("AU"), harness.Lifecycle("use"), harness.Target("pumpserver"), harness.Target("pump")), func() {
	f := harness.New("atk-18-pca-limits")

	It("lets a PCA patient take twenty doses in an hour", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		bed := harness.LabAs[lab.Bedside](f, "bedside (a PCA pump and its button)")
		clk, c := f.Lab.Clock(), f.Lab.Clinical()
		pca := f.Lab.Pumps()[10]
		Expect(bed.ReplacePump(w, pca, "pca")).To(Succeed())

		b := tampered(w, f.Lab, "ADULT-2026.01-P", "MORPHINE-PCA-30-30", func(e *druglib.Entry) {
			if p := e.PCA; p != nil {
				p.LockoutHardMin, p.LockoutSoftMin, p.HourLimitMax, p.FourHourMax = 1, 1, 100, 400
			}
		})

		By("the attacker, with pump-server admin, pushing a library with a 1-minute PCA lockout floor and no real hourly limit")
		step, ack := pushStep(w, f, "ATK-18", []string{"T0836", "T0880", "T0837"},
			"the PCA pump activates a library whose lockout and hourly limits no longer protect the patient", b, pca)

		By("a morphine PCA order keyed with a 1-minute lockout (meant: 10) and no hourly limit")
		Expect(c.Admit(w, lab.Patient{MRN: "MRN5518", Family: "Testpatient", Given: "Kim", DOB: "19750505", Sex: "F",
			Unit: "5E Surgical", Room: "11", Bed: "A", WeightKg: 70})).To(Succeed())
		id, err := c.Order(w, lab.Order{MRN: "MRN5518", DrugCode: "MORPHINE-PCA-30-30", DrugText: "Morphine PCA 1 mg/mL (30 mg/30 mL)",
			DoseRate: 1, DoseUnit: "mg", DrugAmount: 30, DrugUnit: "mg", DiluentML: 30, VTBI: 30, Device: "PCA", Prescriber: "MD0007",
			PCALockoutMin: 1})
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Verify(w, id, "RPH0001")).To(Succeed())
		res, err := c.Administer(w, lab.Scan{Nurse: "RN0042", MRN: "MRN5518", Drug: "MORPHINE-PCA-30-30", PumpID: pca, Channel: "A"})
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("RRG^O16", fmt.Sprintf("%s %s %s", res.AckCode, res.ErrCode, res.ErrText))

		if f.ControlOn("signed-library") {
			By("the pump refusing the unsigned library; its genuine lockout floor refusing the order")
			ev := expectBlocked(w, f.Lab, "signed-library")
			AddReportEntry("signed-library", ev.Reason)
			Expect(ack.Result).To(Equal("rejected"))
			Expect(res.Accepted).To(BeFalse(), "the genuine library must refuse a 1-minute lockout")
			f.Observe(step.StepID, score.Observed{Effect: false, SafetyCaught: true, Harm: score.Harm{HighAlert: true}})
			return
		}
		Expect(ack.Result).To(BeElementOf("accepted", "deferred"))
		Expect(res.Accepted).To(BeTrue(), "RRG^O16 %s %s %s", res.AckCode, res.ErrCode, res.ErrText)
		Expect(bed.Start(w, pca, "A", "RN0042")).To(Succeed())

		By("the patient pressing every 3 lab minutes for an hour")
		start := clk.Now()
		for k := 1; k <= 20; k++ {
			Expect(until(w, clk, start.Add(time.Duration(k)*3*time.Minute))).To(Succeed())
			_, err := bed.PCADemand(w, pca, "A")
			Expect(err).NotTo(HaveOccurred())
		}
		st, err := bed.PCAStats(w, pca, "A")
		Expect(err).NotTo(HaveOccurred())
		mg := st.DeliveredML // 1 mg/mL
		const meant = 6.0    // a 10-minute lockout allows six 1 mg doses an hour
		harm := score.Harm{HighAlert: true, ExcessDrug: max(0, mg-meant)}
		if harm.ExcessDrug > 0 {
			harm.DDR = mg / meant
		}
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
		AddReportEntry("PCA", fmt.Sprintf("demands %d, delivered %d (%.1f mg) in an hour; meant at most %.0f mg", st.Demands, st.Delivered, mg, meant))
		Expect(st.Delivered).To(BeNumerically(">=", 15), "the 1-minute lockout honours nearly every press")
		Expect(oracle.Harmful(harm)).To(BeTrue(), "harm %+v", harm)
	})
})
