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
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
)

// ATK-04 East-west discovery from a compromised clinical workstation
// (REFERENCE.md §3.1): from a foothold in the clinical zone, a connect scan
// of the pumps' host, the pump server and the broker, then a banner grab on
// a pump's service port. On one flat network every host answers; with the
// zones segmented the clinical zone has no route to the device or server
// zones. Needs real networks: Not Applicable in process.
var _ = Describe("ATK-04 east-west discovery from the clinical zone", harness.Register("ATK-04", "East-west discovery from a compromised clinical workstation",
	harness.Kind("attack"), harness.Technique("T0846"), harness.Technique("T0888"), harness.Technique("T0840"),
	harness.Area("NW"), harness.Area("AM"), harness.Lifecycle("use"), harness.Target("network"), harness.Target("pump"),
	harness.Need("containers"), harness.Need("segmentation")), func() {
	f := harness.New("atk-04-east-west-discovery")

	It("finds the pumps and servers from the clinical zone unless the zones are segmented", func(ctx SpecContext) {
		z := zoned(f)
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()

		By("placing the attacker's foothold on a clinical workstation")
		h, err := z.AttackFrom(w, lab.ZoneClinical)
		Expect(err).NotTo(HaveOccurred())
		targets := map[string][]int{}
		var assets []string
		for sys, ports := range map[string][]int{"fleet": {20001, 20002, 20003, 21, 23, 7070}, "pumpserver": {2577, 7070}, "broker": {1883, 7070}} {
			a, err := z.Host(sys)
			Expect(err).NotTo(HaveOccurred())
			targets[a] = ports
			assets = append(assets, a)
		}

		By("scanning the device and server zones (TCP connect)")
		step := attack.Step{ScenarioID: "ATK-04", StepID: "ATK-04/1", Techniques: []string{"T0846", "T0888", "T0840"}, Tactic: "TA0102",
			Assets: assets, Criteria: "hosts of the device or server zone answer a connect scan from the clinical zone", Control: "segmentation",
			Window: 10 * time.Minute}
		answered := map[string]bool{}
		err = f.Attack(w, step, func(ctx context.Context) error {
			for host, ports := range targets {
				r, err := h.Scan(ctx, []string{host}, ports, time.Second)
				if err != nil {
					return err
				}
				answered[host] = len(r.Open)+r.Refused > 0
				AddReportEntry("scan "+host, fmt.Sprintf("open %v, refused %d, unreachable %d", r.Open, r.Refused, r.Unreachable))
			}
			return nil
		})
		Expect(err).NotTo(HaveOccurred())
		reached := 0
		for _, ok := range answered {
			if ok {
				reached++
			}
		}

		By("grabbing the banner of a pump's service port")
		banner := ""
		if p, err := ServicePortFrom(w, f.Lab, lab.ZoneClinical, f.Lab.Pumps()[0], ""); err == nil && p.Connected {
			banner = p.Banner
		}
		AddReportEntry("reachable hosts", fmt.Sprintf("%d of %d", reached, len(targets)))
		AddReportEntry("service port banner", strings.TrimSpace(banner))
		f.Observe(step.StepID, score.Observed{Effect: reached > 0})

		if z.Segmented() {
			By("segmentation: no host of the device or server zone answers the clinical zone")
			Expect(reached).To(Equal(0), "hosts answering across zones: %v", answered)
			Expect(banner).To(BeEmpty())
			ev, err := f.Lab.Evidence(w)
			Expect(err).NotTo(HaveOccurred())
			Expect(ev).To(ContainElement(HaveField("Control", "segmentation")))
			return
		}
		By("flat network: every host answers and the pump's service port identifies it")
		Expect(reached).To(Equal(len(targets)), "hosts answering: %v", answered)
		if _, err := z.ServicePort(w, f.Lab.Pumps()[0]); err == nil {
			Expect(strings.Contains(banner, f.Lab.Pumps()[0])).To(BeTrue(), "banner %q", banner)
		}
	})
})
