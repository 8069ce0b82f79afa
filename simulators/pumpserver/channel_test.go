package pumpserver

import (
	"strings"
	"testing"

	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// TestChannelBDocumentedAsB starts an infusion on channel B of a
// two-channel pump: its PCD-10 carries VMD index 2 in OBX-4, so the EHR
// files it under channel B.
func TestChannelBDocumentedAsB(t *testing.T) {
	l := newLab(t, nil)
	p, _ := l.addPump(pump.Config{ID: "PUMP-0902", Channels: []pump.ChannelType{pump.LVP, pump.LVP}}, nil)
	if _, err := p.Program(pump.Local, pumpwire.Program{OrderID: "ORD-B", Action: "RE", RateMLH: 10, VTBI: 50}, "B"); err != nil {
		t.Fatal(err)
	}
	if err := p.Start("B", "RN0042"); err != nil {
		t.Fatal(err)
	}
	m := l.doc.wait(t, "PCD-10 delivery start for channel B", func(m *hl7.Message) bool {
		return isType("ORU", "R42")(m) && strings.Contains(string(m.Bytes()), "MDC_EVT_PUMP_DELIV_START")
	})
	if b := string(m.Bytes()); !strings.Contains(b, "|1.2.0.0|") || strings.Contains(b, "|1.1.0.0|") {
		t.Fatalf("channel B PCD-10 rows:\n%s", strings.ReplaceAll(b, "\r", "\n"))
	}
	ev, err := hl7.ParseInfusionEvent(m)
	if err != nil || ev.Channel != "B" {
		t.Fatalf("parsed channel %q, %v", ev.Channel, err)
	}
}
