package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// fleetPHI returns the patient ids (MRNs) in what a sniffer collected from
// pumps other than own: pump statuses (the pump's and each channel's
// patient) and the pump server's programs on cmd topics.
func fleetPHI(msgs []attack.Message, own string) []string {
	seen := map[string]bool{}
	for _, m := range msgs {
		id, kind, err := pumpwire.ParseTopic(m.Topic)
		if err != nil || id == own {
			continue
		}
		env, err := pumpwire.DecodeEnvelope(m.Payload)
		if err != nil {
			continue
		}
		switch kind {
		case pumpwire.KindStatus:
			var s pumpwire.Status
			if json.Unmarshal(env.Body, &s) != nil {
				continue
			}
			seen[s.PatientID] = true
			for _, c := range s.Channels {
				seen[c.PatientID] = true
			}
		case pumpwire.KindCmd:
			var c pumpwire.Command
			if json.Unmarshal(env.Body, &c) == nil && c.Program != nil {
				seen[c.Program.PatientID] = true
			}
		}
	}
	delete(seen, "")
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ATK-38 Rogue device impersonating a pump on the device network
// (REFERENCE.md §3.1): a device with a pump's stolen client certificate and
// broker login (taken from a pump's comm module, as in ATK-05/ATK-01) joins
// the broker under its own client id (the pump's would knock the real pump
// off and show the pump online twice) and subscribes to the whole fleet's
// topics, reading which patient every other pump is infusing. With the
// pump's certificate, mutual TLS lets it in; the broker's ACL (a pump reads
// only its own command topic) is the only control in its way. Harm: PHI
// records exposed.
var _ = Describe("ATK-38 rogue device with a pump's identity reads the fleet", harness.Register("ATK-38", "Rogue device impersonating a pump on the device VLAN",
	harness.Kind("attack"), harness.Technique("T0860"), harness.Technique("T0859"), harness.Technique("T0856"),
	harness.Area("AM"), harness.Area("AU"), harness.Area("WL"), harness.Lifecycle("use"), harness.Target("broker"), harness.Target("pump")), func() {
	f := harness.New("atk-38-rogue-pump")

	It("reads other pumps' patient ids with a stolen pump identity", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumps := f.Lab.Pumps()
		stolen := pumps[6]

		By("two patients on norepinephrine on other pumps")
		_, err := startNorepinephrine(w, f.Lab, pumps[0], "MRN5538", 250)
		Expect(err).NotTo(HaveOccurred())
		_, err = startNorepinephrine(w, f.Lab, pumps[1], "MRN5539", 250)
		Expect(err).NotTo(HaveOccurred())

		By("the rogue device joining with " + stolen + "'s certificate and login and subscribing to every pump's status and commands")
		const client = "rogue-ap-7"
		step := attack.Step{ScenarioID: "ATK-38", StepID: "ATK-38/1", Techniques: []string{"T0860", "T0859"}, Tactic: "TA0100",
			Assets: []string{"broker", stolen}, Correlation: []string{"mqtt-client:" + client},
			Criteria: "the rogue device receives other pumps' status or commands naming their patients", Control: "broker-acl",
			Window: 5 * time.Minute}
		var m *attack.MQTT
		var sniffers []*attack.Sniffer
		err = f.Attack(w, step, func(ctx context.Context) error {
			foot, err := foothold(ctx, f.Lab, stolen)
			if err != nil {
				return err
			}
			m, err = attack.DialMQTT(ctx, attack.MQTTConfig{Broker: foot.MQTTURL, ClientID: client, Username: foot.MQTTUsername,
				Password: foot.MQTTPassword, TLS: foot.TLS, Clock: f.Lab.Clock()})
			if err != nil {
				return err
			}
			for _, k := range []pumpwire.Kind{pumpwire.KindStatus, pumpwire.KindCmd} {
				s, err := m.Sniff(ctx, pumpwire.Filter(k), 0)
				if err != nil {
					return err
				}
				sniffers = append(sniffers, s)
			}
			return nil
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(m.Close)
		collected := func() []attack.Message {
			var all []attack.Message
			for _, s := range sniffers {
				all = append(all, s.Messages()...)
			}
			return all
		}

		if f.ControlOn("broker-acl") {
			By("the broker refusing a pump identity's subscription to other pumps' topics")
			ev := expectBlocked(w, f.Lab, "broker-acl")
			AddReportEntry("broker-acl", ev.Reason)
			// Several status periods of every pump pass (10 s by default); nothing may arrive.
			Expect(sleepLab(w, f.Lab, 2*time.Minute)).To(Succeed())
			phi := fleetPHI(collected(), stolen)
			harm := score.Harm{PHIExposed: len(phi)}
			f.Observe(step.StepID, score.Observed{Effect: len(phi) > 0, Harm: harm})
			AddReportEntry("messages received", fmt.Sprint(len(collected())))
			Expect(collected()).To(BeEmpty())
			Expect(oracle.Harmful(harm)).To(BeFalse())
			return
		}

		By("the rogue device reading both patients' ids from the fleet's statuses")
		Eventually(func() []string { return fleetPHI(collected(), stolen) }).WithContext(w).WithPolling(20 * time.Millisecond).
			Should(ContainElements("MRN5538", "MRN5539"))
		phi := fleetPHI(collected(), stolen)
		harm := score.Harm{PHIExposed: len(phi)}
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
		AddReportEntry("patient ids read", fmt.Sprint(phi))
		AddReportEntry("messages received", fmt.Sprint(len(collected())))
		Expect(oracle.Harmful(harm)).To(BeTrue())
	})
})
