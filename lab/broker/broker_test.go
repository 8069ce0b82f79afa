package broker

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// roundTrip connects a paho client, subscribes, publishes and waits for the
// message to come back through the broker.
func roundTrip(t *testing.T, url, topic string) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID("t-" + topic).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	defer c.Disconnect(100)
	got := make(chan string, 1)
	if tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := c.Publish(topic, 1, false, "hello"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case s := <-got:
		if s != "hello" {
			t.Fatalf("got %q, want hello", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message did not come back through the broker")
	}
}

func TestEmbeddedRestartKeepsAddress(t *testing.T) {
	ctx := context.Background()
	b := &Embedded{}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	url := b.URL()
	roundTrip(t, url, "a/b")
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer b.Close()
	if b.URL() != url {
		t.Fatalf("restart moved the broker from %s to %s", url, b.URL())
	}
	roundTrip(t, url, "a/c")
}

func TestMosquitto(t *testing.T) {
	if _, err := FindMosquitto(); errors.Is(err, ErrNoMosquitto) {
		if os.Getenv("PUMPLAB_REQUIRE_MOSQUITTO") != "" {
			t.Fatal("PUMPLAB_REQUIRE_MOSQUITTO is set but mosquitto is not installed")
		}
		t.Skip("mosquitto not installed (apt-get install mosquitto); .ci/run installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := &Mosquitto{Dir: t.TempDir()}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	roundTrip(t, m.URL(), "x/y")
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	roundTrip(t, m.URL(), "x/z")
}
