package alarms

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/simulators/hl7"
)

func TestStartReachesCommunicator(t *testing.T) {
	l := newLab(t, Config{}, "PHONE-1")
	l.start(t, "ALR-1")

	got := waitPhone(t, l.phones["PHONE-1"], "ALR-1", alertIs("ALR-1"))
	want := Message{AlertID: "ALR-1", Recipient: "PHONE-1", Pump: "PUMP-0007", Event: "MDC_EVT_FLUID_LINE_OCCL",
		Text: "Downstream occlusion", Priority: "PH", Type: "ST", Location: "4W ICU^12^A",
		Onset: onsetBase, Level: 0, Seq: 1, Callback: l.m.HTTPURL() + "/v1/responses"}
	got.Message.ID, got.Message.Sent = "", time.Time{}
	if got.Message.Onset.Equal(want.Onset) {
		got.Message.Onset = want.Onset
	}
	if got.Message != want {
		t.Errorf("dispatch\n got %+v\nwant %+v", got.Message, want)
	}

	rec := l.waitAlert(t, "delivered", func(r AlertRecord) bool { return r.ID == "ALR-1" && r.Status == RecordDelivered })
	if rec.Pump != "PUMP-0007" || rec.Code != "MDC_EVT_FLUID_LINE_OCCL" || rec.Priority != "PH" || rec.Type != "ST" {
		t.Errorf("record fields: %+v", rec)
	}
	if !rec.Onset.Equal(onsetBase) || !rec.Received.Equal(l.clk.Now()) {
		t.Errorf("onset %v received %v, want %v and %v", rec.Onset, rec.Received, onsetBase, l.clk.Now())
	}
	// The fake clock stood still 5 s after onset: L_notify is exactly 5 s.
	if d, ok := rec.NotifyLatency(); !ok || d != 5*time.Second {
		t.Errorf("L_notify = %v, %v; want 5s", d, ok)
	}
	if _, ok := rec.AckLatency(); ok {
		t.Error("L_ack reported before acceptance")
	}
	if d, ok := rec.NotifyWall(); !ok || d < 0 {
		t.Errorf("wall notify = %v, %v", d, ok)
	}
	if rec.Missed() || !rec.Active() || rec.Attempts != 1 || len(rec.Dispatches) != 1 || rec.Dispatches[0].Communicator != "PHONE-1" {
		t.Errorf("record %+v", rec)
	}
	l.reporter.wait(t, "ALR-1", hl7.AlertDelivered)
	s := l.m.Stats()
	if s.Received != 1 || s.Alerts != 1 || s.Dispatched != 1 || s.Delivered != 1 || s.Failed != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestAcceptSendsPCD05(t *testing.T) {
	l := newLab(t, Config{Levels: [][]string{{"PHONE-1"}, {"CHARGE"}}}, "PHONE-1", "CHARGE")
	l.start(t, "ALR-2")
	phone := l.phones["PHONE-1"]
	waitPhone(t, phone, "ALR-2", alertIs("ALR-2"))

	l.clk.Advance(20 * time.Second)
	if err := phone.Accept(waitCtx(t), "ALR-2", "RN0042"); err != nil {
		t.Fatal(err)
	}
	rec := mustAlert(t, l.m, "ALR-2")
	if rec.Status != RecordAccepted || rec.AcceptedBy != "RN0042" || rec.AcceptedVia != "PHONE-1" {
		t.Errorf("record after accept: %+v", rec)
	}
	if d, ok := rec.AckLatency(); !ok || d != 25*time.Second {
		t.Errorf("L_ack = %v, %v; want 25s", d, ok)
	}

	st := l.reporter.wait(t, "ALR-2", hl7.AlertAccepted)
	if st.Provider.ID != "RN0042" || st.Communicator != "PHONE-1" || st.AlertApp != "PUMPSRV_SIM" {
		t.Errorf("PCD-05 %+v", st)
	}
	if st.Header.SendingApp.Namespace != "ALERTMGR_SIM" || st.Header.ReceivingApp.Namespace != "PUMPSRV_SIM" {
		t.Errorf("PCD-05 addressing: from %v to %v", st.Header.SendingApp, st.Header.ReceivingApp)
	}
	if !st.Time.Equal(l.clk.Now()) {
		t.Errorf("PCD-05 time %v, want %v", st.Time, l.clk.Now())
	}
	if _, err := l.m.WaitStats(waitCtx(t), func(s Stats) bool { return s.Reported >= 2 }); err != nil {
		t.Fatal(err)
	}

	// Acceptance stops escalation: nothing happens for ten minutes.
	l.clk.Advance(10 * time.Minute)
	rec = mustAlert(t, l.m, "ALR-2")
	if rec.Level != 0 || rec.Escalations != 0 || rec.Attempts != 1 {
		t.Errorf("escalated after accept: %s", describe(rec))
	}
	if _, ok := l.phones["CHARGE"].Message("ALR-2"); ok {
		t.Error("charge nurse paged after acceptance")
	}
	// A second acceptance is idempotent; the first one stands.
	if err := l.phones["CHARGE"].Respond(waitCtx(t), Response{AlertID: "ALR-2", Status: StatusAccepted, User: "RN9"}); err == nil {
		t.Error("phone without the message could answer")
	}
	code, res, err := l.m.Respond(Response{AlertID: "ALR-2", Status: StatusAccepted, User: "RN9"})
	if err != nil || code != http.StatusOK || res.AcceptedBy != "RN0042" {
		t.Errorf("second accept: %d %+v %v", code, res, err)
	}
	// The alarm is cleared at the pump: phase end after acceptance.
	if ack := l.send(t, pcd04("ALR-2", hl7.PhaseEnd, hl7.StateInactive, onsetBase)); !ack.OK() {
		t.Fatalf("end: %v", ack.Err())
	}
	rec = mustAlert(t, l.m, "ALR-2")
	if rec.Active() || rec.Status != RecordAccepted {
		t.Errorf("after end: %+v", rec)
	}
}

func TestEscalationAfterTimeout(t *testing.T) {
	l := newLab(t, Config{Levels: [][]string{{"PHONE-1"}, {"CHARGE"}}, EscalateAfter: time.Minute, RepeatMax: 2}, "PHONE-1", "CHARGE")
	l.start(t, "ALR-3")
	waitPhone(t, l.phones["PHONE-1"], "ALR-3", alertIs("ALR-3"))
	l.waitAlert(t, "delivered", func(r AlertRecord) bool { return r.Status == RecordDelivered })

	l.clk.Advance(59 * time.Second)
	if rec := mustAlert(t, l.m, "ALR-3"); rec.Level != 0 {
		t.Fatalf("escalated before EscalateAfter: %s", describe(rec))
	}
	l.clk.Advance(time.Second)
	if rec := mustAlert(t, l.m, "ALR-3"); rec.Level != 1 || rec.Escalations != 1 {
		t.Fatalf("not escalated at EscalateAfter: %s", describe(rec))
	}
	got := waitPhone(t, l.phones["CHARGE"], "escalated ALR-3", alertIs("ALR-3"))
	if got.Level != 1 || got.Seq != 1 {
		t.Errorf("escalated dispatch %+v", got.Message)
	}

	// At the end of the chain: re-sent to the last level, RepeatMax times.
	for i := 2; i <= 3; i++ {
		l.clk.Advance(time.Minute)
		waitPhone(t, l.phones["CHARGE"], "repeat", func(r Received) bool { return r.AlertID == "ALR-3" && r.Seq == i })
	}
	l.clk.Advance(time.Minute)
	rec := l.waitAlert(t, "unanswered", func(r AlertRecord) bool { return r.ID == "ALR-3" && r.Status == RecordUnanswered })
	if rec.Escalations != 3 || rec.Attempts != 4 || rec.Level != 1 {
		t.Errorf("after repeats: %s", describe(rec))
	}
	l.clk.Advance(time.Hour)
	if r, _ := l.phones["CHARGE"].Message("ALR-3"); r.Count != 3 {
		t.Errorf("charge nurse got %d dispatches, want 3 (bounded)", r.Count)
	}
	if s := l.m.Stats(); s.Escalated != 3 {
		t.Errorf("stats.Escalated = %d", s.Escalated)
	}
	// The primary nurse can still accept the unanswered alert.
	if err := l.phones["PHONE-1"].Accept(waitCtx(t), "ALR-3", "RN0042"); err != nil {
		t.Fatal(err)
	}
	if rec := mustAlert(t, l.m, "ALR-3"); rec.Status != RecordAccepted {
		t.Errorf("late accept: %s", describe(rec))
	}
}

func TestEndBeforeAcceptStopsEscalation(t *testing.T) {
	l := newLab(t, Config{Levels: [][]string{{"PHONE-1"}, {"CHARGE"}}}, "PHONE-1", "CHARGE")
	l.start(t, "ALR-4")
	phone := l.phones["PHONE-1"]
	waitPhone(t, phone, "ALR-4", alertIs("ALR-4"))

	l.clk.Advance(30 * time.Second)
	if ack := l.send(t, pcd04("ALR-4", hl7.PhaseEnd, hl7.StateInactive, onsetBase)); !ack.OK() {
		t.Fatalf("end: %v", ack.Err())
	}
	rec := mustAlert(t, l.m, "ALR-4")
	if rec.Status != RecordCancelled || !rec.Ended.Equal(l.clk.Now()) || rec.EndFrom == "" {
		t.Errorf("after end: %+v", rec)
	}
	got := waitPhone(t, phone, "cancel", func(r Received) bool { return r.AlertID == "ALR-4" && !r.Cancelled.IsZero() })
	if !got.Cancelled.Equal(l.clk.Now()) {
		t.Errorf("cancelled at %v", got.Cancelled)
	}
	l.waitAlert(t, "cancel recorded", func(r AlertRecord) bool { return r.ID == "ALR-4" && !r.Dispatches[0].Cancelled.IsZero() })

	l.clk.Advance(10 * time.Minute)
	rec = mustAlert(t, l.m, "ALR-4")
	if rec.Level != 0 || rec.Escalations != 0 || rec.Attempts != 1 {
		t.Errorf("escalated after end: %s", describe(rec))
	}
	if _, ok := l.phones["CHARGE"].Message("ALR-4"); ok {
		t.Error("charge nurse paged after end")
	}
	err := phone.Accept(waitCtx(t), "ALR-4", "RN0042")
	if err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "ended") {
		t.Errorf("accept after end: %v", err)
	}
	// A repeated end is a duplicate.
	l.send(t, pcd04("ALR-4", hl7.PhaseEnd, hl7.StateInactive, onsetBase))
	if rec := mustAlert(t, l.m, "ALR-4"); rec.Duplicates != 1 {
		t.Errorf("duplicates = %d", rec.Duplicates)
	}
}

func TestDuplicateStartIdempotent(t *testing.T) {
	l := newLab(t, Config{}, "PHONE-1")
	a := pcd04("ALR-5", hl7.PhaseStart, hl7.StateActive, onsetBase)
	for i := range 3 {
		if i == 2 {
			a.Header.ControlID = "AR-RETRANSMIT" // a resend with a new control id
		}
		if ack := l.send(t, a); !ack.OK() {
			t.Fatalf("send %d: %v", i, ack.Err())
		}
	}
	waitPhone(t, l.phones["PHONE-1"], "ALR-5", alertIs("ALR-5"))
	recs := l.m.Alerts()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	if recs[0].Messages != 3 || recs[0].Duplicates != 2 || recs[0].Attempts != 1 {
		t.Errorf("record %+v", recs[0])
	}
	s := l.m.Stats()
	if s.Received != 3 || s.Alerts != 1 || s.Duplicates != 2 || s.Dispatched != 1 {
		t.Errorf("stats %+v", s)
	}
	if r, _ := l.phones["PHONE-1"].Message("ALR-5"); r.Count != 1 {
		t.Errorf("phone got %d dispatches", r.Count)
	}
}

func TestMalformedPCD04(t *testing.T) {
	l := newLab(t, Config{}, "PHONE-1")
	c, err := hl7.Dial(waitCtx(t), l.m.MLLPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	noOBR := hl7.BuildAlert(pcd04("ALR-X", hl7.PhaseStart, hl7.StateActive, onsetBase))
	var segs []*hl7.Segment
	for _, s := range noOBR.Segs {
		if s.Name != "OBR" {
			segs = append(segs, s)
		}
	}
	noOBR.Segs = segs
	badPhase := pcd04("ALR-Y", "sideways", hl7.StateActive, onsetBase)
	badID := pcd04("ALR/../Z", hl7.PhaseStart, hl7.StateActive, onsetBase)
	adt := hl7.NewMessage(hl7.NewSegment("MSH", hl7.F("|"), hl7.F(`^~\&`), hl7.F("EHR"), nil, nil, nil, nil, nil,
		hl7.C("ADT", "A01", "ADT_A01"), hl7.F("ADT1"), hl7.F("P"), hl7.F("2.6")))

	cases := []struct {
		name  string
		raw   []byte
		codes []string // acceptable MSA-1
		errs  bool     // an ERR segment is expected
	}{
		{"garbage", []byte("this is not HL7"), []string{hl7.AckAR}, true},
		{"no OBR", noOBR.Bytes(), []string{hl7.AckAE, hl7.AckCE}, true},
		{"unknown phase", hl7.BuildAlert(badPhase).Bytes(), []string{hl7.AckAE, hl7.AckCE}, true},
		{"slash in alert id", hl7.BuildAlert(badID).Bytes(), []string{hl7.AckAE, hl7.AckCE}, true},
		{"not ORU^R40", adt.Bytes(), []string{hl7.AckAR}, true},
	}
	for _, tc := range cases {
		raw, err := c.SendRaw(waitCtx(t), tc.raw)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		m, err := hl7.Parse(raw)
		if err != nil {
			t.Fatalf("%s: parse ack: %v", tc.name, err)
		}
		ack, err := hl7.ParseAck(m)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ok := false
		for _, code := range tc.codes {
			ok = ok || ack.Code == code
		}
		if !ok || (tc.errs && len(ack.Errors) == 0) {
			t.Errorf("%s: ack %s with %d ERR, want one of %v with ERR", tc.name, ack.Code, len(ack.Errors), tc.codes)
		}
	}
	s := l.m.Stats()
	if s.Malformed != int64(len(cases)) || s.Received != 0 || s.Alerts != 0 {
		t.Errorf("stats %+v, want %d malformed", s, len(cases))
	}
	// The manager still works, on the same connection.
	reply, err := c.Send(waitCtx(t), hl7.BuildAlert(pcd04("ALR-6", hl7.PhaseStart, hl7.StateActive, onsetBase)))
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := hl7.ParseAck(reply); err != nil || !ack.OK() {
		t.Fatalf("valid PCD-04 after garbage: %+v %v", ack, err)
	}
	waitPhone(t, l.phones["PHONE-1"], "ALR-6", alertIs("ALR-6"))
}

func postJSON(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(waitCtx(t), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestResponsesEndpoint(t *testing.T) {
	l := newLab(t, Config{}, "PHONE-1")
	url := l.m.HTTPURL() + "/v1/responses"
	bad := 0
	for _, tc := range ResponseCases {
		if tc.Err == "" {
			continue
		}
		bad++
		code, body := postJSON(t, url, tc.JSON)
		var ae apiError
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &ae) != nil || !strings.Contains(ae.Error, tc.Err) {
			t.Errorf("%s: %d %s, want 400 naming %q", tc.Name, code, body, tc.Err)
		}
	}
	code, body := postJSON(t, url, strings.Repeat(" ", MaxBodySize)+`{"alert_id":"A","status":"read"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "larger than") {
		t.Errorf("oversized: %d %s", code, body)
	}
	bad++
	code, body = postJSON(t, url, `{"alert_id":"NOPE","status":"accepted","user":"RN1"}`)
	if code != http.StatusNotFound || !strings.Contains(body, "unknown alert") {
		t.Errorf("unknown alert: %d %s", code, body)
	}
	bad++
	if s := l.m.Stats(); s.BadResponses != int64(bad) || s.Responses != 0 {
		t.Errorf("stats %+v, want %d bad responses", s, bad)
	}

	// A valid answer by plain curl-style POST works.
	l.start(t, "ALR-7")
	waitPhone(t, l.phones["PHONE-1"], "ALR-7", alertIs("ALR-7"))
	code, body = postJSON(t, url, `{"alert_id":"ALR-7","status":"read","user":"RN1"}`)
	var res ResponseResult
	if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || res.Status != RecordRead {
		t.Errorf("read: %d %s", code, body)
	}
	if r := mustAlert(t, l.m, "ALR-7"); r.Read.IsZero() {
		t.Error("read time not recorded")
	}
}

func TestRejectEscalatesNow(t *testing.T) {
	l := newLab(t, Config{Levels: [][]string{{"PHONE-1"}, {"CHARGE"}}}, "PHONE-1", "CHARGE")
	l.start(t, "ALR-8")
	waitPhone(t, l.phones["PHONE-1"], "ALR-8", alertIs("ALR-8"))
	if err := l.phones["PHONE-1"].Reject(waitCtx(t), "ALR-8", "RN0042", "busy"); err != nil {
		t.Fatal(err)
	}
	rec := mustAlert(t, l.m, "ALR-8")
	if rec.Level != 1 || rec.Rejections != 1 || len(rec.RejectedBy) != 1 || rec.RejectedBy[0] != "RN0042" {
		t.Errorf("after reject: %+v", rec)
	}
	waitPhone(t, l.phones["CHARGE"], "escalated ALR-8", alertIs("ALR-8"))
	st := l.reporter.wait(t, "ALR-8", hl7.AlertRejected)
	if st.Provider.ID != "RN0042" {
		t.Errorf("PCD-05 rejected by %+v", st.Provider)
	}
	if err := l.phones["CHARGE"].Accept(waitCtx(t), "ALR-8", "RN0001"); err != nil {
		t.Fatal(err)
	}
	if err := l.phones["PHONE-1"].Reject(waitCtx(t), "ALR-8", "RN0042", "late"); err == nil || !strings.Contains(err.Error(), "already accepted") {
		t.Errorf("reject after accept: %v", err)
	}
}

func TestRetryThenEscalate(t *testing.T) {
	l := newLab(t, Config{Levels: [][]string{{"PHONE-1"}, {"CHARGE"}}, Retries: 2, RetryBackoff: 2 * time.Second}, "PHONE-1", "CHARGE")
	l.phones["PHONE-1"].SetAvailable(false)
	l.start(t, "ALR-9")

	// Attempt 1 fails; retry after 2 s fails; retry after 4 s fails -> give up.
	backoff := 2 * time.Second
	for n := 1; n <= 3; n++ {
		l.waitAlert(t, "failure", func(r AlertRecord) bool { return r.ID == "ALR-9" && r.Failures == n })
		rec := mustAlert(t, l.m, "ALR-9")
		if n < 3 {
			if rec.Status != RecordQueued || rec.Level != 0 {
				t.Fatalf("after failure %d: %s", n, describe(rec))
			}
			l.clk.Advance(backoff - time.Millisecond)
			if r := mustAlert(t, l.m, "ALR-9"); r.Attempts != n {
				t.Fatalf("retried before backoff: %s", describe(r))
			}
			l.clk.Advance(time.Millisecond)
			backoff *= 2
		}
	}
	// All level 0 dispatches gave up: escalated at once, before EscalateAfter.
	rec := l.waitAlert(t, "escalated", func(r AlertRecord) bool { return r.ID == "ALR-9" && r.Status == RecordDelivered })
	if rec.Level != 1 || !rec.Dispatches[0].GaveUp || rec.Dispatches[0].Attempts != 3 || rec.Dispatches[1].Communicator != "CHARGE" {
		t.Errorf("after give-up: %+v", rec)
	}
	if d, _ := rec.NotifyLatency(); d != 5*time.Second+6*time.Second {
		t.Errorf("L_notify %v, want 11s (5 s in flight + 6 s of retries)", d)
	}
	s := l.m.Stats()
	if s.Failed != 3 || s.Undeliverable != 1 || s.Delivered != 1 || s.Escalated != 1 {
		t.Errorf("stats %+v", s)
	}

	// A phone that comes back before the next retry gets the alert.
	l.phones["PHONE-1"].SetAvailable(false)
	l.start(t, "ALR-10")
	l.waitAlert(t, "failure", func(r AlertRecord) bool { return r.ID == "ALR-10" && r.Failures == 1 })
	l.phones["PHONE-1"].SetAvailable(true)
	l.clk.Advance(2 * time.Second)
	rec = l.waitAlert(t, "delivered", func(r AlertRecord) bool { return r.ID == "ALR-10" && r.Status == RecordDelivered })
	if rec.Level != 0 || rec.Attempts != 2 {
		t.Errorf("after recovery: %s", describe(rec))
	}
}

func TestNoCommunicatorIsUndeliverable(t *testing.T) {
	l := newLab(t, Config{})
	l.start(t, "ALR-11")
	rec := mustAlert(t, l.m, "ALR-11")
	if rec.Status != RecordUndeliverable || !rec.Missed() {
		t.Errorf("record %+v", rec)
	}
	if _, ok := rec.NotifyLatency(); ok {
		t.Error("L_notify for a missed alert")
	}
	l.reporter.wait(t, "ALR-11", hl7.AlertUndeliverable)
	// A phone registered later gets it at the next repeat.
	p := NewCommunicator(CommunicatorConfig{ID: "LATE", Clock: l.clk})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := l.m.RegisterCommunicator("LATE", p.URL()); err != nil {
		t.Fatal(err)
	}
	l.clk.Advance(DefaultEscalateAfter)
	waitPhone(t, p, "ALR-11", alertIs("ALR-11"))
	l.waitAlert(t, "delivered", func(r AlertRecord) bool { return r.ID == "ALR-11" && r.Status == RecordDelivered })
}

func TestDefaultRoutingAndRoute(t *testing.T) {
	l := newLab(t, Config{}, "B", "A")
	l.start(t, "ALR-12")
	for _, id := range []string{"A", "B"} {
		waitPhone(t, l.phones[id], "ALR-12", alertIs("ALR-12"))
	}
	rec := l.waitAlert(t, "both", func(r AlertRecord) bool { return len(r.Dispatches) == 2 })
	if rec.Dispatches[0].Communicator != "A" || rec.Dispatches[1].Communicator != "B" {
		t.Errorf("dispatch order %+v", rec.Dispatches)
	}

	// Route by unit, with an unknown phone at level 0.
	l2 := newLab(t, Config{Route: func(a Alert, level int) []string {
		if a.Unit != "4W ICU" {
			return nil
		}
		switch level {
		case 0:
			return []string{"GHOST"}
		case 1:
			return []string{"B"}
		}
		return nil
	}}, "A", "B")
	l2.start(t, "ALR-13")
	waitPhone(t, l2.phones["B"], "ALR-13", alertIs("ALR-13"))
	rec = mustAlert(t, l2.m, "ALR-13")
	if rec.Level != 1 || rec.Dispatches[0].Error != "unknown communicator" {
		t.Errorf("route: %+v", rec)
	}
	if _, ok := l2.phones["A"].Message("ALR-13"); ok {
		t.Error("phone A paged outside the route")
	}
}

// A Route that ignores the level (and names nobody real) must not escalate
// without end.
func TestRouteChainIsBounded(t *testing.T) {
	l := newLab(t, Config{RepeatMax: 1, Route: func(Alert, int) []string { return []string{"GHOST"} }})
	l.start(t, "ALR-21")
	rec := mustAlert(t, l.m, "ALR-21")
	if rec.Level != MaxLevels-1 || rec.Status != RecordUndeliverable || len(rec.Dispatches) != MaxLevels {
		t.Fatalf("after start: %s, %d dispatches", describe(rec), len(rec.Dispatches))
	}
	l.clk.Advance(DefaultEscalateAfter) // one repeat at the last level
	l.clk.Advance(DefaultEscalateAfter) // exhausted
	rec = mustAlert(t, l.m, "ALR-21")
	if len(rec.Dispatches) != MaxLevels+1 || l.clk.Pending() != 0 {
		t.Errorf("after repeats: %s, %d dispatches, %d timers", describe(rec), len(rec.Dispatches), l.clk.Pending())
	}
}

func TestResponseToken(t *testing.T) {
	l := newLab(t, Config{ResponseKey: []byte("lab-secret")}, "PHONE-1")
	l.start(t, "ALR-14")
	got := waitPhone(t, l.phones["PHONE-1"], "ALR-14", alertIs("ALR-14"))
	if len(got.Token) != 32 {
		t.Fatalf("token %q", got.Token)
	}
	url := l.m.HTTPURL() + "/v1/responses"
	for _, body := range []string{
		`{"alert_id":"ALR-14","status":"accepted","user":"EVE"}`,
		`{"alert_id":"ALR-14","status":"accepted","user":"EVE","communicator":"PHONE-1","token":"0000"}`,
		`{"alert_id":"ALR-14","status":"accepted","user":"EVE","communicator":"OTHER","token":"` + got.Token + `"}`,
	} {
		if code, resp := postJSON(t, url, body); code != http.StatusForbidden || !strings.Contains(resp, "token") {
			t.Errorf("forged %s: %d %s", body, code, resp)
		}
	}
	if r := mustAlert(t, l.m, "ALR-14"); r.Status == RecordAccepted {
		t.Fatal("forged acceptance applied")
	}
	if err := l.phones["PHONE-1"].Accept(waitCtx(t), "ALR-14", "RN0042"); err != nil {
		t.Fatal(err)
	}
	if r := mustAlert(t, l.m, "ALR-14"); r.AcceptedBy != "RN0042" {
		t.Errorf("record %+v", r)
	}
}

func TestAuthorizeAndUnknownEnd(t *testing.T) {
	l := newLab(t, Config{Authorize: func(a Alert, meta hl7.ConnMeta) error {
		if a.Pump == "PUMP-EVIL" {
			return errors.New("pump not enrolled")
		}
		return nil
	}}, "PHONE-1")
	a := pcd04("ALR-15", hl7.PhaseStart, hl7.StateActive, onsetBase)
	a.PumpID = "PUMP-EVIL"
	ack := l.send(t, a)
	if ack.Code != hl7.AckAR || len(ack.Errors) == 0 || !strings.Contains(ack.Errors[0].Message, "not enrolled") {
		t.Errorf("refused ack %+v", ack)
	}
	if ack := l.send(t, pcd04("ALR-16", hl7.PhaseEnd, hl7.StateInactive, onsetBase)); !ack.OK() {
		t.Errorf("unknown end ack %+v", ack)
	}
	s := l.m.Stats()
	if s.Refused != 1 || s.Malformed != 0 || s.UnknownEnds != 1 || s.Alerts != 0 || len(l.m.Alerts()) != 0 {
		t.Errorf("stats %+v", s)
	}
}

// An update with state inactive ends the alert (the ATK-28 forgery path).
func TestInactiveStateEnds(t *testing.T) {
	l := newLab(t, Config{}, "PHONE-1")
	l.start(t, "ALR-17")
	waitPhone(t, l.phones["PHONE-1"], "ALR-17", alertIs("ALR-17"))
	if ack := l.send(t, pcd04("ALR-17", hl7.PhaseContinue, hl7.StateActive, onsetBase)); !ack.OK() {
		t.Fatal(ack.Err())
	}
	if r := mustAlert(t, l.m, "ALR-17"); !r.Active() || r.Messages != 2 || r.Duplicates != 0 {
		t.Errorf("after continue: %+v", r)
	}
	if ack := l.send(t, pcd04("ALR-17", hl7.PhaseContinue, hl7.StateInactive, onsetBase)); !ack.OK() {
		t.Fatal(ack.Err())
	}
	if r := mustAlert(t, l.m, "ALR-17"); r.Active() || r.Status != RecordCancelled {
		t.Errorf("after inactive: %+v", r)
	}
}

func TestAlertsHTTP(t *testing.T) {
	l := newLab(t, Config{}, "PHONE-1")
	l.start(t, "ALR-18")
	waitPhone(t, l.phones["PHONE-1"], "ALR-18", alertIs("ALR-18"))
	l.waitAlert(t, "delivered", func(r AlertRecord) bool { return r.Status == RecordDelivered })
	if err := l.phones["PHONE-1"].Accept(waitCtx(t), "ALR-18", "RN0042"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(l.m.HTTPURL() + "/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var views []AlertView
	if err := json.NewDecoder(resp.Body).Decode(&views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 1 || views[0].ID != "ALR-18" || views[0].LNotifyS == nil || *views[0].LNotifyS != 5 ||
		views[0].LAckS == nil || *views[0].LAckS != 5 || views[0].AcceptedBy != "RN0042" {
		t.Errorf("GET /v1/alerts: %+v", views)
	}
	r2, err := http.Get(l.m.HTTPURL() + "/v1/alerts/NOPE")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotFound {
		t.Errorf("unknown alert: %d", r2.StatusCode)
	}
	r3, err := http.Get(l.m.HTTPURL() + "/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Body.Close()
	var s Stats
	if err := json.NewDecoder(r3.Body).Decode(&s); err != nil || s.Accepted != 1 {
		t.Errorf("GET /v1/stats: %+v %v", s, err)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	l := newLab(t, Config{Levels: [][]string{{"PHONE-1"}, {"CHARGE"}}}, "PHONE-1", "CHARGE")
	l.start(t, "ALR-19")
	waitPhone(t, l.phones["PHONE-1"], "ALR-19", alertIs("ALR-19"))
	if err := l.m.Close(); err != nil {
		t.Fatal(err)
	}
	if n := l.clk.Pending(); n != 0 {
		t.Errorf("%d timers still pending after Close", n)
	}
	if _, err := l.m.WaitAlert(context.Background(), func(AlertRecord) bool { return false }); err == nil {
		t.Error("WaitAlert on a closed manager did not fail")
	}
	if _, err := hl7.SendOnce(waitCtx(t), l.m.MLLPAddr(), nil, hl7.BuildAlert(pcd04("ALR-20", "start", "active", onsetBase))); err == nil {
		t.Error("MLLP still answering after Close")
	}
	if err := l.m.Start(context.Background()); err == nil {
		t.Error("restart after Close accepted")
	}
}

func TestRegisterCommunicatorValidates(t *testing.T) {
	m := New(Config{})
	for _, tc := range []struct{ id, url string }{{"", "http://x"}, {"A B", "http://x"}, {"A", "ftp://x"}, {"A", "not a url"}} {
		if err := m.RegisterCommunicator(tc.id, tc.url); err == nil {
			t.Errorf("RegisterCommunicator(%q, %q) accepted", tc.id, tc.url)
		}
	}
	if err := m.RegisterCommunicator("A", "http://127.0.0.1:1/"); err != nil {
		t.Fatal(err)
	}
	if got := m.Communicators()["A"]; got != "http://127.0.0.1:1" {
		t.Errorf("url %q", got)
	}
}
