package pump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

const waitFor = 15 * time.Second

// gate is a mochi hook that allows every client except the denied ids.
type gate struct {
	mqtt.HookBase
	mu   sync.Mutex
	deny map[string]bool
}

func (g *gate) ID() string { return "test-gate" }
func (g *gate) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (g *gate) OnConnectAuthenticate(_ *mqtt.Client, pk packets.Packet) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.deny[pk.Connect.ClientIdentifier]
}
func (g *gate) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
func (g *gate) set(id string, denied bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deny == nil {
		g.deny = map[string]bool{}
	}
	g.deny[id] = denied
}

// startBroker starts an embedded mochi broker on addr ("127.0.0.1:0" for a
// fresh port) and returns it with its bound address.
func startBroker(t *testing.T, addr string, g *gate) (*mqtt.Server, string) {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if g == nil {
		g = &gate{}
	}
	if err := srv.AddHook(g, nil); err != nil {
		t.Fatal(err)
	}
	var err error
	var l *listeners.TCP
	for try := 0; try < 50; try++ { // a restarted broker may wait for its old port
		l = listeners.NewTCP(listeners.Config{ID: "t", Address: addr})
		if err = srv.AddListener(l); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("broker listen %s: %v", addr, err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	return srv, l.Address()
}

// rxMsg is one message the test server received.
type rxMsg struct {
	kind pumpwire.Kind
	env  pumpwire.Envelope
	body any
}

// testServer is a paho client playing the pump server.
type testServer struct {
	t      *testing.T
	c      paho.Client
	mu     sync.Mutex
	msgs   []rxMsg
	notify chan struct{}
	seq    atomic.Uint64
}

var serverN atomic.Int64

func newTestServer(t *testing.T, url string) *testServer {
	t.Helper()
	s := &testServer{t: t, notify: make(chan struct{}, 1)}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("test-server-%d", serverN.Add(1))).
		SetAutoReconnect(false).SetCleanSession(true).SetConnectTimeout(5 * time.Second)
	s.c = paho.NewClient(opts)
	if tok := s.c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("test server connect: %v", tok.Error())
	}
	for _, k := range []pumpwire.Kind{pumpwire.KindStatus, pumpwire.KindEvent, pumpwire.KindAlarm, pumpwire.KindAck, pumpwire.KindOnline} {
		if tok := s.c.Subscribe(pumpwire.Filter(k), 1, s.handle); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", k, tok.Error())
		}
	}
	t.Cleanup(func() { s.c.Disconnect(50) })
	return s
}

func (s *testServer) handle(_ paho.Client, m paho.Message) {
	_, k, err := pumpwire.ParseTopic(m.Topic())
	if err != nil {
		s.t.Errorf("bad topic %s: %v", m.Topic(), err)
		return
	}
	_, env, body, err := pumpwire.Decode(m.Topic(), m.Payload())
	if err != nil {
		s.t.Errorf("pump sent an invalid %s message: %v: %s", k, err, m.Payload())
		return
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, rxMsg{kind: k, env: env, body: body})
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *testServer) received() []rxMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rxMsg(nil), s.msgs...)
}

// wait returns the first message (from index from on) matching pred.
func (s *testServer) wait(what string, pred func(rxMsg) bool) rxMsg {
	s.t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	for {
		for _, m := range s.received() {
			if pred(m) {
				return m
			}
		}
		select {
		case <-s.notify:
		case <-deadline.C:
			s.t.Fatalf("timed out waiting for %s; got %d messages", what, len(s.received()))
		}
	}
}

func (s *testServer) send(pumpID string, cmd pumpwire.Command) {
	s.t.Helper()
	seq := s.seq.Add(1)
	b, err := pumpwire.Encode(fmt.Sprintf("srv-m%d", seq), "pumpserver", time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC), seq, cmd)
	if err != nil {
		s.t.Fatal(err)
	}
	s.sendRaw(pumpID, b)
}

func (s *testServer) sendRaw(pumpID string, b []byte) {
	s.t.Helper()
	if tok := s.c.Publish(pumpwire.Topic(pumpID, pumpwire.KindCmd), 1, false, b); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		s.t.Fatalf("publish command: %v", tok.Error())
	}
}

func (s *testServer) ack(cmdID string) *pumpwire.CommandAck {
	s.t.Helper()
	m := s.wait("ack "+cmdID, func(m rxMsg) bool {
		a, ok := m.body.(*pumpwire.CommandAck)
		return ok && a.CmdID == cmdID
	})
	return m.body.(*pumpwire.CommandAck)
}

func isEvent(typ string) func(rxMsg) bool {
	return func(m rxMsg) bool {
		e, ok := m.body.(*pumpwire.Event)
		return ok && e.Type == typ
	}
}

func newAgentRig(t *testing.T, url string, pcfg Config, acfg AgentConfig) (*rig, *Agent) {
	t.Helper()
	r := newRig(t, pcfg)
	acfg.BrokerURL = url
	if acfg.StatusInterval == 0 {
		acfg.StatusInterval = time.Second
	}
	if acfg.ReconnectMax == 0 {
		acfg.ReconnectMax = 100 * time.Millisecond
	}
	a := NewAgent(r.p, acfg)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := a.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return r, a
}

func TestAgentStatusAndCommands(t *testing.T) {
	srv, addr := startBroker(t, "127.0.0.1:0", nil)
	defer srv.Close()
	url := "tcp://" + addr
	ts := newTestServer(t, url)
	fetched := make(chan string, 1)
	r, a := newAgentRig(t, url, Config{ID: "PUMP-0007", Channels: []ChannelType{LVP, LVP}, LibraryHash: "h1"}, AgentConfig{
		LibraryFetcher: func(_ context.Context, u, hash string) (*druglib.Library, error) {
			fetched <- u + " " + hash
			return testLib("TEST-2"), nil
		},
	})
	id := r.p.ID()

	st := ts.wait("status", func(m rxMsg) bool { return m.kind == pumpwire.KindStatus }).body.(*pumpwire.Status)
	if st.State != string(StateReady) || st.LibraryVersion != "TEST-1" || len(st.Channels) != 2 {
		t.Fatalf("status %+v", st)
	}
	if on := ts.wait("online", func(m rxMsg) bool { return m.kind == pumpwire.KindOnline }).body.(*pumpwire.Online); !on.Online {
		t.Fatal("online message says offline")
	}

	// Auto-programming: accepted, waits for the nurse.
	ts.send(id, pumpwire.Command{CmdID: "C1", Op: pumpwire.OpProgram, Channel: "A", Program: &pumpwire.Program{
		OrderID: "ORD-1", Action: "RE", DrugID: "HEP-25K", DoseRate: 1000, DoseUnit: "units/h", VTBI: 250}})
	if ack := ts.ack("C1"); ack.Result != pumpwire.ResultAccepted || ack.OrderID != "ORD-1" || ack.Channel != "A" {
		t.Fatalf("program ack %+v", ack)
	}
	if s := r.snap("A"); s.State != ChProgramming || s.Program.OrderID != "ORD-1" {
		t.Fatalf("pump after program: %s", s.State)
	}
	// Hard limit: rejected with the library code.
	ts.send(id, pumpwire.Command{CmdID: "C2", Op: pumpwire.OpProgram, Channel: "B", Program: &pumpwire.Program{
		OrderID: "ORD-2", Action: "RE", DrugID: "HEP-25K", DoseRate: 5000, DoseUnit: "units/h"}})
	if ack := ts.ack("C2"); ack.Result != pumpwire.ResultRejected || ack.Code != "LIB-HARDMAX" || ack.OrderID != "ORD-2" {
		t.Fatalf("hard-limit ack %+v", ack)
	}
	ts.wait("program_rejected event", func(m rxMsg) bool {
		e, ok := m.body.(*pumpwire.Event)
		return ok && e.Type == pumpwire.EvProgramRejected && e.OrderID == "ORD-2" && e.Params["code"] == "LIB-HARDMAX"
	})
	// Secure profile: remote start refused.
	ts.send(id, pumpwire.Command{CmdID: "C3", Op: pumpwire.OpStart, Channel: "A"})
	if ack := ts.ack("C3"); ack.Result != pumpwire.ResultRejected || ack.Code != "REMOTE-DISABLED" {
		t.Fatalf("remote start ack %+v", ack)
	}

	// Garbage: no crash; an ack naming the error when the cmd_id is readable.
	ts.sendRaw(id, []byte("\x00\xffgarbage{"))
	ts.sendRaw(id, []byte(`{"v":1,"id":"x1","from":"srv","ts":"2026-01-01T08:00:00Z","seq":9,"body":{"cmd_id":"BAD1","op":"telnet"}}`))
	if ack := ts.ack("BAD1"); ack.Result != pumpwire.ResultRejected || ack.Code != "BAD-CMD" || !strings.Contains(ack.Reason, "field op") {
		t.Fatalf("bad command ack %+v", ack)
	}
	ts.send(id, pumpwire.Command{CmdID: "C4", Op: pumpwire.OpStatusRequest})
	if ack := ts.ack("C4"); ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("status request after garbage: %+v", ack)
	}
	if c := a.Counters(); c.BadCommands != 2 {
		t.Fatalf("bad commands counted %d, want 2", c.BadCommands)
	}
	// A repeated command is answered, not executed again.
	ts.send(id, pumpwire.Command{CmdID: "C2", Op: pumpwire.OpProgram, Channel: "B", Program: &pumpwire.Program{
		OrderID: "ORD-2", Action: "RE", DrugID: "HEP-25K", DoseRate: 5000, DoseUnit: "units/h"}})
	deadline := time.Now().Add(waitFor)
	for a.Counters().DupCommands != 1 {
		if time.Now().After(deadline) {
			t.Fatal("duplicate command not detected")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// The nurse starts; a library command is deferred while infusing and
	// activated when the channel stops.
	r.must(r.p.Start("A", "RN1"))
	ts.send(id, pumpwire.Command{CmdID: "C5", Op: pumpwire.OpActivateLib, LibraryVersion: "TEST-2", LibraryURL: "http://lib/TEST-2", LibraryHash: "h2"})
	if ack := ts.ack("C5"); ack.Result != pumpwire.ResultDeferred {
		t.Fatalf("library ack while infusing %+v", ack)
	}
	if got := <-fetched; got != "http://lib/TEST-2 h2" {
		t.Fatalf("fetched %q", got)
	}
	ts.send(id, pumpwire.Command{CmdID: "C6", Op: pumpwire.OpStop, Channel: "A"})
	if ack := ts.ack("C6"); ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("stop ack %+v", ack)
	}
	ev := ts.wait("library_activated", isEvent(pumpwire.EvLibraryActivated)).body.(*pumpwire.Event)
	if ev.Params["version"] != "TEST-2" || ev.Params["hash"] != "h2" {
		t.Fatalf("library_activated %+v", ev)
	}

	// Periodic status on lab time; the reported layer follows what was sent.
	before := len(ts.received())
	r.clk.Advance(time.Second)
	tick := r.clk.Now()
	m := ts.wait("status after a tick", func(m rxMsg) bool {
		return m.kind == pumpwire.KindStatus && m.env.TS.Equal(tick)
	})
	if s := m.body.(*pumpwire.Status); s.LibraryVersion != "TEST-2" {
		t.Fatalf("status library %q", s.LibraryVersion)
	}
	if len(ts.received()) <= before {
		t.Fatal("no new messages")
	}
	deadline = time.Now().Add(waitFor)
	for {
		tl, _ := r.p.Truth("A")
		if tl.Reported.At.Equal(tick) && tl.Reported.State == string(ChStopped) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reported layer %+v", tl.Reported)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Every pump message has a unique id and increasing seq per sender.
	seen := map[string]bool{}
	for _, m := range ts.received() {
		if m.kind == pumpwire.KindOnline {
			continue
		}
		if seen[m.env.ID] {
			t.Fatalf("duplicate message id %s", m.env.ID)
		}
		seen[m.env.ID] = true
	}
}

func TestAgentOfflineBufferingExactlyOnce(t *testing.T) {
	g := &gate{}
	srv, addr := startBroker(t, "127.0.0.1:0", g)
	url := "tcp://" + addr
	ts := newTestServer(t, url)
	r, a := newAgentRig(t, url, Config{ID: "PUMP-0042"}, AgentConfig{})
	id := r.p.ID()

	r.program(pumpwire.Program{OrderID: "ORD-9", RateMLH: 100}, "A")
	r.must(r.p.Start("A", "RN1"))
	ts.wait("delivery_start", isEvent(pumpwire.EvDeliveryStart))
	waitTrue(t, "outbox drained", func() bool { return a.Outbox() == 0 })

	// Record everything the pump emits from here on, with its lab time.
	var mu sync.Mutex
	var offline []Output
	cancel := r.p.Listen(func(o Output) {
		mu.Lock()
		offline = append(offline, o)
		mu.Unlock()
	})
	defer cancel()

	g.set(id, true) // the restarted broker will refuse the pump until the server is back
	srv.Close()
	waitTrue(t, "agent disconnected", func() bool { return !a.Connected() })

	// Therapy goes on without the network.
	v0 := r.snap("A").VolumeML
	r.clk.Advance(10 * time.Minute)
	if v := r.snap("A").VolumeML; !near(v-v0, 100.0/6) {
		t.Fatalf("delivered %v mL offline in 10 min, want %v", v-v0, 100.0/6)
	}
	r.must(r.p.InjectFault("A", FaultOcclusionDown))
	r.clk.Advance(30 * time.Second)
	al := r.p.Alarms()
	var occl ActiveAlarm
	for _, x := range al {
		if x.Def.Code == AlarmOcclusionDown {
			occl = x
		}
	}
	if occl.AlarmID == "" {
		t.Fatalf("no occlusion alarm offline: %+v", al)
	}
	r.clk.Advance(time.Minute)
	r.must(r.p.ClearAlarm(occl.AlarmID, "RN1"))
	r.must(r.p.Resume("A", "RN1"))
	r.clk.Advance(time.Minute)
	if v := r.snap("A").VolumeML; v <= v0+100.0/6 {
		t.Fatalf("delivery did not go on after the offline alarm: %v", v)
	}
	mu.Lock()
	want := append([]Output(nil), offline...)
	mu.Unlock()
	if a.Outbox() < len(want) || len(want) < 6 {
		t.Fatalf("outbox %d, offline outputs %d", a.Outbox(), len(want))
	}

	// Broker back on the same port; the server reconnects first, then the pump.
	srv2, addr2 := startBroker(t, addr, g)
	defer srv2.Close()
	if addr2 != addr {
		t.Fatalf("restarted on %s, want %s", addr2, addr)
	}
	ts2 := newTestServer(t, url)
	g.set(id, false)
	ctx, cancelWait := context.WithTimeout(context.Background(), waitFor)
	defer cancelWait()
	if err := a.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	key := func(o Output) string {
		if o.Event != nil {
			return "E:" + o.Event.EventID
		}
		return "A:" + o.Alarm.AlarmID + ":" + o.Alarm.Phase
	}
	rxKey := func(m rxMsg) string {
		switch b := m.body.(type) {
		case *pumpwire.Event:
			return "E:" + b.EventID
		case *pumpwire.Alarm:
			return "A:" + b.AlarmID + ":" + b.Phase
		}
		return ""
	}
	last := key(want[len(want)-1])
	ts2.wait("last offline output", func(m rxMsg) bool { return rxKey(m) == last })
	ts2.wait("comm_loss end", func(m rxMsg) bool {
		al, ok := m.body.(*pumpwire.Alarm)
		return ok && al.Code == string(AlarmCommLoss) && al.Phase == pumpwire.PhaseEnd
	})
	waitTrue(t, "outbox drained after reconnect", func() bool { return a.Outbox() == 0 })

	got := map[string][]rxMsg{}
	ids := map[string]int{}
	var order []uint64
	for _, m := range append(ts.received(), ts2.received()...) {
		if k := rxKey(m); k != "" {
			got[k] = append(got[k], m)
			ids[m.env.ID]++
		}
	}
	for _, m := range ts2.received() {
		if rxKey(m) != "" {
			order = append(order, m.env.Seq)
		}
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("message %s received %d times", id, n)
		}
	}
	for _, o := range want {
		k := key(o)
		ms := got[k]
		if len(ms) != 1 {
			t.Errorf("%s received %d times, want exactly once", k, len(ms))
			continue
		}
		if !ms[0].env.TS.Equal(o.Time) {
			t.Errorf("%s ts %v, want original %v", k, ms[0].env.TS, o.Time)
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i] <= order[i-1] {
			t.Fatalf("flush out of order: seq %v", order)
		}
	}
	// The comm-loss advisory was raised offline and ended on reconnect.
	var commStart, commEnd bool
	for k, ms := range got {
		if al, ok := ms[0].body.(*pumpwire.Alarm); ok && al.Code == string(AlarmCommLoss) {
			commStart = commStart || strings.HasSuffix(k, ":start")
			commEnd = commEnd || strings.HasSuffix(k, ":end")
		}
	}
	if !commStart || !commEnd {
		t.Fatalf("comm_loss start %v end %v", commStart, commEnd)
	}
	if c := a.Counters(); c.ConnectionLost != 1 || c.Connects != 2 {
		t.Fatalf("counters %+v", c)
	}
}

func waitTrue(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAgentOutboxOverflowKeepsAlarms(t *testing.T) {
	r := newRig(t, Config{})
	// Nothing listens on port 1: the agent stays offline and buffers.
	a := NewAgent(r.p, AgentConfig{BrokerURL: "tcp://127.0.0.1:1", OfflineBuffer: 5, ReconnectMax: time.Hour})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r.program(pumpwire.Program{OrderID: "O1", RateMLH: 10}, "A") // 1 event
	r.must(r.p.Start("A", "RN1"))                                // 1 event
	r.must(r.p.InjectFault("A", FaultAirInLine))                 // alarm + delivery_stop
	r.must(r.p.InjectFault("A", FaultBatteryLow))                // alarm
	for i := 0; i < 6; i++ {                                     // refused (channel alarming): one program_rejected event each
		_, _ = r.p.Program(Local, pumpwire.Program{OrderID: fmt.Sprint(i), RateMLH: 1}, "A")
	}
	a.mu.Lock()
	var alarms, events int
	for _, m := range a.outbox {
		if m.alarm {
			alarms++
		} else {
			events++
		}
	}
	n := len(a.outbox)
	a.mu.Unlock()
	c := a.Counters()
	// 9 events (accepted, start, stop, 6 rejected) + 2 alarms into a bound of 5.
	if n != 5 || alarms != 2 || events != 3 || c.Dropped != 6 {
		t.Fatalf("outbox %d (alarms %d events %d) dropped %d; want 5 (2 alarms) and 6 dropped", n, alarms, events, c.Dropped)
	}
}

func TestAgentStartErrors(t *testing.T) {
	p := New(Config{Clock: clock.NewFake(time.Time{})})
	a := NewAgent(p, AgentConfig{BrokerURL: "telnet://x"})
	if err := a.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Fatalf("bad scheme: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewAgent(p, AgentConfig{}).Start(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}
