package scenarios

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// ATK-24 Spoofed pump documentation to the EHR (REFERENCE.md §3.1): a rogue
// host on the clinical network sends a PCD-10 "delivery complete" for a
// running infusion with the full bag as delivered volume; the chart says the
// infusion ran while it has barely started.
var _ = Describe("ATK-24 spoofed PCD-10 documentation", harness.Register("ATK-24", "Spoofed pump telemetry/documentation to EHR (PCD-01 / PCD-10)",
	harness.Kind("attack"), harness.Technique("T0856"), harness.Technique("T0832"),
	harness.Area("AU"), harness.Area("US"), harness.Lifecycle("use"), harness.Target("ehr")), func() {
	f := harness.New("atk-24-spoofed-documentation")

	It("makes the EHR document an infusion as completed that is still running", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumpID := f.Lab.Pumps()[6]

		By("starting a norepinephrine drip (250 mL bag)")
		th, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5524", 250)
		Expect(err).NotTo(HaveOccurred())
		ehrAddr, err := endpoint(f.Lab, "ehr")
		Expect(err).NotTo(HaveOccurred())

		By("a rogue host sending ORU^R42 MDC_EVT_PUMP_DELIV_COMP, 250 mL delivered, to the EHR")
		now := f.Lab.Clock().Now()
		m := hl7.BuildInfusionEvent(hl7.InfusionEvent{
			Header:  hl7.Header{SendingApp: hl7.ParseHD("PUMPSERVER^PUMPLAB^L"), Time: now, ControlID: "SPOOF0024", AcceptAck: "AL"},
			Patient: hl7.Patient{MRN: th.MRN, Authority: "HOSP"}, OrderID: th.OrderID, EventID: "SPOOFEV1", DrugCode: "NOREPI-4-250",
			EventTime: now, PumpID: pumpID, Event: hl7.Code{Ref: "MDC_EVT_PUMP_DELIV_COMP"}, InfusingStatus: hl7.StatusKVO,
			RateMLH: 1, DeliveredML: 250, VTBIML: 250})
		step := attack.Step{ScenarioID: "ATK-24", StepID: "ATK-24/1", Techniques: []string{"T0856", "T0832"}, Tactic: "TA0105",
			Assets: []string{"ehr", pumpID}, Correlation: []string{"hl7:SPOOF0024", "mllp:" + ehrAddr},
			Criteria: "the EHR documents a delivery the pump did not make", Control: "mtls-mllp", Window: 15 * time.Minute}
		var code string
		err = f.Attack(w, step, func(ctx context.Context) error {
			code, err = sendHL7Plain(ctx, func(ctx context.Context, tlsOn bool) (string, error) {
				var cfg *tls.Config
				if tlsOn {
					cfg = &tls.Config{InsecureSkipVerify: true, ServerName: "127.0.0.1"} // no client certificate
				}
				ack, err := attack.SendHL7(ctx, nil, ehrAddr, cfg, m)
				if err != nil {
					return "", err
				}
				return ack.Get("MSA-1"), nil
			})
			return nil
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(sleepLab(w, f.Lab, 2*time.Minute)).To(Succeed())
		doc, err := f.Lab.Clinical().Documented(w, th.OrderID)
		Expect(err).NotTo(HaveOccurred())
		segs, err := f.Lab.Devices().Segments(w, pumpID, "A")
		Expect(err).NotTo(HaveOccurred())
		mismatch := doc.Has("MDC_EVT_PUMP_DELIV_COMP")
		harm := score.Harm{HighAlert: true, DocMismatch: mismatch || oracle.DocMismatch(segs, th.Started, doc, 0.5)}
		f.Observe(step.StepID, score.Observed{Effect: mismatch, Harm: harm})
		AddReportEntry("documented", fmt.Sprintf("%.1f mL, status %s, completion documented %v", doc.VolumeML, doc.Status, mismatch))

		if f.ControlOn("mtls-mllp") {
			By("the EHR's listener refusing a sender without a lab certificate")
			ev := expectBlocked(w, f.Lab, "mtls-mllp")
			AddReportEntry("mtls-mllp", ev.Reason)
			Expect(code).To(BeEmpty(), "the spoofed message was acknowledged %s", code)
			Expect(mismatch).To(BeFalse(), "the EHR documented the spoofed completion")
			return
		}
		By("the chart saying complete while the pump still infuses")
		Expect(code).To(BeElementOf("CA", "AA"))
		Expect(mismatch).To(BeTrue())
		Expect(f.Lab.Devices().WaitState(w, pumpID, "A", "infusing")).To(Succeed())
		Expect(oracle.Harmful(harm)).To(BeTrue())
	})
})
