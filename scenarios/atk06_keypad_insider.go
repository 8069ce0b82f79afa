package scenarios

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
)

// occlusionDelay injects a downstream occlusion on the therapy's channel
// and returns how long (lab time) the pump took to alarm.
func occlusionDelay(ctx context.Context, l lab.Lab, th therapy) (time.Duration, time.Time, error) {
	from := l.Clock().Now()
	if err := l.Devices().InjectFault(ctx, th.PumpID, th.Channel, "occlusion_downstream"); err != nil {
		return 0, from, err
	}
	for {
		as, err := l.Devices().ActiveAlarms(ctx, th.PumpID)
		if err != nil {
			return 0, from, err
		}
		for _, a := range as {
			if a.Code == "occlusion_downstream" {
				return a.Onset.Sub(from), a.Onset, nil
			}
		}
		if err := clock.Sleep(ctx, l.Clock(), time.Second); err != nil {
			return 0, from, fmt.Errorf("no occlusion alarm on %s after %s: %w", th.PumpID, l.Clock().Now().Sub(from), err)
		}
	}
}

// occlusionAlarmAt300 is when a downstream occlusion alarms at the default
// 300 mmHg threshold at the norepinephrine drip's 13.125 mL/h
// (docs/pump.md "Occlusion pressure model": (300-20) mmHg at 122.5
// mmHg/min), with a lab minute of slack.
const occlusionAlarmAt300 = 2*time.Minute + 17*time.Second + time.Minute

// ATK-06 Keypad service/biomed access-code abuse (REFERENCE.md §3.1): a
// biomed technician with a valid personal code (an insider: access-codes is
// not in the way) enters service mode at the bedside without an open work
// order and raises the occlusion alarm threshold to 1200 mmHg; an
// occlusion then alarms four times later.
var _ = Describe("ATK-06 keypad service-code abuse by an insider", harness.Register("ATK-06", "Keypad service/biomed access-code abuse (insider raises the occlusion threshold)",
	harness.Kind("attack"), harness.Technique("T0891"), harness.Technique("T0836"), harness.Technique("T0838"),
	harness.Area("AC"), harness.Area("US"), harness.Lifecycle("use"), harness.Lifecycle("maintenance"), harness.Target("pump")), func() {
	f := harness.New("atk-06-keypad-insider")

	It("raises a pump's occlusion threshold without a work order", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		bm := harness.LabAs[lab.Biomed](f, "biomed access to pumps (keypad service menu)")
		pumpID := f.Lab.Pumps()[3]

		By("starting a norepinephrine drip")
		th, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5506", 250)
		Expect(err).NotTo(HaveOccurred())

		// Position: the insider is current biomed staff with a personal
		// code (under per-user codes; the shared factory code where the
		// posture has none), so access-codes lets the login through. What
		// the insider lacks is an open CMMS work order for this pump.
		user, code := "BME01", factoryCode()
		if c, err := bm.StaffCode(w, user); err == nil {
			code = c
		}
		const workOrder = "WO-2026-0666" // invented: the CMMS has no such order
		By("the insider logging in at the keypad, entering service mode with an invented work order and setting 1200 mmHg")
		var refused error
		step := attack.Step{ScenarioID: "ATK-06", StepID: "ATK-06/1", Techniques: []string{"T0891", "T0836", "T0838"},
			Tactic: "TA0106", Assets: []string{pumpID}, Correlation: []string{"keypad:" + pumpID, "workorder:" + workOrder},
			Criteria: "the pump's occlusion_threshold_mmhg is 1200 after a service session without an open work order",
			Control:  "service-mode-audit", Window: 15 * time.Minute}
		err = f.Attack(w, step, func(ctx context.Context) error {
			sess, err := bm.KeypadLogin(ctx, pumpID, user, code)
			if err != nil {
				return fmt.Errorf("insider login as %s: %w", user, err)
			}
			attack.Correlate(ctx, "session:"+sess)
			if err := bm.KeypadService(ctx, pumpID, sess, workOrder, "occlusion alarms too sensitive"); err != nil {
				refused = err
				return nil
			}
			if err := bm.KeypadSet(ctx, pumpID, sess, "occlusion_threshold_mmhg", "1200"); err != nil {
				refused = err
			}
			return nil
		})
		Expect(err).NotTo(HaveOccurred())
		set, err := bm.Settings(w, pumpID)
		Expect(err).NotTo(HaveOccurred())

		By("an occlusion on the line")
		delay, onset, err := occlusionDelay(w, f.Lab, th)
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("occlusion to alarm (lab)", delay.String())
		AddReportEntry("occlusion_threshold_mmhg", set["occlusion_threshold_mmhg"])
		_ = onset

		if f.ControlOn("service-mode-audit") {
			By("service mode refused without an open work order, the threshold unchanged and the alarm on time")
			Expect(refused).To(HaveOccurred())
			ev := expectBlocked(w, f.Lab, "service-mode-audit")
			AddReportEntry("service-mode-audit evidence", ev.Reason)
			harm := score.Harm{HighAlert: true}
			if delay > occlusionAlarmAt300 {
				harm.AlarmsLate++
			}
			f.Observe(step.StepID, score.Observed{Effect: set["occlusion_threshold_mmhg"] == "1200", Harm: harm})
			Expect(set["occlusion_threshold_mmhg"]).To(Equal("300"))
			Expect(delay).To(BeNumerically("<=", occlusionAlarmAt300))
			return
		}

		By("the occlusion alarming only after the pressure reached 1200 mmHg")
		Expect(refused).NotTo(HaveOccurred(), "without service-mode audit any work order opens service mode")
		harm := score.Harm{HighAlert: true, AlarmsLate: 1}
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
		Expect(set["occlusion_threshold_mmhg"]).To(Equal("1200"))
		Expect(delay).To(BeNumerically(">", 3*occlusionAlarmAt300/2), "the alarm comes about four times later")
	})
})
