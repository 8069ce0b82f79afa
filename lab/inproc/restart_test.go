package inproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/broker"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpserver"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// TestBrokerRestartMidInfusion stops the broker in the middle of an
// infusion: the pumps keep infusing, reconnect when the broker is back, and
// every event and alarm raised meanwhile reaches the pump server exactly once
// with its original timestamp.
func TestBrokerRestartMidInfusion(t *testing.T) {
	for _, kind := range []string{"embedded", "mosquitto"} {
		t.Run(kind, func(t *testing.T) {
			if kind == "mosquitto" {
				if _, err := broker.FindMosquitto(); errors.Is(err, broker.ErrNoMosquitto) {
					if os.Getenv("PUMPLAB_REQUIRE_MOSQUITTO") != "" {
						t.Fatal("PUMPLAB_REQUIRE_MOSQUITTO is set but mosquitto is not installed")
					}
					t.Skip("mosquitto not installed")
				}
			}
			testBrokerRestart(t, kind)
		})
	}
}

type expected struct {
	key string // event id, or alarm id + phase
	at  time.Time
}

func testBrokerRestart(t *testing.T, kind string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, lab.Topology{Pumps: 2, Speed: 60, Broker: kind, Nurse: lab.NurseModel{Disabled: true}}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rb, ok := l.Broker.(broker.Restarter)
	if !ok {
		t.Fatalf("broker %T cannot restart", l.Broker)
	}
	p1, p2 := l.PumpModels["PUMP-0001"], l.PumpModels["PUMP-0002"]

	// PUMP-0001 infuses saline at 120 mL/h through the whole outage.
	if _, err := p1.Program(pump.Local, pumpwire.Program{OrderID: "ORD-RESTART", Action: "RE", RateMLH: 120, VTBI: 1000}, "A"); err != nil {
		t.Fatal(err)
	}
	if err := p1.Start("A", "RN0042"); err != nil {
		t.Fatal(err)
	}

	// Record every output the pumps raise while the broker is down.
	var mu sync.Mutex
	var outage bool
	var want []expected
	record := func(o pump.Output) {
		mu.Lock()
		defer mu.Unlock()
		if !outage {
			return
		}
		switch {
		case o.Event != nil:
			want = append(want, expected{o.Event.EventID, o.Time})
		case o.Alarm != nil:
			want = append(want, expected{o.Alarm.AlarmID + "/" + o.Alarm.Phase, o.Time})
		}
	}
	defer p1.Listen(record)()
	defer p2.Listen(record)()

	// From the moment the broker starts to go down, what the pumps raise
	// must reach the server after the restart: buffered while offline, and
	// sent again when the dying broker acknowledged it but never delivered
	// it (end-to-end receipts).
	mu.Lock()
	outage = true
	mu.Unlock()
	if err := rb.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"PUMP-0001", "PUMP-0002"} {
		waitFor(t, ctx, func() bool { return !l.Agents[id].Connected() }, id+" to notice the outage")
	}
	v0, _ := p1.Snapshot("A")

	// Meanwhile at the bedside: PUMP-0002 gets a basic infusion, occludes,
	// the nurse clears the alarm and resumes; PUMP-0001 pauses and resumes.
	mustDo(t, func() error {
		_, err := p2.Program(pump.Local, pumpwire.Program{OrderID: "ORD-OUTAGE", Action: "RE", RateMLH: 50, VTBI: 100}, "A")
		return err
	})
	mustDo(t, func() error { return p2.Start("A", "RN0043") })
	mustDo(t, func() error { return p2.InjectFault("A", pump.FaultOcclusionDown) })
	occluded := func() (pump.ActiveAlarm, bool) {
		for _, a := range p2.Alarms() {
			if a.Def.Code == pump.AlarmOcclusionDown {
				return a, true
			}
		}
		return pump.ActiveAlarm{}, false
	}
	waitFor(t, ctx, func() bool { _, ok := occluded(); return ok }, "occlusion alarm on PUMP-0002")
	a, _ := occluded()
	mustDo(t, func() error { return p2.ClearAlarm(a.AlarmID, "RN0043") })
	mustDo(t, func() error { return p1.Pause("A", "RN0042") })
	mustDo(t, func() error { return p1.Resume("A", "RN0042") })
	// Lab time passes while the broker is down: the therapy goes on.
	waitFor(t, ctx, func() bool {
		s, _ := p1.Snapshot("A")
		return s.VolumeML > v0.VolumeML+1
	}, "PUMP-0001 to keep infusing during the outage")
	if s, _ := p1.Snapshot("A"); s.State != pump.ChInfusing {
		t.Fatalf("PUMP-0001 is %s during the outage, want infusing", s.State)
	}
	mu.Lock()
	outage = false
	exp := append([]expected(nil), want...)
	mu.Unlock()
	if len(exp) < 6 {
		t.Fatalf("only %d outputs during the outage: %+v", len(exp), exp)
	}
	if l.Agents["PUMP-0002"].Outbox() == 0 {
		t.Fatal("PUMP-0002 buffered nothing while offline")
	}

	if err := rb.Start(ctx); err != nil {
		t.Fatalf("restart broker: %v", err)
	}
	keys := func(rs []pumpserver.Received) map[string][]pumpserver.Received {
		m := map[string][]pumpserver.Received{}
		for _, r := range rs {
			k := ""
			if r.Event != nil {
				k = r.Event.EventID
			} else {
				k = r.Alarm.AlarmID + "/" + r.Alarm.Phase
			}
			m[k] = append(m[k], r)
		}
		return m
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	err = l.Server.Wait(wctx, func(v pumpserver.View) bool {
		got := keys(v.Received())
		for _, e := range exp {
			if len(got[e.key]) == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		got := keys(l.Server.Received())
		var missing []string
		for _, e := range exp {
			if len(got[e.key]) == 0 {
				missing = append(missing, e.key)
			}
		}
		t.Fatalf("outage outputs did not all reach the pump server: %v; missing %v; outboxes %d/%d", err, missing,
			l.Agents["PUMP-0001"].Outbox(), l.Agents["PUMP-0002"].Outbox())
	}
	got := keys(l.Server.Received())
	for _, e := range exp {
		rs := got[e.key]
		if len(rs) != 1 {
			t.Errorf("%s reached the server %d times, want exactly once", e.key, len(rs))
			continue
		}
		if !rs[0].TS.Equal(e.at) {
			t.Errorf("%s carries ts %s, want the original %s", e.key, rs[0].TS, e.at)
		}
		if !rs[0].ReceivedAt.After(e.at) {
			t.Errorf("%s received at %s, not after its original time %s", e.key, rs[0].ReceivedAt, e.at)
		}
	}
	t.Logf("%s: %d events and alarms raised offline, each received once with its original time (server dropped %d duplicate deliveries)",
		kind, len(exp), l.Server.Stats().Duplicates)
}

func mustDo(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond (state that changes on lab timers has no event to
// await) until the context ends.
func waitFor(t *testing.T, ctx context.Context, cond func() bool, what string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal(fmt.Errorf("waiting for %s: %w", what, ctx.Err()))
		}
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("PUMPLAB_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
