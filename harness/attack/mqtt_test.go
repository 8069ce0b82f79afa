package attack

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/simulators/pumpwire"
)

func dialT(t *testing.T, ctx context.Context, cfg MQTTConfig) *MQTT {
	t.Helper()
	m, err := DialMQTT(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// TestForgeCommand is ATK-16-style: an attacker with any client id forges
// a pump-server command; a listener on the pump's command topic (the pump)
// receives a valid pumpwire command, and the step records the ids.
func TestForgeCommand(t *testing.T) {
	ctx := testCtx(t)
	broker := "tcp://" + startBroker(t)
	pump := dialT(t, ctx, MQTTConfig{Broker: broker, ClientID: "PUMP-0007"})
	sn, err := pump.Sniff(ctx, pumpwire.Topic("PUMP-0007", pumpwire.KindCmd), 1)
	if err != nil {
		t.Fatal(err)
	}
	var rec Memory
	var msgID string
	err = Do(ctx, &rec, Step{ScenarioID: "ATK-16", StepID: "ATK-16/1", Techniques: []string{"T0855", "T0836"},
		Assets: []string{"PUMP-0007"}, Wall: fakeWall()}, func(ctx context.Context) error {
		atk, err := DialMQTT(ctx, MQTTConfig{Broker: broker, ClientID: "pumpserver-2", Username: "svc", Password: "pumplab"})
		if err != nil {
			return err
		}
		defer atk.Close()
		msgID, err = atk.ForgeCommand(ctx, "PUMP-0007", pumpwire.Command{CmdID: "evil-1", Op: pumpwire.OpProgram, Channel: "A",
			Program: &pumpwire.Program{OrderID: "ADM-778899", Action: "XO", DoseRate: 0.5, DoseUnit: "mcg/kg/min"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := sn.WaitFor(ctx, func(Message) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	id, env, body, err := pumpwire.Decode(got.Topic, got.Payload)
	if err != nil {
		t.Fatalf("forged command is not valid pumpwire: %v", err)
	}
	cmd, ok := body.(*pumpwire.Command)
	if !ok || id != "PUMP-0007" || cmd.CmdID != "evil-1" || cmd.Program.DoseRate != 0.5 || env.From != "pumpserver" || env.ID != msgID || env.Seq < 1_000_000 {
		t.Fatalf("decoded %s %+v %+v", id, env, body)
	}
	corr := rec.Steps()[0].Correlation
	for _, want := range []string{"mqtt-client:pumpserver-2", "cmd:evil-1", "mqtt-msg:" + msgID} {
		if !slices.Contains(corr, want) {
			t.Errorf("correlation %q lacks %q", corr, want)
		}
	}
}

func TestSpoofEventAndAlarm(t *testing.T) {
	ctx := testCtx(t)
	broker := "tcp://" + startBroker(t)
	server := dialT(t, ctx, MQTTConfig{Broker: broker})
	sn, err := server.Sniff(ctx, "pumplab/v1/pumps/#", 1)
	if err != nil {
		t.Fatal(err)
	}
	atk := dialT(t, ctx, MQTTConfig{Broker: broker, ClientID: "PUMP-0003"})
	if _, err := atk.SpoofAlarm(ctx, "PUMP-0003", pumpwire.Alarm{AlarmID: "a1", Code: "occlusion_downstream", Phase: pumpwire.PhaseEnd, Priority: "PH", Type: "SP"}); err != nil {
		t.Fatal(err)
	}
	if _, err := atk.SpoofEvent(ctx, "PUMP-0003", pumpwire.Event{EventID: "e1", Type: pumpwire.EvDeliveryComplete, Channel: "A"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []pumpwire.Kind{pumpwire.KindAlarm, pumpwire.KindEvent} {
		m, err := sn.WaitFor(ctx, func(m Message) bool { return m.Topic == pumpwire.Topic("PUMP-0003", k) })
		if err != nil {
			t.Fatal(err)
		}
		if _, env, _, err := pumpwire.Decode(m.Topic, m.Payload); err != nil || env.From != "PUMP-0003" {
			t.Fatalf("spoofed %s: %+v %v", k, env, err)
		}
	}
	if err := sn.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMQTTProxyRewrite: the proxy rewrites the payload of one topic and
// passes another unchanged; the subscriber behind the broker sees both.
func TestMQTTProxyRewrite(t *testing.T) {
	ctx := testCtx(t)
	addr := startBroker(t)
	statusTopic := pumpwire.Topic("PUMP-0001", pumpwire.KindStatus)
	eventTopic := pumpwire.Topic("PUMP-0001", pumpwire.KindEvent)
	p := NewMQTTProxy(MQTTProxyConfig{Upstream: addr, Tamper: func(dir Direction, pub *Publish) (*Publish, bool) {
		if dir == ToServer && pub.Topic == statusTopic {
			pub.Payload = bytes.ReplaceAll(pub.Payload, []byte(`"rate_ml_h":13.125`), []byte(`"rate_ml_h":1.3125`))
			return pub, false
		}
		return nil, false
	}})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sub := dialT(t, ctx, MQTTConfig{Broker: "tcp://" + addr})
	sn, err := sub.Sniff(ctx, "pumplab/v1/pumps/+/+", 1)
	if err != nil {
		t.Fatal(err)
	}
	pump := dialT(t, ctx, MQTTConfig{Broker: p.URL(), ClientID: "PUMP-0001"})
	status := []byte(`{"channels":[{"channel":"A","rate_ml_h":13.125}]}`)
	event := []byte(`{"event_id":"e1","rate_ml_h":13.125}`)
	if err := pump.Publish(ctx, statusTopic, 0, false, status); err != nil {
		t.Fatal(err)
	}
	if err := pump.Publish(ctx, eventTopic, 1, false, event); err != nil {
		t.Fatal(err)
	}
	gotS, err := sn.WaitFor(ctx, func(m Message) bool { return m.Topic == statusTopic })
	if err != nil {
		t.Fatal(err)
	}
	gotE, err := sn.WaitFor(ctx, func(m Message) bool { return m.Topic == eventTopic })
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"channels":[{"channel":"A","rate_ml_h":1.3125}]}`; string(gotS.Payload) != want {
		t.Errorf("status through the proxy = %s, want %s", gotS.Payload, want)
	}
	if !bytes.Equal(gotE.Payload, event) {
		t.Errorf("event through the proxy = %s, want it unchanged", gotE.Payload)
	}
	// Subscriber traffic (broker -> client through the proxy) passes too:
	// the proxied pump subscribes and gets a message published directly.
	psn, err := pump.Sniff(ctx, pumpwire.Topic("PUMP-0001", pumpwire.KindCmd), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Publish(ctx, pumpwire.Topic("PUMP-0001", pumpwire.KindCmd), 1, false, []byte(`{"cmd":1}`)); err != nil {
		t.Fatal(err)
	}
	if m, err := psn.WaitFor(ctx, func(Message) bool { return true }); err != nil || string(m.Payload) != `{"cmd":1}` {
		t.Fatalf("delivery through the proxy: %v %v", m, err)
	}
	st := p.Stats()
	if st.Changed != 1 || st.Dropped != 0 || st.Forwarded != 3 || st.Connections != 1 {
		t.Fatalf("stats = %+v, want 1 changed, 3 publishes forwarded", st)
	}
}

// TestMQTTProxyDropAlarms: alarms dropped (QoS 1 and 2, with forged
// acknowledgements, so the sender's publish completes); status passes.
func TestMQTTProxyDropAlarms(t *testing.T) {
	ctx := testCtx(t)
	addr := startBroker(t)
	p := NewMQTTProxy(MQTTProxyConfig{Upstream: addr, Tamper: func(dir Direction, pub *Publish) (*Publish, bool) {
		return nil, strings.HasSuffix(pub.Topic, "/alarms")
	}})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sub := dialT(t, ctx, MQTTConfig{Broker: "tcp://" + addr})
	sn, err := sub.Sniff(ctx, "pumplab/v1/pumps/#", 2)
	if err != nil {
		t.Fatal(err)
	}
	pump := dialT(t, ctx, MQTTConfig{Broker: p.URL(), ClientID: "PUMP-0002"})
	for _, q := range []byte{1, 2, 1} {
		if _, err := pump.SpoofAlarm(ctx, "PUMP-0002", pumpwire.Alarm{AlarmID: "a", Code: "air_in_line", Phase: "start", Priority: "PH", Type: "SP"}); err != nil {
			t.Fatal(err)
		}
		if err := pump.Publish(ctx, pumpwire.Topic("PUMP-0002", pumpwire.KindAlarm), q, false, []byte(`{}`)); err != nil {
			t.Fatalf("QoS %d publish of a dropped alarm did not complete: %v", q, err)
		}
	}
	if err := pump.Publish(ctx, pumpwire.Topic("PUMP-0002", pumpwire.KindStatus), 1, false, []byte(`{"mark":true}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.WaitFor(ctx, func(m Message) bool { return strings.HasSuffix(m.Topic, "/status") }); err != nil {
		t.Fatal(err)
	}
	for _, m := range sn.Messages() {
		if strings.HasSuffix(m.Topic, "/alarms") {
			t.Fatalf("subscriber received a dropped alarm: %s", m.Payload)
		}
	}
	if st := p.Stats(); st.Dropped != 6 || st.Forged != 6 || st.Forwarded != 1 {
		t.Fatalf("stats = %+v, want 6 dropped with 6 forged acks, 1 forwarded", st)
	}
}

func TestMQTTFloodBounds(t *testing.T) {
	ctx := testCtx(t)
	addr := startBroker(t)
	sub := dialT(t, ctx, MQTTConfig{Broker: "tcp://" + addr})
	sn, err := sub.Sniff(ctx, "flood/#", 1)
	if err != nil {
		t.Fatal(err)
	}
	atk := dialT(t, ctx, MQTTConfig{Broker: "tcp://" + addr})
	payload := func(i int) []byte { b, _ := json.Marshal(map[string]int{"i": i}); return b }
	r, err := atk.Flood(ctx, "flood/a", 1, payload, FloodLimits{Count: 200, Duration: 20 * time.Second})
	if err != nil || r.Sent != 200 || r.Stopped != StopCount {
		t.Fatalf("flood = %+v, %v; want 200 sent, stopped by count", r, err)
	}
	if _, err := sn.WaitFor(ctx, func(m Message) bool { return string(m.Payload) == `{"i":199}` }); err != nil {
		t.Fatal(err)
	}
	if n := len(sn.Messages()); n != 200 {
		t.Fatalf("subscriber got %d, want exactly 200", n)
	}
	// Duration bound: a tiny duration stops the flood long before its count.
	r, err = atk.Flood(ctx, "flood/b", 1, payload, FloodLimits{Count: MaxFloodCount, Duration: time.Millisecond})
	if err != nil || r.Stopped != StopDuration || r.Sent >= MaxFloodCount {
		t.Fatalf("flood = %+v, %v; want stopped by duration", r, err)
	}
	if _, err := atk.Flood(ctx, "flood/c", 0, payload, FloodLimits{Count: MaxFloodCount + 1, Duration: time.Second}); err == nil {
		t.Fatal("flood above the count cap accepted")
	}
	if _, err := atk.Flood(ctx, "flood/c", 0, payload, FloodLimits{Count: 1, Duration: 2 * MaxFloodDuration}); err == nil {
		t.Fatal("flood above the duration cap accepted")
	}
}

func TestDialMQTTFailures(t *testing.T) {
	ctx := testCtx(t)
	// Nothing listens on a closed loopback port: a prompt error naming the
	// operation, not a hang.
	_, err := DialMQTT(ctx, MQTTConfig{Broker: "tcp://127.0.0.1:1", ClientID: "x"})
	if err == nil || !strings.Contains(err.Error(), "attack: mqtt: connect to tcp://127.0.0.1:1") {
		t.Fatalf("dial closed port: %v", err)
	}
	if _, err := DialMQTT(ctx, MQTTConfig{Broker: "not a url"}); err == nil {
		t.Fatal("bad URL accepted")
	}
	// A cancelled context ends the connect.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := DialMQTT(cctx, MQTTConfig{Broker: "tcp://" + startBroker(t)}); err == nil {
		t.Fatal("connect with a cancelled context succeeded")
	}
}
