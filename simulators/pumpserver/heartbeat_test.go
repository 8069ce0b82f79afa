package pumpserver

import (
	"context"
	"testing"
	"time"

	"github.com/pumplab/pumplab/simulators/alarms"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pump"
)

// TestHeartbeatGenuineOcclusionEnd runs a real pump, the pump server with
// its heartbeat and the alarm manager with the alarm-heartbeat control: the
// genuine occlusion alarm starts at once and its end is applied at the next
// heartbeat, the added latency being at most one interval.
func TestHeartbeatGenuineOcclusionEnd(t *testing.T) {
	const interval = 30 * time.Second
	var events []alarms.ControlEvent
	var am *alarms.Manager
	l := newLab(t, func(c *Config) {
		am = alarms.New(alarms.Config{Clock: c.Clock, Levels: [][]string{{"PHONE-1"}},
			Heartbeat: &alarms.HeartbeatCheck{Interval: interval, Missed: 3, SequenceCheck: true},
			OnControl: func(e alarms.ControlEvent) { events = append(events, e) }})
		if err := am.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = am.Close() })
		c.AMAddr = am.MLLPAddr()
		c.Heartbeat = &HeartbeatConfig{Interval: interval}
	})
	phone := alarms.NewCommunicator(alarms.CommunicatorConfig{ID: "PHONE-1", Clock: l.clk})
	if err := phone.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = phone.Close() })
	if err := am.RegisterCommunicator("PHONE-1", phone.URL()); err != nil {
		t.Fatal(err)
	}
	beats := func(n int64) {
		t.Helper()
		if _, err := am.WaitStats(ctxFor(t), func(s alarms.Stats) bool { return s.Heartbeats >= n }); err != nil {
			t.Fatalf("waiting for heartbeat %d: %v", n, err)
		}
	}
	beats(1) // sent at Start

	p, _ := l.addPump(pump.Config{ID: "PUMP-0008", Channels: []pump.ChannelType{pump.LVP}, OcclusionBuildupML: -1}, nil)
	if ack := l.order(hl7.BuildRGV(norepi("BCMA001200", "PUMP-0008", 0.05))); ack.Code != hl7.AckCA {
		t.Fatalf("accept ack %s", ack.Code)
	}
	l.iop.wait(t, "RRG", rrgFor("BCMA001200"))
	if err := p.Start("A", "RN0042"); err != nil {
		t.Fatal(err)
	}
	// Ten intervals, one at a time: the fake clock jumps while the
	// heartbeats travel in wall time, and a jump of more than 3.5
	// intervals would (rightly) find the reporter silent.
	for i := range int64(10) {
		l.clk.Advance(interval)
		beats(i + 2)
	}
	if err := p.InjectFault("A", pump.FaultOcclusionDown); err != nil {
		t.Fatal(err)
	}
	alarmID := p.Alarms()[0].AlarmID
	rec, err := am.WaitAlert(ctxFor(t), func(r alarms.AlertRecord) bool { return r.ID == alarmID })
	if err != nil {
		t.Fatal(err)
	}
	if rec.Reporter != "PUMPSRV_SIM" || rec.Code != "MDC_EVT_FLUID_LINE_OCCL" {
		t.Errorf("record %+v", rec)
	}
	if _, err := phone.Wait(ctxFor(t), func(r alarms.Received) bool { return r.AlertID == alarmID }); err != nil {
		t.Fatal(err)
	}
	l.clk.Advance(10 * time.Second)
	beats(11) // no heartbeat due yet
	if _, _, active, ok := l.srv.HeartbeatStats(); !ok || len(active) != 1 || active[0] != alarmID {
		t.Fatalf("active at the server: %v %v", active, ok)
	}

	// The nurse clears the occlusion: the end is held until the heartbeat.
	if err := p.ClearAlarm(alarmID, "RN0042"); err != nil {
		t.Fatal(err)
	}
	rec, err = am.WaitAlert(ctxFor(t), func(r alarms.AlertRecord) bool { return r.ID == alarmID && !r.EndPending.IsZero() })
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Ended.IsZero() {
		t.Fatalf("end applied before the heartbeat: %+v", rec)
	}
	// The end came 10 s after a heartbeat: the next one is 20 s later.
	l.clk.Advance(interval - 10*time.Second)
	rec, err = am.WaitAlert(ctxFor(t), func(r alarms.AlertRecord) bool { return r.ID == alarmID && !r.Ended.IsZero() })
	if err != nil {
		t.Fatal(err)
	}
	if added := rec.Ended.Sub(rec.EndPending); added != interval-10*time.Second {
		t.Errorf("added end latency %v, want %v (the wait for the next heartbeat)", added, interval-10*time.Second)
	}
	if rec.Status != alarms.RecordCancelled || rec.EndsRefused != 0 {
		t.Errorf("record %+v", rec)
	}
	sent, seq, active, _ := l.srv.HeartbeatStats()
	rep := am.Reporters()
	if len(active) != 0 || len(rep) != 1 || rep[0].LastSeq != seq || rep[0].Heartbeats != int(sent) {
		t.Errorf("server: %d heartbeats, seq %d, active %v; manager: %+v", sent, seq, active, rep)
	}
	if s := am.Stats(); s.Refused != 0 || s.SequenceGaps != 0 || len(events) != 0 {
		t.Errorf("genuine traffic refused or flagged: %+v %+v", s, events)
	}
}
