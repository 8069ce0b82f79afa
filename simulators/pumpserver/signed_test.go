package pumpserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// TestSignedCommandsEndToEnd runs the signed-commands control over a real
// broker: the server signs, the pump verifies; an attacker's unsigned
// set_rate and a replay of a captured signed command are refused.
func TestSignedCommandsEndToEnd(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize))
	name := "pumpserver-" + t.Name()
	l := newLab(t, func(c *Config) { c.CommandSigner = &pumpwire.Signer{KeyID: "srv-1", Key: priv} })
	var mu sync.Mutex
	var ctl []pump.ControlEvent
	p := pump.New(pump.Config{ID: "PUMP-0401", Clock: l.clk, Library: druglib.Default(), CareArea: "Adult ICU", RemoteStartAllowed: true,
		OnControl: func(e pump.ControlEvent) { mu.Lock(); ctl = append(ctl, e); mu.Unlock() }})
	v := pumpwire.NewVerifier(pumpwire.VerifierConfig{Keys: map[string]ed25519.PublicKey{"srv-1": priv.Public().(ed25519.PublicKey)},
		Owners: map[string]string{"srv-1": name}, Clock: l.clk})
	a := pump.NewAgent(p, pump.AgentConfig{BrokerURL: l.url, Logger: quiet(), StatusInterval: time.Hour, CommandVerifier: v})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if err := l.srv.Wait(ctxFor(t), func(v View) bool { pi, ok := v.Pump(p.ID()); return ok && pi.Online }); err != nil {
		t.Fatal(err)
	}

	// The attacker listens on the command and ack topics.
	captured := make(chan []byte, 16)
	acks := make(chan pumpwire.CommandAck, 16)
	att := paho.NewClient(paho.NewClientOptions().AddBroker(l.url).SetClientID("attacker").SetConnectTimeout(5 * time.Second))
	if tok := att.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer att.Disconnect(50)
	sub := func(topic string, h paho.MessageHandler) {
		if tok := att.Subscribe(topic, 1, h); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	sub(pumpwire.Topic(p.ID(), pumpwire.KindCmd), func(_ paho.Client, m paho.Message) { captured <- append([]byte(nil), m.Payload()...) })
	sub(pumpwire.Topic(p.ID(), pumpwire.KindAck), func(_ paho.Client, m paho.Message) {
		if _, _, b, err := pumpwire.Decode(m.Topic(), m.Payload()); err == nil {
			acks <- *b.(*pumpwire.CommandAck)
		}
	})
	waitAck := func(id string) pumpwire.CommandAck {
		t.Helper()
		deadline := time.After(waitFor)
		for {
			select {
			case a := <-acks:
				if a.CmdID == id {
					return a
				}
			case <-deadline:
				t.Fatalf("no ack for %s", id)
			}
		}
	}

	// Legitimate: the server's signed program and start run.
	ack, err := l.srv.Program(ctxFor(t), p.ID(), "A", pumpwire.Program{OrderID: "O-1", Action: "RE", RateMLH: 50, VTBI: 500})
	if err != nil || ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("signed program: %+v %v", ack, err)
	}
	ack, err = l.srv.Command(ctxFor(t), p.ID(), pumpwire.Command{Op: pumpwire.OpStart, Channel: "A"})
	if err != nil || ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("signed start: %+v %v", ack, err)
	}
	var startCmd []byte
	for len(captured) > 0 {
		startCmd = <-captured
	}

	// ATK-16: an unsigned set_rate from a foothold on the broker.
	b, _ := pumpwire.Encode("att-1", name, l.clk.Now(), 1000, pumpwire.Command{CmdID: "ATT-1", Op: pumpwire.OpSetRate, Channel: "A", RateMLH: 400})
	att.Publish(pumpwire.Topic(p.ID(), pumpwire.KindCmd), 1, false, b).WaitTimeout(waitFor)
	if a := waitAck("ATT-1"); a.Code != "AUTH-UNSIGNED" {
		t.Fatalf("unsigned set_rate: %+v", a)
	}
	// Replay of the captured signed start.
	att.Publish(pumpwire.Topic(p.ID(), pumpwire.KindCmd), 1, false, startCmd).WaitTimeout(waitFor)
	env, _ := pumpwire.DecodeEnvelope(startCmd)
	var cmd pumpwire.Command
	if c, err := pumpwire.DecodeBody[pumpwire.Command](env); err == nil {
		cmd = c
	}
	if a := waitAck(cmd.CmdID); a.Code != "AUTH-REPLAY" {
		t.Fatalf("replayed start: %+v", a)
	}
	if s, _ := p.Snapshot("A"); s.RateMLH != 50 {
		t.Fatalf("rate %v after the attacks, want 50", s.RateMLH)
	}
	mu.Lock()
	defer mu.Unlock()
	var blocked, allowed int
	for _, e := range ctl {
		switch {
		case e.Control == pump.CtlSignedCommands && e.Action == pump.ActionBlocked:
			blocked++
		case e.Control == pump.CtlSignedCommands && e.Action == pump.ActionAllowed:
			allowed++
		}
	}
	if blocked != 2 || allowed != 2 {
		t.Fatalf("control events: %d blocked, %d allowed, want 2 and 2: %+v", blocked, allowed, ctl)
	}
}

// TestSignedReports is sign_reports: the pump signs what it sends, the
// server verifies; a spoofed unsigned alarm for the pump and a replayed
// status are dropped, the pump's own alarm goes through.
func TestSignedReports(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, ed25519.SeedSize))
	var mu sync.Mutex
	var ctl []pumpwire.ControlEvent
	var l *testLab
	l = newLab(t, func(c *Config) {
		c.ReportVerifier = pumpwire.NewVerifier(pumpwire.VerifierConfig{Keys: map[string]ed25519.PublicKey{"PUMP-0402": priv.Public().(ed25519.PublicKey)},
			Owners: map[string]string{"PUMP-0402": "PUMP-0402"}, Clock: c.Clock})
		c.OnControl = func(e pumpwire.ControlEvent) { mu.Lock(); ctl = append(ctl, e); mu.Unlock() }
	})
	p := pump.New(pump.Config{ID: "PUMP-0402", Clock: l.clk, Library: druglib.Default(), CareArea: "Adult ICU"})
	a := pump.NewAgent(p, pump.AgentConfig{BrokerURL: l.url, Logger: quiet(), StatusInterval: time.Hour, AwaitServer: true,
		ReportSigner: &pumpwire.Signer{KeyID: "PUMP-0402", Key: priv}})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if err := l.srv.Wait(ctxFor(t), func(v View) bool { pi, ok := v.Pump(p.ID()); return ok && pi.Online && pi.LibraryVersion != "" }); err != nil {
		t.Fatalf("signed pump not registered: %v", err)
	}

	att := paho.NewClient(paho.NewClientOptions().AddBroker(l.url).SetClientID("attacker2").SetConnectTimeout(5 * time.Second))
	if tok := att.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer att.Disconnect(50)
	statuses := make(chan []byte, 4)
	if tok := att.Subscribe(pumpwire.Topic(p.ID(), pumpwire.KindStatus), 1, func(_ paho.Client, m paho.Message) {
		select {
		case statuses <- append([]byte(nil), m.Payload()...):
		default:
		}
	}); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// A spoofed alarm (ATK-25 style) for the pump, unsigned.
	b, _ := pumpwire.Encode("spoof-1", p.ID(), l.clk.Now(), 99, pumpwire.Alarm{AlarmID: "X-A1", Code: "occlusion_downstream", Phase: "start", Priority: "PH", Type: "ST", Channel: "A"})
	att.Publish(pumpwire.Topic(p.ID(), pumpwire.KindAlarm), 1, false, b).WaitTimeout(waitFor)
	// The pump's own alarm.
	if err := p.InjectFault("A", pump.FaultDoorOpen); err != nil {
		t.Fatal(err)
	}
	l.am.wait(t, "the pump's signed alarm at the alarm manager", isType("ORU", "R40"))
	// Replay a captured signed status.
	if ack, err := l.srv.Command(ctxFor(t), p.ID(), pumpwire.Command{Op: pumpwire.OpStatusRequest}); err != nil || ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("status request: %+v %v", ack, err)
	}
	var st []byte
	select {
	case st = <-statuses:
	case <-time.After(waitFor):
		t.Fatal("no status captured")
	}
	a.Close() // no fresh statuses from the real pump from now on
	att.Publish(pumpwire.Topic(p.ID(), pumpwire.KindStatus), 0, false, st).WaitTimeout(waitFor)
	deadline := time.Now().Add(waitFor)
	nctl := func() int { mu.Lock(); defer mu.Unlock(); return len(ctl) }
	for l.srv.Stats().AuthRefused < 2 || nctl() < 2 { // the counter moves before the hook runs
		if time.Now().After(deadline) {
			t.Fatalf("AuthRefused %d, %d control events, want 2 and 2", l.srv.Stats().AuthRefused, nctl())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, r := range l.srv.Received() {
		if r.Alarm != nil && r.Alarm.AlarmID == "X-A1" {
			t.Fatal("spoofed alarm taken in")
		}
	}
	if n := len(l.am.all(isType("ORU", "R40"))); n != 1 {
		t.Fatalf("%d PCD-04 at the alarm manager, want the pump's one", n)
	}
	mu.Lock()
	defer mu.Unlock()
	codes := ""
	for _, e := range ctl {
		codes += e.Reason + "\n"
	}
	if len(ctl) != 2 || !strings.Contains(codes, "AUTH-UNSIGNED") || !strings.Contains(codes, "AUTH-REPLAY") {
		t.Fatalf("control events:\n%s", codes)
	}
}

// TestCommandSignerBroken: a server whose signer has no key sends nothing
// and reports the refusal.
func TestCommandSignerBroken(t *testing.T) {
	var got []pumpwire.ControlEvent
	var mu sync.Mutex
	l := newLab(t, func(c *Config) {
		c.CommandSigner = &pumpwire.Signer{KeyID: "srv-1"} // no key
		c.OnControl = func(e pumpwire.ControlEvent) { mu.Lock(); got = append(got, e); mu.Unlock() }
	})
	_, err := l.srv.Command(ctxFor(t), "PUMP-0403", pumpwire.Command{Op: pumpwire.OpStop, Channel: "A"})
	if err == nil || !strings.Contains(err.Error(), "no Ed25519 private key") {
		t.Fatalf("command with a broken signer: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Control != pumpwire.CtlSignedCommands || got[0].Action != pumpwire.ActionBlocked || got[0].PumpID != "PUMP-0403" {
		t.Fatalf("control events %+v", got)
	}
}
