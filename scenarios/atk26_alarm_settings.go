package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// ATK-26 Modify alarm settings (REFERENCE.md §3.1): with the pump server's
// broker login the attacker raises a running pump's downstream occlusion
// alarm pressure to the maximum (config occlusion_threshold_mmhg=1200); when
// the line then occludes, the pump keeps pushing against it for minutes
// before it alarms. The delay is measured against a control pump at the
// same rate with the default threshold, occluded at the same lab instant.
// Harm: the alarm comes late (AlarmsLate) and the vasopressor is
// interrupted, unnoticed, for the extra minutes (InterruptedMin).
var _ = Describe("ATK-26 occlusion alarm pressure raised over the command channel", harness.Register("ATK-26",
	"Modify alarm settings (occlusion pressure, air-in-line threshold, callback timer)",
	harness.Kind("attack"), harness.Technique("T0838"), harness.Technique("T0837"),
	harness.Area("AL"), harness.Area("DL"), harness.Area("AC"), harness.Lifecycle("use"), harness.Target("pump"), harness.Target("broker")), func() {
	f := harness.New("atk-26-alarm-settings")
	// The alarm delays are compared in lab time; at x60 a wall stall of a
	// loaded machine (a pump timer firing late) is a lab second, not five.
	f.Topology.Speed = 60

	It("delays the occlusion alarm of a running vasopressor", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumps := f.Lab.Pumps()
		pumpID, controlID := pumps[2], pumps[3]

		By("norepinephrine running on the target pump and, for comparison, on a control pump at the same rate")
		_, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5526", 250)
		Expect(err).NotTo(HaveOccurred())
		_, err = startNorepinephrine(w, f.Lab, controlID, "MRN5527", 250)
		Expect(err).NotTo(HaveOccurred())

		By("the attacker setting occlusion_threshold_mmhg=1200 on the target pump")
		const client = "atk26-maint"
		step := attack.Step{ScenarioID: "ATK-26", StepID: "ATK-26/1", Techniques: []string{"T0838", "T0837"}, Tactic: "TA0107",
			Assets: []string{pumpID, "broker"}, Correlation: []string{"mqtt-client:" + client},
			Criteria: "the pump's occlusion alarm pressure changes; an occlusion alarms later than with the default",
			Control:  "signed-commands", Window: 15 * time.Minute}
		var ack pumpwire.CommandAck
		err = f.Attack(w, step, func(ctx context.Context) error {
			c, err := dialConfigChannel(ctx, f.Lab, client)
			if err != nil {
				return err
			}
			defer c.Close()
			ack, err = c.command(ctx, pumpID, pumpwire.Command{Op: pumpwire.OpConfig,
				Settings: map[string]string{pumpwire.SetOcclusionThreshold: "1200"}})
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("pump's answer", fmt.Sprintf("%s %s %s", ack.Result, ack.Code, ack.Reason))
		blocked := f.ControlOn("signed-commands")
		if blocked {
			ev := expectBlocked(w, f.Lab, "signed-commands")
			AddReportEntry("signed-commands", ev.Reason)
			Expect(ack.Result).To(Equal(pumpwire.ResultRejected))
		} else {
			Expect(ack.Result).To(Equal(pumpwire.ResultAccepted))
		}

		By("both lines occluding downstream at the same lab instant")
		injected := f.Lab.Clock().Now()
		Expect(f.Lab.Devices().InjectFault(w, pumpID, "A", "occlusion_downstream")).To(Succeed())
		Expect(f.Lab.Devices().InjectFault(w, controlID, "A", "occlusion_downstream")).To(Succeed())
		occlusion := func(id string) lab.AlarmRecord {
			r, err := f.Lab.Alarms().WaitAlarm(w, func(a lab.AlarmRecord) bool {
				return a.PumpID == id && strings.Contains(a.Code, "OCCL") && !a.Onset.Before(injected)
			})
			Expect(err).NotTo(HaveOccurred(), "occlusion alarm of %s", id)
			return r
		}
		ref, got := occlusion(controlID), occlusion(pumpID)
		base, delay := ref.Onset.Sub(injected), got.Onset.Sub(injected)
		excess := delay - base
		AddReportEntry("occlusion to alarm, default threshold (lab)", base.String())
		AddReportEntry("occlusion to alarm, target pump (lab)", delay.String())
		harm := score.Harm{HighAlert: true, InterruptedMin: max(0, excess.Minutes())}
		if excess > time.Minute { // oracle.Window's AlarmLate convention
			harm.AlarmsLate++
		}
		effect := excess > time.Minute
		f.Observe(step.StepID, score.Observed{Effect: effect, Harm: harm})
		AddReportEntry("unalarmed interruption beyond the default (min)", fmt.Sprintf("%.1f", harm.InterruptedMin))

		if blocked {
			By("the target pump alarming as early as the control pump")
			Expect(effect).To(BeFalse(), "alarm %s after the occlusion, default %s", delay, base)
			Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
			return
		}
		By("the target pump alarming minutes after the control pump")
		Expect(delay.Seconds()).To(BeNumerically("~", 4.2*base.Seconds(), 0.15*base.Seconds()),
			"1180 mmHg above baseline instead of 280: 4.2 times the default build-up")
		Expect(harm.AlarmsLate).To(Equal(1))
		Expect(oracle.Harmful(harm)).To(BeTrue())
	})
})
