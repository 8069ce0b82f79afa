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

// CTL-12 Network blips (REFERENCE.md §3.3): with three drips running, the
// MQTT broker goes down for 30 lab seconds (a WLC failover) and later the
// pump server restarts (down 2 lab minutes). During each outage a nurse
// stops one of the other drips at the pump. Pass: the vasopressor keeps
// infusing through both (DDR 1.00 ± 0.05, no harm); each stop is documented
// only after the outage, exactly once, with the pump's original time;
// periodic documentation resumes; one delivery start per order (no
// duplicates from the reconnects); no control blocked anything.
var _ = Describe("CTL-12 network blips", harness.Register("CTL-12", "Network blips",
	harness.Kind("control"), harness.Area("NW"), harness.Area("WL"), harness.Lifecycle("use"),
	harness.Target("pump"), harness.Target("pumpserver"), harness.Target("broker"), harness.Target("ehr")), func() {
	f := harness.New("ctl-12-network-blips")
	harness.GuardControlScenario(f)

	It("keeps pumps infusing through a broker outage and a pump-server restart and delivers buffered events once", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		fac := harness.LabAs[lab.Facility](f, "facility (broker and pump-server outages)")
		clk, dev, c := f.Lab.Clock(), f.Lab.Devices(), f.Lab.Clinical()
		pumps := f.Lab.Pumps()
		d := norepi
		d.VTBI = 250

		By("three drips: norepinephrine on " + pumps[6] + ", heparin on " + pumps[7] + " and " + pumps[8])
		vaso, err := startDrip(w, f, pumps[6], "MRN1201", d)
		Expect(err).NotTo(HaveOccurred())
		h1, err := startDrip(w, f, pumps[7], "MRN1202", heparin)
		Expect(err).NotTo(HaveOccurred())
		h2, err := startDrip(w, f, pumps[8], "MRN1203", heparin)
		Expect(err).NotTo(HaveOccurred())

		outage := func(name string, stop, start func(context.Context) error, down time.Duration, t therapy) {
			By(fmt.Sprintf("%s down for %s (lab); the nurse stops %s meanwhile", name, down, t.PumpID))
			Expect(stop(w)).To(Succeed())
			began := clk.Now()
			Expect(until(w, clk, began.Add(down/2))).To(Succeed())
			Expect(dev.Stop(w, t.PumpID, "A", "RN0043")).To(Succeed())
			stoppedAt, err := stopTime(w, f.Lab, t.PumpID)
			Expect(err).NotTo(HaveOccurred())
			Expect(dev.WaitState(w, vaso.PumpID, "A", "infusing")).To(Succeed(), "the vasopressor must keep infusing during the outage")
			Expect(until(w, clk, began.Add(down))).To(Succeed())
			doc, err := c.Documented(w, t.OrderID)
			Expect(err).NotTo(HaveOccurred())
			Expect(docEvents(doc, "MDC_EVT_PUMP_DELIV_STOP")).To(BeEmpty(), "the stop cannot be documented while %s is down", name)
			Expect(start(w)).To(Succeed())
			restored := clk.Now()

			By("the buffered stop documented once, with the pump's original time, after " + name + " is back")
			doc, err = c.WaitDocumented(w, t.OrderID, func(d lab.Documentation) bool { return d.Has("MDC_EVT_PUMP_DELIV_STOP") })
			expectDone(f, err, "the stop of %s documented after %s is back", t.OrderID, name)
			stops := docEvents(doc, "MDC_EVT_PUMP_DELIV_STOP")
			Expect(stops).To(HaveLen(1), "exactly once")
			Expect(stops[0].At).To(BeTemporally("~", stoppedAt, 2*time.Second), "original event time (documented to the second)")
			Expect(stops[0].At).To(BeTemporally("<", restored))
			_, err = c.WaitDocumented(w, vaso.OrderID, func(d lab.Documentation) bool { return d.LastObs.After(restored) })
			expectDone(f, err, "periodic PCD-01 of the vasopressor resumes after %s is back", name)
		}
		outage("the MQTT broker", fac.StopBroker, fac.StartBroker, 30*time.Second, h1)
		outage("the pump server", fac.StopPumpServer, fac.StartPumpServer, 2*time.Minute, h2)

		By("the vasopressor unharmed over the whole time, one delivery start per order")
		Expect(until(w, clk, clk.Now().Add(2*time.Minute))).To(Succeed())
		end := clk.Now()
		ddr, err := dev.DDR(w, vaso.PumpID, "A", vaso.Started, end)
		Expect(err).NotTo(HaveOccurred())
		Expect(ddr).To(BeNumerically("~", 1.0, 0.05))
		doc, err := c.WaitDocumented(w, vaso.OrderID, func(d lab.Documentation) bool { return !d.LastObs.Before(end) })
		Expect(err).NotTo(HaveOccurred())
		Expect(docEvents(doc, "MDC_EVT_PUMP_DELIV_START")).To(HaveLen(1))
		for _, t := range []therapy{h1, h2} {
			d, err := c.Documented(w, t.OrderID)
			Expect(err).NotTo(HaveOccurred())
			Expect(docEvents(d, "MDC_EVT_PUMP_DELIV_START")).To(HaveLen(1), "%s: one delivery start", t.OrderID)
		}
		harm, err := oracle.Measure(w, f.Lab, oracle.Window{PumpID: vaso.PumpID, Channel: "A", From: vaso.Started, To: end,
			OrderID: vaso.OrderID, HighAlert: true})
		Expect(err).NotTo(HaveOccurred())
		Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
		AddReportEntry("DDR (vasopressor through both outages)", fmt.Sprintf("%.4f", ddr))
	})
})

// stopTime is the lab time channel A of pumpID stopped delivering: the
// start of its last motor segment, which must run at zero.
func stopTime(ctx context.Context, l lab.Lab, pumpID string) (time.Time, error) {
	segs, err := l.Devices().Segments(ctx, pumpID, "A")
	if err != nil {
		return time.Time{}, err
	}
	if len(segs) == 0 || segs[len(segs)-1].RateMLH != 0 {
		return time.Time{}, fmt.Errorf("%s/A has not stopped delivering", pumpID)
	}
	return segs[len(segs)-1].Start, nil
}
