package inproc

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pumplab/pumplab/lab"
)

// TestInterposePumpLink puts a counting TCP relay on the pumps' link to the
// broker: every pump reconnects through it, the pump server keeps seeing
// them, the pumps' configuration does not change, and restore takes them
// back to the broker directly.
func TestInterposePumpLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Start(ctx, lab.Topology{Pumps: 2, Speed: 60}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	direct := l.Broker.URL()
	_, upstreamAddr, _ := strings.Cut(direct, "://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns, upBytes atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstreamAddr)
			if err != nil {
				c.Close()
				continue
			}
			conns.Add(1)
			go func() { n, _ := io.Copy(u, c); upBytes.Add(n); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	upstream, restore, err := l.Network().Interpose(ctx, lab.LinkPumpsToBroker, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if upstream != upstreamAddr {
		t.Fatalf("upstream %s, want the broker %s", upstream, upstreamAddr)
	}
	if n := conns.Load(); n < 2 {
		t.Fatalf("%d connections through the relay, want one per pump (2)", n)
	}
	for _, id := range l.Pumps() {
		if got := l.Agents[id].BrokerURL(); !strings.HasSuffix(got, ln.Addr().String()) {
			t.Fatalf("%s uses %s, want the relay", id, got)
		}
		if v, err := l.PumpModels[id].Setting("server_address"); err != nil || strings.Contains(v, ln.Addr().String()) {
			t.Fatalf("%s server_address setting %q (%v): the tap must not change the pump", id, v, err)
		}
	}
	if err := l.WaitOnline(ctx, 2); err != nil {
		t.Fatalf("pump server lost the pumps behind the relay: %v", err)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	for _, id := range l.Pumps() {
		if got := l.Agents[id].BrokerURL(); got != direct {
			t.Fatalf("after restore %s uses %s, want %s", id, got, direct)
		}
	}
	if _, _, err := l.Network().Interpose(ctx, lab.LinkPumpsToBroker, "192.0.2.1:1883"); err == nil {
		t.Fatal("interposing a non-loopback address was accepted")
	}
}
