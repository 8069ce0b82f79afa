package scenarios

import (
	"context"
	"fmt"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
)

// ATK-11 MITM on the BCMA -> pump-server HL7 link (REFERENCE.md §3.1): an
// attacker holding an enterprise-zone host puts itself on the PCD-03 path
// (the eMAR's traffic re-pointed at the attacker's proxy, as ARP or DNS
// spoofing would) and doubles the dose (RXG-15) in transit. On one flat
// network the eMAR reaches the proxy and the pump runs twice the ordered
// dose; with the zones segmented the clinical zone has no route to the
// enterprise zone and nothing reaches the attacker. Needs real networks:
// Not Applicable in process (ATK-12/13 cover the in-process MITM).
var _ = Describe("ATK-11 MITM on the BCMA to pump-server link", harness.Register("ATK-11", "MITM on BCMA -> pump-server HL7 link, alter rate/dose",
	harness.Kind("attack"), harness.Technique("T0830"), harness.Technique("T0836"), harness.Technique("T0831"),
	harness.Area("AU"), harness.Area("NW"), harness.Lifecycle("use"), harness.Target("emar"), harness.Target("pumpserver"), harness.Target("pump"),
	harness.Need("containers"), harness.Need("segmentation")), func() {
	f := harness.New("atk-11-mitm-bcma-link")

	It("doubles the dose on the PCD-03 path unless the zones are segmented", func(ctx SpecContext) {
		z := zoned(f)
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		cl := f.Lab.Clinical()
		pumpID := f.Lab.Pumps()[1]
		const mrn = "MRN5511"

		By("admitting, ordering norepinephrine 0.05 mcg/kg/min (4 mg/250 mL, 70 kg) and verifying it")
		Expect(cl.Admit(w, lab.Patient{MRN: mrn, Family: "Testpatient", Given: "Kim", DOB: "19600101", Sex: "F",
			Unit: "4W ICU", Room: "11", Bed: "A", WeightKg: 70})).To(Succeed())
		orderID, err := cl.Order(w, lab.Order{MRN: mrn, DrugCode: "NOREPI-4-250", DrugText: "Norepinephrine 4 mg/250 mL",
			DoseRate: 0.05, DoseUnit: "mcg/kg/min", DrugAmount: 4, DrugUnit: "mg", DiluentML: 250, VTBI: 250, Device: "IVP", Prescriber: "MD0007"})
		Expect(err).NotTo(HaveOccurred())
		Expect(cl.Verify(w, orderID, "RPH0001")).To(Succeed())

		By("the attacker's enterprise-zone host running an MLLP proxy that doubles RXG-15")
		h, err := z.AttackFrom(w, lab.ZoneEnterprise)
		Expect(err).NotTo(HaveOccurred())
		ps, err := z.Host("pumpserver")
		Expect(err).NotTo(HaveOccurred())
		proxy, err := h.Proxy(w, net.JoinHostPort(ps, "2577"), 2)
		Expect(err).NotTo(HaveOccurred())
		proxyHost, _, _ := net.SplitHostPort(proxy)

		step := attack.Step{ScenarioID: "ATK-11", StepID: "ATK-11/1", Techniques: []string{"T0830", "T0836", "T0831"}, Tactic: "TA0100",
			Assets: []string{pumpID, "pumpserver", "emar-bcma", proxyHost}, Correlation: []string{"mllp:" + proxy},
			Criteria: "the pump runs the dose the attacker doubled in transit", Control: "segmentation", Window: 15 * time.Minute}
		var res lab.AdminResult
		var scanErr error
		err = f.Attack(w, step, func(ctx context.Context) error {
			_, restore, err := f.Lab.Network().Interpose(ctx, lab.LinkBCMAToPumpServer, proxy)
			if err != nil {
				return fmt.Errorf("interpose: %w", err)
			}
			defer restore()
			sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
			defer cancel()
			res, scanErr = cl.Administer(sctx, lab.Scan{Nurse: "RN0042", MRN: mrn, Drug: "NOREPI-4-250", PumpID: pumpID, Channel: "A"})
			return nil
		})
		Expect(err).NotTo(HaveOccurred())
		stats, err := h.ProxyStats(w)
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("proxy", fmt.Sprintf("%+v", stats))
		th := therapy{PumpID: pumpID, Channel: "A", OrderID: orderID, MRN: mrn, RateMLH: 13.125}

		if z.Segmented() {
			By("segmentation: the eMAR's PCD-03 never reaches the enterprise zone")
			ev := expectBlocked(w, f.Lab, "segmentation")
			AddReportEntry("segmentation", ev.Reason)
			Expect(stats.Connections).To(BeZero(), "the proxy was reached across zones")
			Expect(scanErr != nil || !res.Accepted).To(BeTrue(), "the scan went through the attacker: %+v", res)
			By("the link restored, the nurse scanning again: the ordered program runs")
			res, err = cl.Administer(w, lab.Scan{Nurse: "RN0042", MRN: mrn, Drug: "NOREPI-4-250", PumpID: pumpID, Channel: "A"})
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Accepted).To(BeTrue(), "RRG^O16 %s %s %s", res.AckCode, res.ErrCode, res.ErrText)
			Expect(f.Lab.Devices().WaitState(w, pumpID, "A", "infusing")).To(Succeed())
			observeBlocked(w, f, step.StepID, th, 10*time.Minute)
			return
		}

		By("flat network: the pump runs the doubled dose after the nurse confirmed it")
		Expect(scanErr).NotTo(HaveOccurred())
		Expect(res.Accepted).To(BeTrue(), "RRG^O16 %s %s %s", res.AckCode, res.ErrCode, res.ErrText)
		Expect(stats.Changed).To(BeNumerically(">=", 1))
		Expect(f.Lab.Devices().WaitState(w, pumpID, "A", "infusing")).To(Succeed())
		harm, err := harmOver(w, f.Lab, th, 30*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
		AddReportEntry("DDR", fmt.Sprintf("%.3f", harm.DDR))
		Expect(harm.DDR).To(BeNumerically("~", 2.0, 0.05), "twice the ordered drug reaches the patient")
	})
})
