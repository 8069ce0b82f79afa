package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/labapi"
)

func init() { roles["gateway"] = serveGateway }

// gatewayRoute is one flow a dual-homed application gateway lets through:
// connections to Listen are relayed to Upstream when their first bytes are
// the route's protocol; anything else is refused and recorded.
type gatewayRoute struct {
	name, listen, upstream, proto string
	allowed, blocked              atomic.Int64
}

// parseRoute reads NAME=LISTEN>UPSTREAM/PROTO, e.g.
// ioc=:2577>172.30.1.5:2577/mllp.
func parseRoute(s string) (*gatewayRoute, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return nil, fmt.Errorf("--route %q: want NAME=LISTEN>UPSTREAM/PROTO", s)
	}
	listen, rest, ok := strings.Cut(rest, ">")
	if !ok || listen == "" {
		return nil, fmt.Errorf("--route %q: missing LISTEN>UPSTREAM", s)
	}
	i := strings.LastIndex(rest, "/")
	if i <= 0 {
		return nil, fmt.Errorf("--route %q: missing /PROTO (mllp, mqtt or http)", s)
	}
	up, proto := rest[:i], rest[i+1:]
	if _, _, err := net.SplitHostPort(up); err != nil {
		return nil, fmt.Errorf("--route %q: upstream %q: %w", s, up, err)
	}
	switch proto {
	case "mllp", "mqtt", "http":
	default:
		return nil, fmt.Errorf("--route %q: protocol %q is not mllp, mqtt or http", s, proto)
	}
	return &gatewayRoute{name: name, listen: listen, upstream: up, proto: proto}, nil
}

// protocolOK checks the first bytes of a connection against the route's
// protocol: an MLLP frame start (0x0B then "MSH"), an MQTT CONNECT packet,
// or an HTTP request line.
func protocolOK(proto string, b []byte) error {
	switch proto {
	case "mllp":
		if len(b) < 4 || b[0] != 0x0b || string(b[1:4]) != "MSH" {
			return fmt.Errorf("not an MLLP-framed HL7 message (first bytes % x)", head(b))
		}
	case "mqtt":
		if len(b) < 2 || b[0] != 0x10 {
			return fmt.Errorf("not an MQTT CONNECT packet (first bytes % x)", head(b))
		}
	case "http":
		for _, m := range []string{"GET ", "HEAD ", "POST ", "PUT "} {
			if strings.HasPrefix(string(b), m) {
				return nil
			}
		}
		return fmt.Errorf("not an HTTP request (first bytes % x)", head(b))
	}
	return nil
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

type gateway struct {
	log    *slog.Logger
	routes []*gatewayRoute
	mu     sync.Mutex
	ev     []lab.Evidence
	lns    []net.Listener
	now    func() time.Time
	labNow func() time.Time
}

const gatewayEvidenceMax = 2000

func (g *gateway) record(e lab.Evidence) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.ev) < gatewayEvidenceMax {
		g.ev = append(g.ev, e)
	}
}

func serveGateway(ctx context.Context, rf *roleFlags, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve gateway", stderr)
	var routes multiFlag
	fs.Var(&routes, "route", "allowed flow NAME=LISTEN>UPSTREAM/PROTO (mllp, mqtt, http), repeatable")
	rf.add(fs, 1)
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(routes) == 0 {
		fmt.Fprintln(stderr, "pumplab serve gateway: at least one --route is required")
		return errUsage
	}
	log := rf.logger(stderr)
	clk, err := rf.clock()
	if err != nil {
		return err
	}
	g := &gateway{log: log, now: time.Now, labNow: clk.Now}
	defer func() {
		for _, ln := range g.lns {
			ln.Close()
		}
	}()
	for _, s := range routes {
		r, err := parseRoute(s)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", r.listen)
		if err != nil {
			return fmt.Errorf("gateway route %s: %w", r.name, err)
		}
		g.lns = append(g.lns, ln)
		g.routes = append(g.routes, r)
		go g.accept(ln, r)
	}
	stop, err := rf.serveControl(map[string]labapi.Handler{
		"stats": func(ctx context.Context, in json.RawMessage) (any, error) {
			var out labapi.GatewayStats
			for _, r := range g.routes {
				out.Routes = append(out.Routes, labapi.RouteStats{Name: r.name, Listen: r.listen, Upstream: r.upstream, Protocol: r.proto,
					Allowed: r.allowed.Load(), Blocked: r.blocked.Load()})
			}
			return out, nil
		},
		"evidence": func(ctx context.Context, in json.RawMessage) (any, error) {
			g.mu.Lock()
			defer g.mu.Unlock()
			return labapi.EvidenceList{Evidence: append([]lab.Evidence{}, g.ev...)}, nil
		},
	}, log)
	if err != nil {
		return err
	}
	defer stop()
	ready(ctx, stdout, "gateway: %d routes", len(g.routes))
	return nil
}

func (g *gateway) accept(ln net.Listener, r *gatewayRoute) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go g.relay(c, r)
	}
}

func (g *gateway) relay(c net.Conn, r *gatewayRoute) {
	defer c.Close()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.ReadAtLeast(c, buf, 4)
	_ = c.SetReadDeadline(time.Time{})
	if err == nil {
		err = protocolOK(r.proto, buf[:n])
	} else {
		err = fmt.Errorf("no %s message within 10 s: %w", r.proto, err)
	}
	if err != nil {
		r.blocked.Add(1)
		g.record(lab.Evidence{Control: "segmentation", Time: g.now(), LabTime: g.labNow(), Target: r.upstream, Action: "blocked",
			Reason: fmt.Sprintf("gateway route %s: %v", r.name, err), Ref: "tcp:" + c.RemoteAddr().String()})
		return
	}
	up, err := net.DialTimeout("tcp", r.upstream, 10*time.Second)
	if err != nil {
		g.log.Warn("gateway: upstream unreachable", "route", r.name, "err", err)
		return
	}
	defer up.Close()
	r.allowed.Add(1)
	if _, err := up.Write(buf[:n]); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
