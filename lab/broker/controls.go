package broker

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// Control names reported in Decision.Control (the posture's control names).
const (
	ControlMTLS      = "mtls-mqtt"
	ControlACL       = "broker-acl"
	ControlRateLimit = "rate-limit"
)

// Decision actions.
const (
	Blocked = "blocked"
	Allowed = "allowed"
	Flagged = "flagged"
)

// Decision is one act of a broker control, for lab evidence and the syslog
// audit: a refused handshake or login, a denied publish or subscribe, a
// client that went over its rate.
type Decision struct {
	// Control is ControlMTLS, ControlACL or ControlRateLimit.
	Control string
	// Action is Blocked (the broker refused or dropped something).
	Action string
	// Target is what was protected: the pump id whose topic was targeted,
	// else "broker".
	Target string
	// Source is who: the client identity (certificate CN, user name or
	// client id), or the remote address when the handshake failed.
	Source string
	// Reason says why, in words.
	Reason string
	// Ref is the topic or filter, or the connection ("conn 127.0.0.1:41234").
	Ref string
}

// ACL is the deny-by-default topic ACL of the broker (posture control
// broker-acl), by client identity (see Embedded.IdentityFromCert):
//
//   - a pump P publishes only pumplab/v1/pumps/P/{status,events,alarms,online,cmd/ack}
//     and subscribes only to pumplab/v1/pumps/P/cmd, pumplab/v1/pumps/P/receipt
//     and pumplab/v1/server/online (exact filters, no wildcards);
//   - the pump server publishes only pumplab/v1/pumps/+/cmd,
//     pumplab/v1/pumps/+/receipt and pumplab/v1/server/online, and subscribes to
//     any filter under pumplab/v1/;
//   - the monitor subscribes to any filter and publishes nothing;
//   - anyone else can do nothing.
//
// A client id that names a pump or the pump server must be that client's
// identity (else the connection is refused): no one takes over another's
// session.
type ACL struct {
	// Server is the pump server's identity; default "pumpserver".
	Server string
	// Monitor is the read-only identity; "" means none.
	Monitor string
	// IsPump says whether an identity is a pump; nil means DefaultIsPump.
	IsPump func(identity string) bool
	// LogDenials reports every denial as a Decision (posture log_denials).
	// Refused connections are always reported.
	LogDenials bool
}

// DefaultIsPump reports whether id looks like a lab pump id: "PUMP-"
// followed by characters valid in a pump id (pumpwire.ValidID).
func DefaultIsPump(id string) bool {
	return strings.HasPrefix(id, "PUMP-") && len(id) > len("PUMP-") && pumpwire.ValidID(id) == nil
}

// RateLimit is a token bucket per client identity on publishes (posture
// control rate-limit, target mqtt): PerSecond tokens a wall second, at most
// Burst saved. A publish over the limit is dropped (acknowledged at QoS 1
// as any accepted publish, so a client sees no error, but delivered to
// nobody and not retained) and the client stays connected; one Decision is
// reported per run of drops (the next one after a publish got through
// again).
type RateLimit struct {
	PerSecond float64
	Burst     int
	// Exempt lists identities the limit does not apply to, e.g. the pump
	// server, whose publish rate (commands, receipts) grows with the fleet.
	Exempt []string
	// Now reads the wall clock; nil means time.Now.
	Now func() time.Time
}

// ControlStats counts what the controls refused.
type ControlStats struct {
	HandshakeFailures int64 // failed TLS handshakes and revoked certificates
	LoginsRefused     int64 // bad password, unknown user, client id not the identity's, will topic denied
	PublishDenied     int64 // publishes dropped by the ACL
	SubscribeDenied   int64 // subscription filters refused by the ACL
	RateLimited       int64 // publishes dropped by the rate limit
}

type counters struct {
	handshake, logins, pubDenied, subDenied, limited atomic.Int64
}

func (c *counters) stats() ControlStats {
	return ControlStats{HandshakeFailures: c.handshake.Load(), LoginsRefused: c.logins.Load(),
		PublishDenied: c.pubDenied.Load(), SubscribeDenied: c.subDenied.Load(), RateLimited: c.limited.Load()}
}

// controls is the mochi hook of the posture controls.
type controls struct {
	mqtt.HookBase
	users            map[string]string
	identityFromCert bool
	acl              *ACL
	rate             *RateLimit
	report           func(Decision)
	n                *counters

	mu      sync.Mutex
	ids     map[*mqtt.Client]string
	buckets map[string]*bucket
}

type bucket struct {
	tokens   float64
	last     time.Time
	limiting bool
}

func (h *controls) ID() string { return "pumplab-controls" }

func (h *controls) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish,
		mqtt.OnSubscribed, mqtt.OnDisconnect}, []byte{b})
}

func (h *controls) isPump(id string) bool {
	if h.acl != nil && h.acl.IsPump != nil {
		return h.acl.IsPump(id)
	}
	return DefaultIsPump(id)
}

func (h *controls) server() string {
	if h.acl != nil && h.acl.Server != "" {
		return h.acl.Server
	}
	return "pumpserver"
}

// identity works out who cl is; "" with a reason when it cannot.
func (h *controls) identity(cl *mqtt.Client) (string, string) {
	if h.identityFromCert {
		tc, ok := cl.Net.Conn.(*tls.Conn)
		if !ok {
			return "", "identity from certificate, but the connection is not TLS"
		}
		certs := tc.ConnectionState().PeerCertificates
		if len(certs) == 0 || certs[0].Subject.CommonName == "" {
			return "", "identity from certificate, but the client certificate has no common name"
		}
		return certs[0].Subject.CommonName, ""
	}
	if len(cl.Properties.Username) > 0 {
		return string(cl.Properties.Username), ""
	}
	return cl.ID, ""
}

func (h *controls) who(cl *mqtt.Client) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id, ok := h.ids[cl]; ok {
		return id
	}
	return cl.ID
}

func (h *controls) refuse(cl *mqtt.Client, source, reason string) bool {
	h.n.logins.Add(1)
	ctl := ControlACL
	if h.identityFromCert {
		ctl = ControlMTLS
	}
	h.report(Decision{Control: ctl, Action: Blocked, Target: "broker", Source: source, Reason: reason,
		Ref: "conn " + cl.Net.Remote})
	return false
}

// OnConnectAuthenticate checks the password, works out the identity and
// checks the client id and the will topic against the ACL.
func (h *controls) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	if h.users != nil {
		want, ok := h.users[user]
		// Compare even for an unknown user, so timing does not tell users apart.
		match := subtle.ConstantTimeCompare([]byte(want), pk.Connect.Password) == 1
		if !ok || !match || !pk.Connect.PasswordFlag {
			src := user
			if src == "" {
				src = "client " + cl.ID
			}
			h.refuse(cl, src, fmt.Sprintf("bad user name or password (user %q)", user))
			return false
		}
	}
	id, why := h.identity(cl)
	if id == "" {
		return h.refuse(cl, "client "+cl.ID, why)
	}
	if h.acl != nil {
		if (h.isPump(cl.ID) || cl.ID == h.server()) && cl.ID != id {
			return h.refuse(cl, id, fmt.Sprintf("client id %q is not the identity %q (session takeover refused)", cl.ID, id))
		}
		if pk.Connect.WillFlag {
			if ok, why := h.mayPublish(id, pk.Connect.WillTopic); !ok {
				h.n.pubDenied.Add(1)
				return h.refuse(cl, id, "will topic "+pk.Connect.WillTopic+" denied: "+why)
			}
		}
	}
	h.mu.Lock()
	h.ids[cl] = id
	h.mu.Unlock()
	return true
}

// OnDisconnect forgets the client.
func (h *controls) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.mu.Lock()
	delete(h.ids, cl)
	h.mu.Unlock()
}

// OnACLCheck is asked for subscriptions and for every delivery (write is
// false); publishes are checked in OnPublish.
func (h *controls) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write || h.acl == nil {
		return true // publishes: OnPublish
	}
	ok, _ := h.maySubscribe(h.who(cl), topic)
	return ok
}

// OnSubscribed reports the filters the ACL refused.
func (h *controls) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	if h.acl == nil {
		return
	}
	id := h.who(cl)
	for i, f := range pk.Filters {
		if i >= len(codes) || codes[i] < packets.ErrUnspecifiedError.Code {
			continue
		}
		ok, why := h.maySubscribe(id, f.Filter)
		if ok {
			continue // refused for another reason (invalid filter)
		}
		h.n.subDenied.Add(1)
		if h.acl.LogDenials {
			h.report(Decision{Control: ControlACL, Action: Blocked, Target: targetOf(f.Filter), Source: id,
				Reason: "subscribe denied: " + why, Ref: f.Filter})
		}
	}
}

// OnPublish applies the publish ACL, then the rate limit. Both drop with
// CodeSuccessIgnore: acknowledged, delivered to nobody, not retained.
func (h *controls) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	id := h.who(cl)
	if h.acl != nil {
		if ok, why := h.mayPublish(id, pk.TopicName); !ok {
			h.n.pubDenied.Add(1)
			if h.acl.LogDenials {
				h.report(Decision{Control: ControlACL, Action: Blocked, Target: targetOf(pk.TopicName), Source: id,
					Reason: "publish denied: " + why, Ref: pk.TopicName})
			}
			return pk, packets.CodeSuccessIgnore
		}
	}
	if h.rate != nil && !slices.Contains(h.rate.Exempt, id) && !h.take(id, pk.TopicName) {
		return pk, packets.CodeSuccessIgnore
	}
	return pk, nil
}

// take spends a token of id's bucket; false means over the limit.
func (h *controls) take(id, topic string) bool {
	now := time.Now()
	if h.rate.Now != nil {
		now = h.rate.Now()
	}
	burst := float64(max(h.rate.Burst, 1))
	h.mu.Lock()
	b, ok := h.buckets[id]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		h.buckets[id] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*h.rate.PerSecond)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		b.limiting = false
		h.mu.Unlock()
		return true
	}
	first := !b.limiting
	b.limiting = true
	h.mu.Unlock()
	h.n.limited.Add(1)
	if first {
		h.report(Decision{Control: ControlRateLimit, Action: Blocked, Target: "broker", Source: id,
			Reason: fmt.Sprintf("over %g publishes/s (burst %d): publishes dropped until the rate falls", h.rate.PerSecond, h.rate.Burst),
			Ref:    topic})
	}
	return false
}

// targetOf names the pump whose topic t is, else "broker".
func targetOf(t string) string {
	if rest, ok := strings.CutPrefix(t, pumpwire.Prefix); ok {
		if id, _, ok := strings.Cut(rest, "/"); ok && pumpwire.ValidID(id) == nil {
			return id
		}
	}
	return "broker"
}

var pumpPublishes = []pumpwire.Kind{pumpwire.KindStatus, pumpwire.KindEvent, pumpwire.KindAlarm,
	pumpwire.KindOnline, pumpwire.KindAck}

// mayPublish is the publish rule of the ACL.
func (h *controls) mayPublish(id, topic string) (bool, string) {
	switch {
	case id == h.server():
		if topic == pumpwire.ServerOnlineTopic {
			return true, ""
		}
		if _, k, err := pumpwire.ParseTopic(topic); err == nil && (k == pumpwire.KindCmd || k == pumpwire.KindReceipt) {
			return true, ""
		}
		return false, "the pump server publishes only pump commands, receipts and its presence"
	case h.acl.Monitor != "" && id == h.acl.Monitor:
		return false, "the monitor identity is read-only"
	case h.isPump(id):
		for _, k := range pumpPublishes {
			if topic == pumpwire.Topic(id, k) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("pump %s publishes only its own status, events, alarms, online and cmd/ack", id)
	}
	return false, fmt.Sprintf("identity %q has no publish rights (deny by default)", id)
}

// maySubscribe is the subscribe (and delivery) rule of the ACL.
func (h *controls) maySubscribe(id, filter string) (bool, string) {
	switch {
	case id == h.server():
		if strings.HasPrefix(filter, "pumplab/v1/") {
			return true, ""
		}
		return false, "the pump server subscribes only under pumplab/v1/"
	case h.acl.Monitor != "" && id == h.acl.Monitor:
		return true, ""
	case h.isPump(id):
		if filter == pumpwire.Topic(id, pumpwire.KindCmd) || filter == pumpwire.Topic(id, pumpwire.KindReceipt) ||
			filter == pumpwire.ServerOnlineTopic {
			return true, ""
		}
		return false, fmt.Sprintf("pump %s subscribes only to its own cmd and receipt and to the server presence", id)
	}
	return false, fmt.Sprintf("identity %q has no subscribe rights (deny by default)", id)
}

// ---- TLS listener ----

// tlsListener does the TLS handshake of each accepted connection in its own
// goroutine and hands mochi only the connections that completed it; the
// failures (plain MQTT on the TLS port, no certificate, unknown CA, revoked)
// are reported as decisions.
type tlsListener struct {
	inner   net.Listener
	conf    *tls.Config
	timeout time.Duration
	revoked func(*big.Int) bool
	report  func(Decision)
	n       *counters

	ready  chan net.Conn
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	mu     sync.Mutex
	active map[net.Conn]struct{}
}

func newTLSListener(inner net.Listener, conf *tls.Config, timeout time.Duration, revoked func(*big.Int) bool,
	report func(Decision), n *counters) *tlsListener {
	l := &tlsListener{inner: inner, conf: conf, timeout: timeout, revoked: revoked, report: report, n: n,
		ready: make(chan net.Conn), done: make(chan struct{}), active: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.Close()
			return
		}
		l.mu.Lock()
		select {
		case <-l.done:
			l.mu.Unlock()
			_ = c.Close()
			return
		default:
		}
		l.active[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.active, raw)
		l.mu.Unlock()
	}()
	tc := tls.Server(raw, l.conf)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	remote := raw.RemoteAddr().String()
	fail := func(reason string) {
		l.n.handshake.Add(1)
		l.report(Decision{Control: ControlMTLS, Action: Blocked, Target: "broker", Source: remote,
			Reason: reason, Ref: "conn " + remote})
		_ = raw.Close()
	}
	if err != nil {
		fail("TLS handshake failed: " + describeHandshake(err))
		return
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 && l.revoked != nil && l.revoked(certs[0].SerialNumber) {
		remote = certs[0].Subject.CommonName + "@" + remote
		fail(fmt.Sprintf("client certificate %s (serial %s) is revoked", certs[0].Subject.CommonName, certs[0].SerialNumber))
		return
	}
	select {
	case l.ready <- tc:
	case <-l.done:
		_ = raw.Close()
	}
}

// describeHandshake says in words what a failed handshake means.
func describeHandshake(err error) string {
	var rh tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.Is(err, io.EOF):
		return "the client closed the connection without a TLS handshake (a port probe?): " + msg
	case errors.As(err, &rh):
		return "the client did not speak TLS (plain MQTT on the TLS port?): " + msg
	case strings.Contains(msg, "didn't provide a certificate"):
		return "the client presented no certificate: " + msg
	case strings.Contains(msg, "unknown authority"):
		return "the client certificate is not from the lab CA: " + msg
	case strings.Contains(msg, "revoked"):
		return "the client certificate is revoked: " + msg
	case strings.Contains(msg, "expired") || strings.Contains(msg, "not yet valid"):
		return "the client certificate is not valid at lab time: " + msg
	}
	return msg
}

func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tlsListener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
		for c := range l.active {
			_ = c.Close() // interrupts handshakes in progress
		}
		l.mu.Unlock()
		err = l.inner.Close()
	})
	return err
}

func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }
