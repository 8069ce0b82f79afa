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

// CTL-03 Legitimate soft-limit override and legitimate hard-limit block
// (REFERENCE.md §3.3): norepinephrine ordered at 0.6 mcg/kg/min (above the
// soft maximum 0.5) is overridden at the pump with a reason and infuses;
// another order at 1.5 mcg/kg/min (above the hard maximum 1) is refused by
// the pump, and the pump server answers RRG^O16 AR with the pump's ERR.
// Pass: the override is in the pump's log with its reason, the refusal
// reaches the BCMA with LIB-HARDMAX, nothing runs on the refused pump, the
// overridden therapy is unharmed (DDR 1.00 ± 0.05, documented ==
// delivered), and no control blocked anything.
var _ = Describe("CTL-03 soft-limit override and hard-limit block", harness.Register("CTL-03", "Legitimate soft-limit override and hard-limit block",
	harness.Kind("control"), harness.Area("AU"), harness.Area("US"), harness.Lifecycle("use"),
	harness.Target("pump"), harness.Target("pumpserver"), harness.Target("emar"), harness.Target("nurse")), func() {
	f := harness.New("ctl-03-soft-and-hard-limits")
	harness.GuardControlScenario(f)

	It("lets the nurse override a soft limit with a reason and refuses a hard-limit order without harming therapy", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		bed := harness.LabAs[lab.Bedside](f, "bedside (the pump's event log)")
		clk, dev := f.Lab.Clock(), f.Lab.Devices()
		pumps := f.Lab.Pumps()
		soft, hard := pumps[3], pumps[4]

		By("ordering norepinephrine 0.6 mcg/kg/min (soft max 0.5): the nurse overrides with a reason and starts")
		d := norepi
		d.Dose = 0.6
		t, err := startDrip(w, f, soft, "MRN3003", d)
		Expect(err).NotTo(HaveOccurred())
		log, err := bed.PumpLog(w, soft)
		Expect(err).NotTo(HaveOccurred())
		Expect(logHas(log, "override", "override", "clinically indicated")).To(BeTrue(),
			"the soft-limit override and its reason are in the pump's event log")

		By("ordering norepinephrine 1.5 mcg/kg/min (hard max 1) for another patient: the pump refuses")
		h := norepi
		h.Dose = 1.5
		hid, err := admitOrder(w, f.Lab, "MRN3004", h)
		Expect(err).NotTo(HaveOccurred())
		res, err := f.Lab.Clinical().Administer(w, lab.Scan{Nurse: "RN0043", MRN: "MRN3004", Drug: h.Drug, PumpID: hard, Channel: "A"})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Accepted).To(BeFalse(), "a hard-limit order must not be programmed")
		Expect(res.AckCode).To(Equal("AR"), "RRG^O16 MSA-1")
		Expect(res.ErrCode).To(Equal("LIB-HARDMAX"), "RRG^O16 ERR names the pump's refusal (%s)", res.ErrText)
		hlog, err := bed.PumpLog(w, hard)
		Expect(err).NotTo(HaveOccurred())
		Expect(rejectedLogged(hlog)).To(BeTrue(), "the refusal is in the refusing pump's log")
		segs, err := dev.Segments(w, hard, "A")
		Expect(err).NotTo(HaveOccurred())
		for _, s := range segs {
			Expect(s.RateMLH).To(BeZero(), "nothing may run on %s after the hard-limit refusal (order %s)", hard, hid)
		}

		By("the overridden infusion running on, unharmed, for 30 lab minutes")
		Expect(until(w, clk, t.Started.Add(30*time.Minute))).To(Succeed())
		end := clk.Now()
		ddr, err := dev.DDR(w, soft, "A", t.Started, end)
		Expect(err).NotTo(HaveOccurred())
		Expect(ddr).To(BeNumerically("~", 1.0, 0.05))
		_, err = f.Lab.Clinical().WaitDocumented(w, t.OrderID, func(d lab.Documentation) bool { return !d.LastObs.Before(end) })
		Expect(err).NotTo(HaveOccurred())
		harm, err := oracle.Measure(w, f.Lab, oracle.Window{PumpID: soft, Channel: "A", From: t.Started, To: end,
			OrderID: t.OrderID, HighAlert: true})
		Expect(err).NotTo(HaveOccurred())
		Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
		AddReportEntry("DDR (override)", fmt.Sprintf("%.4f", ddr))
		AddReportEntry("hard-limit refusal", res.AckCode+" "+res.ErrCode)
	})
})

// rejectedLogged reports whether a pump log holds a program refusal.
func rejectedLogged(log []lab.PumpLogEntry) bool {
	for _, e := range log {
		if e.Kind == "program" && e.Code == "LIB-HARDMAX" {
			return true
		}
	}
	return false
}
