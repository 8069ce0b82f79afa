package alarms

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
	"net/http"
	"testing"
	"time"

	"github.com/pumplab/pumplab/simulators/hl7"
)

// testCA issues loopback certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lab CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, cn string, serial int64) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	serverCert := ca.issue(t, "alarm-manager", 2)
	reporterCert := ca.issue(t, "pump-server", 3)
	rogueCert := ca.issue(t, "laptop", 4)
	phoneCert := ca.issue(t, "phone", 5)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: ca.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	clientTLS := func(c tls.Certificate) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{c}, RootCAs: ca.pool}
	}

	phone := startPhone(t, CommunicatorConfig{ID: "PHONE-1", TLS: &tls.Config{Certificates: []tls.Certificate{phoneCert}},
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}})
	l := newLab(t, Config{
		MLLPTLS: serverTLS,
		HTTPTLS: &tls.Config{Certificates: []tls.Certificate{serverCert}},
		HTTPClient: &http.Client{Timeout: 5 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}},
		Authorize: func(_ Alert, meta hl7.ConnMeta) error {
			if !meta.TLS || meta.PeerCN != "pump-server" {
				return errors.New("reporter " + meta.PeerCN + " not allowed")
			}
			return nil
		},
	})
	if err := l.m.RegisterCommunicator("PHONE-1", phone.URL()); err != nil {
		t.Fatal(err)
	}
	send := func(cert tls.Certificate, id string) hl7.Ack {
		reply, err := hl7.SendOnce(waitCtx(t), l.m.MLLPAddr(), clientTLS(cert), hl7.BuildAlert(pcd04(id, hl7.PhaseStart, hl7.StateActive, onsetBase)))
		if err != nil {
			t.Fatalf("send over TLS: %v", err)
		}
		ack, err := hl7.ParseAck(reply)
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	if ack := send(rogueCert, "ALR-R"); ack.Code != hl7.AckAR {
		t.Errorf("rogue reporter: ack %s", ack.Code)
	}
	if ack := send(reporterCert, "ALR-T"); !ack.OK() {
		t.Fatalf("reporter: %v", ack.Err())
	}
	if _, err := hl7.SendOnce(waitCtx(t), l.m.MLLPAddr(), nil, hl7.BuildAlert(pcd04("ALR-P", "start", "active", onsetBase))); err == nil {
		t.Error("plain MLLP accepted by a TLS manager")
	}
	waitPhone(t, phone, "ALR-T", alertIs("ALR-T"))
	rec := l.waitAlert(t, "delivered", func(r AlertRecord) bool { return r.ID == "ALR-T" && r.Status == RecordDelivered })
	if rec.StartFrom == "" || rec.StartFrom[len(rec.StartFrom)-len("cn=pump-server"):] != "cn=pump-server" {
		t.Errorf("start_from %q", rec.StartFrom)
	}
	if s := l.m.Stats(); s.Refused != 1 || s.Alerts != 1 {
		t.Errorf("stats %+v", s)
	}
	// The phone answers over HTTPS to the manager.
	if err := phone.Accept(context.Background(), "ALR-T", "RN0042"); err != nil {
		t.Fatal(err)
	}
	if r := mustAlert(t, l.m, "ALR-T"); r.AcceptedBy != "RN0042" {
		t.Errorf("record %+v", r)
	}
}

func TestReporterOverTLS(t *testing.T) {
	ca := newTestCA(t)
	srvCert := ca.issue(t, "pump-server", 2)
	amCert := ca.issue(t, "alarm-manager", 3)
	got := make(chan hl7.AlertStatus, 8)
	rep := hl7.New(hl7.Config{
		TLS: &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: ca.pool, ClientAuth: tls.RequireAndVerifyClientCert},
		Handler: func(_ context.Context, m *hl7.Message, meta hl7.ConnMeta) (*hl7.Message, error) {
			s, err := hl7.ParseAlertStatus(m)
			if err != nil || meta.PeerCN != "alarm-manager" {
				return nil, errors.Join(err, errors.New("bad peer "+meta.PeerCN))
			}
			got <- s
			return nil, nil
		}})
	if err := rep.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	l := newLab(t, Config{ReporterAddr: rep.Addr(), ReporterTLS: &tls.Config{Certificates: []tls.Certificate{amCert}, RootCAs: ca.pool},
		ReportStatuses: []string{hl7.AlertAccepted}}, "PHONE-1")
	l.start(t, "ALR-U")
	waitPhone(t, l.phones["PHONE-1"], "ALR-U", alertIs("ALR-U"))
	if err := l.phones["PHONE-1"].Accept(waitCtx(t), "ALR-U", "RN7"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s.Status != hl7.AlertAccepted || s.Provider.ID != "RN7" {
			t.Errorf("PCD-05 %+v", s)
		}
	case <-waitCtx(t).Done():
		t.Fatal("no PCD-05 over TLS")
	}
	// Only accepted was selected: no "delivered" status was sent.
	if s, _ := l.m.WaitStats(waitCtx(t), func(s Stats) bool { return s.Reported >= 1 }); s.Reported != 1 || s.ReportFailed != 0 {
		t.Errorf("stats %+v", s)
	}
}
