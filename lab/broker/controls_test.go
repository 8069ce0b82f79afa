package broker

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/pumplab/pumplab/lab/pki"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

const wait = 10 * time.Second

// decisions collects what a broker reports.
type decisions struct {
	mu      sync.Mutex
	all     []Decision
	changed chan struct{}
}

func newDecisions() *decisions { return &decisions{changed: make(chan struct{}, 1)} }

func (d *decisions) add(x Decision) {
	d.mu.Lock()
	d.all = append(d.all, x)
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

func (d *decisions) snapshot() []Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Decision(nil), d.all...)
}

// await returns the first decision matching ok, failing the test after
// wait.
func (d *decisions) await(t *testing.T, what string, ok func(Decision) bool) Decision {
	t.Helper()
	deadline := time.After(wait)
	for {
		for _, x := range d.snapshot() {
			if ok(x) {
				return x
			}
		}
		select {
		case <-d.changed:
		case <-deadline:
			t.Fatalf("no decision %s; got %+v", what, d.snapshot())
		}
	}
}

func (d *decisions) count(ok func(Decision) bool) int {
	n := 0
	for _, x := range d.snapshot() {
		if ok(x) {
			n++
		}
	}
	return n
}

type labPKI struct {
	*pki.PKI
}

func newLabPKI(t *testing.T, names map[string]pki.Kind) labPKI {
	t.Helper()
	p, err := pki.New(pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Issue("broker", pki.Service, nil); err != nil {
		t.Fatal(err)
	}
	for n, k := range names {
		if _, err := p.Issue(n, k, nil); err != nil {
			t.Fatal(err)
		}
	}
	return labPKI{p}
}

func (p labPKI) client(t *testing.T, name string) *tls.Config {
	t.Helper()
	c, err := p.ClientTLS(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type connOpts struct {
	clientID string
	tls      *tls.Config
	user     string
	password string
	will     string // will topic
}

// connect dials once: MQTT 3.1.1 only (paho otherwise retries a refused
// connect as MQTT 3.1, which would count every refusal twice).
func connect(url string, o connOpts) (paho.Client, error) {
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(o.clientID).SetConnectTimeout(wait).
		SetAutoReconnect(false).SetConnectRetry(false).SetProtocolVersion(4).SetTLSConfig(o.tls).SetUsername(o.user).SetPassword(o.password)
	if o.will != "" {
		opts.SetWill(o.will, "gone", 1, true)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, context.DeadlineExceeded
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	return c, nil
}

func mustConnect(t *testing.T, url string, o connOpts) paho.Client {
	t.Helper()
	c, err := connect(url, o)
	if err != nil {
		t.Fatalf("connect %s: %v", o.clientID, err)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func startBroker(t *testing.T, b *Embedded) {
	t.Helper()
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
}

// inbox subscribes c to filter and collects the payloads by topic.
type inbox struct {
	mu   sync.Mutex
	msgs []string // "topic payload"
	got  chan struct{}
}

func subscribe(t *testing.T, c paho.Client, filter string) *inbox {
	t.Helper()
	in := &inbox{got: make(chan struct{}, 1)}
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		in.mu.Lock()
		in.msgs = append(in.msgs, m.Topic()+" "+string(m.Payload()))
		in.mu.Unlock()
		select {
		case in.got <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	if code := tok.(*paho.SubscribeToken).Result()[filter]; code >= 0x80 {
		t.Fatalf("subscribe %s refused (0x%02x)", filter, code)
	}
	return in
}

// until waits for a message containing s and returns every message so far.
func (in *inbox) until(t *testing.T, s string) []string {
	t.Helper()
	deadline := time.After(wait)
	for {
		in.mu.Lock()
		msgs := append([]string(nil), in.msgs...)
		in.mu.Unlock()
		for _, m := range msgs {
			if strings.Contains(m, s) {
				return msgs
			}
		}
		select {
		case <-in.got:
		case <-deadline:
			t.Fatalf("message %q never arrived; got %q", s, msgs)
		}
	}
}

func publish(t *testing.T, c paho.Client, topic, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// subCode subscribes and returns the SUBACK return code.
func subCode(t *testing.T, c paho.Client, filter string) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, func(paho.Client, paho.Message) {})
	if !tok.WaitTimeout(wait) {
		t.Fatalf("subscribe %s: no SUBACK", filter)
	}
	return tok.(*paho.SubscribeToken).Result()[filter]
}

func TestMutualTLSRefusesBadClients(t *testing.T) {
	lab := newLabPKI(t, map[string]pki.Kind{"PUMP-0001": pki.Device, "PUMP-0002": pki.Device})
	other := newLabPKI(t, map[string]pki.Kind{"PUMP-0003": pki.Device})
	srvTLS, err := lab.ServerTLS("broker")
	if err != nil {
		t.Fatal(err)
	}
	d := newDecisions()
	b := &Embedded{TLS: srvTLS, IdentityFromCert: true, OnDecision: d.add}
	startBroker(t, b)
	if !strings.HasPrefix(b.URL(), "ssl://127.0.0.1:") {
		t.Fatalf("URL %s, want ssl://127.0.0.1:port", b.URL())
	}

	// A lab pump with its certificate gets in.
	mustConnect(t, b.URL(), connOpts{clientID: "PUMP-0001", tls: lab.client(t, "PUMP-0001")})

	isMTLS := func(part string) func(Decision) bool {
		return func(x Decision) bool {
			return x.Control == ControlMTLS && x.Action == Blocked && x.Target == "broker" && strings.Contains(x.Reason, part)
		}
	}
	cases := []struct {
		name, url string
		tls       *tls.Config
		reason    string
	}{
		{"plain MQTT into the TLS port", strings.Replace(b.URL(), "ssl://", "tcp://", 1), nil, "did not speak TLS"},
		{"no client certificate", b.URL(), &tls.Config{RootCAs: lab.Pool()}, "no certificate"},
		{"certificate of another CA", b.URL(), func() *tls.Config {
			c := other.client(t, "PUMP-0003")
			c.RootCAs = lab.Pool() // trusts the broker, presents a foreign certificate
			return c
		}(), "not from the lab CA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := d.count(isMTLS(tc.reason))
			if c, err := connect(tc.url, connOpts{clientID: "x", tls: tc.tls}); err == nil {
				c.Disconnect(0)
				t.Fatal("connected")
			}
			x := d.await(t, tc.reason, func(x Decision) bool { return isMTLS(tc.reason)(x) && d.count(isMTLS(tc.reason)) > before })
			if !strings.HasPrefix(x.Source, "127.0.0.1:") || x.Ref != "conn "+x.Source {
				t.Errorf("decision %+v: source and ref should name the remote address", x)
			}
		})
	}

	// Decommission: revoked certificates are refused at connect.
	if err := lab.Revoke("PUMP-0002"); err != nil {
		t.Fatal(err)
	}
	if c, err := connect(b.URL(), connOpts{clientID: "PUMP-0002", tls: lab.client(t, "PUMP-0002")}); err == nil {
		c.Disconnect(0)
		t.Fatal("revoked certificate connected")
	}
	d.await(t, "revoked", isMTLS("revoked"))
	if st := b.ControlStats(); st.HandshakeFailures != 4 {
		t.Errorf("ControlStats %+v, want 4 handshake failures", st)
	}
}

func TestRevokedFuncRefusesAfterHandshake(t *testing.T) {
	lab := newLabPKI(t, map[string]pki.Kind{"PUMP-0001": pki.Device, "PUMP-0002": pki.Device})
	srvTLS, _ := lab.ServerTLS("broker")
	srvTLS.VerifyPeerCertificate = nil // a config built without the PKI's hook
	d := newDecisions()
	b := &Embedded{TLS: srvTLS, IdentityFromCert: true, Revoked: lab.IsRevoked, OnDecision: d.add}
	startBroker(t, b)
	if err := lab.Revoke("PUMP-0002"); err != nil {
		t.Fatal(err)
	}
	if c, err := connect(b.URL(), connOpts{clientID: "PUMP-0002", tls: lab.client(t, "PUMP-0002")}); err == nil {
		c.Disconnect(0)
		t.Fatal("revoked certificate connected")
	}
	x := d.await(t, "revoked", func(x Decision) bool { return x.Control == ControlMTLS && strings.Contains(x.Reason, "revoked") })
	if !strings.Contains(x.Reason, "PUMP-0002") || !strings.HasPrefix(x.Source, "PUMP-0002@127.0.0.1:") {
		t.Errorf("decision %+v should name the certificate", x)
	}
	mustConnect(t, b.URL(), connOpts{clientID: "PUMP-0001", tls: lab.client(t, "PUMP-0001")})
}

func aclBroker(t *testing.T) (*Embedded, labPKI, *decisions) {
	t.Helper()
	lab := newLabPKI(t, map[string]pki.Kind{"PUMP-0001": pki.Device, "PUMP-0002": pki.Device,
		"pumpserver": pki.Service, "monitor": pki.User, "mallory": pki.User})
	srvTLS, _ := lab.ServerTLS("broker")
	d := newDecisions()
	b := &Embedded{TLS: srvTLS, IdentityFromCert: true, OnDecision: d.add,
		ACL: &ACL{Monitor: "monitor", LogDenials: true}}
	startBroker(t, b)
	return b, lab, d
}

func TestACLPumpRules(t *testing.T) {
	b, lab, d := aclBroker(t)
	server := mustConnect(t, b.URL(), connOpts{clientID: "pumpserver", tls: lab.client(t, "pumpserver")})
	fromPumps := subscribe(t, server, "pumplab/v1/pumps/#")
	pump := mustConnect(t, b.URL(), connOpts{clientID: "PUMP-0001", tls: lab.client(t, "PUMP-0001"),
		will: pumpwire.Topic("PUMP-0001", pumpwire.KindOnline)})

	// Allowed: every own topic a pump publishes reaches the server.
	for _, k := range pumpPublishes {
		publish(t, pump, pumpwire.Topic("PUMP-0001", k), "own-"+string(k))
	}
	// Denied: another pump's status, an own command, anything outside.
	denied := []string{pumpwire.Topic("PUMP-0002", pumpwire.KindStatus), pumpwire.Topic("PUMP-0001", pumpwire.KindCmd),
		pumpwire.Topic("PUMP-0001", pumpwire.KindReceipt), pumpwire.ServerOnlineTopic, "pumplab/v1/other"}
	for _, topic := range denied {
		publish(t, pump, topic, "forged")
	}
	publish(t, pump, pumpwire.Topic("PUMP-0001", pumpwire.KindStatus), "marker")
	msgs := fromPumps.until(t, "marker")
	for _, k := range pumpPublishes {
		want := pumpwire.Topic("PUMP-0001", k) + " own-" + string(k)
		found := false
		for _, m := range msgs {
			found = found || m == want
		}
		if !found {
			t.Errorf("allowed publish %q did not arrive; got %q", want, msgs)
		}
	}
	for _, m := range msgs {
		if strings.HasSuffix(m, " forged") {
			t.Errorf("denied publish was delivered: %q", m)
		}
	}
	for _, topic := range denied {
		x := d.await(t, "publish "+topic, func(x Decision) bool {
			return x.Control == ControlACL && x.Action == Blocked && x.Ref == topic && x.Source == "PUMP-0001"
		})
		if !strings.Contains(x.Reason, "publish denied") {
			t.Errorf("decision %+v", x)
		}
	}
	if x := d.await(t, "target", func(x Decision) bool { return x.Ref == denied[0] }); x.Target != "PUMP-0002" {
		t.Errorf("publish to PUMP-0002's topic: target %q, want PUMP-0002", x.Target)
	}

	// Subscriptions: own cmd, receipt and the server presence are granted.
	for _, f := range []string{pumpwire.Topic("PUMP-0001", pumpwire.KindCmd), pumpwire.Topic("PUMP-0001", pumpwire.KindReceipt), pumpwire.ServerOnlineTopic} {
		if c := subCode(t, pump, f); c >= 0x80 {
			t.Errorf("pump subscribe %s: refused 0x%02x", f, c)
		}
	}
	for _, f := range []string{pumpwire.Topic("PUMP-0002", pumpwire.KindCmd), pumpwire.Topic("PUMP-0001", pumpwire.KindStatus),
		"pumplab/v1/pumps/+/cmd", "#"} {
		if c := subCode(t, pump, f); c != 0x80 {
			t.Errorf("pump subscribe %s: return code 0x%02x, want 0x80 (failure)", f, c)
		}
		d.await(t, "subscribe "+f, func(x Decision) bool {
			return x.Control == ControlACL && x.Ref == f && strings.Contains(x.Reason, "subscribe denied")
		})
	}
	st := b.ControlStats()
	if st.PublishDenied != int64(len(denied)) || st.SubscribeDenied != 4 {
		t.Errorf("ControlStats %+v, want %d publishes and 4 subscriptions denied", st, len(denied))
	}
}

func TestACLServerMonitorAndStrangers(t *testing.T) {
	b, lab, d := aclBroker(t)
	server := mustConnect(t, b.URL(), connOpts{clientID: "pumpserver", tls: lab.client(t, "pumpserver"), will: pumpwire.ServerOnlineTopic})
	pump := mustConnect(t, b.URL(), connOpts{clientID: "PUMP-0001", tls: lab.client(t, "PUMP-0001")})
	cmds := subscribe(t, pump, pumpwire.Topic("PUMP-0001", pumpwire.KindCmd))
	monitor := mustConnect(t, b.URL(), connOpts{clientID: "mon-1", tls: lab.client(t, "monitor")})
	all := subscribe(t, monitor, "#")

	// The server commands pumps and publishes its presence; it may not
	// fake a pump's status.
	publish(t, server, pumpwire.ServerOnlineTopic, "up")
	publish(t, server, pumpwire.Topic("PUMP-0001", pumpwire.KindStatus), "forged")
	publish(t, server, pumpwire.Topic("PUMP-0001", pumpwire.KindCmd), "stop")
	cmds.until(t, "stop")
	got := all.until(t, "stop")
	if strings.Contains(strings.Join(got, "\n"), "forged") {
		t.Errorf("server-forged status delivered: %q", got)
	}
	if !strings.Contains(strings.Join(got, "\n"), pumpwire.ServerOnlineTopic+" up") {
		t.Errorf("monitor did not see the server presence: %q", got)
	}
	d.await(t, "server forging status", func(x Decision) bool { return x.Source == "pumpserver" && x.Target == "PUMP-0001" })
	if c := subCode(t, server, "$SYS/#"); c != 0x80 {
		t.Errorf("server subscribe outside pumplab/v1/: code 0x%02x, want 0x80", c)
	}

	// The monitor reads everything and publishes nothing.
	publish(t, monitor, pumpwire.Topic("PUMP-0001", pumpwire.KindCmd), "monitor-cmd")
	d.await(t, "monitor publish", func(x Decision) bool { return x.Source == "monitor" && strings.Contains(x.Reason, "read-only") })

	// A stranger with a valid lab certificate can do nothing.
	mallory := mustConnect(t, b.URL(), connOpts{clientID: "m", tls: lab.client(t, "mallory")})
	if c := subCode(t, mallory, pumpwire.Topic("PUMP-0001", pumpwire.KindCmd)); c != 0x80 {
		t.Errorf("stranger subscribe: code 0x%02x, want 0x80", c)
	}
	publish(t, mallory, pumpwire.Topic("PUMP-0001", pumpwire.KindCmd), "mallory-cmd")
	d.await(t, "stranger publish", func(x Decision) bool {
		return x.Source == "mallory" && strings.Contains(x.Reason, "deny by default") && strings.Contains(x.Reason, "publish")
	})
	publish(t, server, pumpwire.Topic("PUMP-0001", pumpwire.KindCmd), "stop2")
	got = cmds.until(t, "stop2")
	for _, m := range got {
		if strings.Contains(m, "monitor-cmd") || strings.Contains(m, "mallory-cmd") {
			t.Errorf("denied command delivered to the pump: %q", m)
		}
	}
}

func TestACLRefusesTakeoverAndForeignWill(t *testing.T) {
	b, lab, d := aclBroker(t)
	// PUMP-0002's certificate with PUMP-0001's client id would kick PUMP-0001 off.
	if c, err := connect(b.URL(), connOpts{clientID: "PUMP-0001", tls: lab.client(t, "PUMP-0002")}); err == nil {
		c.Disconnect(0)
		t.Fatal("session takeover allowed")
	}
	d.await(t, "takeover", func(x Decision) bool {
		return x.Source == "PUMP-0002" && strings.Contains(x.Reason, "session takeover")
	})
	if c, err := connect(b.URL(), connOpts{clientID: "pumpserver", tls: lab.client(t, "mallory")}); err == nil {
		c.Disconnect(0)
		t.Fatal("stranger took the pump server's client id")
	}
	// A will on another pump's presence topic would fake it offline.
	if c, err := connect(b.URL(), connOpts{clientID: "PUMP-0001", tls: lab.client(t, "PUMP-0001"),
		will: pumpwire.Topic("PUMP-0002", pumpwire.KindOnline)}); err == nil {
		c.Disconnect(0)
		t.Fatal("foreign will topic allowed")
	}
	d.await(t, "will", func(x Decision) bool { return strings.Contains(x.Reason, "will topic") })
	if st := b.ControlStats(); st.LoginsRefused != 3 {
		t.Errorf("ControlStats %+v, want 3 logins refused", st)
	}
}

func TestPasswordLogin(t *testing.T) {
	d := newDecisions()
	b := &Embedded{Users: map[string]string{"PUMP-0001": "s3cret", "pumpserver": "srv"}, OnDecision: d.add,
		ACL: &ACL{LogDenials: true}}
	startBroker(t, b)
	for _, o := range []connOpts{
		{clientID: "PUMP-0001", user: "PUMP-0001", password: "wrong"},
		{clientID: "x", user: "nobody", password: "s3cret"},
		{clientID: "y"},
	} {
		if c, err := connect(b.URL(), o); err == nil {
			c.Disconnect(0)
			t.Fatalf("login %+v accepted", o)
		}
	}
	if n := d.count(func(x Decision) bool { return strings.Contains(x.Reason, "bad user name or password") }); n != 3 {
		t.Errorf("%d login decisions, want 3: %+v", n, d.snapshot())
	}
	// The identity is the user name, whatever the client id.
	server := mustConnect(t, b.URL(), connOpts{clientID: "srv-a", user: "pumpserver", password: "srv"})
	in := subscribe(t, server, "pumplab/v1/#")
	pump := mustConnect(t, b.URL(), connOpts{clientID: "PUMP-0001", user: "PUMP-0001", password: "s3cret"})
	publish(t, pump, pumpwire.Topic("PUMP-0002", pumpwire.KindStatus), "forged")
	publish(t, pump, pumpwire.Topic("PUMP-0001", pumpwire.KindStatus), "ok")
	if got := in.until(t, " ok"); strings.Contains(strings.Join(got, "\n"), "forged") {
		t.Errorf("forged status delivered: %q", got)
	}
}

func TestRateLimitDropsExcessOnce(t *testing.T) {
	d := newDecisions()
	// 0.001 token/s: nothing refills during the test, so exactly Burst pass.
	b := &Embedded{RateLimit: &RateLimit{PerSecond: 0.001, Burst: 5, Exempt: []string{"other"}}, OnDecision: d.add}
	startBroker(t, b)
	watcher := mustConnect(t, b.URL(), connOpts{clientID: "watcher"})
	in := subscribe(t, watcher, "flood/#")
	flooder := mustConnect(t, b.URL(), connOpts{clientID: "flooder"})
	for i := range 12 {
		publish(t, flooder, "flood/x", "m"+string(rune('a'+i)))
	}
	other := mustConnect(t, b.URL(), connOpts{clientID: "other"}) // exempt: 8 pass
	for range 7 {
		publish(t, other, "flood/y", "exempt")
	}
	publish(t, other, "flood/y", "marker")
	got := in.until(t, "marker")
	if len(got) != 13 {
		t.Errorf("got %d messages %q, want the 5 of the burst and the exempt client's 8", len(got), got)
	}
	if st := b.ControlStats(); st.RateLimited != 7 {
		t.Errorf("ControlStats %+v, want 7 publishes rate-limited", st)
	}
	x := d.await(t, "rate limit", func(x Decision) bool { return x.Control == ControlRateLimit })
	if x.Source != "flooder" || x.Action != Blocked || x.Ref != "flood/x" {
		t.Errorf("decision %+v", x)
	}
	if n := d.count(func(x Decision) bool { return x.Control == ControlRateLimit }); n != 1 {
		t.Errorf("%d rate-limit decisions for one run of drops, want 1", n)
	}
}

func TestRateLimitRefillsAndReportsEachRun(t *testing.T) {
	d := newDecisions()
	now := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clk := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := &Embedded{RateLimit: &RateLimit{PerSecond: 2, Burst: 2, Now: clk}, OnDecision: d.add}
	startBroker(t, b)
	c := mustConnect(t, b.URL(), connOpts{clientID: "c"})
	for range 3 {
		publish(t, c, "t", "x") // 2 pass, 1 dropped
	}
	mu.Lock()
	now = now.Add(time.Second) // 2 tokens back
	mu.Unlock()
	for range 3 {
		publish(t, c, "t", "x") // 2 pass, 1 dropped: a second run
	}
	if st := b.ControlStats(); st.RateLimited != 2 {
		t.Errorf("ControlStats %+v, want 2 dropped", st)
	}
	if n := d.count(func(x Decision) bool { return x.Control == ControlRateLimit }); n != 2 {
		t.Errorf("%d rate-limit decisions, want 2 (one per run)", n)
	}
}

func TestControlConfigErrors(t *testing.T) {
	for _, b := range []*Embedded{
		{RateLimit: &RateLimit{PerSecond: 0, Burst: 1}},
		{RateLimit: &RateLimit{PerSecond: 1, Burst: 0}},
		{IdentityFromCert: true},
	} {
		err := b.Start(context.Background())
		if err == nil {
			_ = b.Close()
			t.Errorf("%+v started", b)
		}
	}
}

func TestPortProbeReported(t *testing.T) {
	lab := newLabPKI(t, nil)
	srvTLS, _ := lab.ServerTLS("broker")
	d := newDecisions()
	b := &Embedded{TLS: srvTLS, OnDecision: d.add}
	startBroker(t, b)
	c, err := net.Dial("tcp", strings.TrimPrefix(b.URL(), "ssl://"))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	d.await(t, "probe", func(x Decision) bool { return strings.Contains(x.Reason, "without a TLS handshake (a port probe?)") })
}
