package attack

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/pumplab/pumplab/simulators/hl7"
)

// testCtx is the deadline of one test's waits.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startBroker starts an embedded mochi broker on 127.0.0.1:0 and returns
// its host:port.
func startBroker(t *testing.T) string {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return l.Address()
}

// hl7Sink is an hl7.Server that keeps every message it takes in.
type hl7Sink struct {
	srv    *hl7.Server
	mu     sync.Mutex
	raw    [][]byte
	msgs   []*hl7.Message
	notify chan struct{}
}

func startHL7(t *testing.T, handler hl7.Handler) *hl7Sink {
	t.Helper()
	s := &hl7Sink{notify: make(chan struct{}, 1)}
	s.srv = hl7.New(hl7.Config{App: "SINK", Facility: "LAB", Handler: func(ctx context.Context, m *hl7.Message, meta hl7.ConnMeta) (*hl7.Message, error) {
		s.mu.Lock()
		s.raw = append(s.raw, m.Bytes())
		s.msgs = append(s.msgs, m)
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
		if handler != nil {
			return handler(ctx, m, meta)
		}
		return nil, nil
	}})
	if err := s.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func (s *hl7Sink) messages() []*hl7.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*hl7.Message(nil), s.msgs...)
}

// waitN waits until the sink holds at least n messages.
func (s *hl7Sink) waitN(t *testing.T, ctx context.Context, n int) []*hl7.Message {
	t.Helper()
	for {
		if m := s.messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			t.Fatalf("hl7 sink: waited for %d messages, have %d", n, len(s.messages()))
		}
	}
}
