package pumpserver

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

func TestRegistry(t *testing.T) {
	l := newLab(t, nil)
	_, a := l.addPump(pump.Config{ID: "PUMP-0007", Model: "pumplab-lvp2", Firmware: "2.3.1"}, nil)

	pumps := l.srv.Pumps()
	if len(pumps) != 1 {
		t.Fatalf("registry has %d pumps, want 1: %+v", len(pumps), pumps)
	}
	p := pumps[0]
	if p.ID != "PUMP-0007" || !p.Online || p.Firmware != "2.3.1" || p.LibraryVersion != druglib.Default().Version {
		t.Errorf("registry entry = %+v", p)
	}
	if p.Status.CareArea != "Adult ICU" || len(p.Status.Channels) != 1 || p.Status.Channels[0].State != "idle" {
		t.Errorf("registry status = %+v", p.Status)
	}
	if p.LastSeen.IsZero() {
		t.Error("LastSeen not set")
	}
	if got := l.srv.LibraryVersions(); got[druglib.Default().Version] != 1 || len(got) != 1 {
		t.Errorf("LibraryVersions = %v", got)
	}
	st := l.srv.Stats()
	if st.Pumps != 1 || st.Online != 1 || st.StatusIn < 1 || st.Malformed != 0 {
		t.Errorf("stats = %+v", st)
	}

	// The online message carries the model; the agent's close publishes
	// online=false and the pump stays in the registry, offline.
	if err := l.srv.Wait(ctxFor(t), func(v View) bool { pi, _ := v.Pump("PUMP-0007"); return pi.Model == "pumplab-lvp2" }); err != nil {
		t.Fatalf("model never registered: %v", err)
	}
	_ = a.Close()
	if err := l.srv.Wait(ctxFor(t), func(v View) bool { pi, ok := v.Pump("PUMP-0007"); return ok && !pi.Online }); err != nil {
		t.Fatalf("pump still online after its agent closed: %v", err)
	}
	if st := l.srv.Stats(); st.Pumps != 1 || st.Online != 0 {
		t.Errorf("stats after close = %+v", st)
	}
}

func TestPCD03Accepted(t *testing.T) {
	l := newLab(t, nil)
	p, _ := l.addPump(pump.Config{ID: "PUMP-0007"}, nil)

	ack := l.order(hl7.BuildRGV(norepi("BCMA000123", "PUMP-0007", 0.05)))
	if ack.Code != hl7.AckCA || ack.AckedID != "BCMA000123" || !ack.Header.Type.Is("ACK", "O15") {
		t.Fatalf("accept ack = %s %s %s, want ACK^O15 CA BCMA000123", ack.Header.Type, ack.Code, ack.AckedID)
	}
	m := l.iop.wait(t, "RRG^O16 for BCMA000123", rrgFor("BCMA000123"))
	rrg, err := hl7.ParseRRG(m)
	if err != nil {
		t.Fatal(err)
	}
	if rrg.Code != hl7.AckAA || len(rrg.Errors) != 0 {
		t.Errorf("RRG^O16 = %s %+v, want AA without ERR\n%s", rrg.Code, rrg.Errors, m)
	}
	if got := m.Get("MSH-21.3"); got != hl7.ProfileRRG.OID {
		t.Errorf("RRG MSH-21 profile = %q, want %q", got, hl7.ProfileRRG.OID)
	}

	s, err := p.Snapshot("A")
	if err != nil {
		t.Fatal(err)
	}
	if s.State != pump.ChProgramming || !near(s.NominalMLH, 0) || s.Program == nil {
		t.Fatalf("channel A = %s program %+v, want programming (waiting for the nurse)", s.State, s.Program)
	}
	if s.Program.OrderID != "ADM-BCMA000123" || s.Program.DrugID != "NOREPI-4-250" || s.Program.DoseUnit != "mcg/kg/min" || s.Program.WeightKg != 70 {
		t.Errorf("program on the pump = %+v", *s.Program)
	}
	// The rate the pump computed from the order: 0.05 mcg/kg/min x 70 kg / 16 mcg/mL.
	if st := p.Status(); !near(st.Channels[0].DoseRate, 0.05) || st.PatientID != "MRN4455" {
		t.Errorf("pump status = %+v", st)
	}
	if err := p.Start("A", "RN0042"); err != nil {
		t.Fatal(err)
	}
	if s, _ := p.Snapshot("A"); s.State != pump.ChInfusing || !near(s.NominalMLH, 13.125) {
		t.Errorf("after Start: %s at %v mL/h, want infusing at 13.125", s.State, s.NominalMLH)
	}
	st := l.srv.Stats()
	if st.OrdersIn != 1 || st.OrdersAccepted != 1 || st.OrdersRejected != 0 || st.OrdersErrored != 0 || st.AcksIn != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPCD03HardLimit(t *testing.T) {
	l := newLab(t, nil)
	p, _ := l.addPump(pump.Config{ID: "PUMP-0007"}, nil)

	if ack := l.order(hl7.BuildRGV(norepi("BCMA000200", "PUMP-0007", 2))); ack.Code != hl7.AckCA {
		t.Fatalf("accept ack %s, want CA (the pump decides)", ack.Code)
	}
	m := l.iop.wait(t, "RRG^O16 AR", rrgFor("BCMA000200"))
	rrg, err := hl7.ParseRRG(m)
	if err != nil {
		t.Fatal(err)
	}
	if rrg.Code != hl7.AckAR || len(rrg.Errors) != 1 || rrg.Errors[0].AppCode != "LIB-HARDMAX" || rrg.Errors[0].Code != 207 {
		t.Fatalf("RRG = %s %+v, want AR with ERR-5 LIB-HARDMAX\n%s", rrg.Code, rrg.Errors, m)
	}
	if got := m.Get("ERR-5.2"); got != "Dose exceeds drug library hard limit" {
		t.Errorf("ERR-5.2 = %q, want the text of REFERENCE.md §4.8(b)", got)
	}
	if got := m.Get("ERR-8"); !strings.Contains(got, "hard-high") {
		t.Errorf("ERR-8 = %q, want the pump's reason", got)
	}
	if s, _ := p.Snapshot("A"); s.State != pump.ChIdle {
		t.Errorf("channel A = %s after a hard-limit refusal, want idle", s.State)
	}
	if st := l.srv.Stats(); st.OrdersRejected != 1 || st.OrdersAccepted != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPCD03UnknownPump(t *testing.T) {
	l := newLab(t, nil)
	l.addPump(pump.Config{ID: "PUMP-0007"}, nil)

	ack := l.order(hl7.BuildRGV(norepi("BCMA000300", "PUMP-9999", 0.05)))
	if ack.Code != hl7.AckCR || len(ack.Errors) != 1 {
		t.Fatalf("accept ack = %s %+v, want CR with one ERR", ack.Code, ack.Errors)
	}
	e := ack.Errors[0]
	// The pump-ID OBX is segment 7 of the order: MSH PID ORC RXG RXR OBX.
	if e.Segment != "OBX" || e.Field != 18 || e.Seq != 6 || e.AppCode != "PUMP-UNKNOWN" || !strings.Contains(e.Message, "PUMP-9999") {
		t.Errorf("ERR = %+v, want OBX^6^18 PUMP-UNKNOWN naming the pump", e)
	}
	// No RRG^O16 for a refused order: the next one's RRG is the first the
	// IOP gets (the sender keeps order).
	if ack := l.order(hl7.BuildRGV(norepi("BCMA000301", "PUMP-0007", 0.05))); ack.Code != hl7.AckCA {
		t.Fatalf("second order: %s", ack.Code)
	}
	first := l.iop.wait(t, "any RRG", isType("RRG", "O16"))
	if got := first.Get("MSA-2"); got != "BCMA000301" {
		t.Errorf("first RRG^O16 answers %q: an RRG was sent for the refused order", got)
	}
	if st := l.srv.Stats(); st.OrdersIn != 2 || st.OrdersRejected != 1 || st.OrdersAccepted != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPCD03ChannelB(t *testing.T) {
	l := newLab(t, nil)
	p, _ := l.addPump(pump.Config{ID: "PUMP-0008", Channels: []pump.ChannelType{pump.LVP, pump.LVP}}, nil)

	m := hl7.BuildRGV(norepi("BCMA000400", "PUMP-0008", 0.05))
	if err := m.Set("OBX(1)-4", "1.2.0.0"); err != nil {
		t.Fatal(err)
	}
	if ack := l.order(m); ack.Code != hl7.AckCA {
		t.Fatalf("accept ack %s", ack.Code)
	}
	if rrg, _ := hl7.ParseRRG(l.iop.wait(t, "RRG", rrgFor("BCMA000400"))); rrg.Code != hl7.AckAA {
		t.Fatalf("RRG = %s %+v", rrg.Code, rrg.Errors)
	}
	a, _ := p.Snapshot("A")
	b, _ := p.Snapshot("B")
	if a.State != pump.ChIdle || b.State != pump.ChProgramming || b.Program == nil || b.Program.OrderID != "ADM-BCMA000400" {
		t.Fatalf("channel A %s, channel B %s %+v: want the order on B only", a.State, b.State, b.Program)
	}

	// The same with the pump id suffix form of OBX-18.
	if ack := l.order(hl7.BuildRGV(norepi("BCMA000401", "PUMP-0008:A", 0.05))); ack.Code != hl7.AckCA {
		t.Fatalf("accept ack %s", ack.Code)
	}
	if rrg, _ := hl7.ParseRRG(l.iop.wait(t, "RRG", rrgFor("BCMA000401"))); rrg.Code != hl7.AckAA {
		t.Fatalf("RRG = %s %+v", rrg.Code, rrg.Errors)
	}
	if a, _ := p.Snapshot("A"); a.State != pump.ChProgramming || a.Program.OrderID != "ADM-BCMA000401" {
		t.Errorf("channel A = %s %+v", a.State, a.Program)
	}
}

func TestPCD03PumpNoResponse(t *testing.T) {
	l := newLab(t, func(c *Config) { c.ProgramTimeout = 300 * time.Millisecond })
	p, a := l.addPump(pump.Config{ID: "PUMP-0007"}, nil)
	_ = a.Close() // the pump is registered but its network module is gone

	if ack := l.order(hl7.BuildRGV(norepi("BCMA000500", "PUMP-0007", 0.05))); ack.Code != hl7.AckCA {
		t.Fatalf("accept ack %s", ack.Code)
	}
	m := l.iop.wait(t, "RRG AE", rrgFor("BCMA000500"))
	rrg, err := hl7.ParseRRG(m)
	if err != nil {
		t.Fatal(err)
	}
	if rrg.Code != hl7.AckAE || len(rrg.Errors) != 1 || rrg.Errors[0].AppCode != "PUMP-NORESPONSE" {
		t.Fatalf("RRG = %s %+v, want AE PUMP-NORESPONSE\n%s", rrg.Code, rrg.Errors, m)
	}
	if s, _ := p.Snapshot("A"); s.State != pump.ChIdle {
		t.Errorf("channel A = %s", s.State)
	}
	if st := l.srv.Stats(); st.OrdersErrored != 1 || st.OrdersAccepted != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPCD03OrderCheck(t *testing.T) {
	type seen struct {
		order hl7.RGV
		meta  hl7.ConnMeta
	}
	got := make(chan seen, 1)
	l := newLab(t, func(c *Config) {
		c.OrderCheck = func(_ context.Context, order hl7.RGV, meta hl7.ConnMeta) error {
			got <- seen{order, meta}
			return errors.New("weight 70 kg differs from the EHR's 82 kg")
		}
	})
	p, a := l.addPump(pump.Config{ID: "PUMP-0007"}, nil)

	if ack := l.order(hl7.BuildRGV(norepi("BCMA000600", "PUMP-0007", 0.05))); ack.Code != hl7.AckCA {
		t.Fatalf("accept ack %s", ack.Code)
	}
	m := l.iop.wait(t, "RRG AR", rrgFor("BCMA000600"))
	rrg, err := hl7.ParseRRG(m)
	if err != nil {
		t.Fatal(err)
	}
	if rrg.Code != hl7.AckAR || len(rrg.Errors) != 1 || rrg.Errors[0].AppCode != "ORDER-CHECK" || !strings.Contains(rrg.Errors[0].Message, "82 kg") {
		t.Fatalf("RRG = %s %+v, want AR ORDER-CHECK with the check's text", rrg.Code, rrg.Errors)
	}
	s := <-got
	if s.order.PlacerOrder != "ADM-BCMA000600" || s.order.WeightKg != 70 || s.meta.RemoteAddr == "" {
		t.Errorf("OrderCheck saw %+v / %+v", s.order, s.meta)
	}
	if snap, _ := p.Snapshot("A"); snap.State != pump.ChIdle || snap.Program != nil {
		t.Errorf("pump programmed despite the refusal: %s %+v", snap.State, snap.Program)
	}
	if c := a.Counters(); c.Commands != 0 {
		t.Errorf("pump received %d commands, want none", c.Commands)
	}
	if st := l.srv.Stats(); st.OrdersRejected != 1 || st.OrdersAccepted != 0 || st.AcksIn != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestEventsToEHR(t *testing.T) {
	l := newLab(t, nil)
	p, _ := l.addPump(pump.Config{ID: "PUMP-0007"}, nil)

	if ack := l.order(hl7.BuildRGV(norepi("BCMA000700", "PUMP-0007", 0.05))); ack.Code != hl7.AckCA {
		t.Fatalf("accept ack %s", ack.Code)
	}
	l.iop.wait(t, "RRG", rrgFor("BCMA000700"))
	l.clk.Advance(90 * time.Second) // the nurse walks to the pump
	startAt := l.clk.Now()
	if err := p.Start("A", "RN0042"); err != nil {
		t.Fatal(err)
	}
	isStart := func(m *hl7.Message) bool {
		e, err := hl7.ParseInfusionEvent(m)
		return err == nil && e.Event.Ref == "MDC_EVT_PUMP_DELIV_START"
	}
	m := l.doc.wait(t, "PCD-10 delivery start", isStart)
	ev, err := hl7.ParseInfusionEvent(m)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.EventTime.Equal(startAt) || ev.PumpID != "PUMP-0007" || ev.OrderID != "ADM-BCMA000700" || ev.Patient.MRN != "MRN4455" ||
		ev.DrugCode != "NOREPI-4-250" || !near(ev.RateMLH, 13.125) || ev.InfusingStatus != hl7.StatusInfusing ||
		ev.LibraryVersion != druglib.Default().Version || ev.VTBIML != 250 || !near(ev.DoseRate, 0.05) {
		t.Errorf("PCD-10 = %+v\n%s", ev, m)
	}
	if got := m.Get("MSH-21.3"); got != hl7.ProfilePCD10.OID {
		t.Errorf("MSH-21 = %q", got)
	}

	// A duplicated envelope (a pump re-publishing after a lost PUBACK) is
	// forwarded once, with its original time in OBR-7; the same envelope id
	// from another pump is a different message.
	raw := newRawClient(t, l.url)
	old := t0.Add(-10 * time.Minute)
	stop := raw.envelope("PUMP-0007-raw-m1", "PUMP-0007", old, pumpwire.Event{EventID: "PUMP-0007-E900", Type: pumpwire.EvDeliveryStop, Channel: "A", OrderID: "ADM-BCMA000700"})
	raw.publish(pumpwire.Topic("PUMP-0007", pumpwire.KindEvent), stop)
	raw.publish(pumpwire.Topic("PUMP-0007", pumpwire.KindEvent), stop)
	other := raw.envelope("PUMP-0007-raw-m1", "PUMP-0042", old, pumpwire.Event{EventID: "PUMP-0042-E1", Type: pumpwire.EvDeliveryStop, Channel: "A"})
	raw.publish(pumpwire.Topic("PUMP-0042", pumpwire.KindEvent), other)
	sentinel := raw.envelope("PUMP-0007-raw-m2", "PUMP-0007", old, pumpwire.Event{EventID: "PUMP-0007-E901", Type: pumpwire.EvDeliveryComplete, Channel: "A"})
	raw.publish(pumpwire.Topic("PUMP-0007", pumpwire.KindEvent), sentinel)

	l.doc.wait(t, "sentinel PCD-10", func(m *hl7.Message) bool { return m.Get("OBR-3.1") == "PUMP-0007-raw-m2" })
	dups := l.doc.all(func(m *hl7.Message) bool {
		return m.Get("OBR-3.1") == "PUMP-0007-raw-m1" && m.Field("OBX(1)-18").Comp(1) == "PUMP-0007"
	})
	if len(dups) != 1 {
		t.Fatalf("duplicated envelope forwarded %d times, want 1", len(dups))
	}
	if ev, _ := hl7.ParseInfusionEvent(dups[0]); !ev.EventTime.Equal(old) || ev.Event.Ref != "MDC_EVT_PUMP_DELIV_STOP" {
		t.Errorf("buffered event: OBR-7 %v (want the original %v), event %s", ev.EventTime, old, ev.Event.Ref)
	}
	if n := len(l.doc.all(func(m *hl7.Message) bool { return m.Field("OBX(1)-18").Comp(1) == "PUMP-0042" })); n != 1 {
		t.Errorf("PUMP-0042's event with a reused envelope id forwarded %d times, want 1", n)
	}
	st := l.srv.Stats()
	if st.Duplicates != 1 {
		t.Errorf("Duplicates = %d, want 1", st.Duplicates)
	}
	var recv []Received
	for _, r := range l.srv.Received() {
		if r.MsgID == "PUMP-0007-raw-m1" {
			recv = append(recv, r)
		}
	}
	if len(recv) != 2 || !recv[0].TS.Equal(old) || recv[0].Event == nil || recv[0].Event.EventID != "PUMP-0007-E900" {
		t.Errorf("Received for the duplicated id = %+v", recv)
	}
	if st.PCD10Out != int64(len(l.doc.all(isType("ORU", "R42")))) {
		t.Errorf("PCD10Out = %d, DOC received %d", st.PCD10Out, len(l.doc.all(isType("ORU", "R42"))))
	}
}

func TestAlarmsToAlarmManager(t *testing.T) {
	l := newLab(t, nil)
	p, _ := l.addPump(pump.Config{ID: "PUMP-0008", Channels: []pump.ChannelType{pump.LVP, pump.LVP}, OcclusionBuildupML: -1}, nil)
	order := hl7.BuildRGV(norepi("BCMA001100", "PUMP-0008:B", 0.05))
	if ack := l.order(order); ack.Code != hl7.AckCA {
		t.Fatalf("accept ack %s", ack.Code)
	}
	l.iop.wait(t, "RRG", rrgFor("BCMA001100"))
	if err := p.Start("B", "RN0042"); err != nil {
		t.Fatal(err)
	}
	l.clk.Advance(5 * time.Minute)
	onset := l.clk.Now()
	if err := p.InjectFault("B", pump.FaultOcclusionDown); err != nil {
		t.Fatal(err)
	}
	alarms := p.Alarms()
	if len(alarms) != 1 {
		t.Fatalf("pump alarms = %+v", alarms)
	}
	alarmID := alarms[0].AlarmID

	isOccl := func(phase string) func(*hl7.Message) bool {
		return func(m *hl7.Message) bool {
			a, err := hl7.ParseAlert(m)
			return err == nil && a.AlertID == alarmID && a.Phase == phase
		}
	}
	m := l.am.wait(t, "PCD-04 start", isOccl(hl7.PhaseStart))
	al, _ := hl7.ParseAlert(m)
	if al.Event.Ref != "MDC_EVT_FLUID_LINE_OCCL" || al.Event.Code != 196940 || al.Priority != hl7.PriorityHigh || al.Type != hl7.AlertTechnical ||
		al.State != hl7.StateActive || al.PumpID != "PUMP-0008" || !al.OnsetTime.Equal(onset) || al.Patient.MRN != "MRN4455" {
		t.Errorf("PCD-04 = %+v\n%s", al, m)
	}
	if al.Prefix != "1.2.1.0" {
		t.Errorf("alarm on channel B has OBX-4 prefix %q, want 1.2.1.0", al.Prefix)
	}
	if got := m.Get("MSH-9"); got != "ORU^R40^ORU_R40" {
		t.Errorf("MSH-9 = %q", got)
	}

	// The alarm manager's PCD-05 comes back to the server's MLLP port.
	ora := hl7.BuildAlertStatus(hl7.AlertStatus{
		Header: hl7.Header{SendingApp: hl7.ParseHD("ALERTMGR_SIM"), SendingFacility: hl7.ParseHD("HOSP_AM"), Time: onset.Add(20 * time.Second),
			ControlID: "AM000123", AcceptAck: "AL", AppAck: "NE"},
		AlertID: alarmID, AlertApp: "PUMPSRV_SIM", Time: onset.Add(20 * time.Second), Status: hl7.AlertAccepted,
		Provider: hl7.Person{ID: "RN0042", Family: "Nurse", Given: "Nina"}, Communicator: "VOCERA-0042",
	})
	if ack := l.order(ora); ack.Code != hl7.AckCA || ack.AckedID != "AM000123" {
		t.Fatalf("PCD-05 ack = %s %s", ack.Code, ack.AckedID)
	}
	sts := l.srv.AlertStatuses(alarmID)
	if len(sts) != 1 || sts[0].Status != hl7.AlertAccepted || sts[0].Provider.ID != "RN0042" || sts[0].Communicator != "VOCERA-0042" {
		t.Errorf("AlertStatuses = %+v", sts)
	}

	// The nurse clears the occlusion: phase end, state inactive, same id.
	l.clk.Advance(time.Minute)
	if err := p.ClearAlarm(alarmID, "RN0042"); err != nil {
		t.Fatal(err)
	}
	end, _ := hl7.ParseAlert(l.am.wait(t, "PCD-04 end", isOccl(hl7.PhaseEnd)))
	if end.State != hl7.StateInactive || end.Prefix != "1.2.1.0" {
		t.Errorf("end = %+v", end)
	}
	st := l.srv.Stats()
	if st.AlarmsIn < 2 || st.PCD04Out != int64(len(l.am.all(isType("ORU", "R40")))) || st.PCD05In != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPCD01Periodic(t *testing.T) {
	l := newLab(t, func(c *Config) { c.PCD01Interval = time.Minute })
	p, _ := l.addPump(pump.Config{ID: "PUMP-0008", Channels: []pump.ChannelType{pump.LVP, pump.LVP}}, nil)

	if ack := l.order(hl7.BuildRGV(norepi("BCMA000800", "PUMP-0008", 0.05))); ack.Code != hl7.AckCA {
		t.Fatalf("accept ack %s", ack.Code)
	}
	l.iop.wait(t, "RRG", rrgFor("BCMA000800"))
	if err := p.Start("A", "RN0042"); err != nil {
		t.Fatal(err)
	}
	// Ask the pump for a status now so that the registry knows the order.
	ctx := ctxFor(t)
	if _, err := l.srv.Command(ctx, "PUMP-0008", pumpwire.Command{Op: pumpwire.OpStatusRequest}); err != nil {
		t.Fatal(err)
	}
	if err := l.srv.Wait(ctx, func(v View) bool {
		pi, _ := v.Pump("PUMP-0008")
		return len(pi.Status.Channels) == 2 && pi.Status.Channels[0].State == "infusing"
	}); err != nil {
		t.Fatal(err)
	}
	statusAt := l.clk.Now()
	if n := l.srv.Stats().PCD01Out; n != 0 {
		t.Fatalf("PCD01Out = %d before the first interval", n)
	}

	for i := 1; i <= 2; i++ {
		l.clk.Advance(time.Minute)
		got := l.doc.waitN(t, "PCD-01", i, isType("ORU", "R01"))
		s, err := hl7.ParsePumpStatus(got[i-1])
		if err != nil {
			t.Fatal(err)
		}
		if s.OrderID != "ADM-BCMA000800" || s.PumpID != "PUMP-0008" || !near(s.RateMLH, 13.125) || s.Status != hl7.StatusInfusing ||
			s.DrugCode != "NOREPI-4-250" || s.Patient.MRN != "MRN4455" || s.LibraryVersion != druglib.Default().Version ||
			s.CareArea != "Adult ICU" || !s.ObsTime.Equal(statusAt) || !near(s.DoseRate, 0.05) {
			t.Errorf("PCD-01 #%d = %+v\n%s", i, s, got[i-1])
		}
	}
	// Channel B has no order: one PCD-01 per interval. ReportNow runs
	// synchronously, after the second tick's report is complete.
	l.srv.ReportNow()
	if n := l.srv.Stats().PCD01Out; n != 3 {
		t.Errorf("PCD01Out = %d after two intervals and ReportNow, want 3 (channel A only)", n)
	}
}

func TestMalformedPumpMessages(t *testing.T) {
	l := newLab(t, nil)
	raw := newRawClient(t, l.url)
	subscribed := map[string]bool{}
	for _, k := range []pumpwire.Kind{pumpwire.KindStatus, pumpwire.KindEvent, pumpwire.KindAlarm, pumpwire.KindAck, pumpwire.KindOnline} {
		subscribed[string(k)] = true
	}
	want := int64(0)
	for _, c := range pumpwire.Cases {
		rest, ok := strings.CutPrefix(c.Topic, pumpwire.Prefix)
		if c.Err == "" || !ok {
			continue
		}
		_, leaf, _ := strings.Cut(rest, "/")
		if !subscribed[leaf] {
			continue // not delivered to the server at all
		}
		raw.publish(c.Topic, []byte(c.Payload))
		want++
	}
	for _, b := range [][]byte{{0x00, 0xff, 0xfe}, []byte("{"), []byte(`{"v":1}`), []byte(strings.Repeat("[", 100000))} {
		raw.publish(pumpwire.Topic("PUMP-0001", pumpwire.KindEvent), b)
		want++
	}
	if want < 10 {
		t.Fatalf("only %d malformed cases", want)
	}
	sentinel := raw.envelope("PUMP-0001-ok", "PUMP-0001", t0, pumpwire.Event{EventID: "PUMP-0001-E1", Type: pumpwire.EvDeliveryStart, Channel: "A"})
	raw.publish(pumpwire.Topic("PUMP-0001", pumpwire.KindEvent), sentinel)
	if err := l.srv.Wait(ctxFor(t), func(v View) bool { return len(v.Received()) == 1 }); err != nil {
		t.Fatalf("server stopped taking in messages: %v", err)
	}
	l.doc.wait(t, "PCD-10 after garbage", isType("ORU", "R42"))
	if st := l.srv.Stats(); st.Malformed != want || st.EventsIn != 1 {
		t.Errorf("Malformed = %d, EventsIn = %d; want %d and 1", st.Malformed, st.EventsIn, want)
	}
}

func TestMalformedMLLP(t *testing.T) {
	l := newLab(t, nil)
	l.addPump(pump.Config{ID: "PUMP-0007"}, nil)
	ctx := ctxFor(t)
	c, err := hl7.Dial(ctx, l.srv.MLLPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	noORC2 := hl7.BuildRGV(norepi("BCMA000901", "PUMP-0007", 0.05))
	if err := noORC2.Set("ORC-2", ""); err != nil {
		t.Fatal(err)
	}
	adt := hl7.BuildADT(hl7.ADT{Header: hl7.Header{ControlID: "ADT1", Time: t0}, Event: "A01", Patient: hl7.Patient{MRN: "MRN1"}})
	badORA := hl7.BuildAlertStatus(hl7.AlertStatus{Header: hl7.Header{ControlID: "AM1", Time: t0}, AlertID: "X", Time: t0, Status: "accepted"})
	if err := badORA.Set("OBX-5", "maybe"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		code string
		err  string // ERR-3.1
	}{
		{"binary garbage", []byte{0x00, 0x01, 0xff, 'M', 'S', 'H'}, hl7.AckAR, ""},
		{"no MSH", []byte("PID|||MRN1\rOBX|1"), hl7.AckAR, ""},
		{"unsupported type", adt.Bytes(), hl7.AckAR, "200"},
		{"RGV without ORC-2", noORC2.Bytes(), hl7.AckCE, "101"},
		{"ORA with unknown status (original mode)", badORA.Bytes(), hl7.AckAE, "103"},
	} {
		reply, err := c.SendRaw(ctx, tc.raw)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		m, err := hl7.Parse(reply)
		if err != nil {
			t.Fatalf("%s: reply does not parse: %v", tc.name, err)
		}
		if got := m.Get("MSA-1"); got != tc.code {
			t.Errorf("%s: MSA-1 = %s, want %s\n%s", tc.name, got, tc.code, m)
		}
		if tc.err != "" && m.Get("ERR-3.1") != tc.err {
			t.Errorf("%s: ERR-3.1 = %s, want %s", tc.name, m.Get("ERR-3.1"), tc.err)
		}
	}
	// The same connection still serves a good order.
	reply, err := c.Send(ctx, hl7.BuildRGV(norepi("BCMA000902", "PUMP-0007", 0.05)))
	if err != nil {
		t.Fatal(err)
	}
	if reply.Get("MSA-1") != hl7.AckCA || reply.Get("MSA-2") != "BCMA000902" {
		t.Fatalf("good order after garbage: %s", reply)
	}
	if rrg, _ := hl7.ParseRRG(l.iop.wait(t, "RRG", rrgFor("BCMA000902"))); rrg.Code != hl7.AckAA {
		t.Errorf("RRG = %s %+v", rrg.Code, rrg.Errors)
	}
	if st := l.srv.Stats(); st.OrdersIn != 2 || st.OrdersRejected != 1 || st.OrdersAccepted != 1 || st.PCD05In != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSenderQueuesWhileDestinationDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	docAddr := ln.Addr().String()
	_ = ln.Close() // nobody listens there yet
	l := newLab(t, func(c *Config) { c.DOCAddr = docAddr })
	raw := newRawClient(t, l.url)

	const n = 5
	for i := 1; i <= n; i++ {
		id := "PUMP-0001-m" + string(rune('0'+i))
		raw.publish(pumpwire.Topic("PUMP-0001", pumpwire.KindEvent), raw.envelope(id, "PUMP-0001", t0.Add(time.Duration(i)*time.Second),
			pumpwire.Event{EventID: id, Type: pumpwire.EvDeliveryStart, Channel: "A"}))
	}
	if err := l.srv.Wait(ctxFor(t), func(v View) bool { return len(v.Received()) == n }); err != nil {
		t.Fatal(err)
	}
	if st := l.srv.Stats(); st.OutPending != n || st.PCD10Out != n {
		t.Fatalf("with the EHR down: OutPending %d PCD10Out %d, want %d and %d", st.OutPending, st.PCD10Out, n, n)
	}

	ehr := newRecorder(t, "EHR", docAddr) // the EHR comes up on its address
	got := ehr.waitN(t, "queued PCD-10s", n, isType("ORU", "R42"))
	for i, m := range got {
		if want := "PUMP-0001-m" + string(rune('1'+i)); m.Get("OBR-3.1") != want {
			t.Errorf("PCD-10 #%d is %s, want %s (in order)", i+1, m.Get("OBR-3.1"), want)
		}
	}
	eventually(t, "queue drained", func() bool { return l.srv.Stats().OutPending == 0 })
	if st := l.srv.Stats(); st.OutRetries < 1 || st.OutRefused != 0 || st.OutOverflow != 0 {
		t.Errorf("stats = %+v", st)
	}
	if got := len(ehr.all(isType("ORU", "R42"))); got != n {
		t.Errorf("EHR received %d PCD-10s, want exactly %d", got, n)
	}
}

func TestPushLibrary(t *testing.T) {
	l := newLab(t, nil)
	next := druglib.Default().Clone()
	next.Version = "ADULT-2026.02"
	fetched := make(chan string, 4)
	fetch := func(_ context.Context, url, hash string) (*druglib.Library, error) {
		fetched <- url + " " + hash
		return next, nil
	}
	idle, _ := l.addPump(pump.Config{ID: "PUMP-0001"}, fetch)
	busy, _ := l.addPump(pump.Config{ID: "PUMP-0002"}, fetch)
	ctx := ctxFor(t)
	if _, err := l.srv.Program(ctx, "PUMP-0002", "A", ProgramFromRGV(norepi("X", "PUMP-0002", 0.05))); err != nil {
		t.Fatal(err)
	}
	if err := busy.Start("A", "RN0042"); err != nil {
		t.Fatal(err)
	}

	acks, err := l.srv.PushLibrary(ctx, "ADULT-2026.02", "http://druglib/v1/library/ADULT-2026.02", "sha256:abc")
	if err != nil {
		t.Fatal(err)
	}
	if len(acks) != 2 || acks["PUMP-0001"].Result != pumpwire.ResultAccepted || acks["PUMP-0002"].Result != pumpwire.ResultDeferred {
		t.Fatalf("acks = %+v, want PUMP-0001 accepted and PUMP-0002 deferred", acks)
	}
	if got := <-fetched; got != "http://druglib/v1/library/ADULT-2026.02 sha256:abc" {
		t.Errorf("fetcher called with %q", got)
	}
	if lib, _ := idle.Library(); lib.Version != "ADULT-2026.02" {
		t.Errorf("idle pump runs %s", lib.Version)
	}
	if lib, _ := busy.Library(); lib.Version != druglib.Default().Version {
		t.Errorf("infusing pump switched library to %s", lib.Version)
	}
	if err := l.srv.Wait(ctx, func(v View) bool {
		a, _ := v.Pump("PUMP-0001")
		b, _ := v.Pump("PUMP-0002")
		return a.LibraryVersion == "ADULT-2026.02" && b.PendingLibrary == "ADULT-2026.02" && b.LibraryVersion == druglib.Default().Version
	}); err != nil {
		t.Fatalf("registry: %+v", l.srv.Pumps())
	}
	if got := l.srv.LibraryVersions(); got["ADULT-2026.02"] != 1 || got[druglib.Default().Version] != 1 {
		t.Errorf("LibraryVersions = %v", got)
	}

	// The infusion ends: the staged library activates by itself.
	if err := busy.Stop("A", "RN0042"); err != nil {
		t.Fatal(err)
	}
	if err := l.srv.Wait(ctx, func(v View) bool {
		b, _ := v.Pump("PUMP-0002")
		return b.LibraryVersion == "ADULT-2026.02" && b.PendingLibrary == ""
	}); err != nil {
		t.Fatalf("deferred library never activated: %+v", l.srv.Pumps())
	}

	// A pump that is not there makes PushLibrary fail for it, not hang.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	acks, err = l.srv.PushLibrary(short, "ADULT-2026.02", "u", "h", "PUMP-0404")
	if err == nil || len(acks) != 0 || !strings.Contains(err.Error(), "PUMP-0404") {
		t.Errorf("push to a missing pump: %v %v", acks, err)
	}
}

// TestAckOnlyFromCommandedPump: a pump (or anything on the broker) cannot
// answer a command sent to another pump.
func TestAckOnlyFromCommandedPump(t *testing.T) {
	l := newLab(t, nil)
	raw := newRawClient(t, l.url)
	cmds := make(chan pumpwire.Command, 1)
	tok := raw.c.Subscribe(pumpwire.Topic("PUMP-0005", pumpwire.KindCmd), 1, func(_ paho.Client, m paho.Message) {
		_, _, body, err := pumpwire.Decode(m.Topic(), m.Payload())
		if err == nil {
			cmds <- *body.(*pumpwire.Command)
		}
	})
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	type result struct {
		ack pumpwire.CommandAck
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := l.srv.Command(ctxFor(t), "PUMP-0005", pumpwire.Command{Op: pumpwire.OpPause, Channel: "A"})
		done <- result{a, err}
	}()
	cmd := <-cmds
	forged := pumpwire.CommandAck{CmdID: cmd.CmdID, Result: pumpwire.ResultAccepted, Reason: "forged"}
	raw.publish(pumpwire.Topic("PUMP-0666", pumpwire.KindAck), raw.envelope("f1", "PUMP-0666", t0, forged))
	genuine := pumpwire.CommandAck{CmdID: cmd.CmdID, Channel: "A", Result: pumpwire.ResultRejected, Code: "CH-STATE", Reason: "genuine"}
	raw.publish(pumpwire.Topic("PUMP-0005", pumpwire.KindAck), raw.envelope("g1", "PUMP-0005", t0, genuine))
	r := <-done
	if r.err != nil || r.ack.Reason != "genuine" {
		t.Fatalf("Command returned %+v, %v: want the genuine ack", r.ack, r.err)
	}
	if st := l.srv.Stats(); st.AcksIn != 2 {
		t.Errorf("AcksIn = %d", st.AcksIn)
	}
}

// TestCloseDoesNotWaitForPrograms: Close cancels a program waiting for a
// silent pump instead of waiting out ProgramTimeout.
func TestCloseDoesNotWaitForPrograms(t *testing.T) {
	l := newLab(t, func(c *Config) { c.ProgramTimeout = time.Hour })
	_, a := l.addPump(pump.Config{ID: "PUMP-0007"}, nil)
	_ = a.Close()
	if ack := l.order(hl7.BuildRGV(norepi("BCMA001000", "PUMP-0007", 0.05))); ack.Code != hl7.AckCA {
		t.Fatalf("accept ack %s", ack.Code)
	}
	closed := make(chan struct{})
	go func() { _ = l.srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitFor):
		t.Fatal("Close still waiting for the program (ProgramTimeout 1h)")
	}
	if st := l.srv.Stats(); st.OrdersErrored != 1 {
		t.Errorf("OrdersErrored = %d, want 1 (the cancelled program)", st.OrdersErrored)
	}
}

func TestStartFailsWithoutBroker(t *testing.T) {
	if err := New(Config{}).Start(context.Background()); err == nil || !strings.Contains(err.Error(), "no broker URL") {
		t.Errorf("Start without broker: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	s := New(Config{BrokerURL: "tcp://" + addr, Logger: quiet()})
	err = s.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "pumpserver: connect") {
		t.Errorf("Start with the broker down: %v", err)
	}
}

// TestPatientFromPumpEvent: a program that changes the pump's patient is
// known to the server from the pump's patient_change event, before any new
// status, so the alarm that follows names the right patient.
func TestPatientFromPumpEvent(t *testing.T) {
	l := newLab(t, nil)
	p, _ := l.addPump(pump.Config{ID: "PUMP-0003"}, nil)
	ctx := ctxFor(t)
	ack, err := l.srv.Program(ctx, "PUMP-0003", "A", pumpwire.Program{OrderID: "ORD-9", Action: "RE", PatientID: "MRN0099", RateMLH: 50, VTBI: 100})
	if err != nil || ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("program: %+v %v", ack, err)
	}
	if err := p.InjectFault("A", pump.FaultAirInLine); err != nil {
		t.Fatal(err)
	}
	m := l.am.wait(t, "PCD-04 air in line", func(m *hl7.Message) bool {
		a, err := hl7.ParseAlert(m)
		return err == nil && a.Event.Ref == "MDC_EVT_FLUID_LINE_AIR"
	})
	if a, _ := hl7.ParseAlert(m); a.Patient.MRN != "MRN0099" || a.Prefix != hl7.DefaultAlertPrefix {
		t.Errorf("PCD-04 patient %q prefix %q, want MRN0099 and %s\n%s", a.Patient.MRN, a.Prefix, hl7.DefaultAlertPrefix, m)
	}
}

func TestPumpChannel(t *testing.T) {
	for _, tc := range []struct {
		pumpID, obx4 string
		wantPump     string
		wantChannel  string
	}{
		{"PUMP-0007", "", "PUMP-0007", "A"},
		{"PUMP-0007", "1.1.0.0", "PUMP-0007", "A"},
		{"PUMP-0007", "1.2.0.0", "PUMP-0007", "B"},
		{"PUMP-0007", "1.3", "PUMP-0007", "C"},
		{"PUMP-0007", "1.27.0.0", "PUMP-0007", "A"},
		{"PUMP-0007", "1.x.0.0", "PUMP-0007", "A"},
		{"PUMP-0007", "B", "PUMP-0007", "A"},
		{"PUMP-0007:B", "1.3.0.0", "PUMP-0007", "B"}, // the suffix wins
		{"PUMP-0007/C", "", "PUMP-0007", "C"},
		{"PUMP-0007:", "", "PUMP-0007:", "A"},
	} {
		m := hl7.BuildRGV(norepi("C1", tc.pumpID, 0.05))
		if err := m.Set("OBX(1)-4", tc.obx4); err != nil {
			t.Fatal(err)
		}
		r, err := hl7.ParseRGV(m)
		if err != nil {
			t.Fatal(err)
		}
		p, ch := pumpChannel(m, r)
		if p != tc.wantPump || ch != tc.wantChannel {
			t.Errorf("pump %q OBX-4 %q: got %s channel %s, want %s channel %s", tc.pumpID, tc.obx4, p, ch, tc.wantPump, tc.wantChannel)
		}
	}
	for in, want := range map[string][2]string{"P1": {"P1", "A"}, "P1:B": {"P1", "B"}, "P1/D": {"P1", "D"}, ":B": {":B", "A"}, "a:b:C": {"a:b", "C"}} {
		if p, c := SplitPumpChannel(in); p != want[0] || c != want[1] {
			t.Errorf("SplitPumpChannel(%q) = %q %q, want %q %q", in, p, c, want[0], want[1])
		}
	}
}

func TestAlertPrefix(t *testing.T) {
	for ch, want := range map[string]string{"": "1.1.1.0", "A": "1.1.1.0", "B": "1.2.1.0", "H": "1.8.1.0", "b": "1.1.1.0", "BB": "1.1.1.0"} {
		if got := alertPrefix(ch); got != want {
			t.Errorf("alertPrefix(%q) = %q, want %q", ch, got, want)
		}
	}
}

func TestProgramFromRGV(t *testing.T) {
	r := norepi("C1", "PUMP-0007", 0.05)
	p := ProgramFromRGV(r)
	if p.OrderID != "ADM-C1" || p.Action != "RE" || p.PatientID != "MRN4455" || p.DrugID != "NOREPI-4-250" || p.DoseRate != 0.05 ||
		p.DoseUnit != "mcg/kg/min" || p.RateMLH != 0 || p.DrugAmount != 4 || p.DrugUnit != "mg" || p.DiluentML != 250 || p.VTBI != 250 || p.WeightKg != 70 {
		t.Errorf("dose order: %+v", p)
	}
	r.DoseRate, r.DoseRateUnit, r.GiveCode = 125, "mL/h", ""
	if p := ProgramFromRGV(r); p.RateMLH != 125 || p.DoseRate != 0 || p.DoseUnit != "" || p.DrugID != "" {
		t.Errorf("rate order: %+v", p)
	}
	r.DoseRateUnit = ""
	if p := ProgramFromRGV(r); p.RateMLH != 125 {
		t.Errorf("order without unit: %+v", p)
	}
	pca := hl7.RGV{PlacerOrder: "PCA-1", OrderControl: "RE", Device: hl7.DevicePCA, DoseRate: 1, DoseRateUnit: "mg",
		PCA: &hl7.PCAParams{DoseLimit: 4, LimitPeriodMin: 240, LockoutMin: 10}}
	if p := ProgramFromRGV(pca); p.PCADose != 1 || p.PCALockout != 10 || p.PCAHourLimit != 1 || p.RateMLH != 0 || p.DoseRate != 0 {
		t.Errorf("PCA order: %+v", p)
	}
}

// TestControlIDsUniqueAcrossRuns: the EHR drops a message whose sender and
// MSH-10 it has seen; a restarted pump server (same lab time, same counter
// values) must not reuse the control IDs of the previous run.
func TestControlIDsUniqueAcrossRuns(t *testing.T) {
	seen := map[string]bool{}
	for run := 0; run < 3; run++ {
		s := fuzzServer()
		for _, typ := range []string{"EV", "DEC", "AR", "RRG"} {
			id := s.header(typ, "doc").ControlID
			if seen[id] || !strings.HasPrefix(id, typ) || len(id) > 20 {
				t.Errorf("run %d: control ID %q (reused, wrong prefix or longer than 20)", run, id)
			}
			seen[id] = true
		}
	}
}

func TestCommandErrors(t *testing.T) {
	ctx := context.Background()
	s := New(Config{})
	if _, err := s.Command(ctx, "PUMP-0001", pumpwire.Command{Op: pumpwire.OpPause}); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("command before Start: %v", err)
	}
	if _, err := s.Command(ctx, "PUMP-0001", pumpwire.Command{Op: "telnet"}); err == nil || !strings.Contains(err.Error(), "pumpserver: command telnet to PUMP-0001") {
		t.Errorf("invalid command: %v", err)
	}
}
