package inproc

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/broker"
)

// TestExternalBrokerURL runs the fleet against a broker the lab does not
// own, given by URL (here a mosquitto started by the test), as
// `pumplab up --broker URL` does.
func TestExternalBrokerURL(t *testing.T) {
	if _, err := broker.FindMosquitto(); errors.Is(err, broker.ErrNoMosquitto) {
		if os.Getenv("PUMPLAB_REQUIRE_MOSQUITTO") != "" {
			t.Fatal("PUMPLAB_REQUIRE_MOSQUITTO is set but mosquitto is not installed")
		}
		t.Skip("mosquitto not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := &broker.Mosquitto{Dir: t.TempDir()}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := Start(ctx, lab.Topology{Pumps: 4, Broker: m.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ps, err := l.PumpServer().Pumps(ctx)
	if err != nil || len(ps) != 4 {
		t.Fatalf("pumps %v, %v", ps, err)
	}
	for _, e := range l.Endpoints() {
		if e.Name == "broker" && e.Address != m.URL() {
			t.Fatalf("broker endpoint %s, want %s", e.Address, m.URL())
		}
	}
}

func TestRefusesNonLoopbackBroker(t *testing.T) {
	_, err := Start(context.Background(), lab.Topology{Pumps: 1, Broker: "tcp://192.0.2.10:1883"}, nil)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("want a loopback refusal, got %v", err)
	}
	_, err = Start(context.Background(), lab.Topology{Pumps: 1, Broker: "carrier-pigeon"}, nil)
	if err == nil || !strings.Contains(err.Error(), "want embedded, mosquitto or an MQTT URL") {
		t.Fatalf("want a clear broker error, got %v", err)
	}
}
