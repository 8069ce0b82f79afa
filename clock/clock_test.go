package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFakeFiresTimersInOrderAtTheirTime(t *testing.T) {
	c := NewFake(time.Time{})
	start := c.Now()
	var got []time.Duration
	c.AfterFunc(3*time.Second, func() { got = append(got, c.Now().Sub(start)) })
	c.AfterFunc(1*time.Second, func() {
		got = append(got, c.Now().Sub(start))
		// A timer armed inside a callback fires in the same Advance.
		c.AfterFunc(time.Second, func() { got = append(got, c.Now().Sub(start)) })
	})
	stopped := c.AfterFunc(2*time.Second, func() { t.Error("stopped timer fired") })
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	c.Advance(5 * time.Second)
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
	if len(got) != len(want) {
		t.Fatalf("fired at %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fired at %v, want %v", got, want)
		}
	}
	if c.Now().Sub(start) != 5*time.Second || c.Pending() != 0 {
		t.Fatalf("now %v pending %d", c.Now().Sub(start), c.Pending())
	}
}

func TestFakeTicker(t *testing.T) {
	c := NewFake(time.Time{})
	tk := c.NewTicker(10 * time.Second)
	n := 0
	for range 3 {
		c.Advance(10 * time.Second)
		select {
		case <-tk.C():
			n++
		default:
		}
	}
	tk.Stop()
	c.Advance(time.Minute)
	select {
	case <-tk.C():
		t.Fatal("tick after Stop")
	default:
	}
	if n != 3 {
		t.Fatalf("%d ticks, want 3", n)
	}
}

func TestScaledRunsFasterThanWallTime(t *testing.T) {
	epoch := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	c := NewScaled(epoch, 600)
	if c.Speed() != 600 {
		t.Fatal(c.Speed())
	}
	done := make(chan time.Time, 1)
	wall := time.Now()
	c.AfterFunc(30*time.Second, func() { done <- c.Now() }) // 50 ms of wall time
	at := <-done
	if el := time.Since(wall); el > 5*time.Second {
		t.Fatalf("30 lab seconds at x600 took %v of wall time", el)
	}
	if at.Sub(epoch) < 30*time.Second {
		t.Fatalf("timer fired at lab %v, before its 30 s", at.Sub(epoch))
	}
}

func TestSleepHonoursContext(t *testing.T) {
	c := NewFake(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, c, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- Sleep(context.Background(), c, time.Minute) }()
	for c.Pending() == 0 {
		time.Sleep(time.Millisecond) // wait for the goroutine to arm its timer
	}
	c.Advance(time.Minute)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
