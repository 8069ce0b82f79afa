package scenarios

import (
	"context"
	"fmt"
	"math"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/lab"
)

// CTL-01 Closed-loop PIV infusion (REFERENCE.md §3.3): admit, order, verify,
// scan, PCD-03, pump programmed and started, PCD-01 and PCD-10 documented,
// VTBI complete, KVO. Pass: DDR 1.00 ± 0.05, documented == delivered; an
// injected occlusion alarm reaches a nurse.
var _ = Describe("CTL-01 closed-loop PIV infusion", harness.Register("CTL-01", "Closed-loop PIV infusion",
	harness.Kind("control"), harness.Area("AU"), harness.Area("US"), harness.Lifecycle("use"),
	harness.Target("pump"), harness.Target("pumpserver"), harness.Target("emar"), harness.Target("ehr"), harness.Target("alarms")), func() {
	f := harness.New("ctl-01-closed-loop-piv")
	harness.GuardControlScenario(f)

	It("programs the pump from the verified order and documents exactly what was delivered", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		c, dev := f.Lab.Clinical(), f.Lab.Devices()
		pumpID := f.Lab.Pumps()[len(f.Lab.Pumps())/2]

		By("admitting the patient (ADT^A01)")
		Expect(c.Admit(w, lab.Patient{MRN: "MRN4455", Family: "Testpatient", Given: "Alex", DOB: "19700101", Sex: "F",
			Unit: "4W ICU", Room: "12", Bed: "A", WeightKg: 70})).To(Succeed())

		By("ordering norepinephrine 0.05 mcg/kg/min in CPOE (OMP^O09)")
		orderID, err := c.Order(w, lab.Order{MRN: "MRN4455", DrugCode: "NOREPI-4-250", DrugText: "Norepinephrine 4 mg/250 mL",
			DoseRate: 0.05, DoseUnit: "mcg/kg/min", DrugAmount: 4, DrugUnit: "mg", DiluentML: 250, VTBI: 10,
			Device: "IVP", Prescriber: "MD0007"})
		Expect(err).NotTo(HaveOccurred())

		By("verifying the order in pharmacy (RDE^O11 to the eMAR)")
		Expect(c.Verify(w, orderID, "RPH0001")).To(Succeed())

		By("scanning wristband, bag and pump channel at the bedside (PCD-03 RGV^O15)")
		res, err := c.Administer(w, lab.Scan{Nurse: "RN0042", MRN: "MRN4455", Drug: "NOREPI-4-250", PumpID: pumpID, Channel: "A"})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Accepted).To(BeTrue(), "RRG^O16 %s %s %s", res.AckCode, res.ErrCode, res.ErrText)

		By("the nurse confirming the program; the pump infuses until VTBI complete, then KVO")
		Expect(dev.WaitState(w, pumpID, "A", "kvo")).To(Succeed())

		By("the EHR documenting delivery start, completion (PCD-10) and periodic status (PCD-01)")
		doc, err := c.WaitDocumented(w, orderID, func(d lab.Documentation) bool {
			return d.Has("MDC_EVT_PUMP_DELIV_START") && d.Has("MDC_EVT_PUMP_DELIV_COMP") && d.Observations > 0
		})
		Expect(err).NotTo(HaveOccurred())
		start, done := event(doc, "MDC_EVT_PUMP_DELIV_START"), event(doc, "MDC_EVT_PUMP_DELIV_COMP")
		f.Latency(harness.MetricOrderToInfusion, start.At.Sub(res.SentAt))

		By("checking the delivered-dose ratio over the therapy")
		ddr, err := dev.DDR(w, pumpID, "A", start.At, done.At)
		Expect(err).NotTo(HaveOccurred())
		Expect(ddr).To(BeNumerically("~", 1.0, 0.05), "delivered-dose ratio")

		By("checking documented == delivered at completion")
		delivered, err := deliveredBetween(w, dev, pumpID, start, done)
		Expect(err).NotTo(HaveOccurred())
		Expect(done.VolumeML).To(BeNumerically("~", delivered, 0.01), "documented volume vs motor truth")
		Expect(done.VolumeML).To(BeNumerically("~", 10, 0.01), "VTBI")

		By("measuring harm with the oracles: none")
		harm, err := oracle.Measure(w, f.Lab, oracle.Window{PumpID: pumpID, Channel: "A", From: start.At, To: done.At,
			OrderID: orderID, HighAlert: true})
		Expect(err).NotTo(HaveOccurred())
		Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
		Expect(harm.InterruptedMin).To(BeNumerically("<", 0.5))

		By("injecting a downstream occlusion: the alarm reaches a nurse's phone")
		Expect(dev.InjectFault(w, pumpID, "A", "occlusion_downstream")).To(Succeed())
		a, err := f.Lab.Alarms().WaitAlarm(w, func(a lab.AlarmRecord) bool {
			return a.PumpID == pumpID && strings.Contains(a.Code, "OCCL") && !a.Delivered.IsZero()
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(a.Priority).To(Equal("PH"))
		f.Latency(harness.MetricAlarmToNurse, a.Delivered.Sub(a.Onset))
		AddReportEntry("L_notify (lab)", a.Delivered.Sub(a.Onset).String())
		AddReportEntry("DDR", fmt.Sprintf("%.4f", ddr))
	})
})

func event(d lab.Documentation, typ string) lab.DocEvent {
	for _, e := range d.Events {
		if e.Type == typ {
			return e
		}
	}
	return lab.DocEvent{}
}

// deliveredBetween is the motor-truth volume between two documented events:
// the DDR window's ordered volume times the ratio.
func deliveredBetween(ctx context.Context, dev lab.Devices, pumpID string, from, to lab.DocEvent) (float64, error) {
	t, err := dev.Truth(ctx, pumpID, "A")
	if err != nil {
		return 0, err
	}
	ddr, err := dev.DDR(ctx, pumpID, "A", from.At, to.At)
	if err != nil {
		return 0, err
	}
	rate := t.Ordered.RateMLH
	if rate == 0 {
		rate = t.Programmed.RateMLH
	}
	return math.Round(ddr*rate*to.At.Sub(from.At).Hours()*1000) / 1000, nil
}
