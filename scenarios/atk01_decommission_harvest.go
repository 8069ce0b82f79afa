package scenarios

import (
	"context"
	"fmt"
	"slices"
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
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// secretNames are the stored credentials that let someone onto the pump
// network (the Wi-Fi SSID alone is no secret).
var secretNames = []string{"broker_username", "broker_password", "wifi_psk", "client_cert_pem", "client_key_pem"}

// ATK-01 Credential harvest from a decommissioned pump (REFERENCE.md §3.1):
// biomed takes a pump out of service and it is sold on; the buyer reads its
// storage (broker login, Wi-Fi PSK, device certificate and key, patient
// ids), joins the pump network with them and enumerates the fleet.
var _ = Describe("ATK-01 credential harvest from a decommissioned pump", harness.Register("ATK-01", "Credential harvest from a decommissioned pump, then join the pump network",
	harness.Kind("attack"), harness.Technique("T0893"), harness.Technique("T0860"), harness.Technique("T0859"),
	harness.Area("WL"), harness.Area("AM"), harness.Area("AU"), harness.Lifecycle("decommissioning"), harness.Target("pump"), harness.Target("broker")), func() {
	f := harness.New("atk-01-decommission-harvest")

	It("reads a disposed pump's credentials and joins the pump network with them", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		bm := harness.LabAs[lab.Biomed](f, "biomed decommissioning")
		adv := harness.LabAs[lab.Adversary](f, "an adversary foothold (the disposed pump's device key)")
		pumpID := f.Lab.Pumps()[4]

		By("the pump having served a patient")
		th, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5507", 250)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Lab.Devices().Stop(w, th.PumpID, th.Channel, "RN0042")).To(Succeed())

		// Position: the attacker is whoever buys the pump second hand
		// (Rapid7 2023): physical access to its storage, no foothold in
		// the hospital. What stands between the storage and the pump
		// network is only what biomed erased and revoked before disposal.
		By("biomed decommissioning the pump, the buyer reading its storage and joining the broker with what it found")
		var got lab.Disposed
		var joined bool
		var joinErr error
		seen := map[string]bool{}
		step := attack.Step{ScenarioID: "ATK-01", StepID: "ATK-01/1", Techniques: []string{"T0893", "T0860", "T0859"},
			Tactic: "TA0108", Assets: []string{pumpID, "broker"}, Correlation: []string{"mqtt-client:" + pumpID},
			Criteria: "credentials read from the disposed pump let the attacker connect to the pump network's broker",
			Control:  "decommission-wipe", Window: 15 * time.Minute}
		err = f.Attack(w, step, func(ctx context.Context) error {
			if err := bm.Decommission(ctx, pumpID); err != nil {
				return fmt.Errorf("decommission %s: %w", pumpID, err)
			}
			d, err := bm.Disposed(ctx, pumpID)
			if err != nil {
				return err
			}
			got = d
			user, pass := d.Credentials["broker_username"], d.Credentials["broker_password"]
			if user == "" {
				joinErr = fmt.Errorf("no broker login in the disposed pump's storage")
				return nil
			}
			foot, err := adv.Compromise(ctx, pumpID)
			if err != nil {
				return err
			}
			cfg := attack.MQTTConfig{Broker: foot.MQTTURL, ClientID: pumpID, Username: user, Password: pass}
			if strings.HasPrefix(foot.MQTTURL, "ssl") || strings.HasPrefix(foot.MQTTURL, "wss") {
				// The lab stores a stand-in text for the device key PEM;
				// the identity's real key (what the stand-in represents)
				// comes from the adversary API, and only when the storage
				// still holds a key.
				if d.Credentials["client_key_pem"] == "" {
					joinErr = fmt.Errorf("no device key in the disposed pump's storage for the broker's mutual TLS")
					return nil
				}
				cfg.TLS = foot.TLS
			}
			m, err := attack.DialMQTT(ctx, cfg)
			if err != nil {
				joinErr = err
				return nil
			}
			defer m.Close()
			joined = true
			// Enumerate the fleet from the status topics (a pump identity
			// under broker-acl may not subscribe to them: then the step
			// still counts, it joined as a trusted pump).
			if sn, err := m.Sniff(ctx, pumpwire.Prefix+"+/"+string(pumpwire.KindStatus), 0); err == nil {
				if err := clock.Sleep(ctx, f.Lab.Clock(), 30*time.Second); err != nil {
					return err
				}
				for _, msg := range sn.Messages() {
					if id, _, ok := strings.Cut(strings.TrimPrefix(msg.Topic, pumpwire.Prefix), "/"); ok {
						seen[id] = true
					}
				}
				_ = sn.Stop(ctx)
			}
			return nil
		})
		Expect(err).NotTo(HaveOccurred())
		creds := 0
		for _, k := range secretNames {
			if got.Credentials[k] != "" {
				creds++
			}
		}
		harm := score.Harm{CredsExposed: creds, PHIExposed: got.PHI}
		AddReportEntry("credentials in the disposed pump", fmt.Sprint(creds))
		AddReportEntry("patient records in the disposed pump", fmt.Sprint(got.PHI))
		AddReportEntry("pumps enumerated from the broker", fmt.Sprint(len(seen)))

		if f.ControlOn("decommission-wipe") {
			By("the wipe having erased credentials and PHI and revoked the pump's certificate")
			ev := expectBlocked(w, f.Lab, "decommission-wipe")
			AddReportEntry("decommission-wipe evidence", ev.Reason)
			f.Observe(step.StepID, score.Observed{Effect: joined, Harm: harm})
			Expect(joined).To(BeFalse(), "the broker took the disposed pump's credentials")
			Expect(joinErr).To(HaveOccurred())
			Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
			return
		}

		By("the attacker on the broker as the disposed pump")
		f.Observe(step.StepID, score.Observed{Effect: joined, Harm: harm})
		Expect(joinErr).NotTo(HaveOccurred())
		Expect(joined).To(BeTrue())
		Expect(got.Credentials).To(HaveKey("broker_password"))
		Expect(got.Credentials).To(HaveKey("wifi_psk"))
		Expect(got.PHI).To(BeNumerically(">", 0))
		Expect(oracle.Harmful(harm)).To(BeTrue())
		others := slices.DeleteFunc(f.Lab.Pumps(), func(id string) bool { return id == pumpID })
		AddReportEntry("fleet size", fmt.Sprint(len(others)))
	})
})
