package labapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T, allow []netip.Addr) *Client {
	t.Helper()
	s := &Server{Role: "fleet", Allow: allow, Methods: map[string]Handler{
		"state": func(ctx context.Context, in json.RawMessage) (any, error) {
			var r ChannelReq
			if err := Decode(in, &r); err != nil {
				return nil, err
			}
			if r.PumpID != "PUMP-0001" {
				return nil, errors.New("no pump " + r.PumpID)
			}
			return State{State: "infusing"}, nil
		},
	}}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &Client{Role: "fleet", Base: "http://" + s.Addr()}
}

func TestCallDecodesAnswersAndErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := start(t, nil)
	var st State
	if err := c.Call(ctx, "state", ChannelReq{PumpID: "PUMP-0001"}, &st); err != nil || st.State != "infusing" {
		t.Fatalf("state = %+v, %v", st, err)
	}
	if err := c.Call(ctx, "state", ChannelReq{PumpID: "PUMP-9"}, &st); err == nil || err.Error() != "fleet: state: no pump PUMP-9" {
		t.Fatalf("error = %v", err)
	}
	if err := c.Call(ctx, "state", map[string]any{"pump_id": "PUMP-0001", "rate": 5}, &st); err == nil || !strings.Contains(err.Error(), `unknown field "rate"`) {
		t.Fatalf("unknown field: %v", err)
	}
	if err := c.Call(ctx, "nope", nil, nil); err == nil || !strings.Contains(err.Error(), `no method "nope"`) {
		t.Fatalf("unknown method: %v", err)
	}
}

func TestControlRefusesPeersNotAllowed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	only2, _ := ParseAllow("127.0.0.2")
	c := start(t, only2)
	err := c.Call(ctx, "ping", nil, nil)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a peer outside the allow list got %v, want the connection refused", err)
	}
	only1, _ := ParseAllow("127.0.0.1, 10.0.0.1")
	if err := start(t, only1).Call(ctx, "ping", nil, nil); err != nil {
		t.Fatalf("allowed peer: %v", err)
	}
	if _, err := ParseAllow("127.0.0.1,not-an-ip"); err == nil || !strings.Contains(err.Error(), "not-an-ip") {
		t.Fatalf("ParseAllow: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"pump_id":"PUMP-0001","channel":"A","from":"2026-01-05T08:00:00Z"}`))
	f.Add([]byte(`{"ordered":{"order_id":"O1","rate_mlh":5}}`))
	f.Add([]byte(`{"pump_id":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r ChannelReq
		if err := Decode(b, &r); err == nil {
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("decoded request does not re-encode: %v", err)
			}
		}
	})
}
