package emar_test

import (
	"context"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/ehr"
	"github.com/pumplab/pumplab/simulators/emar"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// The CTL-01 workflow up to the pump: admit, order, verify, scan, with a
// stand-in pump server that accepts the PCD-03 and answers RRG^O16 AA on a
// new connection. This is the example of docs/clinical.md.
func Example() {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC))

	// The eMAR first: the EHR and the pump server need its address.
	bcma := emar.New(emar.Config{Clock: clk})
	if err := bcma.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer bcma.Close()
	hospital := ehr.New(ehr.Config{Clock: clk, EMARAddr: bcma.MLLPAddr()})
	if err := hospital.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer hospital.Close()

	// A minimal IOC: accept (ACK^O15 CA by default), then RRG^O16 AA.
	var wg sync.WaitGroup
	defer wg.Wait()
	ioc := hl7.New(hl7.Config{App: "PUMPSRV_SIM", Handler: func(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
		r, err := hl7.ParseRGV(m)
		if err != nil {
			return nil, err
		}
		pump, channel := emar.PumpChannel(m)
		fmt.Printf("IOC: %s %s %g %s for %s channel %s\n", r.OrderControl, r.GiveCode, r.DoseRate, r.DoseRateUnit, pump, channel)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rrg := hl7.BuildRRG(hl7.Ack{Header: hl7.Header{SendingApp: hl7.HD{Namespace: "PUMPSRV_SIM"},
				Time: clk.Now(), ControlID: "PS000001", AcceptAck: "AL", AppAck: "NE"},
				Code: hl7.AckAA, AckedID: r.Header.ControlID})
			if _, err := hl7.SendOnce(context.Background(), bcma.MLLPAddr(), nil, rrg); err != nil {
				log.Print(err)
			}
		}()
		return nil, nil
	}})
	if err := ioc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer ioc.Close()
	bcma.SetIOCAddr(ioc.Addr())
	bcma.SetEHRAddr(hospital.MLLPAddr())

	// ADT^A01, OMP^O09 (to the pharmacy inbox), RDE^O11 (to the eMAR).
	if err := hospital.Admit(ctx, ehr.Patient{MRN: "MRN4455", Family: "Testpatient", Given: "Alex",
		Location: hl7.Location{Unit: "4W ICU", Room: "12", Bed: "A"}, WeightKg: 70}); err != nil {
		log.Fatal(err)
	}
	order, err := hospital.Order(ctx, ehr.Order{MRN: "MRN4455", DrugCode: "NOREPI-4-250",
		DrugText: "Norepinephrine 4 mg/250 mL", DoseRate: 0.05, DoseUnit: "mcg/kg/min", RateMLH: 13.125,
		DrugAmount: 4, DrugUnit: "mg", DiluentML: 250, VTBI: 250, Prescriber: "MD0007"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := hospital.Verify(ctx, order.PlacerID, "PH0003"); err != nil {
		log.Fatal(err)
	}

	// A scan with the wrong bag is refused before anything is sent.
	_, err = bcma.Scan(ctx, emar.Scan{Nurse: "RN0042", WristbandMRN: "MRN4455", DrugBarcode: "HEP-25000-250", PumpID: "PUMP-0007"})
	fmt.Println("wrong bag:", emar.FailedCheck(err))

	// The right bag: PCD-03 to the IOC, ACK^O15, RRG^O16, RAS^O17 to the EHR.
	res, err := bcma.Scan(ctx, emar.Scan{Nurse: "RN0042", WristbandMRN: "MRN4455", DrugBarcode: "NOREPI-4-250",
		PumpID: "PUMP-0007", Channel: "A"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("result:", res.OrderID, res.ControlID, res.AcceptCode, res.AckCode, res.Accepted)
	o, _ := bcma.Order(order.PlacerID)
	fmt.Println("eMAR order:", o.State, o.FillerID)
	doc := hospital.Documented(order.PlacerID)
	fmt.Println("EHR documented:", len(doc.Administrations), doc.Administrations[0].Nurse, doc.Administrations[0].PumpID)
	// Output:
	// wrong bag: drug
	// IOC: RE NOREPI-4-250 0.05 mcg/kg/min for PUMP-0007 channel A
	// result: ORD-000001 BCMA000001 CA AA true
	// eMAR order: administered RX-000001
	// EHR documented: 1 RN0042 PUMP-0007
}
