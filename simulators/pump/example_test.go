package pump_test

import (
	"fmt"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// A heparin infusion on a fake clock: a hard-limit program is refused, the
// right one is auto-programmed, confirmed by the nurse, completes its VTBI
// at the exact lab time and drops to KVO.
func Example() {
	clk := clock.NewFake(time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC))
	lib := &druglib.Library{
		Version:   "DEMO-1",
		CareAreas: []druglib.CareArea{{Name: "ICU", MaxRateMLH: 500, CallbackMin: 2, KVORateMLH: 2, BasicAllowed: true}},
		Entries: []druglib.Entry{{ID: "HEP-25K", Name: "Heparin", Channels: []string{"lvp"},
			Amount: 25000, AmountUnit: "units", VolumeML: 250, DoseUnit: "units/h",
			Dose: druglib.Limits{SoftMin: 500, SoftMax: 2000, HardMax: 3000}}},
	}
	p := pump.New(pump.Config{ID: "PUMP-0001", Clock: clk, Library: lib, CareArea: "ICU",
		OnOutput: func(o pump.Output) {
			if o.Event != nil {
				fmt.Println(o.Time.Format("15:04:05"), "event", o.Event.Type)
			} else {
				fmt.Println(o.Time.Format("15:04:05"), "alarm", o.Alarm.Code, o.Alarm.Phase, o.Alarm.Priority)
			}
		}})

	_, err := p.Program(pump.Remote, pumpwire.Program{OrderID: "ORD-0", DrugID: "HEP-25K", DoseRate: 4000, DoseUnit: "units/h"}, "A")
	fmt.Println(err)

	res, _ := p.Program(pump.Remote, pumpwire.Program{OrderID: "ORD-1", DrugID: "HEP-25K", DoseRate: 1000, DoseUnit: "units/h", VTBI: 5}, "A")
	fmt.Println("rate", res.RateMLH, "mL/h, needs confirm:", res.NeedsConfirm)
	if err := p.Start("A", "RN0042"); err != nil {
		fmt.Println(err)
	}

	clk.Advance(31 * time.Minute)
	s, _ := p.Snapshot("A")
	fmt.Printf("%s at %.0f mL/h, %.4f mL, %.1f units\n", s.State, s.RateMLH, s.VolumeML, s.Drug)
	// Output:
	// 08:00:00 event program_rejected
	// pump: refused LIB-HARDMAX: dose 4000 units/h is hard-high (limit 3000)
	// 08:00:00 event program_accepted
	// rate 10 mL/h, needs confirm: true
	// 08:00:00 event delivery_start
	// 08:30:00 event delivery_complete
	// 08:30:00 alarm infusion_complete start PM
	// 08:30:00 event kvo
	// kvo at 2 mL/h, 5.0333 mL, 503.3 units
}
