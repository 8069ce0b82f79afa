package hl7

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rejects collects what a server reports.
type rejects struct {
	mu      sync.Mutex
	all     []Reject
	changed chan struct{}
}

func newRejects() *rejects { return &rejects{changed: make(chan struct{}, 1)} }

func (r *rejects) add(x Reject) {
	r.mu.Lock()
	r.all = append(r.all, x)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *rejects) snapshot() []Reject {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Reject(nil), r.all...)
}

// await waits for n rejects matching ok (an await, not a timed assertion:
// the server reports after the client gave up).
func (r *rejects) await(t *testing.T, what string, n int, ok func(Reject) bool) []Reject {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		var got []Reject
		for _, x := range r.snapshot() {
			if ok(x) {
				got = append(got, x)
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("wanted %d rejects %s; got %+v", n, what, r.snapshot())
		}
	}
}

// issueServer issues a server certificate for DNS names only (no IP): the
// client must ask for the right name.
func (p *testPKI) issueServer(t *testing.T, cn string, dns ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func mtlsServer(p *testPKI, t *testing.T) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.issue(t, "alarm-manager", true)},
		ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}

func clientOf(p *testPKI, t *testing.T, cn string) *tls.Config {
	return &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.issue(t, cn, false)}}
}

func TestAllowedCNs(t *testing.T) {
	p := newTestPKI(t)
	rj := newRejects()
	var handled atomic.Int64
	s := startServer(t, Config{Name: "alarm-manager", TLS: mtlsServer(p, t), AllowedCNs: []string{"pumpserver"}, OnReject: rj.add,
		Handler: func(context.Context, *Message, ConnMeta) (*Message, error) { handled.Add(1); return nil, nil }})

	ok := dial(t, s.Addr(), clientOf(p, t, "pumpserver"))
	if a := sendAck(t, ok, ExampleRGV); !a.OK() {
		t.Fatalf("allowed sender: %+v", a)
	}

	// A lab certificate of another name: the first message is answered AR
	// naming the CN and the listener, then the connection closes.
	bad := dial(t, s.Addr(), clientOf(p, t, "emar-bcma"))
	a := sendAck(t, bad, ExampleRGV)
	if a.Code != AckAR || len(a.Errors) != 1 || a.Errors[0].AppCode != AppCodeSenderNotAllowed ||
		!strings.Contains(a.Errors[0].Message, `"emar-bcma" is not allowed to send to listener alarm-manager (allowed: pumpserver)`) {
		t.Fatalf("refused sender: %+v", a)
	}
	if _, err := bad.SendRaw(testCtx(t), ExampleRGV); err == nil {
		t.Error("connection of a refused sender stayed open")
	}
	if n := handled.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1 (the allowed sender's message only)", n)
	}
	x := rj.await(t, "not allowed", 1, func(x Reject) bool { return x.Control == ControlMTLS })[0]
	if x.Action != Blocked || x.Target != "alarm-manager" || x.Source != "emar-bcma" || !strings.HasPrefix(x.Ref, "conn ") {
		t.Errorf("reject %+v", x)
	}
	if st := s.Stats(); st.NotAllowed != 1 || st.Accepted != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestHandshakeFailuresReported(t *testing.T) {
	p := newTestPKI(t)
	other := newTestPKI(t)
	rj := newRejects()
	s := startServer(t, Config{Name: "ehr", TLS: mtlsServer(p, t), OnReject: rj.add})
	foreign := clientOf(other, t, "pumpserver")
	foreign.RootCAs = p.pool // trusts the server, presents a foreign certificate
	cases := []struct {
		name   string
		conf   *tls.Config
		reason string
	}{
		{"plain MLLP into the TLS port", nil, "did not speak TLS"},
		{"no client certificate", &tls.Config{RootCAs: p.pool}, "presented no certificate"},
		{"certificate of another CA", foreign, "not from the lab CA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if c, err := Dial(ctx, s.Addr(), tc.conf); err == nil {
				if _, err := c.SendRaw(ctx, ExampleRGV); err == nil {
					t.Error("served")
				}
				c.Close()
			}
			x := rj.await(t, tc.reason, 1, func(x Reject) bool { return strings.Contains(x.Reason, tc.reason) })[0]
			if x.Control != ControlMTLS || x.Action != Blocked || x.Target != "ehr" || !strings.HasPrefix(x.Source, "127.0.0.1:") {
				t.Errorf("reject %+v", x)
			}
		})
	}
	if st := s.Stats(); st.TLSFailures != 3 {
		t.Errorf("stats %+v, want 3 TLS failures", st)
	}
}

func TestRateLimitPerSource(t *testing.T) {
	p := newTestPKI(t)
	rj := newRejects()
	var handled atomic.Int64
	// 0.001 token/s: nothing refills during the test, so exactly Burst pass.
	s := startServer(t, Config{Name: "alarm-manager", TLS: mtlsServer(p, t), RateLimit: &RateLimit{PerSecond: 0.001, Burst: 3, Exempt: []string{"ehr"}},
		OnReject: rj.add, Handler: func(context.Context, *Message, ConnMeta) (*Message, error) { handled.Add(1); return nil, nil }})
	conf := clientOf(p, t, "attacker")
	c1 := dial(t, s.Addr(), conf)
	var codes []string
	for range 4 {
		a := sendAck(t, c1, ExampleRGV)
		codes = append(codes, a.Code)
		if a.Code == AckAR {
			if len(a.Errors) != 1 || a.Errors[0].AppCode != AppCodeRateLimited ||
				!strings.Contains(a.Errors[0].Message, "rate limit of 0.001 messages/s (burst 3) per source exceeded by attacker at listener alarm-manager") ||
				a.AckedID != "BCMA000123" {
				t.Errorf("rate-limit AR: %+v", a)
			}
		}
	}
	// A second connection of the same source shares the bucket.
	c2 := dial(t, s.Addr(), conf)
	codes = append(codes, sendAck(t, c2, ExampleRGV).Code)
	// Another source has its own.
	c3 := dial(t, s.Addr(), clientOf(p, t, "pumpserver"))
	codes = append(codes, sendAck(t, c3, ExampleRGV).Code)
	// An exempt source is never limited.
	c4 := dial(t, s.Addr(), clientOf(p, t, "ehr"))
	for range 5 {
		codes = append(codes, sendAck(t, c4, ExampleRGV).Code)
	}
	if got := strings.Join(codes, " "); got != "CA CA CA AR AR CA CA CA CA CA CA" {
		t.Errorf("acks %s, want CA CA CA AR AR CA then 5 CA", got)
	}
	if n := handled.Load(); n != 9 {
		t.Errorf("handler ran %d times, want 9", n)
	}
	got := rj.await(t, "rate limit", 1, func(x Reject) bool { return x.Control == ControlRateLimit })
	if len(got) != 1 || got[0].Source != "attacker" || got[0].Ref != "BCMA000123" || got[0].Target != "alarm-manager" {
		t.Errorf("rejects %+v, want one for the run of drops", got)
	}
	if st := s.Stats(); st.RateLimited != 2 || st.Rejected != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestRateLimitPlainByHost(t *testing.T) {
	now := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clk := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	rj := newRejects()
	s := startServer(t, Config{RateLimit: &RateLimit{PerSecond: 1, Burst: 1, Now: clk}, OnReject: rj.add})
	c := dial(t, s.Addr(), nil)
	if a := sendAck(t, c, ExampleRGV); !a.OK() {
		t.Fatalf("%+v", a)
	}
	if a := sendAck(t, dial(t, s.Addr(), nil), ExampleRGV); a.Code != AckAR { // same host, new port
		t.Fatalf("second connection of 127.0.0.1: %+v", a)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if a := sendAck(t, c, ExampleRGV); !a.OK() {
		t.Fatalf("after a second: %+v", a)
	}
	if a := sendAck(t, c, ExampleRGV); a.Code != AckAR {
		t.Fatalf("%+v", a)
	}
	got := rj.await(t, "two runs", 2, func(x Reject) bool { return x.Control == ControlRateLimit })
	if got[0].Source != "127.0.0.1" || got[0].Target != s.Addr() {
		t.Errorf("reject %+v: source should be the host, target the address", got[0])
	}
}

func TestClientDetectsManInTheMiddle(t *testing.T) {
	p := newTestPKI(t)
	serve := func(cert tls.Certificate) *Server {
		return startServer(t, Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	}
	genuine := serve(p.issueServer(t, "alarm-manager", "alarm-manager"))
	client := &tls.Config{RootCAs: p.pool, ServerName: "alarm-manager"}
	c := dial(t, genuine.Addr(), client)
	if a := sendAck(t, c, ExampleRGV); !a.OK() {
		t.Fatalf("genuine server: %+v", a)
	}

	// The man in the middle holds a certificate of the same CA, under
	// another name.
	mitm := serve(p.issueServer(t, "mallory", "mallory"))
	_, err := Dial(testCtx(t), mitm.Addr(), client)
	var ve *VerificationError
	var cv *tls.CertificateVerificationError
	if !errors.As(err, &ve) || !errors.As(err, &cv) {
		t.Fatalf("dial the impostor: %v (%T), want a *VerificationError over a *tls.CertificateVerificationError", err, err)
	}
	if ve.ServerName != "alarm-manager" || !strings.Contains(err.Error(), `failed verification as "alarm-manager"`) ||
		!strings.Contains(err.Error(), "mallory") {
		t.Errorf("error %q should name the expected server and what was presented", err)
	}
	if _, err := SendOnce(testCtx(t), mitm.Addr(), client, mustParse(t, ExampleRGV)); !errors.As(err, &ve) {
		t.Errorf("SendOnce to the impostor: %v", err)
	}

	// A refusal by the caller's own hook (the lab PKI's revocation check)
	// is a verification error too.
	hooked := client.Clone()
	hooked.VerifyPeerCertificate = func([][]byte, [][]*x509.Certificate) error { return errors.New("certificate revoked") }
	if _, err := Dial(testCtx(t), genuine.Addr(), hooked); !errors.As(err, &ve) || !strings.Contains(err.Error(), "certificate revoked") {
		t.Errorf("hook refusal: %v", err)
	}
	// A connection error is not.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Dial(testCtx(t), addr, client); err == nil || errors.As(err, &ve) {
		t.Errorf("refused connection: %v", err)
	}
}

func TestControlConfigErrors(t *testing.T) {
	p := newTestPKI(t)
	for _, cfg := range []Config{
		{AllowedCNs: []string{"x"}},
		{TLS: mtlsServer(p, t), AllowedCNs: []string{}},
		{RateLimit: &RateLimit{PerSecond: 0, Burst: 1}},
		{RateLimit: &RateLimit{PerSecond: 1}},
	} {
		s := New(cfg)
		if err := s.Start(context.Background()); err == nil {
			s.Close()
			t.Errorf("%+v started", cfg)
		}
	}
}
