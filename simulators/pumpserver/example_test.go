package pumpserver_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpserver"
)

// Example programs a pump from a PCD-03 order: the pump server answers the
// BCMA with ACK^O15 CA at once, programs the pump over MQTT and sends
// RRG^O16 AA to the BCMA's listener once the pump accepted. The nurse then
// starts the infusion at the pump (docs/pumpserver.md).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// An MQTT broker on a free loopback port (the lab uses lab/broker).
	broker := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	_ = broker.AddHook(new(auth.AllowHook), nil)
	ln := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	if err := broker.AddListener(ln); err != nil {
		log.Fatal(err)
	}
	if err := broker.Serve(); err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	brokerURL := "tcp://" + ln.Address()

	// The BCMA's listener for RRG^O16.
	rrgs := make(chan *hl7.Message, 1)
	bcma := hl7.New(hl7.Config{Handler: func(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
		rrgs <- m
		return nil, nil // default acknowledgement
	}})
	if err := bcma.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer bcma.Close()

	// The pump server and one pump on the same lab clock.
	clk := clock.NewFake(time.Date(2025, 3, 1, 15, 15, 0, 0, time.UTC))
	srv := pumpserver.New(pumpserver.Config{BrokerURL: brokerURL, IOPAddr: bcma.Addr(), Clock: clk})
	if err := srv.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	p := pump.New(pump.Config{ID: "PUMP-0007", Clock: clk, Library: druglib.Default(), CareArea: "Adult ICU"})
	agent := pump.NewAgent(p, pump.AgentConfig{BrokerURL: brokerURL})
	if err := agent.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer agent.Close()
	err := srv.Wait(ctx, func(v pumpserver.View) bool {
		pi, ok := v.Pump("PUMP-0007")
		return ok && pi.Online && pi.LibraryVersion != ""
	})
	if err != nil {
		log.Fatal(err)
	}
	pi := srv.Pumps()[0]
	fmt.Println("registered:", pi.ID, pi.Online, pi.LibraryVersion, pi.Firmware)

	// PCD-03 from the BCMA: REFERENCE.md §4.8(a).
	order := hl7.BuildRGV(hl7.RGV{
		Header: hl7.Header{SendingApp: hl7.ParseHD("BCMA_SIM"), SendingFacility: hl7.ParseHD("HOSP_BCMA"),
			ReceivingApp: hl7.ParseHD("PUMPSRV_SIM"), ReceivingFacility: hl7.ParseHD("HOSP_BIOMED"),
			Time: clk.Now(), ControlID: "BCMA000123", AcceptAck: "AL", AppAck: "AL"},
		Patient:      hl7.Patient{MRN: "MRN4455", Authority: "HOSP", Family: "Testpatient", Given: "Alex"},
		OrderControl: hl7.OrderNew, PlacerOrder: "ADM-778899", PlacerApp: "BCMA_SIM",
		GiveCode: "NOREPI-4-250", GiveText: "Norepinephrine 4 mg/250 mL", GiveSystem: "HOSPFORM",
		VTBI: 250, DoseRate: 0.05, DoseRateUnit: "mcg/kg/min", DrugAmount: 4, DrugAmountUnit: "mg", DiluentVolume: 250,
		Route: "IV", Device: hl7.DeviceLVP, PumpID: "PUMP-0007", PumpAuthority: "HOSP", WeightKg: 70,
	})
	reply, err := hl7.SendOnce(ctx, srv.MLLPAddr(), nil, order)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("accept ack:", reply.Get("MSH-9"), reply.Get("MSA-1"), reply.Get("MSA-2"))

	rrg := <-rrgs // on a new connection, once the pump answered
	fmt.Println("application ack:", rrg.Get("MSH-9"), rrg.Get("MSA-1"), rrg.Get("MSA-2"))

	s, _ := p.Snapshot("A")
	fmt.Println("pump:", s.State, s.Program.DoseRate, s.Program.DoseUnit)
	if err := p.Start("A", "RN0042"); err != nil { // the nurse confirms at the pump
		log.Fatal(err)
	}
	s, _ = p.Snapshot("A")
	fmt.Printf("pump: %s at %.3f mL/h\n", s.State, s.NominalMLH)
	st := srv.Stats()
	fmt.Println("orders in/accepted:", st.OrdersIn, st.OrdersAccepted)

	// Output:
	// registered: PUMP-0007 true ADULT-2026.01 1.0.0
	// accept ack: ACK^O15^ACK CA BCMA000123
	// application ack: RRG^O16^RRG_O16 AA BCMA000123
	// pump: programming 0.05 mcg/kg/min
	// pump: infusing at 13.125 mL/h
	// orders in/accepted: 1 1
}
