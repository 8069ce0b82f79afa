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
	f.Add(`{"v":1,"id":"c","from":"s","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C","op":"set_rate","channel":"A","rate_ml_h":400}}`)
	f.Add(`{"v":1,"id":"c","from":"s","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C","op":"config","settings":{"flow_calibration":"2","occlusion_threshold_mmhg":"1200","air_in_line_ul":"1e3","server_address":"tcp://127.0.0.1:1"}}}`)
	f.Add(`{"v":1,"id":"c","from":"s","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C","op":"firmware","firmware":"2.0","image":{"version":"2.0","hash":"abababababababababababababababababababababababababababababababab","kid":"v","sig":"AAAA"}}}`)
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
