package attack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// fakeLookup resolves a few test names without DNS.
func fakeLookup(_ context.Context, host string) ([]netip.Addr, error) {
	switch host {
	case "loop.lab":
		return []netip.Addr{netip.MustParseAddr("127.0.0.2")}, nil
	case "evil.example":
		return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil
	case "mixed.example": // one loopback, one outside: refused
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("198.51.100.7")}, nil
	case "lab.internal":
		return []netip.Addr{netip.MustParseAddr("172.30.0.5")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestTargetsAllowAndRefuse(t *testing.T) {
	ctx := testCtx(t)
	tg := &Targets{Lookup: fakeLookup}
	for _, ok := range []string{"127.0.0.1:1883", "127.9.9.9:1", "[::1]:2575", "localhost:2575", "LOCALHOST", "loop.lab:80", "127.0.0.1", "[::ffff:127.0.0.1]:1"} {
		if err := tg.Check(ctx, ok); err != nil {
			t.Errorf("Check(%q) = %v, want allowed", ok, err)
		}
	}
	refused := []string{"192.0.2.1:2575", "10.0.0.1:1883", "[2001:db8::1]:1", "evil.example:2575", "mixed.example:1883",
		"www.example.com:80", "lab.internal:2575", "172.30.0.5:1", "0.0.0.0:1", ":2575", "[::]:1", "8.8.8.8"}
	for _, bad := range refused {
		if err := tg.Check(ctx, bad); !errors.Is(err, ErrRefused) {
			t.Errorf("Check(%q) = %v, want ErrRefused", bad, err)
		}
	}
	// A lab network added explicitly opens exactly that prefix.
	if err := tg.AddLab("172.30.0.0/24"); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"lab.internal:2575", "172.30.0.5:1", "172.30.0.254:1"} {
		if err := tg.Check(ctx, ok); err != nil {
			t.Errorf("after AddLab: Check(%q) = %v, want allowed", ok, err)
		}
	}
	for _, bad := range []string{"172.30.1.5:1", "10.0.0.1:1", "evil.example:1"} {
		if err := tg.Check(ctx, bad); !errors.Is(err, ErrRefused) {
			t.Errorf("after AddLab: Check(%q) = %v, want ErrRefused", bad, err)
		}
	}
	for _, wide := range []string{"0.0.0.0/0", "10.0.0.0/7", "::/0", "2001:db8::/16", "not-a-cidr", "::ffff:172.30.0.0/120"} {
		if err := tg.AddLab(wide); err == nil {
			t.Errorf("AddLab(%q) accepted", wide)
		}
	}
	if l, err := tg.Listen(ctx, ""); err != nil {
		t.Errorf("Listen on the default address: %v", err)
	} else {
		if a := l.Addr().(*net.TCPAddr); !a.IP.IsLoopback() {
			t.Errorf("default listen address %v", a)
		}
		l.Close()
	}
	for _, bad := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		if l, err := tg.Listen(ctx, bad); !errors.Is(err, ErrRefused) {
			if l != nil {
				l.Close()
			}
			t.Errorf("Listen(%q) = %v, want ErrRefused", bad, err)
		}
	}
	var nilTargets *Targets // nil is loopback only
	if err := nilTargets.Check(ctx, "127.0.0.1:1"); err != nil {
		t.Errorf("nil targets refused loopback: %v", err)
	}
	if err := nilTargets.Check(ctx, "10.0.0.1:1"); !errors.Is(err, ErrRefused) {
		t.Errorf("nil targets allowed 10.0.0.1: %v", err)
	}
}

// TestRefusedBeforeAnyPacket drives every helper at refused targets with a
// dialer that counts attempts: none may be made.
func TestRefusedBeforeAnyPacket(t *testing.T) {
	ctx := testCtx(t)
	var dials atomic.Int64
	tg := &Targets{Lookup: fakeLookup, Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("dial attempted")
	}}
	lim := FloodLimits{Count: 10, Duration: time.Second}
	msg := ForgeRGV(ForgedOrder{})
	for _, addr := range []string{"192.0.2.1:2575", "10.0.0.1:1883", "evil.example:2575", "mixed.example:2575", "nowhere.invalid:1"} {
		checks := map[string]error{}
		_, checks["SendMLLP"] = SendMLLP(ctx, tg, addr, nil, msg.Bytes())
		_, checks["SendHL7"] = SendHL7(ctx, tg, addr, nil, msg)
		_, checks["Replay"] = Replay(ctx, tg, []Frame{{Dir: ToServer, Data: msg.Bytes()}}, addr)
		_, checks["FloodMLLP messages"] = FloodMLLP(ctx, tg, addr, nil, FloodMessages, func(int) []byte { return msg.Bytes() }, lim)
		_, checks["FloodMLLP connections"] = FloodMLLP(ctx, tg, addr, nil, FloodConnections, func(int) []byte { return msg.Bytes() }, lim)
		_, checks["DialMQTT"] = DialMQTT(ctx, MQTTConfig{Broker: "tcp://" + addr, Targets: tg})
		checks["MLLPProxy upstream"] = NewMLLPProxy(MLLPProxyConfig{Upstream: addr, Targets: tg}).Start(ctx)
		checks["MQTTProxy upstream"] = NewMQTTProxy(MQTTProxyConfig{Upstream: addr, Targets: tg}).Start(ctx)
		checks["MLLPProxy listen"] = NewMLLPProxy(MLLPProxyConfig{Upstream: "127.0.0.1:1", Listen: addr, Targets: tg}).Start(ctx)
		checks["MQTTProxy listen"] = NewMQTTProxy(MQTTProxyConfig{Upstream: "127.0.0.1:1", Listen: addr, Targets: tg}).Start(ctx)
		for name, err := range checks {
			if !errors.Is(err, ErrRefused) {
				t.Errorf("%s to %s: err = %v, want ErrRefused", name, addr, err)
			}
		}
	}
	if n := dials.Load(); n != 0 {
		t.Fatalf("%d connection attempts to refused targets", n)
	}
	// The counter works: an allowed target is dialled.
	_, err := SendMLLP(ctx, tg, "127.0.0.1:9", nil, msg.Bytes())
	if err == nil || errors.Is(err, ErrRefused) || dials.Load() != 1 {
		t.Fatalf("allowed target: err = %v, dials = %d; want a dial failure after 1 attempt", err, dials.Load())
	}
	// ForgeCommand never reaches the network without a connection; the
	// pump id is checked too.
	if _, err := (&MQTT{}).ForgeCommand(ctx, "bad/id", pumpwire.Command{Op: pumpwire.OpStop}); err == nil {
		t.Fatal("ForgeCommand accepted a pump id with a slash")
	}
}
