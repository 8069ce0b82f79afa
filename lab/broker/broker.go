// Package broker gives the lab its MQTT broker behind one small interface:
// the embedded mochi-mqtt broker (the default), Debian's mosquitto started as
// a child process, or any external broker given by URL.
//
// The rest of the lab only needs a URL to connect to and a way to stop (and,
// for fault injection, restart) the broker; mochi's own API does not leak out
// of this package.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Broker is a running MQTT broker.
type Broker interface {
	// URL is what MQTT clients connect to (tcp://host:port or ssl://host:port).
	URL() string
	// Close stops the broker and waits for it to stop.
	Close() error
}

// Restarter is a broker the lab can stop and start again on the same
// address, for broker-outage scenarios.
type Restarter interface {
	Broker
	// Stop closes the listener and every client connection.
	Stop() error
	// Start listens again on the same address.
	Start(ctx context.Context) error
}

// Hook is a mochi hook; postures use it for authentication, ACLs and rate
// limits. Nil Hooks means allow every client and topic (the flat legacy lab).
type Hook = mqtt.Hook

// Embedded is the in-process mochi-mqtt broker.
//
// Its posture controls (docs/broker.md) are Users (password login), TLS with
// a required client certificate (mtls-mqtt), ACL (broker-acl) and RateLimit
// (rate-limit); each reports what it refuses to OnDecision. With none of
// them set the broker lets anyone connect, publish and subscribe (the flat
// legacy lab).
type Embedded struct {
	// Addr to listen on; default 127.0.0.1:0. After the first Start it holds
	// the bound address, so a restart reuses the port.
	Addr string
	// TLS, when set, makes the listener TLS (URL scheme ssl://). For mutual
	// TLS (mtls-mqtt) give a config that requires a client certificate from
	// the lab CA, e.g. lab/pki's ServerTLS("broker"). The handshake runs
	// before mochi sees the connection; failures are reported as decisions.
	TLS *tls.Config
	// HandshakeTimeout bounds a TLS handshake (wall time); default 10s.
	HandshakeTimeout time.Duration
	// Revoked, when set, is asked about the serial of every client
	// certificate after the handshake; true refuses the connection (use
	// lab/pki's IsRevoked; its ServerTLS configs also refuse revoked
	// certificates during the handshake).
	Revoked func(serial *big.Int) bool
	// IdentityFromCert takes a client's identity (for ACL and RateLimit)
	// from its certificate's common name. Otherwise the identity is the
	// user name, or the client id without one.
	IdentityFromCert bool
	// Users, when set, requires a login: user name -> password. Nil lets
	// anyone in.
	Users map[string]string
	// ACL, when set, is the deny-by-default topic ACL (broker-acl).
	ACL *ACL
	// RateLimit, when set, limits each identity's publishes (rate-limit).
	RateLimit *RateLimit
	// OnDecision receives every act of a control; it is called from many
	// goroutines at once and must not block. Nil
	// drops them (the counters in ControlStats still count).
	OnDecision func(Decision)
	// Hooks are added in order; nil means auth.AllowHook, unless a control
	// above is set (then the controls decide; a hook added here that allows
	// every login or topic would defeat them, as mochi allows what any
	// hook allows).
	Hooks []Hook
	// MaxPendingWrites per client (mochi's MaximumClientWritesPending); 0 = mochi default.
	MaxPendingWrites int32
	// Logger; nil discards.
	Logger *slog.Logger

	mu   sync.Mutex
	srv  *mqtt.Server
	done chan struct{}
	n    counters
}

// controlled reports whether any control is set.
func (e *Embedded) controlled() bool {
	return e.Users != nil || e.ACL != nil || e.RateLimit != nil || e.IdentityFromCert
}

func (e *Embedded) report(d Decision) {
	if e.OnDecision != nil {
		e.OnDecision(d)
	}
}

// ControlStats returns what the controls refused since the broker was
// created (restarts keep counting).
func (e *Embedded) ControlStats() ControlStats { return e.n.stats() }

// Start implements Restarter.
func (e *Embedded) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		return errors.New("broker: embedded: already started")
	}
	addr := e.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("broker: embedded: listen %s: %w", addr, err)
	}
	e.Addr = ln.Addr().String()
	if e.RateLimit != nil && (e.RateLimit.PerSecond <= 0 || e.RateLimit.Burst < 1) {
		ln.Close()
		return fmt.Errorf("broker: embedded: rate limit %g/s burst %d: per second must be > 0 and burst >= 1",
			e.RateLimit.PerSecond, e.RateLimit.Burst)
	}
	if e.IdentityFromCert && e.TLS == nil {
		ln.Close()
		return errors.New("broker: embedded: IdentityFromCert needs TLS")
	}
	if e.TLS != nil {
		timeout := e.HandshakeTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		ln = newTLSListener(ln, e.TLS, timeout, e.Revoked, e.report, &e.n)
	}
	log := e.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	caps := mqtt.NewDefaultServerCapabilities()
	if e.MaxPendingWrites > 0 {
		caps.MaximumClientWritesPending = e.MaxPendingWrites
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: log, Capabilities: caps})
	hooks := e.Hooks
	if e.controlled() {
		hooks = append([]Hook{&controls{users: e.Users, identityFromCert: e.IdentityFromCert, acl: e.ACL,
			rate: e.RateLimit, report: e.report, n: &e.n, ids: map[*mqtt.Client]string{},
			buckets: map[string]*bucket{}}}, hooks...)
	} else if len(hooks) == 0 {
		hooks = []Hook{new(auth.AllowHook)}
	}
	for _, h := range hooks {
		if err := srv.AddHook(h, nil); err != nil {
			ln.Close()
			return fmt.Errorf("broker: embedded: add hook %s: %w", h.ID(), err)
		}
	}
	if err := srv.AddListener(listeners.NewNet("lab", ln)); err != nil {
		ln.Close()
		return fmt.Errorf("broker: embedded: add listener: %w", err)
	}
	if err := srv.Serve(); err != nil {
		ln.Close()
		return fmt.Errorf("broker: embedded: serve: %w", err)
	}
	e.srv = srv
	return nil
}

// URL implements Broker.
func (e *Embedded) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.TLS != nil {
		return "ssl://" + e.Addr
	}
	return "tcp://" + e.Addr
}

// Stop implements Restarter.
func (e *Embedded) Stop() error {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Close(); err != nil {
		return fmt.Errorf("broker: embedded: close: %w", err)
	}
	return nil
}

// Close implements Broker.
func (e *Embedded) Close() error { return e.Stop() }

// Publish sends a message from the broker itself (inline client), for lab
// fault injection and tests.
func (e *Embedded) Publish(topic string, payload []byte, retain bool, qos byte) error {
	e.mu.Lock()
	srv := e.srv
	e.mu.Unlock()
	if srv == nil {
		return errors.New("broker: embedded: not running")
	}
	return srv.Publish(topic, payload, retain, qos)
}

// Clients reports the number of connected clients.
func (e *Embedded) Clients() int {
	e.mu.Lock()
	srv := e.srv
	e.mu.Unlock()
	if srv == nil {
		return 0
	}
	n := 0
	for _, cl := range srv.Clients.GetAll() {
		if !cl.Closed() && !cl.Net.Inline {
			n++
		}
	}
	return n
}

// External is a broker the lab does not run: only its URL is known.
type External struct{ Address string }

// URL implements Broker.
func (x External) URL() string { return x.Address }

// Close implements Broker; the lab does not own the broker.
func (x External) Close() error { return nil }
