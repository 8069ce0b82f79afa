package hl7

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
)

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s := New(cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, addr string, conf *tls.Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sendAck(t *testing.T, c *Client, raw []byte) Ack {
	t.Helper()
	reply, err := c.SendRaw(testCtx(t), raw)
	if err != nil {
		t.Fatalf("SendRaw: %v", err)
	}
	m, err := Parse(reply)
	if err != nil {
		t.Fatalf("reply does not parse: %v\n%q", err, reply)
	}
	a, err := ParseAck(m)
	if err != nil {
		t.Fatalf("reply is not an ack: %v\n%s", err, m)
	}
	return a
}

func TestServerDefaultAcks(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 3, 1, 10, 15, 1, 0, est))
	s := startServer(t, Config{Clock: clk, App: "PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64", Facility: "HOSP_BIOMED", IDPrefix: "PS"})
	c := dial(t, s.Addr(), nil)

	// RGV with MSH-15 AL: accept acknowledgement CA, as in §4.8(b).
	reply, err := c.Send(testCtx(t), mustParse(t, ExampleRGV))
	if err != nil {
		t.Fatal(err)
	}
	want := "MSH|^~\\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|BCMA_SIM^0011223344556677^EUI-64|HOSP_BCMA|20250301101501-0500||ACK^O15^ACK|PS1|P|2.6\rMSA|CA|BCMA000123"
	if got := string(reply.Bytes()); got != want {
		t.Errorf("ack:\n got %q\nwant %q", got, want)
	}
	// ADT without MSH-15: original mode, AA.
	clk.Advance(time.Minute)
	a := sendAck(t, c, ExampleADTA01)
	if a.Code != AckAA || a.AckedID != "ADT000101" || a.Header.ControlID != "PS2" || a.Header.Type.String() != "ACK^A01" ||
		!a.Header.Time.Equal(time.Date(2025, 3, 1, 10, 16, 1, 0, est)) {
		t.Errorf("ack = %+v", a)
	}
	st := s.Stats()
	if st != (Stats{Connections: 1, Received: 2, Accepted: 2}) {
		t.Errorf("stats = %+v", st)
	}
}

// TestServerKeepsServingAfterGarbage sends every malformed case of the table
// on one connection: each gets an AR with the parse error's code and
// location, and valid messages still get accepted afterwards, on the same
// and on a new connection.
func TestServerKeepsServingAfterGarbage(t *testing.T) {
	s := startServer(t, Config{App: "SRV"})
	c := dial(t, s.Addr(), nil)
	rejected := 0
	for _, tc := range Cases {
		if tc.Valid() || tc.Name == "oversize" { // oversize closes the connection: TestServerOversize
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			var pe *ParseError
			_, perr := Parse(tc.Raw)
			if !errors.As(perr, &pe) {
				t.Fatalf("case does not fail with *ParseError: %v", perr)
			}
			a := sendAck(t, c, tc.Raw)
			rejected++
			if a.Code != AckAR || len(a.Errors) != 1 {
				t.Fatalf("reply = %+v, want AR with one ERR", a)
			}
			e := a.Errors[0]
			if e.Code != pe.Code || e.Segment != pe.Segment || e.Field != pe.Field || e.Severity != "E" || !strings.Contains(e.Message, tc.Err) {
				t.Errorf("ERR = %+v, want code %d at %s-%d with %q", e, pe.Code, pe.Segment, pe.Field, tc.Err)
			}
			if a.Header.SendingApp.Namespace != "SRV" {
				t.Errorf("MSH-3 = %+v", a.Header.SendingApp)
			}
		})
	}
	// MSA-2 echoes the control ID when it can be read.
	a := sendAck(t, c, []byte(strings.Replace(string(ExampleRGV), "PID|", "pid|", 1)))
	rejected++
	if a.Code != AckAR || a.AckedID != "BCMA000123" || a.Header.Type.Trigger != "O15" || a.Header.ReceivingApp.Namespace != "BCMA_SIM" {
		t.Errorf("reject of a readable MSH = %+v", a)
	}
	if a := sendAck(t, c, ExampleRGV); a.Code != AckCA || a.AckedID != "BCMA000123" {
		t.Errorf("valid after garbage on the same connection: %+v", a)
	}
	c2 := dial(t, s.Addr(), nil)
	if a := sendAck(t, c2, ExampleADTA02); a.Code != AckAA {
		t.Errorf("valid on a new connection: %+v", a)
	}
	// The binary-garbage case holds 0x1C 0x0D: its frame ends early and the
	// rest is one run of unframed bytes, discarded and counted as rejected.
	if st := s.Stats(); st.Rejected != int64(rejected+1) || st.Accepted != 2 || st.Received != int64(rejected+2) {
		t.Errorf("stats = %+v, want %d rejected", st, rejected)
	}
}

func TestServerUnframedBytes(t *testing.T) {
	s := startServer(t, Config{})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i, junk := range []string{"GET / HTTP/1.1\r\n\r\n", "\x00\xff\x1c\x0d"} {
		// Unframed bytes get no reply; the next frame gets its own.
		if _, err := conn.Write([]byte(junk)); err != nil {
			t.Fatal(err)
		}
		if err := WriteFrame(conn, ExampleADTA01); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		reply, err := ReadFrame(br, 0)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ParseAck(mustParse(t, reply))
		if err != nil || a.Code != AckAA || a.AckedID != "ADT000101" {
			t.Fatalf("round %d: reply %+v, %v", i, a, err)
		}
	}
	if st := s.Stats(); st.Rejected != 2 || st.Accepted != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestServerOversize(t *testing.T) {
	s := startServer(t, Config{MaxMessage: 1024})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	big := string(ExampleADTA01) + "\rNTE|1||" + strings.Repeat("A", 2000)
	if err := WriteFrame(conn, []byte(big)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	reply, err := ReadFrame(br, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAck(mustParse(t, reply))
	if err != nil || a.Code != AckAR || len(a.Errors) != 1 || !strings.Contains(a.Errors[0].Message, "exceeds 1024") {
		t.Fatalf("oversize reply = %+v, %v", a, err)
	}
	// The server closed that connection...
	if _, err := ReadFrame(br, 0); !errors.Is(err, io.EOF) && !errors.Is(err, ErrTruncatedFrame) {
		var ne net.Error
		if !errors.As(err, &ne) || ne.Timeout() {
			t.Fatalf("after oversize: %v, want closed connection", err)
		}
	}
	// ...and keeps serving others.
	c := dial(t, s.Addr(), nil)
	if a := sendAck(t, c, ExampleADTA01); a.Code != AckAA {
		t.Errorf("after oversize: %+v", a)
	}
	// The shared oversize case is rejected by the default limit too.
	s2 := startServer(t, Config{})
	c2 := dial(t, s2.Addr(), nil)
	var over []byte
	for _, tc := range Cases {
		if tc.Name == "oversize" {
			over = tc.Raw
		}
	}
	if a := sendAck(t, c2, over); a.Code != AckAR {
		t.Errorf("oversize case: %+v", a)
	}
}

func TestServerHandlers(t *testing.T) {
	var mux Mux
	mux.Handle("RGV^O15", func(ctx context.Context, m *Message, meta ConnMeta) (*Message, error) {
		r, err := ParseRGV(m)
		if err != nil {
			return nil, err
		}
		if r.DoseRate > 0.3 {
			return BuildRRG(Ack{Header: r.Header.Reply(), Code: AckAR, AckedID: r.Header.ControlID,
				Errors: []AckError{{Code: 207, AppCode: "LIB-HARDMAX", AppText: "Dose exceeds drug library hard limit"}}}), nil
		}
		return nil, nil
	})
	mux.Handle("ADT", func(ctx context.Context, m *Message, meta ConnMeta) (*Message, error) {
		return nil, errors.New("database down")
	})
	mux.Handle("ORU^R40", func(ctx context.Context, m *Message, meta ConnMeta) (*Message, error) {
		return nil, &AckError{Code: ErrCodeTableValue, AppCode: "AM-NOPATIENT", AckCode: AckAR}
	})
	mux.Handle("ORU^R01", func(ctx context.Context, m *Message, meta ConnMeta) (*Message, error) {
		panic("handler bug")
	})
	clk := clock.NewFake(time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC))
	s := startServer(t, Config{Handler: mux.Serve, Clock: clk})
	c := dial(t, s.Addr(), nil)

	// Handler reply (RRG with MSH-7/10 empty): stamped and written.
	over := mustParse(t, ExampleRGV)
	_ = over.Set("RXG-15", "0.5")
	reply, err := c.Send(testCtx(t), over)
	if err != nil {
		t.Fatal(err)
	}
	rrg, err := ParseRRG(reply)
	if err != nil || rrg.Code != AckAR || rrg.Errors[0].AppCode != "LIB-HARDMAX" || rrg.Header.ControlID != "ACK1" ||
		!rrg.Header.Time.Equal(clk.Now()) || rrg.Header.Profile != ProfileRRG {
		t.Errorf("RRG = %+v, %v", rrg, err)
	}
	// Typed view failure -> AE/CE with its location (MSH-15 AL -> CE).
	bad := mustParse(t, ExampleRGV)
	_ = bad.Set("RXG-15", "fast")
	if a := sendAck(t, c, bad.Bytes()); a.Code != AckCE || a.Errors[0].Code != 102 || a.Errors[0].Segment != "RXG" || a.Errors[0].Field != 15 {
		t.Errorf("bad rate = %+v", a)
	}
	// Default accept.
	if a := sendAck(t, c, ExampleRGV); a.Code != AckCA {
		t.Errorf("good RGV = %+v", a)
	}
	// Plain error -> AE 207 with the text in ERR-8.
	if a := sendAck(t, c, ExampleADTA08); a.Code != AckAE || a.Errors[0].Code != 207 || a.Errors[0].Message != "database down" {
		t.Errorf("handler error = %+v", a)
	}
	// *AckError with AckCode.
	if a := sendAck(t, c, ExampleR40); a.Code != AckAR || a.Errors[0].Code != 103 || a.Errors[0].AppCode != "AM-NOPATIENT" {
		t.Errorf("ack error = %+v", a)
	}
	// Panic -> AE 207, connection still usable.
	if a := sendAck(t, c, ExampleR01); (a.Code != AckCE && a.Code != AckAE) || a.Errors[0].Code != 207 {
		t.Errorf("panic = %+v", a)
	}
	// Unknown type -> AR 200 at MSH-9.
	if a := sendAck(t, c, ExampleOMP); a.Code != AckAR || a.Errors[0].Code != 200 || a.Errors[0].Field != 9 {
		t.Errorf("unsupported = %+v", a)
	}
	if st := s.Stats(); st.Accepted != 2 || st.Rejected != 5 {
		t.Errorf("stats = %+v", st)
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and client
// certificates.
type testPKI struct {
	pool   *x509.CertPool
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pumplab test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testPKI{pool: pool, caCert: cert, caKey: key}
}

func (p *testPKI) issue(t *testing.T, cn string, server bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestServerMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	var peers sync.Map
	s := startServer(t, Config{
		TLS: &tls.Config{
			Certificates: []tls.Certificate{pki.issue(t, "pumpserver", true)},
			ClientCAs:    pki.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		},
		Handler: func(ctx context.Context, m *Message, meta ConnMeta) (*Message, error) {
			peers.Store(m.ControlID(), meta)
			return nil, nil
		},
	})
	client := &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.issue(t, "bcma-01", false)}}
	c := dial(t, s.Addr(), client)
	if a := sendAck(t, c, ExampleRGV); a.Code != AckCA {
		t.Fatalf("over TLS: %+v", a)
	}
	v, ok := peers.Load("BCMA000123")
	if meta, _ := v.(ConnMeta); !ok || !meta.TLS || meta.PeerCN != "bcma-01" || meta.PeerCert == nil || meta.RemoteAddr == "" {
		t.Errorf("meta = %+v", v)
	}
	// SendOnce over TLS.
	reply, err := SendOnce(testCtx(t), s.Addr(), client, mustParse(t, ExampleADTA01))
	if err != nil || reply.Get("MSA-1") != AckAA {
		t.Errorf("SendOnce: %v %v", reply, err)
	}

	// No client certificate: refused (at dial or at the first exchange).
	noCert := &tls.Config{RootCAs: pki.pool}
	if c, err := Dial(testCtx(t), s.Addr(), noCert); err == nil {
		_, err = c.Send(testCtx(t), mustParse(t, ExampleRGV))
		c.Close()
		if err == nil {
			t.Error("client without certificate was served")
		}
	}
	// Plain MLLP to a TLS server: no HL7 reply.
	if c, err := Dial(testCtx(t), s.Addr(), nil); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = c.Send(ctx, mustParse(t, ExampleRGV))
		cancel()
		c.Close()
		if err == nil {
			t.Error("plain client was served by the TLS server")
		}
	}
	// Untrusted server certificate: the client refuses.
	other := newTestPKI(t)
	if _, err := Dial(testCtx(t), s.Addr(), &tls.Config{RootCAs: other.pool, Certificates: []tls.Certificate{other.issue(t, "x", false)}}); err == nil {
		t.Error("client accepted an untrusted server")
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().TLSFailures < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the server counts after the client gave up
	}
	if st := s.Stats(); st.TLSFailures < 2 || st.Accepted != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestServerConcurrent(t *testing.T) {
	var handled atomic.Int64
	s := startServer(t, Config{Handler: func(ctx context.Context, m *Message, meta ConnMeta) (*Message, error) {
		handled.Add(1)
		return nil, nil
	}})
	shared := dial(t, s.Addr(), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	send := func(c *Client, id string) {
		m := mustParse(t, ExampleADTA08)
		_ = m.Set("MSH-10", id)
		reply, err := c.Send(testCtx(t), m)
		if err != nil {
			errs <- err
			return
		}
		if got := reply.Get("MSA-2"); got != id || reply.Get("MSA-1") != AckAA {
			errs <- fmt.Errorf("reply for %s acknowledges %s (%s)", id, got, reply.Get("MSA-1"))
		}
	}
	for g := 0; g < 8; g++ {
		wg.Add(2)
		go func() { // own connection
			defer wg.Done()
			c, err := Dial(testCtx(t), s.Addr(), nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for i := 0; i < 20; i++ {
				send(c, fmt.Sprintf("own-%d-%d", g, i))
			}
		}()
		go func() { // shared connection: sends are serialised
			defer wg.Done()
			for i := 0; i < 20; i++ {
				send(shared, fmt.Sprintf("shared-%d-%d", g, i))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := handled.Load(); n != 320 {
		t.Errorf("handled %d, want 320", n)
	}
	if st := s.Stats(); st.Received != 320 || st.Connections != 9 {
		t.Errorf("stats = %+v", st)
	}
}

func TestServerCloseWaitsForHandlers(t *testing.T) {
	started := make(chan struct{})
	var finished atomic.Bool
	s := New(Config{Handler: func(ctx context.Context, m *Message, meta ConnMeta) (*Message, error) {
		close(started)
		<-ctx.Done() // Close cancels the handlers' context
		finished.Store(true)
		return nil, ctx.Err()
	}})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Addr(), nil)
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(testCtx(t), mustParse(t, ExampleRGV))
		sent <- err
	}()
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Close returned before the handler")
	}
	<-sent
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := Dial(testCtx(t), s.Addr(), nil); err == nil {
		t.Error("server still accepting after Close")
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestServerStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := New(Config{})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if a := sendAck(t, dial(t, addr, nil), ExampleADTA01); a.Code != AckAA {
		t.Fatal(a)
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still listening after its context was cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = s.Close()
}

func TestServerIdleTimeout(t *testing.T) {
	s := startServer(t, Config{IdleTimeout: 50 * time.Millisecond})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v, want EOF from the server", err)
	}
	// Active connections are served.
	if a := sendAck(t, dial(t, s.Addr(), nil), ExampleADTA01); a.Code != AckAA {
		t.Errorf("ack = %+v", a)
	}
}

func TestClientContext(t *testing.T) {
	release := make(chan struct{})
	s := startServer(t, Config{Handler: func(ctx context.Context, m *Message, meta ConnMeta) (*Message, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	}})
	defer close(release)
	c := dial(t, s.Addr(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Send(ctx, mustParse(t, ExampleRGV)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send past deadline: %v", err)
	}
	if _, err := c.Send(testCtx(t), mustParse(t, ExampleRGV)); err == nil || !strings.Contains(err.Error(), "unusable") {
		t.Fatalf("Send on a broken client: %v", err)
	}

	c2 := dial(t, s.Addr(), nil)
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel2() }()
	if _, err := c2.Send(ctx2, mustParse(t, ExampleRGV)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send cancelled: %v", err)
	}
	if _, err := Dial(testCtx(t), "127.0.0.1:1", nil); err == nil || !strings.Contains(err.Error(), "hl7: client: dial") {
		t.Errorf("dial error = %v", err)
	}
}
