package scenarios

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/lab"
)

// CTL-11 Emergency use (REFERENCE.md §3.3): a code blue while the pump
// server is unreachable. At the bedside, without BCMA: a saline fluid
// bolus in basic-infusion mode (no drug selected); norepinephrine above its
// soft limit, overridden with a reason; a pump borrowed from Med-Surg that
// refuses norepinephrine in its Med-Surg profile until the nurse switches
// it to Adult ICU, then dopamine above its soft limit, overridden. Pass:
// therapy is never blocked (every program runs, the motor delivers what was
// programmed within 5%), both overrides are in the pumps' logs with their
// reasons, nothing is documented while the server is down, and afterwards
// every delivery start is documented once with its original time and the
// bolus-complete alarm raised during the outage reaches a phone with its
// original onset.
var _ = Describe("CTL-11 emergency use", harness.Register("CTL-11", "Emergency use (code blue)",
	harness.Kind("control"), harness.Area("EM"), harness.Area("US"), harness.Lifecycle("use"),
	harness.Target("pump"), harness.Target("pumpserver"), harness.Target("nurse")), func() {
	f := harness.New("ctl-11-emergency-use")
	harness.GuardControlScenario(f)

	It("never blocks therapy programmed at the pump while the pump server is unreachable", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		bed := harness.LabAs[lab.Bedside](f, "bedside (manual programming at the keypad)")
		fac := harness.LabAs[lab.Facility](f, "facility (pump-server outage)")
		clk, dev, c := f.Lab.Clock(), f.Lab.Devices(), f.Lab.Clinical()
		pumps := f.Lab.Pumps()
		bolus, vaso, borrowed := pumps[9], pumps[10], pumps[11]
		const nurse = "RN0099"

		By("the pump server unreachable")
		Expect(fac.StopPumpServer(w)).To(Succeed())
		down := clk.Now()

		By("a saline fluid bolus in basic-infusion mode: 150 mL at 900 mL/h, no drug selected")
		r, err := bed.ManualProgram(w, bolus, "A", nurse, lab.ManualProgram{OrderID: "CODE-" + bolus, RateMLH: 900, VTBI: 150})
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Accepted).To(BeTrue(), "basic infusion refused: %s %s", r.Code, r.Reason)
		Expect(bed.Start(w, bolus, "A", nurse)).To(Succeed())

		By("norepinephrine 0.7 mcg/kg/min (soft max 0.5) keyed in, overridden with a reason")
		ne := lab.ManualProgram{DrugID: "NOREPI-4-250", DoseRate: 0.7, DoseUnit: "mcg/kg/min", DrugAmount: 4, DrugUnit: "mg",
			DiluentML: 250, WeightKg: 70, VTBI: 100}
		ne.OrderID = "CODE-" + vaso
		r, err = bed.ManualProgram(w, vaso, "A", nurse, ne)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Accepted).To(BeTrue(), "%s %s", r.Code, r.Reason)
		Expect(r.NeedsOverride).To(BeTrue(), "0.7 is above the soft maximum")
		Expect(bed.Override(w, vaso, "A", "code blue: MAP 48", nurse)).To(Succeed())
		Expect(bed.Start(w, vaso, "A", nurse)).To(Succeed())

		By("a pump borrowed from Med-Surg: its profile refuses norepinephrine until switched to Adult ICU")
		Expect(bed.SetCareArea(w, borrowed, "Med-Surg", "biomed")).To(Succeed())
		ne.OrderID = "CODE-" + borrowed
		r, err = bed.ManualProgram(w, borrowed, "A", nurse, ne)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Accepted).To(BeFalse(), "norepinephrine is not in the Med-Surg profile")
		Expect(bed.SetCareArea(w, borrowed, "Adult ICU", nurse)).To(Succeed())
		area, err := bed.CareArea(w, borrowed)
		Expect(err).NotTo(HaveOccurred())
		Expect(area).To(Equal("Adult ICU"))
		r, err = bed.ManualProgram(w, borrowed, "A", nurse, lab.ManualProgram{OrderID: "CODE-" + borrowed, DrugID: "DOPAMINE-400-250", DoseRate: 25,
			DoseUnit: "mcg/kg/min", DrugAmount: 400, DrugUnit: "mg", DiluentML: 250, WeightKg: 70, VTBI: 100})
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Accepted).To(BeTrue(), "%s %s", r.Code, r.Reason)
		Expect(r.NeedsOverride).To(BeTrue(), "dopamine 25 is above the soft maximum 20")
		Expect(bed.Override(w, borrowed, "A", "code blue: second pressor", nurse)).To(Succeed())
		Expect(bed.Start(w, borrowed, "A", nurse)).To(Succeed())

		By("every therapy delivering what was programmed while the server stays down")
		starts := map[string]time.Time{}
		for _, p := range []string{bolus, vaso, borrowed} {
			Expect(dev.WaitState(w, p, "A", "infusing", "kvo")).To(Succeed())
			st, err := deliveringSince(w, f.Lab, p, down)
			Expect(err).NotTo(HaveOccurred())
			starts[p] = st
		}
		Expect(until(w, clk, down.Add(15*time.Minute))).To(Succeed())
		for _, p := range []string{vaso, borrowed} {
			ratio, err := programmedRatio(w, f.Lab, p, starts[p], clk.Now())
			Expect(err).NotTo(HaveOccurred())
			Expect(ratio).To(BeNumerically("~", 1.0, 0.05), "%s delivers its programmed rate", p)
		}
		Expect(dev.WaitState(w, bolus, "A", "kvo")).To(Succeed(), "the 150 mL bolus completed (then KVO)")
		var complete lab.PumpAlarm
		active, err := dev.ActiveAlarms(w, bolus)
		Expect(err).NotTo(HaveOccurred())
		for _, a := range active {
			if a.Code == "infusion_complete" {
				complete = a
			}
		}
		Expect(complete.ID).NotTo(BeEmpty(), "the bolus pump shows its infusion-complete alarm")
		for p, why := range map[string]string{vaso: "code blue: MAP 48", borrowed: "code blue: second pressor"} {
			log, err := bed.PumpLog(w, p)
			Expect(err).NotTo(HaveOccurred())
			Expect(logHas(log, "override", "override", why)).To(BeTrue(), "%s logs the override and its reason", p)
		}
		// Each emergency program carries the code team's order number
		// (CODE-<pump>), keyed in at the pump; its PCD-10 are documented
		// under it. (Without one the pump numbers programs LOCAL-n per pump,
		// and two pumps' LOCAL-2 would share one documentation record.)
		local := map[string]string{}
		for p := range starts {
			tr, err := dev.Truth(w, p, "A")
			Expect(err).NotTo(HaveOccurred())
			Expect(tr.Programmed.OrderID).To(Equal("CODE-" + p))
			local[p] = tr.Programmed.OrderID
			doc, err := c.Documented(w, local[p])
			Expect(err).NotTo(HaveOccurred())
			Expect(docEvents(doc, "MDC_EVT_PUMP_DELIV_START")).To(BeEmpty(), "nothing of the emergency is documented while the server is down")
		}

		By("the pump server back: buffered events and the alarm delivered once, with their original times")
		Expect(fac.StartPumpServer(w)).To(Succeed())
		restored := clk.Now()
		for p, st := range starts {
			doc, err := c.WaitDocumented(w, local[p], func(d lab.Documentation) bool { return d.Has("MDC_EVT_PUMP_DELIV_START") })
			expectDone(f, err, "%s: delivery start of %s documented after the outage", p, local[p])
			ev := docEvents(doc, "MDC_EVT_PUMP_DELIV_START")
			Expect(ev).To(HaveLen(1), "%s: documented once", p)
			Expect(ev[0].At).To(BeTemporally("~", st, 2*time.Second), "%s: the original time %s (1 s resolution)", p, st.Format(time.TimeOnly))
		}
		aw, acancel := f.Context(w, f.Timeouts.Workflow)
		defer acancel()
		a, err := f.Lab.Alarms().WaitAlarm(aw, func(a lab.AlarmRecord) bool {
			return a.PumpID == bolus && a.AlertID == complete.ID && !a.Delivered.IsZero()
		})
		expectDone(f, err, "the bolus-complete alarm raised during the outage reaches a phone")
		Expect(a.Onset).To(BeTemporally("~", complete.Onset, 2*time.Second), "the pump's original onset")
		Expect(a.Onset).To(BeTemporally("<", restored), "raised during the outage")
		Expect(a.Delivered).To(BeTemporally(">=", restored))
		recordAlarmLatencies(f, a)

		By("no harm on the vasopressor: delivered as programmed, no interruption")
		segs, err := dev.Segments(w, vaso, "A")
		Expect(err).NotTo(HaveOccurred())
		Expect(oracle.InterruptedMinutes(segs, starts[vaso], clk.Now())).To(BeNumerically("<", 0.5))
		AddReportEntry("emergency", fmt.Sprintf("3 therapies started at the pump with the server down %s (lab)", restored.Sub(down).Round(time.Second)))
	})
})

// programmedRatio is the volume the motor delivered on channel A over
// [from, to] against the programmed rate over the same time: the DDR of a
// therapy with no order (emergency, verbal order at the pump).
func programmedRatio(ctx context.Context, l lab.Lab, pumpID string, from, to time.Time) (float64, error) {
	t, err := l.Devices().Truth(ctx, pumpID, "A")
	if err != nil {
		return 0, err
	}
	segs, err := l.Devices().Segments(ctx, pumpID, "A")
	if err != nil {
		return 0, err
	}
	vol, _ := oracle.Delivered(segs, from, to)
	want := t.Programmed.RateMLH * to.Sub(from).Hours()
	if want <= 0 {
		return 0, fmt.Errorf("%s/A has no programmed rate", pumpID)
	}
	return vol / want, nil
}
