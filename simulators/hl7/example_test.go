package hl7_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pumplab/pumplab/simulators/hl7"
)

// An IOC (pump server side) that checks PCD-03 orders, and an IOP (BCMA
// side) that sends one over plain MLLP. This is the example of docs/hl7.md.
func Example() {
	ctx := context.Background()

	// Server: parse every RGV^O15 with the typed view; a malformed order
	// comes back as AE/CE with the field in ERR; otherwise the default
	// accept acknowledgement (CA, since the order asks for one in MSH-15).
	var mux hl7.Mux
	mux.Handle("RGV^O15", func(ctx context.Context, m *hl7.Message, meta hl7.ConnMeta) (*hl7.Message, error) {
		order, err := hl7.ParseRGV(m)
		if err != nil {
			return nil, err
		}
		fmt.Printf("order %s: %s %g %s on %s\n", order.PlacerOrder, order.GiveText, order.DoseRate, order.DoseRateUnit, order.PumpID)
		return nil, nil
	})
	srv := hl7.New(hl7.Config{Handler: mux.Serve, App: "PUMPSRV_SIM", Facility: "HOSP_BIOMED"})
	if err := srv.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	// Client: build the order of REFERENCE.md §4.8(a) and send it.
	labTime := time.Date(2025, 3, 1, 10, 15, 0, 0, time.FixedZone("", -5*3600))
	msg := hl7.BuildRGV(hl7.RGV{
		Header: hl7.Header{
			SendingApp: hl7.HD{Namespace: "BCMA_SIM"}, SendingFacility: hl7.HD{Namespace: "HOSP_BCMA"},
			ReceivingApp: hl7.HD{Namespace: "PUMPSRV_SIM"}, ReceivingFacility: hl7.HD{Namespace: "HOSP_BIOMED"},
			Time: labTime, ControlID: "BCMA000123", AcceptAck: "AL", AppAck: "AL",
		},
		Patient:      hl7.Patient{MRN: "MRN4455", Authority: "HOSP", Family: "Testpatient", Given: "Alex", Location: hl7.Location{Unit: "4W ICU", Room: "12", Bed: "A"}},
		OrderControl: hl7.OrderNew, PlacerOrder: "ADM-778899", PlacerApp: "BCMA_SIM",
		GiveCode: "NOREPI-4-250", GiveText: "Norepinephrine 4 mg/250 mL", GiveSystem: "HOSPFORM",
		VTBI: 250, DoseRate: 0.05, DoseRateUnit: "mcg/kg/min",
		DrugAmount: 4, DrugAmountUnit: "mg", DiluentVolume: 250,
		Route: "IV", Device: hl7.DeviceLVP, PumpID: "PUMP-0007", WeightKg: 70,
	})
	reply, err := hl7.SendOnce(ctx, srv.Addr(), nil, msg)
	if err != nil {
		log.Fatal(err)
	}
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ack.Header.Type, ack.Code, ack.AckedID)

	// A tampered rate (ATK-10 style) that is not even a number is refused.
	_ = msg.Set("RXG-15", "0.5O")
	reply, err = hl7.SendOnce(ctx, srv.Addr(), nil, msg)
	if err != nil {
		log.Fatal(err)
	}
	ack, _ = hl7.ParseAck(reply)
	fmt.Println(ack.Code, ack.Errors[0].Code, ack.Errors[0].Segment, ack.Errors[0].Field)
	// Output:
	// order ADM-778899: Norepinephrine 4 mg/250 mL 0.05 mcg/kg/min on PUMP-0007
	// ACK^O15 CA BCMA000123
	// CE 102 RXG 15
}

func ExampleMessage_Get() {
	m, err := hl7.Parse(hl7.ExampleRGV)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Type(), m.ControlID())
	fmt.Println(m.Get("RXG-15"), m.Get("RXG-16.2"))
	fmt.Println(m.Get("OBX-18"), m.Get("OBX-18.3"), m.Get("OBX(2)-5"))
	_ = m.Set("OBX(2)-5", "700")
	fmt.Println(m.Get("OBX(2)-5"))
	// Output:
	// RGV^O15 BCMA000123
	// 0.05 MDC_DIM_MICRO_G_PER_KG_PER_MIN
	// ^^PUMP-0007^HOSP PUMP-0007 70
	// 700
}
