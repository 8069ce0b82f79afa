package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pump"
)

func init() {
	register("serve", "run one role of the hospital: serve fleet --pumps N --broker URL", cmdServe)
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "fleet" {
		fmt.Fprintln(stderr, "usage: pumplab serve fleet [flags]   (roles available in this build: fleet)")
		return errUsage
	}
	fs := newFlags("serve fleet", stderr)
	n := fs.Int("pumps", 100, "pumps in the fleet")
	first := fs.Int("first", 1, "number of the first pump (PUMP-0001 is 1)")
	brokerURL := fs.String("broker", "", "MQTT broker URL (required)")
	interval := fs.Duration("status-interval", 10*time.Second, "status period (lab time)")
	speed := fs.Float64("speed", 1, "lab seconds per wall second")
	careArea := fs.String("care-area", "Adult ICU", "care area")
	ramp := fs.Duration("ramp", 0, "spread the connections over this wall duration")
	verbose := fs.Bool("v", false, "log to stderr")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *brokerURL == "" {
		fmt.Fprintln(stderr, "pumplab serve fleet: --broker is required")
		return errUsage
	}
	log := discardLogger()
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	f, err := startFleet(ctx, fleetConfig{N: *n, First: *first, Broker: *brokerURL, Interval: *interval,
		Clock: clock.NewScaled(time.Time{}, *speed), CareArea: *careArea, Ramp: *ramp, Log: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fleet: %d pumps connected to %s\n", *n, *brokerURL)
	if os.Getenv("PUMPLAB_READY_FD") != "" {
		fmt.Fprintln(stdout, "READY")
	}
	<-ctx.Done()
	return f.Close()
}

type fleetConfig struct {
	N, First int
	Broker   string
	Interval time.Duration
	Clock    clock.Clock
	CareArea string
	Ramp     time.Duration
	Log      *slog.Logger
}

type fleet struct{ agents []*pump.Agent }

// startFleet starts N pump agents against a broker; it returns once all are
// connected.
func startFleet(ctx context.Context, c fleetConfig) (*fleet, error) {
	lib := druglib.Default()
	f := &fleet{agents: make([]*pump.Agent, c.N)}
	for i := range c.N {
		id := lab.PumpID(c.First + i)
		p := pump.New(pump.Config{ID: id, Clock: c.Clock, Library: lib, CareArea: c.CareArea, Seed: uint64(c.First + i), Logger: c.Log})
		f.agents[i] = pump.NewAgent(p, pump.AgentConfig{BrokerURL: c.Broker, StatusInterval: c.Interval, Logger: c.Log,
			KeepAlive: 60 * time.Second, ConnectTimeout: 30 * time.Second})
	}
	var wg sync.WaitGroup
	errs := make([]error, c.N)
	sem := make(chan struct{}, 32)
	var pause time.Duration
	if c.Ramp > 0 && c.N > 0 {
		pause = c.Ramp / time.Duration(c.N)
	}
	for i, a := range f.agents {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = a.Start(ctx)
		}()
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *fleet) Close() error {
	var wg sync.WaitGroup
	for _, a := range f.agents {
		if a == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Close() }()
	}
	wg.Wait()
	return nil
}

// discardLogger is a logger that writes nothing.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
