package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/inproc"
)

func init() {
	register("up", "start the hospital, print every endpoint, stop on Ctrl-C", cmdUp)
}

// topologyFlags adds the flags shared by up and run.
func topologyFlags(fs interface {
	IntVar(*int, string, int, string)
	Int64Var(*int64, string, int64, string)
	Float64Var(*float64, string, float64, string)
	StringVar(*string, string, string, string)
}, t *lab.Topology, speed float64) {
	fs.IntVar(&t.Pumps, "pumps", 20, "pumps in the fleet")
	fs.Int64Var(&t.Seed, "seed", 1, "master seed of every random choice")
	fs.Float64Var(&t.Speed, "speed", speed, "lab seconds per wall second")
	fs.StringVar(&t.Broker, "broker", "", "MQTT broker: empty (embedded), mosquitto, or a loopback URL tcp://127.0.0.1:PORT")
	fs.StringVar(&t.CareArea, "care-area", "Adult ICU", "drug-library care area of the fleet")
}

func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("up", stderr)
	var t lab.Topology
	topologyFlags(fs, &t, 60)
	provider := fs.String("lab", "inproc", "lab provider")
	verbose := fs.Bool("v", false, "log every component to stderr")
	var cf containerFlags
	cf.add(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *provider != "inproc" && *provider != "containers" {
		return fmt.Errorf("--lab %s: want inproc or containers", *provider)
	}
	var log *slog.Logger
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if *provider == "containers" {
		return upContainers(ctx, t, &cf, log, stdout)
	}
	pst, err := cf.resolve()
	if err != nil {
		return err
	}
	t.Posture = pst
	start := time.Now()
	l, err := inproc.Start(ctx, t, log)
	if err != nil {
		return err
	}
	defer l.Close()
	topo := l.Topology()
	fmt.Fprintf(stdout, "pumplab: hospital up in %v: %d pumps, seed %d, clock x%g (lab time %s). Not for clinical use.\n\n",
		time.Since(start).Round(time.Millisecond), topo.Pumps, topo.Seed, topo.Speed, l.Clock().Now().Format(time.RFC3339))
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tPROTOCOL\tADDRESS\tPURPOSE")
	for _, e := range l.Endpoints() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, e.Protocol, e.Address, e.Purpose)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\npumps: %s .. %s; status on pumplab/v1/pumps/+/status\nCtrl-C to stop.\n", lab.PumpID(1), lab.PumpID(topo.Pumps))
	<-ctx.Done()
	fmt.Fprintln(stdout, "pumplab: stopping")
	return l.Close()
}
