package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// ATK-25 Alarm suppression (REFERENCE.md §3.1): an attacker on the path
// between the pump server and the alarm manager drops PCD-04 ORU^R40 and
// answers in the alarm manager's place; the pump alarms at the bedside but no
// nurse is notified, and an occluded vasopressor stays stopped.
var _ = Describe("ATK-25 alarm suppression between pump server and alarm manager", harness.Register("ATK-25", "Alarm suppression (drop PCD-04 between pump server and alarm manager)",
	harness.Kind("attack"), harness.Technique("T0878"), harness.Technique("T0804"), harness.Technique("T0830"),
	harness.Area("AL"), harness.Lifecycle("use"), harness.Target("pumpserver"), harness.Target("alarms")), func() {
	f := harness.New("atk-25-alarm-suppression")
	// Silence detection is measured in lab time against a wall-time floor
	// (a loaded machine's stalls are not silence): a slower clock keeps the
	// floor below the clinical tolerance.
	f.Topology.Speed = 60

	It("keeps an occlusion alarm from reaching any nurse", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumpID := f.Lab.Pumps()[1]

		By("starting a norepinephrine drip")
		_, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5502", 250)
		Expect(err).NotTo(HaveOccurred())

		By("the attacker taking the path between pump server and alarm manager and dropping every PCD-04")
		var proxy *attack.MLLPProxy
		var onset time.Time
		step := attack.Step{ScenarioID: "ATK-25", StepID: "ATK-25/1", Techniques: []string{"T0878", "T0804", "T0830"},
			Tactic: "TA0107", Assets: []string{"pumpserver", "alarm-manager", pumpID}, Criteria: "a pump alarm never reaches a nurse",
			Control: "alarm-heartbeat", Window: 5 * time.Minute}
		err = f.Attack(w, step, func(ctx context.Context) error {
			am, err := endpoint(f.Lab, "alarm-manager")
			if err != nil {
				return err
			}
			proxy = attack.NewMLLPProxy(attack.MLLPProxyConfig{Upstream: am,
				Tamper: func(dir attack.Direction, m *hl7.Message) (*hl7.Message, bool) {
					return nil, m.Type().Is("ORU", "R40")
				}})
			if err := proxy.Start(context.WithoutCancel(ctx)); err != nil {
				return err
			}
			if _, _, err := f.Lab.Network().Interpose(ctx, lab.LinkPumpServerToAlarms, proxy.Addr()); err != nil {
				notApplicableIfUnsupported(f, err)
				return fmt.Errorf("interpose: %w", err)
			}
			// The alarm the attacker hides happens within the step, and the
			// attacker holds the path for two lab minutes after it.
			if err := f.Lab.Devices().InjectFault(ctx, pumpID, "A", "occlusion_downstream"); err != nil {
				return err
			}
			for onset.IsZero() {
				as, err := f.Lab.Devices().ActiveAlarms(ctx, pumpID)
				if err != nil {
					return err
				}
				for _, a := range as {
					if a.Code == "occlusion_downstream" {
						onset = a.Onset
					}
				}
				if err := clock.Sleep(ctx, f.Lab.Clock(), time.Second); err != nil {
					return err
				}
			}
			return clock.Sleep(ctx, f.Lab.Clock(), 2*time.Minute)
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(proxy.Close)
		By("the pump having alarmed at the bedside")
		Expect(onset).NotTo(BeZero())

		if f.ControlOn("alarm-heartbeat") {
			By("the alarm manager missing the pump server's heartbeats and paging the charge nurse, who answers the pumps")
			var silent lab.AlarmRecord
			Eventually(func(g Gomega) {
				ev, err := f.Lab.Evidence(w)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(ev).To(ContainElement(HaveField("Control", "alarm-heartbeat")))
				recs, err := f.Lab.Alarms().Records(w)
				g.Expect(err).NotTo(HaveOccurred())
				found := false
				for _, r := range recs {
					if strings.HasPrefix(r.AlertID, "AM-SILENT") && !r.Delivered.IsZero() {
						silent, found = r, true
					}
				}
				g.Expect(found).To(BeTrue(), "no reporter-silent page delivered yet")
			}).WithContext(w).WithPolling(20 * time.Millisecond).Should(Succeed())
			AddReportEntry("reporter-silent page after the occlusion (lab)", silent.Delivered.Sub(onset).String())
			// DDR harm is judged over the REFERENCE.md §3.0 window of 15 minutes.
			Expect(clock.Sleep(w, f.Lab.Clock(), 15*time.Minute)).To(Succeed())
			harm, err := oracle.Measure(w, f.Lab, oracle.Window{PumpID: pumpID, Channel: "A", From: onset, To: f.Lab.Clock().Now(), HighAlert: true})
			Expect(err).NotTo(HaveOccurred())
			told := silent.Delivered.Sub(onset)
			if told > time.Minute {
				harm.AlarmsLate++
			}
			f.Observe(step.StepID, score.Observed{Effect: false, Harm: harm})
			AddReportEntry("interrupted vasopressor (min)", fmt.Sprintf("%.1f", harm.InterruptedMin))
			Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
			Expect(harm.InterruptedMin).To(BeNumerically("<=", 2), "the charge nurse cleared the occlusion")
			return
		}

		By("five lab minutes passing without any nurse being notified")
		Expect(clock.Sleep(w, f.Lab.Clock(), 5*time.Minute)).To(Succeed())
		recs, err := f.Lab.Alarms().Records(w)
		Expect(err).NotTo(HaveOccurred())
		delivered := 0
		for _, r := range recs {
			if r.PumpID == pumpID && !r.Delivered.IsZero() {
				delivered++
			}
		}
		harm, err := oracle.Measure(w, f.Lab, oracle.Window{PumpID: pumpID, Channel: "A", From: onset, To: f.Lab.Clock().Now(), HighAlert: true})
		Expect(err).NotTo(HaveOccurred())
		if delivered == 0 {
			harm.AlarmsMissed++ // the pump's own alarm: raised, never delivered
		}
		f.Observe(step.StepID, score.Observed{Effect: delivered == 0, Harm: harm})
		AddReportEntry("PCD-04 dropped by the attacker", fmt.Sprint(proxy.Stats()))
		AddReportEntry("interrupted vasopressor (min)", fmt.Sprintf("%.1f", harm.InterruptedMin))
		Expect(delivered).To(BeZero(), "legacy posture: no nurse learns of the occlusion")
		Expect(harm.InterruptedMin).To(BeNumerically(">=", 4.9))
		Expect(oracle.Harmful(harm)).To(BeTrue())
	})
})
