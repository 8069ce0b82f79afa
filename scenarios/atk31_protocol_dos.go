package scenarios

import (
	"context"
	"fmt"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
)

// ATK-31 Protocol DoS against the pump network stack (REFERENCE.md §3.1):
// from a foothold in the untrusted zone (guest Wi-Fi), a connection flood
// of junk bytes into the device zone, at a pump's service port (or the
// pumps' host when the posture closed it). On one flat network the flood
// lands on the pumps' stack; with the zones segmented the untrusted zone
// has no route into the device zone. Either way the fleet must stay online
// at the pump server. Needs real networks: Not Applicable in process.
var _ = Describe("ATK-31 protocol DoS into the device zone", harness.Register("ATK-31", "Protocol DoS against pump network stack",
	harness.Kind("attack"), harness.Technique("T0814"), harness.Technique("T0816"), harness.Technique("T0866"),
	harness.Area("MU"), harness.Area("NW"), harness.Lifecycle("use"), harness.Target("pump"), harness.Target("network"),
	harness.Need("containers"), harness.Need("segmentation")), func() {
	f := harness.New("atk-31-protocol-dos")

	It("floods the pumps' stack from the untrusted zone unless the zones are segmented", func(ctx SpecContext) {
		z := zoned(f)
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumpID := f.Lab.Pumps()[0]
		target, err := z.ServicePort(w, pumpID)
		if err != nil {
			fleet, herr := z.Host("fleet")
			Expect(herr).NotTo(HaveOccurred())
			target = net.JoinHostPort(fleet, "7070")
		}
		host, _, _ := net.SplitHostPort(target)

		By("placing the attacker on the guest network (untrusted zone)")
		h, err := z.AttackFrom(w, lab.ZoneUntrusted)
		Expect(err).NotTo(HaveOccurred())

		By("flooding " + target + " with 300 connections of junk")
		step := attack.Step{ScenarioID: "ATK-31", StepID: "ATK-31/1", Techniques: []string{"T0814", "T0866"}, Tactic: "TA0107",
			Assets: []string{pumpID, host}, Correlation: []string{"tcp:" + target},
			Criteria: "the flood's connections land on the pumps' network stack", Control: "segmentation", Window: 10 * time.Minute}
		var res lab.FloodResult
		err = f.Attack(w, step, func(ctx context.Context) error {
			var err error
			res, err = h.Flood(ctx, target, 300, 2048, 5*time.Second)
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("flood", fmt.Sprintf("%+v", res))

		By("the fleet staying online at the pump server")
		Expect(f.Lab.PumpServer().WaitOnline(w, len(f.Lab.Pumps()))).To(Succeed())
		pres, err := f.Lab.PumpServer().Presence(w)
		Expect(err).NotTo(HaveOccurred())
		offline := 0
		for _, p := range pres {
			if !p.Online && p.At.After(f.Lab.Clock().Now().Add(-time.Hour)) {
				offline++
			}
		}
		AddReportEntry("offline transitions", fmt.Sprint(offline))
		f.Observe(step.StepID, score.Observed{Effect: res.Opened > 0, Harm: score.Harm{}})

		if z.Segmented() {
			By("segmentation: no connection reaches the device zone")
			Expect(res.Opened).To(BeZero(), "flood connections across zones")
			ev := expectBlocked(w, f.Lab, "segmentation")
			AddReportEntry("segmentation", ev.Reason)
			return
		}
		By("flat network: the flood lands on the pumps' host")
		Expect(res.Opened).To(BeNumerically(">", 0), "first error %s", res.FirstErr)
		Expect(res.BytesSent).To(BeNumerically(">", 0))
	})
})
