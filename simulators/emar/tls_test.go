package emar

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/pumplab/pumplab/simulators/ehr"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// selfSigned returns a server and a client TLS config sharing one
// self-signed loopback certificate (both sides trust only it).
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lab-node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}
	return server, client
}

// With mutual TLS on the eMAR listener, the EHR's ADT gets through only with
// its client certificate.
func TestMutualTLS(t *testing.T) {
	ctx := testCtx(t)
	srvTLS, cliTLS := selfSigned(t)
	e := New(Config{TLS: srvTLS})
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	plain := ehr.New(ehr.Config{EMARAddr: e.MLLPAddr()})
	if err := plain.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Admit(ctx, alex); err == nil {
		t.Fatal("plain MLLP ADT reached a mutual-TLS eMAR")
	}

	noCert := ehr.New(ehr.Config{EMARAddr: e.MLLPAddr(), ClientTLS: &tls.Config{RootCAs: cliTLS.RootCAs}})
	if err := noCert.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	if err := noCert.Admit(ctx, alex); err == nil {
		t.Fatal("ADT without a client certificate accepted")
	}
	if _, ok := e.Patient(alex.MRN); ok {
		t.Fatal("patient admitted over a refused connection")
	}

	good := ehr.New(ehr.Config{EMARAddr: e.MLLPAddr(), ClientTLS: cliTLS})
	if err := good.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if err := good.Admit(ctx, alex); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Patient(alex.MRN); !ok {
		t.Fatal("ADT over mutual TLS not applied")
	}

	// RRG^O16 into a TLS eMAR needs the client certificate too.
	rrg := hl7.BuildRRG(hl7.Ack{Header: hl7.Header{ControlID: "PS1"}, Code: hl7.AckAA, AckedID: "BCMA000001"})
	if _, err := hl7.SendOnce(context.Background(), e.MLLPAddr(), cliTLS, rrg); err != nil {
		t.Fatalf("RRG over TLS: %v", err)
	}
	if s := e.Stats(); s.RRG != 1 || s.UnmatchedRRG != 1 {
		t.Errorf("stats %+v", s)
	}
}
