package alarms_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/alarms"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// A PCD-04 occlusion alarm reaches a nurse phone; the nurse model accepts
// it 30 lab seconds later; the record carries L_notify and L_ack. (This is
// the example of docs/alarms.md.)
func Example() {
	ctx := context.Background()
	clk := clock.NewScaled(time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC), 600) // 10 lab minutes per wall second

	var phone *alarms.Communicator
	phone = alarms.NewCommunicator(alarms.CommunicatorConfig{ID: "PHONE-4W-1", Clock: clk,
		OnMessage: func(m alarms.Message) {
			_ = clock.Sleep(ctx, clk, 30*time.Second) // the nurse's response latency
			_ = phone.Accept(ctx, m.AlertID, "RN0042")
		}})
	if err := phone.Start(ctx); err != nil {
		panic(err)
	}
	defer phone.Close()

	am := alarms.New(alarms.Config{Clock: clk, Levels: [][]string{{"PHONE-4W-1"}}})
	if err := am.Start(ctx); err != nil {
		panic(err)
	}
	defer am.Close()
	if err := am.RegisterCommunicator(phone.ID(), phone.URL()); err != nil {
		panic(err)
	}

	// The pump server (alert reporter) sends PCD-04 over MLLP.
	onset := clk.Now()
	alert := hl7.Alert{
		Header:  hl7.Header{SendingApp: hl7.ParseHD("PUMPSRV_SIM"), Time: onset, ControlID: "AR000981", AcceptAck: "AL", AppAck: "NE"},
		AlertID: "ALR-55123", AlertApp: "PUMPSRV_SIM", OnsetTime: onset,
		PumpID: "PUMP-0007", Event: hl7.MDCEvtLineOccl, EventText: "Downstream occlusion",
		Phase: hl7.PhaseStart, State: hl7.StateActive, Priority: hl7.PriorityHigh, Type: hl7.AlertTechnical,
	}
	reply, err := hl7.SendOnce(ctx, am.MLLPAddr(), nil, hl7.BuildAlert(alert))
	if err != nil {
		panic(err)
	}
	ack, _ := hl7.ParseAck(reply)
	fmt.Println("ack:", ack.Code)

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rec, err := am.WaitAlert(wctx, func(r alarms.AlertRecord) bool { return r.Status == alarms.RecordAccepted })
	if err != nil {
		panic(err)
	}
	lack, _ := rec.AckLatency()
	fmt.Println(rec.ID, rec.Pump, rec.Status, "by", rec.AcceptedBy)
	fmt.Println("L_ack >= 30s:", lack >= 30*time.Second)
	// Output:
	// ack: CA
	// ALR-55123 PUMP-0007 accepted by RN0042
	// L_ack >= 30s: true
}
