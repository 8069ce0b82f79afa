package pumpserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// waitFor bounds every wait for something that must happen (wall time).
const waitFor = 15 * time.Second

// t0 is the lab time every test starts at (whole seconds: HL7 times have
// second precision).
var t0 = time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// startBroker starts an embedded mochi broker that allows everyone, on a
// fresh loopback port, and returns its URL.
func startBroker(t *testing.T) string {
	t.Helper()
	b := mqtt.New(&mqtt.Options{InlineClient: true, Logger: quiet()})
	if err := b.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := b.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return "tcp://" + l.Address()
}

// recorder is a real hl7.Server playing a clinical peer (BCMA's RRG
// listener, EHR, alarm manager): it acknowledges everything and keeps what
// it received, in order.
type recorder struct {
	name   string
	srv    *hl7.Server
	mu     sync.Mutex
	msgs   []*hl7.Message
	notify chan struct{}
}

func newRecorder(t *testing.T, name, addr string) *recorder {
	t.Helper()
	r := &recorder{name: name, notify: make(chan struct{})}
	r.srv = hl7.New(hl7.Config{Addr: addr, Logger: quiet(), App: name, IDPrefix: name,
		Handler: func(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
			r.mu.Lock()
			r.msgs = append(r.msgs, m)
			close(r.notify)
			r.notify = make(chan struct{})
			r.mu.Unlock()
			return nil, nil
		}})
	if err := r.srv.Start(context.Background()); err != nil {
		t.Fatalf("%s listener: %v", name, err)
	}
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

func (r *recorder) addr() string { return r.srv.Addr() }

// all returns the messages received so far that match pred.
func (r *recorder) all(pred func(*hl7.Message) bool) []*hl7.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*hl7.Message
	for _, m := range r.msgs {
		if pred(m) {
			out = append(out, m)
		}
	}
	return out
}

// waitN waits until n messages matching pred have arrived and returns them.
func (r *recorder) waitN(t *testing.T, what string, n int, pred func(*hl7.Message) bool) []*hl7.Message {
	t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.notify
		r.mu.Unlock()
		if got := r.all(pred); len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: %s: %d of %d after %v; received %d messages", r.name, what, len(r.all(pred)), n, waitFor, len(r.all(func(*hl7.Message) bool { return true })))
		}
	}
}

// wait waits for the first message matching pred.
func (r *recorder) wait(t *testing.T, what string, pred func(*hl7.Message) bool) *hl7.Message {
	t.Helper()
	return r.waitN(t, what, 1, pred)[0]
}

func isType(code, trigger string) func(*hl7.Message) bool {
	return func(m *hl7.Message) bool { return m.Type().Is(code, trigger) }
}

// rrgFor matches the RRG^O16 answering the PCD-03 with MSH-10 id.
func rrgFor(id string) func(*hl7.Message) bool {
	return func(m *hl7.Message) bool { return m.Type().Is("RRG", "O16") && m.Get("MSA-2") == id }
}

// testLab is one pump server between an embedded broker and three recorders,
// all on one fake lab clock.
type testLab struct {
	t            *testing.T
	clk          *clock.Fake
	url          string
	iop, doc, am *recorder
	srv          *Server
}

func newLab(t *testing.T, edit func(*Config)) *testLab {
	t.Helper()
	l := &testLab{t: t, clk: clock.NewFake(t0), url: startBroker(t)}
	l.iop = newRecorder(t, "IOP", "")
	l.doc = newRecorder(t, "DOC", "")
	l.am = newRecorder(t, "AM", "")
	cfg := Config{BrokerURL: l.url, Name: "pumpserver-" + t.Name(), IOPAddr: l.iop.addr(), DOCAddr: l.doc.addr(), AMAddr: l.am.addr(),
		Clock: l.clk, Logger: quiet(), ProgramTimeout: 10 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	l.srv = New(cfg)
	if err := l.srv.Start(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.srv.Close() })
	return l
}

// addPump starts a real pump (default library, Adult ICU) with its MQTT
// agent and waits until the server's registry shows it online with its
// library version.
func (l *testLab) addPump(cfg pump.Config, fetch pump.LibraryFetcher) (*pump.Pump, *pump.Agent) {
	t := l.t
	t.Helper()
	cfg.Clock = l.clk
	if cfg.Library == nil {
		cfg.Library = druglib.Default()
	}
	if cfg.CareArea == "" {
		cfg.CareArea = "Adult ICU"
	}
	p := pump.New(cfg)
	a := pump.NewAgent(p, pump.AgentConfig{BrokerURL: l.url, Logger: quiet(), LibraryFetcher: fetch, StatusInterval: time.Hour})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	err := l.srv.Wait(ctxFor(t), func(v View) bool {
		pi, ok := v.Pump(p.ID())
		return ok && pi.Online && pi.LibraryVersion != ""
	})
	if err != nil {
		t.Fatalf("pump %s not registered: %v", p.ID(), err)
	}
	return p, a
}

// order sends a PCD-03 to the server's MLLP port and returns the accept
// acknowledgement read on the same connection.
func (l *testLab) order(m *hl7.Message) hl7.Ack {
	t := l.t
	t.Helper()
	ctx := ctxFor(t)
	c, err := hl7.Dial(ctx, l.srv.MLLPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reply, err := c.Send(ctx, m)
	if err != nil {
		t.Fatalf("send %s: %v", m.Type(), err)
	}
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		t.Fatalf("accept ack: %v\n%s", err, reply)
	}
	return ack
}

// norepi is the order of REFERENCE.md §4.8(a): norepinephrine 4 mg/250 mL at
// dose mcg/kg/min for 70 kg (0.05 gives 13.125 mL/h).
func norepi(controlID, pumpID string, dose float64) hl7.RGV {
	return hl7.RGV{
		Header: hl7.Header{SendingApp: hl7.ParseHD("BCMA_SIM^0011223344556677^EUI-64"), SendingFacility: hl7.ParseHD("HOSP_BCMA"),
			ReceivingApp: hl7.ParseHD("PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64"), ReceivingFacility: hl7.ParseHD("HOSP_BIOMED"),
			Time: t0, ControlID: controlID, AcceptAck: "AL", AppAck: "AL"},
		Patient:      hl7.Patient{MRN: "MRN4455", Authority: "HOSP", Family: "Testpatient", Given: "Alex"},
		OrderControl: hl7.OrderNew, PlacerOrder: "ADM-" + controlID, PlacerApp: "BCMA_SIM",
		GiveCode: "NOREPI-4-250", GiveText: "Norepinephrine 4 mg/250 mL", GiveSystem: "HOSPFORM",
		VTBI: 250, DoseRate: dose, DoseRateUnit: "mcg/kg/min", DrugAmount: 4, DrugAmountUnit: "mg", DiluentVolume: 250,
		Route: "IV", Device: hl7.DeviceLVP, PumpID: pumpID, PumpAuthority: "HOSP", WeightKg: 70,
	}
}

// rawClient is a bare paho client, for publishing what no agent would.
type rawClient struct {
	t   *testing.T
	c   paho.Client
	seq atomic.Uint64
}

var rawN atomic.Int64

func newRawClient(t *testing.T, url string) *rawClient {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("raw-%d", rawN.Add(1))).
		SetAutoReconnect(false).SetCleanSession(true).SetOrderMatters(true)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("raw client connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return &rawClient{t: t, c: c}
}

func (r *rawClient) publish(topic string, payload []byte) {
	r.t.Helper()
	if tok := r.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		r.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// envelope encodes body as sent by pumpID with envelope id msgID at ts.
func (r *rawClient) envelope(msgID, pumpID string, ts time.Time, body any) []byte {
	r.t.Helper()
	b, err := pumpwire.Encode(msgID, pumpID, ts, r.seq.Add(1), body)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// eventually polls cond (for state that has no notification) until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v", what, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func near(a, b float64) bool { d := a - b; return d < 1e-9 && d > -1e-9 }
