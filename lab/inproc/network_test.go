package inproc

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// TestInterposeAlarmLink places a listener on the pump server -> alarm
// manager link: PCD-04 reaches it instead of the alarm manager, and after
// restore the alarm manager gets alarms again.
func TestInterposeAlarmLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Start(ctx, lab.Topology{Pumps: 2, Speed: 60}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var seen atomic.Int32
	got := make(chan struct{}, 16)
	tap := hl7.New(hl7.Config{Handler: func(ctx context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
		if m.Type().Is("ORU", "R40") {
			seen.Add(1)
			got <- struct{}{}
		}
		return nil, nil
	}})
	if err := tap.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	upstream, restore, err := l.Network().Interpose(ctx, lab.LinkPumpServerToAlarms, tap.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if upstream != l.clinical.AM.MLLPAddr() {
		t.Fatalf("upstream %s, want the alarm manager %s", upstream, l.clinical.AM.MLLPAddr())
	}
	if err := l.Devices().InjectFault(ctx, "PUMP-0001", "A", "door_open"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("PCD-04 did not reach the interposed listener")
	}
	if n := len(l.clinical.AM.Alerts()); n != 0 {
		t.Fatalf("alarm manager got %d alerts while the link was interposed", n)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if err := l.Devices().InjectFault(ctx, "PUMP-0002", "A", "door_open"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Alarms().WaitAlarm(ctx, func(a lab.AlarmRecord) bool { return a.PumpID == "PUMP-0002" }); err != nil {
		t.Fatalf("after restore: %v", err)
	}
	if _, _, err := l.Network().Interpose(ctx, lab.LinkPumpServerToAlarms, "192.0.2.1:2575"); err == nil {
		t.Fatal("interposing a non-loopback address was accepted")
	}
}
