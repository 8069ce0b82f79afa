package pump

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// FuzzHandleCommand feeds arbitrary command payloads to the agent's command
// path (decode, cache, execution on a real Pump). It must never panic, and
// every ack it produces must be a valid CommandAck.
func FuzzHandleCommand(f *testing.F) {
	const id = "PUMP-0001"
	for _, c := range pumpwire.Cases {
		f.Add(c.Payload)
	}
	f.Add(`{"v":1,"id":"c","from":"s","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C","op":"program","channel":"B","program":{"order_id":"O","action":"XO","rate_ml_h":1e308}}}`)
	f.Add(`{"v":1,"id":"c","from":"s","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C","op":"library","library_version":"X"}}`)
	f.Add(`{"v":1,"id":"c","from":"s","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C","op":"clear_alarm","alarm_id":"PUMP-0001-A1"}}`)
	f.Add(`{"body":{"cmd_id":"\u0000"}}`)
	clk := clock.NewFake(time.Time{})
	p := New(Config{ID: id, Clock: clk, Library: testLib("F"), CareArea: "ICU", Channels: []ChannelType{LVP, PCA}, RemoteStartAllowed: true, RemoteClearAllowed: true})
	a := NewAgent(p, AgentConfig{})
	topic := pumpwire.Topic(id, pumpwire.KindCmd)
	f.Fuzz(func(t *testing.T, payload string) {
		ack, ok := a.HandleCommand(context.Background(), topic, []byte(payload))
		if !ok {
			return
		}
		if err := ack.Validate(); err != nil {
			t.Fatalf("invalid ack %+v: %v", ack, err)
		}
		if ack.Result == pumpwire.ResultRejected && ack.Code == "" {
			t.Fatalf("rejection without code: %+v", ack)
		}
		if strings.ContainsRune(ack.CmdID, 0) {
			t.Fatalf("control character echoed in cmd_id %q", ack.CmdID)
		}
		clk.Advance(time.Minute)
	})
}
