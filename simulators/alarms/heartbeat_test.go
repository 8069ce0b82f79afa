package alarms

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// events collects the control's events.
type events struct {
	mu  sync.Mutex
	all []ControlEvent
}

func (e *events) add(x ControlEvent) {
	e.mu.Lock()
	e.all = append(e.all, x)
	e.mu.Unlock()
}

func (e *events) find(ok func(ControlEvent) bool) []ControlEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ControlEvent
	for _, x := range e.all {
		if ok(x) {
			out = append(out, x)
		}
	}
	return out
}

// hbLab is a manager with the alarm-heartbeat control: primary PHONE-1,
// charge nurse CHARGE.
func hbLab(t *testing.T, check HeartbeatCheck) (*testLab, *events) {
	t.Helper()
	ev := &events{}
	l := newLab(t, Config{Levels: [][]string{{"PHONE-1"}, {"CHARGE"}}, Heartbeat: &check, OnControl: ev.add}, "PHONE-1", "CHARGE")
	return l, ev
}

// sendMsg sends one message and returns its acknowledgement.
func (l *testLab) sendMsg(t *testing.T, m *hl7.Message) hl7.Ack {
	t.Helper()
	reply, err := hl7.SendOnce(waitCtx(t), l.m.MLLPAddr(), nil, m)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		t.Fatalf("parse ack: %v", err)
	}
	return ack
}

// alertSeq is a PCD-04 with sequence number seq (0: none).
func alertSeq(id, phase, state string, seq uint64) *hl7.Message {
	a := pcd04(id, phase, state, onsetBase)
	a.Header.ControlID = "AR-" + id + "-" + phase + "-" + strconv.FormatUint(seq, 10)
	m := hl7.BuildAlert(a)
	if seq > 0 {
		hl7.SetSequence(m, seq)
	}
	return m
}

func beat(seq uint64, run string, now time.Time, active ...string) *hl7.Message {
	return hl7.BuildHeartbeat(hl7.Heartbeat{
		Header: hl7.Header{SendingApp: hl7.ParseHD("PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64"), SendingFacility: hl7.HD{Namespace: "HOSP_BIOMED"},
			ReceivingApp: hl7.ParseHD(DefaultApp), ReceivingFacility: hl7.HD{Namespace: DefaultFacility},
			Time: now, ControlID: "HB-" + strconv.FormatUint(seq, 10), AcceptAck: "AL", AppAck: "NE"},
		App: "PUMPSRV_SIM", Run: run, Seq: seq, Time: now, Active: active,
	})
}

func mustOK(t *testing.T, what string, a hl7.Ack) {
	t.Helper()
	if !a.OK() {
		t.Fatalf("%s: ack %s %v", what, a.Code, a.Err())
	}
}

func TestHeartbeatGenuineEndAppliedAtNextHeartbeat(t *testing.T) {
	l, ev := hbLab(t, HeartbeatCheck{Interval: 30 * time.Second, SequenceCheck: true})
	mustOK(t, "heartbeat", l.sendMsg(t, beat(1, "r1", l.clk.Now())))
	mustOK(t, "start", l.sendMsg(t, alertSeq("ALR-1", hl7.PhaseStart, hl7.StateActive, 2)))
	waitPhone(t, l.phones["PHONE-1"], "ALR-1", alertIs("ALR-1"))
	l.clk.Advance(10 * time.Second)
	mustOK(t, "heartbeat", l.sendMsg(t, beat(3, "r1", l.clk.Now(), "ALR-1")))

	// The pump's occlusion clears: the end is held, escalation goes on.
	l.clk.Advance(5 * time.Second)
	endAt := l.clk.Now()
	mustOK(t, "end", l.sendMsg(t, alertSeq("ALR-1", hl7.PhaseEnd, hl7.StateInactive, 4)))
	rec := mustAlert(t, l.m, "ALR-1")
	if !rec.Ended.IsZero() || !rec.EndPending.Equal(endAt) || rec.Status == RecordCancelled || rec.Reporter != "PUMPSRV_SIM" {
		t.Fatalf("before the heartbeat: %+v", rec)
	}
	if got := l.m.Reporters(); len(got) != 1 || got[0].Key != "PUMPSRV_SIM" || got[0].LastSeq != 4 || len(got[0].Pending) != 1 {
		t.Errorf("reporters %+v", got)
	}

	// The next heartbeat no longer lists it: the end is applied then.
	l.clk.Advance(25 * time.Second)
	mustOK(t, "heartbeat", l.sendMsg(t, beat(5, "r1", l.clk.Now())))
	rec = mustAlert(t, l.m, "ALR-1")
	if rec.Status != RecordCancelled || !rec.Ended.Equal(l.clk.Now()) {
		t.Fatalf("after the heartbeat: %s ended %v", describe(rec), rec.Ended)
	}
	if added := rec.Ended.Sub(rec.EndPending); added != 25*time.Second {
		t.Errorf("added end latency %v, want 25s (the time to the next heartbeat)", added)
	}
	waitPhone(t, l.phones["PHONE-1"], "cancel", func(r Received) bool { return r.AlertID == "ALR-1" && !r.Cancelled.IsZero() })
	if x := ev.find(func(ControlEvent) bool { return true }); len(x) != 0 {
		t.Errorf("genuine traffic raised control events: %+v", x)
	}
	if s := l.m.Stats(); s.Heartbeats != 3 || s.Refused != 0 || s.EndsRefused != 0 || s.Received != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestHeartbeatRefusesForgedEnd(t *testing.T) {
	l, ev := hbLab(t, HeartbeatCheck{Interval: 30 * time.Second, SequenceCheck: true})
	mustOK(t, "heartbeat", l.sendMsg(t, beat(1, "r1", l.clk.Now())))
	mustOK(t, "start", l.sendMsg(t, alertSeq("ALR-7", hl7.PhaseStart, hl7.StateActive, 2)))
	waitPhone(t, l.phones["PHONE-1"], "ALR-7", alertIs("ALR-7"))

	// ATK-28 without a sequence number: refused at once.
	if a := l.sendMsg(t, alertSeq("ALR-7", hl7.PhaseEnd, hl7.StateInactive, 0)); a.Code != hl7.AckAR ||
		!strings.Contains(a.Err().Error(), "without a sequence number") {
		t.Fatalf("forged end without MSH-13: %s %v", a.Code, a.Err())
	}
	// With the next sequence number guessed: held, then refused because
	// the reporter still lists the alarm as active.
	mustOK(t, "forged end", l.sendMsg(t, alertSeq("ALR-7", hl7.PhaseEnd, hl7.StateInactive, 3)))
	l.clk.Advance(20 * time.Second)
	mustOK(t, "heartbeat", l.sendMsg(t, beat(4, "r1", l.clk.Now(), "ALR-7")))
	rec := mustAlert(t, l.m, "ALR-7")
	if !rec.Ended.IsZero() || !rec.EndPending.IsZero() || rec.EndsRefused != 1 || rec.Status == RecordCancelled {
		t.Fatalf("forged end applied: %+v", rec)
	}
	x := ev.find(func(x ControlEvent) bool {
		return x.Action == ActionBlocked && strings.Contains(x.Reason, "still lists as active")
	})
	if len(x) != 1 || x[0].Control != ControlHeartbeat || x[0].Target != "PUMP-0007" || x[0].Source != "PUMPSRV_SIM" || x[0].Ref != "AR-ALR-7-end-3" {
		t.Errorf("events %+v", ev.find(func(ControlEvent) bool { return true }))
	}
	// Escalation continues: the charge nurse gets it.
	l.clk.Advance(DefaultEscalateAfter)
	waitPhone(t, l.phones["CHARGE"], "escalated ALR-7", alertIs("ALR-7"))

	// The genuine end later is still applied at the following heartbeat.
	mustOK(t, "end", l.sendMsg(t, alertSeq("ALR-7", hl7.PhaseEnd, hl7.StateInactive, 5)))
	mustOK(t, "heartbeat", l.sendMsg(t, beat(6, "r1", l.clk.Now())))
	if rec := mustAlert(t, l.m, "ALR-7"); rec.Status != RecordCancelled {
		t.Errorf("genuine end after a refused forgery: %s", describe(rec))
	}
	if s := l.m.Stats(); s.EndsRefused != 1 || s.Refused != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestHeartbeatSequenceChecks(t *testing.T) {
	l, ev := hbLab(t, HeartbeatCheck{Interval: 30 * time.Second, SequenceCheck: true, MaxGap: 100})
	mustOK(t, "heartbeat", l.sendMsg(t, beat(1, "r1", l.clk.Now())))
	start := alertSeq("ALR-2", hl7.PhaseStart, hl7.StateActive, 2)
	mustOK(t, "start", l.sendMsg(t, start))
	// A replay of the captured message (ATK-28 replaying an end works the same).
	a := l.sendMsg(t, start)
	if a.Code != hl7.AckAR || len(a.Errors) != 1 || a.Errors[0].AppCode != "SEQUENCE" ||
		!strings.Contains(a.Err().Error(), "sequence number 2 from PUMPSRV_SIM is not above the last one seen, 2: replayed or out of order") {
		t.Fatalf("replay: %s %+v", a.Code, a.Errors)
	}
	// A gap (lost messages) is flagged, the message applied.
	mustOK(t, "after a gap", l.sendMsg(t, alertSeq("ALR-3", hl7.PhaseStart, hl7.StateActive, 10)))
	if x := ev.find(func(x ControlEvent) bool {
		return x.Action == ActionFlagged && strings.Contains(x.Reason, "7 message(s) from PUMPSRV_SIM missing")
	}); len(x) != 1 {
		t.Errorf("gap not flagged: %+v", ev.find(func(ControlEvent) bool { return true }))
	}
	if _, ok := l.m.Alert("ALR-3"); !ok {
		t.Error("message after a gap not applied")
	}
	// A jump beyond MaxGap is refused and does not move the sequence.
	if a := l.sendMsg(t, alertSeq("ALR-4", hl7.PhaseStart, hl7.StateActive, 1000)); a.Code != hl7.AckAR || !strings.Contains(a.Err().Error(), "jumps 990") {
		t.Fatalf("jump: %s %v", a.Code, a.Err())
	}
	mustOK(t, "next", l.sendMsg(t, alertSeq("ALR-5", hl7.PhaseStart, hl7.StateActive, 11)))
	// A heartbeat replayed is refused too; a new run (a restart) resets.
	if a := l.sendMsg(t, beat(1, "r1", l.clk.Now())); a.Code != hl7.AckAR {
		t.Errorf("replayed heartbeat: %s", a.Code)
	}
	mustOK(t, "restart", l.sendMsg(t, beat(1, "r2", l.clk.Now(), "ALR-2", "ALR-3", "ALR-5")))
	mustOK(t, "after restart", l.sendMsg(t, alertSeq("ALR-6", hl7.PhaseStart, hl7.StateActive, 2)))
	if x := ev.find(func(x ControlEvent) bool { return strings.Contains(x.Reason, "restarted (run r2, was r1)") }); len(x) != 1 {
		t.Errorf("restart not flagged")
	}
	if _, ok := l.m.Alert("ALR-4"); ok {
		t.Error("refused message applied")
	}
	if s := l.m.Stats(); s.SequenceRefused != 3 || s.SequenceGaps != 1 || s.Refused != 3 || s.Malformed != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestHeartbeatEndFromAnotherReporterAndUnknownActive(t *testing.T) {
	l, ev := hbLab(t, HeartbeatCheck{Interval: 30 * time.Second})
	mustOK(t, "heartbeat", l.sendMsg(t, beat(1, "r1", l.clk.Now(), "ALR-LOST")))
	if x := ev.find(func(x ControlEvent) bool { return x.Ref == "ALR-LOST" && strings.Contains(x.Reason, "never received") }); len(x) != 1 {
		t.Errorf("active alert never received not flagged: %+v", ev.find(func(ControlEvent) bool { return true }))
	}
	mustOK(t, "start", l.sendMsg(t, alertSeq("ALR-8", hl7.PhaseStart, hl7.StateActive, 0)))
	end := pcd04("ALR-8", hl7.PhaseEnd, hl7.StateInactive, onsetBase)
	end.Header.SendingApp = hl7.ParseHD("EVIL_SIM")
	if a := l.sendMsg(t, hl7.BuildAlert(end)); a.Code != hl7.AckAR || len(a.Errors) != 1 || a.Errors[0].AppCode != "END-SOURCE" ||
		!strings.Contains(a.Err().Error(), "end of alert ALR-8 from EVIL_SIM, but the alert was reported by PUMPSRV_SIM") {
		t.Fatalf("end from another reporter: %s %+v", a.Code, a.Errors)
	}
}

func TestHeartbeatSilentReporter(t *testing.T) {
	l, ev := hbLab(t, HeartbeatCheck{Interval: 30 * time.Second, Missed: 3, Reporters: []string{"PUMPSRV_SIM"}})
	mustOK(t, "heartbeat", l.sendMsg(t, beat(1, "r1", l.clk.Now())))
	l.clk.Advance(30 * time.Second)
	mustOK(t, "heartbeat", l.sendMsg(t, beat(2, "r1", l.clk.Now())))
	// ATK-25: everything to the manager is dropped from here on.
	l.clk.Advance(104 * time.Second)
	if n := l.m.Stats().SilentReporters; n != 0 {
		t.Fatalf("silent after %d s", 104)
	}
	l.clk.Advance(time.Second) // 3.5 intervals without a heartbeat
	got := waitPhone(t, l.phones["CHARGE"], "reporter silent", func(r Received) bool { return strings.HasPrefix(r.AlertID, "AM-SILENT-") })
	if got.Event != SilentEvent || got.Priority != hl7.PriorityHigh || got.Type != hl7.AlertTechnical ||
		!strings.Contains(got.Text, "Alert reporter PUMPSRV_SIM silent: no heartbeat for 1m45s (3 missed)") || got.Level != 1 {
		t.Errorf("silent alert %+v", got.Message)
	}
	if x := ev.find(func(x ControlEvent) bool {
		return x.Action == ActionFlagged && x.Target == "alarm-manager" && x.Source == "PUMPSRV_SIM"
	}); len(x) != 1 {
		t.Errorf("events %+v", ev.find(func(ControlEvent) bool { return true }))
	}
	if r := l.m.Reporters(); len(r) != 1 || !r[0].Silent {
		t.Errorf("reporters %+v", r)
	}
	// The reporter is heard again: the silent alert ends.
	mustOK(t, "heartbeat", l.sendMsg(t, beat(3, "r1", l.clk.Now())))
	rec := mustAlert(t, l.m, got.AlertID)
	if rec.Ended.IsZero() || rec.Reporter != "PUMPSRV_SIM" {
		t.Errorf("silent alert after the heartbeat: %+v", rec)
	}
	if len(l.reporter.all()) != 0 {
		t.Errorf("PCD-05 sent for the manager's own alert: %+v", l.reporter.all())
	}
}

func TestHeartbeatExpectedReporterNeverHeard(t *testing.T) {
	l, _ := hbLab(t, HeartbeatCheck{Interval: 10 * time.Second, Missed: 1, Reporters: []string{"pumpserver"}})
	l.clk.Advance(15 * time.Second)
	got := waitPhone(t, l.phones["CHARGE"], "reporter silent", func(r Received) bool { return strings.HasPrefix(r.AlertID, "AM-SILENT-pumpserver-") })
	if !strings.Contains(got.Text, "since the alarm manager started") {
		t.Errorf("text %q", got.Text)
	}
}

func TestHeartbeatOffKeepsOldBehaviour(t *testing.T) {
	l := newLab(t, Config{}, "PHONE-1")
	mustOK(t, "heartbeat", l.sendMsg(t, beat(1, "r1", l.clk.Now(), "ALR-9")))
	mustOK(t, "start", l.sendMsg(t, alertSeq("ALR-9", hl7.PhaseStart, hl7.StateActive, 0)))
	mustOK(t, "end", l.sendMsg(t, alertSeq("ALR-9", hl7.PhaseEnd, hl7.StateInactive, 0)))
	if rec := mustAlert(t, l.m, "ALR-9"); rec.Ended.IsZero() || !rec.EndPending.IsZero() {
		t.Errorf("control off: end not applied at once: %+v", rec)
	}
	if s := l.m.Stats(); s.Heartbeats != 1 || s.Refused != 0 || s.Malformed != 0 {
		t.Errorf("stats %+v", s)
	}
}

// FuzzHeartbeatControl feeds arbitrary bytes to a manager with the
// alarm-heartbeat control on, after a heartbeat and the start of ALR-F: it
// must never panic, a refused message must change no alert, and ALR-F may
// end only through a heartbeat that no longer lists it.
func FuzzHeartbeatControl(f *testing.F) {
	f.Add(alertSeq("ALR-F", hl7.PhaseEnd, hl7.StateInactive, 3).Bytes())
	f.Add(alertSeq("ALR-F", hl7.PhaseEnd, hl7.StateInactive, 0).Bytes())
	f.Add(alertSeq("ALR-G", hl7.PhaseStart, hl7.StateActive, 9).Bytes())
	f.Add(beat(3, "r1", onsetBase).Bytes())
	f.Add(beat(3, "r2", onsetBase, "ALR-F", "ALR-X").Bytes())
	f.Add(beat(2, "r1", onsetBase).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := hl7.Parse(b)
		if err != nil {
			return
		}
		m := New(Config{Clock: clock.NewFake(onsetBase), Heartbeat: &HeartbeatCheck{SequenceCheck: true}})
		meta := hl7.ConnMeta{RemoteAddr: "fuzz"}
		for _, setup := range []*hl7.Message{beat(1, "r1", onsetBase, "ALR-F"), alertSeq("ALR-F", hl7.PhaseStart, hl7.StateActive, 2)} {
			if _, err := m.handlePCD04(context.Background(), setup, meta); err != nil {
				t.Fatal(err)
			}
		}
		before := m.Alerts()
		_, herr := m.handlePCD04(context.Background(), msg, meta)
		after := m.Alerts()
		if herr != nil && len(after) != len(before) {
			t.Fatalf("refused message added an alert")
		}
		rec, _ := m.Alert("ALR-F")
		if !rec.Ended.IsZero() {
			hb, err := hl7.ParseHeartbeat(msg)
			if !hl7.IsHeartbeat(msg) || err != nil || slices.Contains(hb.Active, "ALR-F") {
				t.Fatalf("ALR-F ended by %q", b)
			}
		}
		_ = m.Close()
	})
}
