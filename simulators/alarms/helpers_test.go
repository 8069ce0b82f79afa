package alarms

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// testTimeout bounds every wait in the tests (wall time); waits end on an
// event long before it.
const testTimeout = 10 * time.Second

func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// fakeReporter is an alert reporter (pump server side) receiving PCD-05.
type fakeReporter struct {
	srv *hl7.Server
	mu  sync.Mutex
	got []hl7.AlertStatus
	ch  chan struct{}
}

func startReporter(t *testing.T, clk clock.Clock) *fakeReporter {
	t.Helper()
	r := &fakeReporter{ch: make(chan struct{})}
	r.srv = hl7.New(hl7.Config{Clock: clk, Handler: func(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
		s, err := hl7.ParseAlertStatus(m)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.got = append(r.got, s)
		close(r.ch)
		r.ch = make(chan struct{})
		r.mu.Unlock()
		return nil, nil
	}})
	if err := r.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

// wait returns the first PCD-05 with the given alert and status.
func (r *fakeReporter) wait(t *testing.T, alertID, status string) hl7.AlertStatus {
	t.Helper()
	ctx := waitCtx(t)
	for {
		r.mu.Lock()
		for _, s := range r.got {
			if s.AlertID == alertID && s.Status == status {
				r.mu.Unlock()
				return s
			}
		}
		ch := r.ch
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no PCD-05 %s for %s; got %+v", status, alertID, r.all())
		}
	}
}

func (r *fakeReporter) all() []hl7.AlertStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hl7.AlertStatus(nil), r.got...)
}

var onsetBase = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)

// pcd04 returns an occlusion alert from PUMP-0007 (REFERENCE.md §4.8 d).
func pcd04(id, phase, state string, onset time.Time) hl7.Alert {
	return hl7.Alert{
		Header: hl7.Header{
			SendingApp:      hl7.ParseHD("PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64"),
			SendingFacility: hl7.HD{Namespace: "HOSP_BIOMED"},
			ReceivingApp:    hl7.ParseHD(DefaultApp), ReceivingFacility: hl7.HD{Namespace: DefaultFacility},
			Time: onset, ControlID: "AR-" + id + "-" + phase, AcceptAck: "AL", AppAck: "NE",
		},
		Patient: hl7.Patient{MRN: "MRN4455", Authority: "HOSP", Family: "Testpatient", Given: "Alex",
			Location: hl7.Location{Unit: "4W ICU", Room: "12", Bed: "A"}},
		AlertID: id, AlertApp: "PUMPSRV_SIM", OnsetTime: onset,
		PumpID: "PUMP-0007", PumpEUI: "8899AABBCCDD0007",
		Event: hl7.MDCEvtLineOccl, EventText: "Downstream occlusion",
		Phase: phase, State: state, Inactivation: hl7.InactEnabled, Priority: hl7.PriorityHigh, Type: hl7.AlertTechnical,
	}
}

// testLab is a manager with phones, a fake clock and a fake reporter.
type testLab struct {
	clk      *clock.Fake
	m        *Manager
	phones   map[string]*Communicator
	reporter *fakeReporter
}

// newLab starts phones with the given ids, a reporter and a manager whose
// cfg gets the fake clock, the reporter address and the phones registered.
func newLab(t *testing.T, cfg Config, phoneIDs ...string) *testLab {
	t.Helper()
	l := &testLab{clk: clock.NewFake(onsetBase.Add(5 * time.Second)), phones: map[string]*Communicator{}}
	l.reporter = startReporter(t, l.clk)
	cfg.Clock = l.clk
	if cfg.ReporterAddr == "" {
		cfg.ReporterAddr = l.reporter.srv.Addr()
	}
	l.m = New(cfg)
	if err := l.m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.m.Close(); err != nil {
			t.Errorf("close manager: %v", err)
		}
	})
	for _, id := range phoneIDs {
		p := NewCommunicator(CommunicatorConfig{ID: id, Clock: l.clk})
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		if err := l.m.RegisterCommunicator(id, p.URL()); err != nil {
			t.Fatal(err)
		}
		l.phones[id] = p
	}
	return l
}

// send sends one PCD-04 and returns the acknowledgement.
func (l *testLab) send(t *testing.T, a hl7.Alert) hl7.Ack {
	t.Helper()
	reply, err := hl7.SendOnce(waitCtx(t), l.m.MLLPAddr(), nil, hl7.BuildAlert(a))
	if err != nil {
		t.Fatalf("send PCD-04: %v", err)
	}
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		t.Fatalf("parse ack: %v", err)
	}
	return ack
}

func (l *testLab) start(t *testing.T, id string) {
	t.Helper()
	if ack := l.send(t, pcd04(id, hl7.PhaseStart, hl7.StateActive, onsetBase)); !ack.OK() {
		t.Fatalf("start %s: ack %s %v", id, ack.Code, ack.Err())
	}
}

func (l *testLab) waitAlert(t *testing.T, what string, cond func(AlertRecord) bool) AlertRecord {
	t.Helper()
	r, err := l.m.WaitAlert(waitCtx(t), cond)
	if err != nil {
		t.Fatalf("wait for %s: %v; alerts %+v", what, err, l.m.Alerts())
	}
	return r
}

func waitPhone(t *testing.T, p *Communicator, what string, cond func(Received) bool) Received {
	t.Helper()
	r, err := p.Wait(waitCtx(t), cond)
	if err != nil {
		t.Fatalf("phone %s: wait for %s: %v; has %+v", p.ID(), what, err, p.Messages())
	}
	return r
}

func mustAlert(t *testing.T, m *Manager, id string) AlertRecord {
	t.Helper()
	r, ok := m.Alert(id)
	if !ok {
		t.Fatalf("no record of %s", id)
	}
	return r
}

func alertIs(id string) func(Received) bool {
	return func(r Received) bool { return r.AlertID == id && r.Count > 0 }
}

func describe(r AlertRecord) string {
	return fmt.Sprintf("%s status=%s level=%d esc=%d attempts=%d failures=%d", r.ID, r.Status, r.Level, r.Escalations, r.Attempts, r.Failures)
}
