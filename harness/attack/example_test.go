package attack_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// ATK-10: a rogue programmer sends a forged PCD-03 at ten times the ordered
// dose rate to the pump server, with its ground truth recorded first.
func Example() {
	ctx := context.Background()

	// The pump server's HL7 listener (here a bare hl7.Server that accepts
	// every order and remembers the last dose rate it saw).
	seen := make(chan string, 1)
	srv := hl7.New(hl7.Config{App: "PUMPSRV_SIM", Handler: func(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
		seen <- m.Get("RXG-15") + " " + m.Get("RXG-16.2") + " on " + m.Get("OBX(1)-18.3")
		return nil, nil
	}})
	if err := srv.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	var truth attack.Memory // or the harness's recorder
	step := attack.Step{
		RunID: "run-1", ScenarioID: "ATK-10", StepID: "ATK-10/1",
		Techniques: []string{"T0855", "T0848", "T0836", "T0831"}, Tactic: "TA0106",
		Assets:   []string{"PUMP-0007", "pumpserver"},
		Criteria: "PUMP-0007 programmed at 0.5 mcg/kg/min", Control: "mtls-pcd03",
	}
	var ack hl7.Ack
	err := attack.Do(ctx, &truth, step, func(ctx context.Context) error {
		order := attack.ForgeRGV(attack.ForgedOrder{PumpID: "PUMP-0007", DoseRate: 0.5, ControlID: "ROGUE0001"})
		reply, err := attack.SendHL7(ctx, nil, srv.Addr(), nil, order) // nil targets: loopback only
		if err != nil {
			return err
		}
		ack, err = hl7.ParseAck(reply)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	rec := truth.Steps()[0]
	fmt.Println("server saw:", <-seen)
	fmt.Println("ack:", ack.Code, ack.AckedID)
	fmt.Println("truth:", rec.StepID, rec.Techniques, rec.Correlation[1], !rec.End.Before(rec.Start))

	// The safety rail refuses anything outside the lab before a packet leaves.
	_, err = attack.SendHL7(ctx, nil, "192.0.2.1:2575", nil, attack.ForgeRGV(attack.ForgedOrder{}))
	fmt.Println(err != nil)
	// Output:
	// server saw: 0.5 MDC_DIM_MICRO_G_PER_KG_PER_MIN on PUMP-0007
	// ack: CA ROGUE0001
	// truth: ATK-10/1 [T0855 T0848 T0836 T0831] hl7:ROGUE0001 true
	// true
}
