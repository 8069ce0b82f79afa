package alarms

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
)

func startPhone(t *testing.T, cfg CommunicatorConfig) *Communicator {
	t.Helper()
	p := NewCommunicator(cfg)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestCommunicatorAPI(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	got := make(chan Message, 4)
	cancelled := make(chan string, 4)
	p := startPhone(t, CommunicatorConfig{ID: "PHONE-9", Clock: clk,
		OnMessage: func(m Message) { got <- m },
		OnCancel:  func(id string) { cancelled <- id }})
	base := p.URL()

	// Bad bodies are refused with a message naming the problem.
	for _, tc := range MessageCases {
		if tc.Err == "" {
			continue
		}
		code, body := postJSON(t, base+"/v1/messages", tc.JSON)
		var ae apiError
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &ae) != nil || !strings.Contains(ae.Error, tc.Err) {
			t.Errorf("%s: %d %s", tc.Name, code, body)
		}
	}
	good := MessageCases[0].JSON
	code, body := postJSON(t, base+"/v1/messages", good)
	if code != http.StatusOK || !strings.Contains(body, `"delivered"`) {
		t.Fatalf("post message: %d %s", code, body)
	}
	select {
	case m := <-got:
		if m != MessageCases[0].Want {
			t.Errorf("OnMessage got %+v", m)
		}
	case <-waitCtx(t).Done():
		t.Fatal("OnMessage not called")
	}
	postJSON(t, base+"/v1/messages", good)
	if m := <-got; m.AlertID != "ALR-55123" { // repeats reach the nurse model too
		t.Errorf("OnMessage got %+v", m)
	}
	if r, _ := p.Message("ALR-55123"); r.Count != 2 || !r.At.Equal(clk.Now()) || r.Recipient != "PHONE-4W-1" {
		t.Errorf("entry %+v", r)
	}

	// Cancel, then the list shows it.
	code, _ = postJSON(t, base+"/v1/messages/ALR-55123/cancel", `{"reason":"ended"}`)
	if code != http.StatusOK {
		t.Fatalf("cancel: %d", code)
	}
	if id := <-cancelled; id != "ALR-55123" {
		t.Errorf("OnCancel(%q)", id)
	}
	resp, err := http.Get(base + "/v1/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []Received
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].AlertID != "ALR-55123" || list[0].Cancelled.IsZero() || list[0].Count != 2 {
		t.Errorf("GET /v1/messages: %+v", list)
	}

	// A cancel that overtakes its message: the late message is kept but the
	// nurse model is not bothered.
	postJSON(t, base+"/v1/messages/ALR-LATE/cancel", "")
	<-cancelled
	late := strings.Replace(good, "ALR-55123", "ALR-LATE", 1)
	postJSON(t, base+"/v1/messages", late)
	if r, ok := p.Message("ALR-LATE"); !ok || r.Count != 1 || r.Cancelled.IsZero() || r.Text != "Occlusion" {
		t.Errorf("late entry %+v", r)
	}
	select {
	case m := <-got:
		t.Errorf("OnMessage called for a cancelled alert: %+v", m)
	default:
	}

	// Off the network: 503.
	p.SetAvailable(false)
	if code, _ := postJSON(t, base+"/v1/messages", good); code != http.StatusServiceUnavailable {
		t.Errorf("unavailable phone answered %d", code)
	}
	if err := p.Accept(waitCtx(t), "ALR-NONE", "RN1"); err == nil {
		t.Error("accept of an unknown alert did not fail")
	}
}

// CTL-05 end to end: PCD-04 start -> dispatch -> a nurse model accepting
// after a lab latency -> PCD-05 accepted -> PCD-04 end.
func TestNurseModelLifecycle(t *testing.T) {
	l := newLab(t, Config{})
	clk := l.clk
	accepted := make(chan error, 1)
	armed := make(chan struct{}, 1)
	var phone *Communicator
	phone = startPhone(t, CommunicatorConfig{ID: "PHONE-4W-1", Clock: clk, OnMessage: func(m Message) {
		// The nurse looks at the phone 40 lab seconds later.
		clk.AfterFunc(40*time.Second, func() {
			go func() { accepted <- phone.Accept(context.Background(), m.AlertID, "RN0042") }()
		})
		armed <- struct{}{}
	}})
	if err := l.m.RegisterCommunicator(phone.ID(), phone.URL()); err != nil {
		t.Fatal(err)
	}
	l.start(t, "ALR-CTL05")
	waitPhone(t, phone, "message", alertIs("ALR-CTL05"))
	l.waitAlert(t, "delivered", func(r AlertRecord) bool { return r.Status == RecordDelivered })
	<-armed // the nurse model has seen the message and armed its timer
	clk.Advance(40 * time.Second)
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	rec := mustAlert(t, l.m, "ALR-CTL05")
	if d, _ := rec.AckLatency(); d != 45*time.Second {
		t.Errorf("L_ack %v, want 45s", d)
	}
	l.reporter.wait(t, "ALR-CTL05", hl7.AlertAccepted)
	if r, _ := phone.Message("ALR-CTL05"); r.Response != StatusAccepted || r.User != "RN0042" {
		t.Errorf("phone entry %+v", r)
	}
	if ack := l.send(t, pcd04("ALR-CTL05", hl7.PhaseEnd, hl7.StateInactive, onsetBase)); !ack.OK() {
		t.Fatal(ack.Err())
	}
	if r := mustAlert(t, l.m, "ALR-CTL05"); r.Active() || r.Status != RecordAccepted {
		t.Errorf("after end %+v", r)
	}
}
