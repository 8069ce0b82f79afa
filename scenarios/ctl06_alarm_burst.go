package scenarios

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/lab"
)

// CTL-06 Benign alarm burst (REFERENCE.md §3.3): a mains power transfer on
// a 30-pump unit: every pump runs on battery and, within one lab minute,
// all 30 raise "battery low" (their batteries are old); three minutes
// later mains power is back and the alarms end. A norepinephrine drip runs
// through it. Pass: all 30 alarms delivered to a phone and ended, none
// missed (lateness is reported with the L_notify percentiles), the drip
// unaffected (DDR 1.00 ± 0.05), no control blocked anything. L_notify of every alarm is recorded.
var _ = Describe("CTL-06 benign alarm burst", harness.Register("CTL-06", "Benign alarm burst",
	harness.Kind("control"), harness.Area("AL"), harness.Area("AM"), harness.Lifecycle("use"),
	harness.Target("pump"), harness.Target("pumpserver"), harness.Target("alarms")), func() {
	f := harness.New("ctl-06-benign-alarm-burst")
	f.Topology.Pumps = 30
	harness.GuardControlScenario(f)

	It("delivers every alarm of a 30-pump power-transfer burst", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		fac := harness.LabAs[lab.Facility](f, "facility (mains power)")
		clk, dev, am := f.Lab.Clock(), f.Lab.Devices(), f.Lab.Alarms()
		pumps := f.Lab.Pumps()
		Expect(pumps).To(HaveLen(30))
		drip := pumps[0]
		d := norepi
		d.VTBI = 250

		By("a norepinephrine drip running on " + drip)
		_, err := startDrip(w, f, drip, "MRN6006", d)
		Expect(err).NotTo(HaveOccurred())

		By("mains power transfer: every pump on battery, 30 battery-low alarms within a lab minute")
		t0 := clk.Now()
		Expect(fac.Mains(w, false)).To(Succeed())
		rng := rand.New(rand.NewPCG(6, 6))
		type shot struct {
			at   time.Duration
			pump string
		}
		var plan []shot
		for _, p := range pumps {
			plan = append(plan, shot{time.Duration(rng.Int64N(int64(time.Minute))), p})
		}
		slices.SortFunc(plan, func(a, b shot) int { return int(a.at - b.at) })
		for _, s := range plan {
			Expect(until(w, clk, t0.Add(s.at))).To(Succeed())
			Expect(dev.InjectFault(w, s.pump, "", "battery_low")).To(Succeed())
		}

		By("mains power back after three lab minutes")
		Expect(until(w, clk, t0.Add(3*time.Minute))).To(Succeed())
		Expect(fac.Mains(w, true)).To(Succeed())

		By("every alarm delivered to a phone and ended")
		battery := func(r lab.AlarmRecord) bool {
			return strings.Contains(r.Code, "BATT_LO") && !r.Onset.Before(t0)
		}
		recs, err := waitRecords(w, am, func(rs []lab.AlarmRecord) bool {
			return countPumps(rs, func(r lab.AlarmRecord) bool { return battery(r) && !r.Delivered.IsZero() && !r.Ended.IsZero() }) == len(pumps)
		})
		expectDone(f, err, "not every battery alarm was delivered and ended")
		n := 0
		var notify []harness.LatencySample
		for _, r := range recs {
			if battery(r) {
				n++
				notify = append(notify, harness.LatencySample{Metric: harness.MetricAlarmToNurse, Value: r.Delivered.Sub(r.Onset)})
				Expect(r.Priority).To(Equal("PM"))
				recordAlarmLatencies(f, r)
			}
		}
		Expect(n).To(Equal(len(pumps)), "one alarm per pump, no duplicates")
		end := clk.Now()
		missed, late := oracle.AlarmHarm(recs, t0, end, end, time.Minute)
		Expect(missed).To(BeZero())
		// Late (L_notify over 60 lab s) is reported, not failed: the burst
		// queues on the pump server's one MLLP link to the alarm manager,
		// and at x300 each wall millisecond of that queue is 0.3 lab s.
		_, p50, p95 := harness.LatencyPercentiles(notify, harness.MetricAlarmToNurse)
		AddReportEntry("burst L_notify", fmt.Sprintf("p50 %s, p95 %s, %d of %d over 60 s", p50, p95, late, n))

		By("the drip unaffected by the power transfer")
		ddr, err := dev.DDR(w, drip, "A", t0, end)
		Expect(err).NotTo(HaveOccurred())
		Expect(ddr).To(BeNumerically("~", 1.0, 0.05))
		Expect(dev.WaitState(w, drip, "A", "infusing")).To(Succeed())
		AddReportEntry("burst", fmt.Sprintf("%d battery-low alarms in one lab minute, all delivered and ended", n))
	})
})

// waitRecords re-reads the alarm manager's records until cond holds.
func waitRecords(ctx context.Context, am lab.Alarms, cond func([]lab.AlarmRecord) bool) ([]lab.AlarmRecord, error) {
	var recs []lab.AlarmRecord
	err := poll(ctx, func() (bool, error) {
		var err error
		recs, err = am.Records(ctx)
		return err == nil && cond(recs), err
	})
	return recs, err
}

// countPumps counts the distinct pumps with a record matching ok.
func countPumps(rs []lab.AlarmRecord, ok func(lab.AlarmRecord) bool) int {
	seen := map[string]bool{}
	for _, r := range rs {
		if ok(r) {
			seen[r.PumpID] = true
		}
	}
	return len(seen)
}
