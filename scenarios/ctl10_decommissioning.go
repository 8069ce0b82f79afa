package scenarios

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/lab"
)

// CTL-10 Decommissioning (REFERENCE.md §3.3): biomed takes an idle pump out
// of service while the rest of the unit infuses. The workflow must work
// under every posture: the pump leaves the server's online fleet and the
// other pumps' therapy is untouched. Under decommission-wipe the storage is
// verified empty and the certificate revoked, so the post-condition holds:
// ATK-01 finds nothing on the device and its certificate no longer opens
// the broker. Without the control, what remains is reported.
var _ = Describe("CTL-10 decommissioning", harness.Register("CTL-10", "Decommissioning",
	harness.Kind("control"), harness.Area("AM"), harness.Area("WL"), harness.Lifecycle("decommissioning"),
	harness.Target("pump"), harness.Target("pumpserver")), func() {
	f := harness.New("ctl-10-decommissioning")
	// Not GuardControlScenario: the wipe and a refused revoked certificate
	// are the controls acting on the retired device, as they should; any
	// block on another asset is a patient-safety event (checked below).

	It("takes a pump out of service without touching the unit's therapy", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		bm := harness.LabAs[lab.Biomed](f, "biomed decommissioning")
		pumps := f.Lab.Pumps()
		gone, busy := pumps[len(pumps)-1], pumps[len(pumps)-2]

		By("a neighbouring pump infusing norepinephrine")
		th, err := startNorepinephrine(w, f.Lab, busy, "MRN7100", 250)
		Expect(err).NotTo(HaveOccurred())

		By("biomed decommissioning an idle pump")
		Expect(bm.Decommission(w, gone)).To(Succeed())
		Eventually(func(g Gomega) {
			ps, err := f.Lab.PumpServer().Pumps(w)
			g.Expect(err).NotTo(HaveOccurred())
			for _, p := range ps {
				if p.ID == gone {
					g.Expect(p.Online).To(BeFalse(), "%s still online at the pump server", gone)
				}
			}
		}).WithContext(w).WithPolling(20 * time.Millisecond).Should(Succeed())

		defer func() {
			ev, err := f.Lab.Evidence(w)
			Expect(err).NotTo(HaveOccurred())
			for _, e := range ev {
				if e.Action == "blocked" && e.Target != gone && e.Target != "broker" {
					Fail(fmt.Sprintf("patient-safety event: control %s blocked %s during CTL-10: %s", e.Control, e.Target, e.Reason))
				}
			}
		}()

		By("the neighbour's therapy untouched")
		harm, err := harmOver(w, f.Lab, th, 5*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		Expect(harm.DDR).To(BeNumerically("~", 1.0, 0.05))

		By("reading what the disposed device still holds")
		d, err := bm.Disposed(w, gone)
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("left on the device", fmt.Sprintf("%d credentials, %d PHI records", len(d.Credentials), d.PHI))
		if !f.ControlOn("decommission-wipe") {
			AddReportEntry("post-condition", "no wipe in this posture: ATK-01 can harvest this device")
			return
		}
		By("decommission-wipe: nothing left, and the device certificate no longer opens the broker")
		Expect(d.Credentials).To(BeEmpty())
		Expect(d.PHI).To(BeZero())
		if !f.ControlOn("mtls-mqtt") {
			return
		}
		adv := harness.LabAs[lab.Adversary](f, "an adversary foothold")
		foot, err := adv.Compromise(w, gone)
		Expect(err).NotTo(HaveOccurred())
		cctx, ccancel := context.WithTimeout(w, 10*time.Second)
		defer ccancel()
		m, err := attack.DialMQTT(cctx, attack.MQTTConfig{Broker: foot.MQTTURL, ClientID: "disposed-" + gone,
			Username: foot.MQTTUsername, Password: foot.MQTTPassword, TLS: foot.TLS})
		if err == nil {
			m.Close()
		}
		Expect(err).To(HaveOccurred(), "the revoked certificate still connects")
	})
})
