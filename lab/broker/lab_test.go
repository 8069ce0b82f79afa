package broker

import (
	"context"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/lab/pki"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpserver"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// TestControlsLetTherapyThrough runs the real pump agent and pump server
// against the broker with every control on (mutual TLS, identity from the
// certificate, ACL, rate limit): the pump registers, is programmed and its
// alarm reaches the server, and no control refuses anything. This is the
// "no control blocks legitimate therapy" half of the broker controls.
func TestControlsLetTherapyThrough(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clk := clock.NewFake(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	lab, err := pki.New(pki.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for n, k := range map[string]pki.Kind{"broker": pki.Service, "pumpserver": pki.Service, "PUMP-0001": pki.Device} {
		if _, err := lab.Issue(n, k, nil); err != nil {
			t.Fatal(err)
		}
	}
	srvTLS, _ := lab.ServerTLS("broker")
	d := newDecisions()
	b := &Embedded{TLS: srvTLS, IdentityFromCert: true, ACL: &ACL{Monitor: "monitor", LogDenials: true},
		RateLimit: &RateLimit{PerSecond: 50, Burst: 100}, OnDecision: d.add}
	startBroker(t, b)

	psTLS, _ := lab.ClientTLS("pumpserver")
	srv := pumpserver.New(pumpserver.Config{BrokerURL: b.URL(), TLS: psTLS, Clock: clk})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p := pump.New(pump.Config{ID: "PUMP-0001", Clock: clk})
	pTLS, _ := lab.ClientTLS("PUMP-0001")
	a := pump.NewAgent(p, pump.AgentConfig{BrokerURL: b.URL(), TLS: pTLS, StatusInterval: time.Hour})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := srv.Wait(ctx, func(v pumpserver.View) bool { pi, ok := v.Pump("PUMP-0001"); return ok && pi.Online }); err != nil {
		t.Fatalf("pump not online at the server: %v", err)
	}
	ack, err := srv.Program(ctx, "PUMP-0001", "A", pumpwire.Program{OrderID: "ORD-1", Action: "RE", PatientID: "MRN0099", RateMLH: 50, VTBI: 100})
	if err != nil || ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("program over the controlled broker: %+v %v", ack, err)
	}
	if err := p.InjectFault("A", pump.FaultOcclusionDown); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(ctx, func(v pumpserver.View) bool {
		for _, r := range v.Received() {
			if r.Alarm != nil && r.Alarm.Code == string(pump.FaultOcclusionDown) {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("alarm did not reach the server: %v", err)
	}
	if got := d.snapshot(); len(got) != 0 {
		t.Errorf("controls acted on legitimate traffic: %+v", got)
	}
	if st := b.ControlStats(); st != (ControlStats{}) {
		t.Errorf("ControlStats %+v, want nothing refused", st)
	}
}
