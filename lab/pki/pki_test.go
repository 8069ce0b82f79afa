package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
)

var epoch = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

func newLab(t *testing.T, clk clock.Clock) *PKI {
	t.Helper()
	p, err := New(Options{Clock: clk, Lab: "test", CALifetime: 48 * time.Hour, CertLifetime: 12 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func issue(t *testing.T, p *PKI, name string, kind Kind, sans ...string) *Identity {
	t.Helper()
	id, err := p.Issue(name, kind, sans)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// handshake runs one TLS handshake over a real loopback connection and
// returns the server's and the client's errors and, on success, the
// client's common name as the server saw it. The client writes one byte so
// that a TLS 1.3 client also learns of a refusal by the server.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error, peer string) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		err  error
		peer string
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		b := make([]byte, 1)
		if _, err := tc.Read(b); err != nil {
			done <- result{err: err}
			return
		}
		_, _ = tc.Write(b)
		cs := tc.ConnectionState()
		done <- result{peer: cs.PeerCertificates[0].Subject.CommonName}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: client}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err = c.Write([]byte{1}); err == nil {
			_, err = c.Read(make([]byte, 1))
		}
		c.Close()
	}
	r := <-done
	return r.err, err, r.peer
}

func configs(t *testing.T, p *PKI, server, client string) (*tls.Config, *tls.Config) {
	t.Helper()
	s, err := p.ServerTLS(server)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.ClientTLS(client)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestMutualTLS(t *testing.T) {
	clk := clock.NewFake(epoch)
	p := newLab(t, clk)
	issue(t, p, "pumpserver", Service)
	issue(t, p, "pump-001", Device)
	s, c := configs(t, p, "pumpserver", "pump-001")
	if s.ClientAuth != tls.RequireAndVerifyClientCert || s.MinVersion != tls.VersionTLS12 || c.MinVersion != tls.VersionTLS12 {
		t.Fatalf("config: client auth %v, min versions %x %x", s.ClientAuth, s.MinVersion, c.MinVersion)
	}
	serr, cerr, peer := handshake(t, s, c)
	if serr != nil || cerr != nil || peer != "pump-001" {
		t.Fatalf("handshake: server %v, client %v, peer %q", serr, cerr, peer)
	}
	// By name instead of by loopback address.
	c.ServerName = "pumpserver"
	if serr, cerr, _ := handshake(t, s, c); serr != nil || cerr != nil {
		t.Fatalf("handshake with ServerName: server %v, client %v", serr, cerr)
	}
	// A server name the certificate does not cover.
	c.ServerName = "ehr"
	if _, cerr, _ := handshake(t, s, c); cerr == nil || !strings.Contains(cerr.Error(), "ehr") {
		t.Fatalf("wrong server name accepted: %v", cerr)
	}
}

func TestServerRefusesClientWithoutCertificate(t *testing.T) {
	p := newLab(t, clock.NewFake(epoch))
	issue(t, p, "pumpserver", Service)
	issue(t, p, "pump-001", Device)
	s, c := configs(t, p, "pumpserver", "pump-001")
	c.Certificates = nil
	serr, cerr, _ := handshake(t, s, c)
	if serr == nil || !strings.Contains(serr.Error(), "certificate") {
		t.Fatalf("server accepted a client without a certificate: %v", serr)
	}
	if cerr == nil {
		t.Fatal("client did not see the refusal")
	}
}

func TestServerRefusesOtherCA(t *testing.T) {
	p := newLab(t, clock.NewFake(epoch))
	other := newLab(t, clock.NewFake(epoch))
	issue(t, p, "pumpserver", Service)
	issue(t, p, "pump-001", Device)
	issue(t, other, "pumpserver", Service)
	rogue := issue(t, other, "pump-001", Device) // same name, same serial, other CA
	if rogue.Leaf.SerialNumber.Cmp(mustIdentity(t, p, "pump-001").Leaf.SerialNumber) != 0 {
		t.Fatal("serials are not deterministic per lab")
	}
	s, c := configs(t, p, "pumpserver", "pump-001")
	c.Certificates = []tls.Certificate{rogue.TLS}
	serr, _, _ := handshake(t, s, c)
	if serr == nil || !strings.Contains(serr.Error(), "unknown authority") {
		t.Fatalf("server accepted a certificate from another CA: %v", serr)
	}
	// And a client of the lab refuses a server of another CA.
	s2, err := other.ServerTLS("pumpserver")
	if err != nil {
		t.Fatal(err)
	}
	_, cerr, _ := handshake(t, s2, c)
	if cerr == nil || !strings.Contains(cerr.Error(), "unknown authority") {
		t.Fatalf("client accepted a server from another CA: %v", cerr)
	}
}

func mustIdentity(t *testing.T, p *PKI, name string) *Identity {
	t.Helper()
	id, ok := p.Identity(name)
	if !ok {
		t.Fatalf("no identity %s", name)
	}
	return id
}

func TestRevocation(t *testing.T) {
	clk := clock.NewFake(epoch)
	p := newLab(t, clk)
	issue(t, p, "pumpserver", Service)
	issue(t, p, "pump-001", Device)
	issue(t, p, "pump-002", Device)
	s, c := configs(t, p, "pumpserver", "pump-001")
	if serr, cerr, _ := handshake(t, s, c); serr != nil || cerr != nil {
		t.Fatalf("before revocation: %v / %v", serr, cerr)
	}
	clk.Advance(time.Hour)
	if err := p.Revoke("pump-001"); err != nil {
		t.Fatal(err)
	}
	serr, _, _ := handshake(t, s, c)
	if !errors.Is(serr, ErrRevoked) && (serr == nil || !strings.Contains(serr.Error(), "revoked")) {
		t.Fatalf("server accepted a revoked client: %v", serr)
	}
	// Other pumps are unaffected.
	_, c2 := configs(t, p, "pumpserver", "pump-002")
	if serr, cerr, _ := handshake(t, s, c2); serr != nil || cerr != nil {
		t.Fatalf("pump-002 after revoking pump-001: %v / %v", serr, cerr)
	}
	// A client refuses a revoked server.
	if err := p.Revoke("pumpserver"); err != nil {
		t.Fatal(err)
	}
	_, cerr, _ := handshake(t, s, c2)
	if cerr == nil || !strings.Contains(cerr.Error(), "revoked") {
		t.Fatalf("client accepted a revoked server: %v", cerr)
	}
	// VerifyPeer alone (the hook for configs built elsewhere).
	id := mustIdentity(t, p, "pump-001")
	if err := p.VerifyPeer([][]byte{id.Leaf.Raw}, nil); !errors.Is(err, ErrRevoked) {
		t.Fatalf("VerifyPeer(revoked) = %v", err)
	}
	if err := p.VerifyPeer([][]byte{mustIdentity(t, p, "pump-002").Leaf.Raw}, nil); err != nil {
		t.Fatalf("VerifyPeer(good) = %v", err)
	}
	other := newLab(t, clk)
	foreign := issue(t, other, "pump-009", Device)
	if err := p.VerifyPeer([][]byte{foreign.Leaf.Raw}, nil); err == nil {
		t.Fatal("VerifyPeer accepted another CA's certificate")
	}
	if err := p.VerifyPeer(nil, nil); err == nil {
		t.Fatal("VerifyPeer accepted no certificate")
	}
	if err := p.Revoke("pump-404"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Revoke(unknown) = %v", err)
	}
}

func TestReissueAndRevokeSerial(t *testing.T) {
	clk := clock.NewFake(epoch)
	p := newLab(t, clk)
	old := issue(t, p, "pump-001", Device)
	renewed := issue(t, p, "pump-001", Device)
	if old.Leaf.SerialNumber.Cmp(renewed.Leaf.SerialNumber) >= 0 {
		t.Fatalf("serials %v then %v", old.Leaf.SerialNumber, renewed.Leaf.SerialNumber)
	}
	if mustIdentity(t, p, "pump-001") != renewed {
		t.Fatal("Identity does not return the latest certificate")
	}
	if err := p.RevokeSerial(old.Leaf.SerialNumber); err != nil {
		t.Fatal(err)
	}
	if !p.IsRevoked(old.Leaf.SerialNumber) || p.IsRevoked(renewed.Leaf.SerialNumber) {
		t.Fatal("RevokeSerial revoked the wrong certificate")
	}
	if err := p.RevokeSerial(big.NewInt(999)); !errors.Is(err, ErrUnknown) {
		t.Fatalf("RevokeSerial(999) = %v", err)
	}
	if err := p.Revoke("pump-001"); err != nil {
		t.Fatal(err)
	}
	if !p.IsRevoked(renewed.Leaf.SerialNumber) || len(p.Revocations()) != 2 {
		t.Fatalf("Revoke(name) did not revoke every serial: %+v", p.Revocations())
	}
	// The first revocation time is kept.
	if r := p.Revocations()[0]; !r.Time.Equal(epoch) || r.Name != "pump-001" {
		t.Fatalf("revocation %+v", r)
	}
}

func TestCRL(t *testing.T) {
	clk := clock.NewFake(epoch)
	p := newLab(t, clk)
	for _, n := range []string{"pump-001", "pump-002", "pump-003"} {
		issue(t, p, n, Device)
	}
	clk.Advance(30 * time.Minute)
	if err := p.Revoke("pump-003"); err != nil {
		t.Fatal(err)
	}
	if err := p.Revoke("pump-001"); err != nil {
		t.Fatal(err)
	}
	der, err := p.CRL()
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(p.CA()); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	var got []int64
	for _, e := range crl.RevokedCertificateEntries {
		got = append(got, e.SerialNumber.Int64())
		if !e.RevocationTime.Equal(epoch.Add(30 * time.Minute)) {
			t.Errorf("revocation time %v", e.RevocationTime)
		}
	}
	want := []int64{mustIdentity(t, p, "pump-001").Leaf.SerialNumber.Int64(), mustIdentity(t, p, "pump-003").Leaf.SerialNumber.Int64()}
	if !slices.Equal(got, want) {
		t.Fatalf("CRL serials %v, want %v", got, want)
	}
	if !crl.ThisUpdate.Equal(epoch.Add(30*time.Minute)) || !crl.NextUpdate.Equal(epoch.Add(30*time.Minute+24*time.Hour)) {
		t.Errorf("CRL times %v .. %v", crl.ThisUpdate, crl.NextUpdate)
	}
	der2, _ := p.CRL()
	crl2, _ := x509.ParseRevocationList(der2)
	if crl2.Number.Cmp(crl.Number) <= 0 {
		t.Errorf("CRL numbers %v then %v", crl.Number, crl2.Number)
	}
}

func TestExpiryFollowsLabClock(t *testing.T) {
	clk := clock.NewFake(epoch)
	p := newLab(t, clk) // certificates live 12h, the CA 48h
	srv := issue(t, p, "pumpserver", Service)
	issue(t, p, "pump-001", Device)
	if !srv.Leaf.NotBefore.Equal(epoch) || !srv.Leaf.NotAfter.Equal(epoch.Add(12*time.Hour)) {
		t.Fatalf("validity %v .. %v", srv.Leaf.NotBefore, srv.Leaf.NotAfter)
	}
	if !p.CA().NotAfter.Equal(epoch.Add(48 * time.Hour)) {
		t.Fatalf("CA expiry %v", p.CA().NotAfter)
	}
	s, c := configs(t, p, "pumpserver", "pump-001")
	clk.Advance(11 * time.Hour)
	if serr, cerr, _ := handshake(t, s, c); serr != nil || cerr != nil {
		t.Fatalf("within validity: %v / %v", serr, cerr)
	}
	clk.Advance(2 * time.Hour) // both certificates expired in lab time, not in wall time
	_, cerr, _ := handshake(t, s, c)
	if cerr == nil || !strings.Contains(cerr.Error(), "expired") {
		t.Fatalf("client accepted an expired server certificate: %v", cerr)
	}
	// A certificate issued late ends with the CA.
	clk.Advance(30 * time.Hour) // 43h
	late := issue(t, p, "pump-002", Device)
	if !late.Leaf.NotAfter.Equal(p.CA().NotAfter) {
		t.Fatalf("late certificate outlives the CA: %v", late.Leaf.NotAfter)
	}
	clk.Advance(6 * time.Hour)
	if _, err := p.Issue("pump-003", Device, nil); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("issue after CA expiry: %v", err)
	}
}

func TestIssueSubjectAndSANs(t *testing.T) {
	p := newLab(t, clock.NewFake(epoch))
	id := issue(t, p, "alarm-manager", Service, "10.20.0.5", "am.lab.internal", "spiffe://pumplab/am", "biomed@lab.example")
	l := id.Leaf
	if l.Subject.CommonName != "alarm-manager" || !slices.Equal(l.Subject.OrganizationalUnit, []string{"service"}) {
		t.Errorf("subject %v", l.Subject)
	}
	if !slices.Equal(l.DNSNames, []string{"alarm-manager", "localhost", "am.lab.internal"}) {
		t.Errorf("DNS %v", l.DNSNames)
	}
	var ips []string
	for _, ip := range l.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"127.0.0.1", "::1", "10.20.0.5"}) {
		t.Errorf("IPs %v", ips)
	}
	if len(l.URIs) != 1 || l.URIs[0].String() != "spiffe://pumplab/am" || !slices.Equal(l.EmailAddresses, []string{"biomed@lab.example"}) {
		t.Errorf("URIs %v, emails %v", l.URIs, l.EmailAddresses)
	}
	if _, err := l.Verify(x509.VerifyOptions{Roots: p.Pool(), CurrentTime: epoch, DNSName: "am.lab.internal"}); err != nil {
		t.Errorf("verify: %v", err)
	}
	user := issue(t, p, "rn.alice", User)
	if !slices.Equal(user.Leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(user.Leaf.IPAddresses) != 0 {
		t.Errorf("user certificate: %v %v", user.Leaf.ExtKeyUsage, user.Leaf.IPAddresses)
	}
	if l.PublicKeyAlgorithm != x509.ECDSA || p.CA().SerialNumber.Int64() != 1 || l.SerialNumber.Int64() != 2 {
		t.Errorf("algorithm %v, serials CA %v leaf %v", l.PublicKeyAlgorithm, p.CA().SerialNumber, l.SerialNumber)
	}
	for _, bad := range []struct {
		name string
		kind Kind
	}{{"", Device}, {"../etc/passwd", Device}, {"pump 1", Device}, {"pump-1", Kind("robot")}} {
		if _, err := p.Issue(bad.name, bad.kind, nil); err == nil || !strings.HasPrefix(err.Error(), "pki: issue") {
			t.Errorf("Issue(%q, %q) = %v", bad.name, bad.kind, err)
		}
	}
	if _, err := p.ServerTLS("nobody"); !errors.Is(err, ErrUnknown) {
		t.Errorf("ServerTLS(nobody) = %v", err)
	}
	if _, err := p.ClientTLS("nobody"); !errors.Is(err, ErrUnknown) {
		t.Errorf("ClientTLS(nobody) = %v", err)
	}
	if got := p.Names(); !slices.Equal(got, []string{"alarm-manager", "rn.alice"}) {
		t.Errorf("Names = %v", got)
	}
}

func TestWriteFiles(t *testing.T) {
	p := newLab(t, clock.NewFake(epoch))
	issue(t, p, "pumpserver", Service)
	issue(t, p, "pump-001", Device)
	if err := p.Revoke("pump-001"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pki")
	if err := p.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for file, mode := range map[string]os.FileMode{"ca.pem": 0o644, "crl.pem": 0o644, "pumpserver.pem": 0o644,
		"pumpserver-key.pem": 0o600, "pump-001.pem": 0o644, "pump-001-key.pem": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", file, fi.Mode().Perm(), mode)
		}
	}
	// The files load with the standard library, as an outside tool would.
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "pumpserver.pem"), filepath.Join(dir, "pumpserver-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pair.Certificate) != 2 {
		t.Errorf("chain length %d", len(pair.Certificate))
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem does not parse")
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: epoch}); err != nil {
		t.Fatal(err)
	}
	crlPEM, _ := os.ReadFile(filepath.Join(dir, "crl.pem"))
	blk, _ := pem.Decode(crlPEM)
	crl, err := x509.ParseRevocationList(blk.Bytes)
	if err != nil || len(crl.RevokedCertificateEntries) != 1 {
		t.Fatalf("crl.pem: %v, %v", crl, err)
	}
	// A second export over the first works and keeps the key files private.
	if err := os.Chmod(filepath.Join(dir, "pump-001-key.pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "pump-001-key.pem")); fi.Mode().Perm() != 0o600 {
		t.Errorf("rewritten key mode %v", fi.Mode().Perm())
	}
}

func TestSigner(t *testing.T) {
	p := newLab(t, clock.NewFake(epoch))
	id := issue(t, p, "pumpserver", Service)
	s, err := p.Signer("pumpserver")
	if err != nil {
		t.Fatal(err)
	}
	if !id.Key.PublicKey.Equal(s.Public()) || !id.Key.PublicKey.Equal(id.Leaf.PublicKey) {
		t.Fatal("signer key does not match the certificate")
	}
	if _, err := p.Signer("nobody"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Signer(nobody) = %v", err)
	}
}

func TestConcurrentIssue(t *testing.T) {
	p := newLab(t, clock.NewFake(epoch))
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() {
			_, err := p.Issue("pump-"+string(rune('a'+i)), Device, nil)
			errs <- err
		}()
	}
	seen := map[int64]bool{}
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range p.Names() {
		s := mustIdentity(t, p, n).Leaf.SerialNumber.Int64()
		if seen[s] {
			t.Fatalf("serial %d issued twice", s)
		}
		seen[s] = true
	}
	if len(seen) != 20 {
		t.Fatalf("%d identities", len(seen))
	}
}

func TestClientTLSToRefusesAnotherService(t *testing.T) {
	lab, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alarm-manager", "mallory", "pumpserver"} {
		if _, err := lab.Issue(n, Service, nil); err != nil {
			t.Fatal(err)
		}
	}
	serve := func(name string) string {
		conf, _ := lab.ServerTLS(name)
		ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		return ln.Addr().String()
	}
	genuine, impostor := serve("alarm-manager"), serve("mallory")
	to, err := lab.ClientTLSTo("pumpserver", "alarm-manager")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := tls.Dial("tcp", genuine, to); err != nil {
		t.Fatalf("genuine server: %v", err)
	} else {
		c.Close()
	}
	_, err = tls.Dial("tcp", impostor, to)
	var cv *tls.CertificateVerificationError
	if !errors.As(err, &cv) || !strings.Contains(err.Error(), "mallory") {
		t.Fatalf("impostor: %v", err)
	}
	// Without ServerName, 127.0.0.1 is in every service certificate.
	plain, _ := lab.ClientTLS("pumpserver")
	if c, err := tls.Dial("tcp", impostor, plain); err != nil {
		t.Fatalf("without ServerName the impostor passes (the reason for ClientTLSTo): %v", err)
	} else {
		c.Close()
	}
	if _, err := lab.ClientTLSTo("nobody", "alarm-manager"); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown identity: %v", err)
	}
}
