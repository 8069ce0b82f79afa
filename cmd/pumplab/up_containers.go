package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/containers"
	"github.com/pumplab/pumplab/lab/posture"
)

// containerFlags are the flags of `up` (and `compose`) for the container
// lab: the posture decides flat or segmented networks.
type containerFlags struct {
	posture   string
	controls  multiFlag
	keepImage bool
	binary    string
}

func (c *containerFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.posture, "posture", "legacy", "security posture: legacy, nccoe or a posture YAML file (in the container lab, segmentation on means zones as separate networks)")
	fs.Var(&c.controls, "control", "switch one control, NAME=on|off (e.g. segmentation=on), repeatable")
	fs.BoolVar(&c.keepImage, "keep-image", false, "keep the lab's image after stopping (--lab containers)")
	fs.StringVar(&c.binary, "binary", "", "static pumplab binary for the image (--lab containers); default: this one if static, else built with the Go toolchain")
}

func (c *containerFlags) resolve() (*posture.Posture, error) {
	pst, err := posture.Resolve(c.posture)
	if err != nil {
		return nil, fmt.Errorf("--posture: %w", err)
	}
	if len(c.controls) > 0 {
		if pst, err = pst.Apply(c.controls); err != nil {
			return nil, fmt.Errorf("--control: %w", err)
		}
	}
	return pst, nil
}

// upContainers is `pumplab up --lab containers`.
func upContainers(ctx context.Context, t lab.Topology, cf *containerFlags, log *slog.Logger, stdout io.Writer) error {
	pst, err := cf.resolve()
	if err != nil {
		return err
	}
	t.Posture = pst
	start := time.Now()
	l, err := containers.Start(ctx, t, containers.Provider{Logger: log, KeepImage: cf.keepImage, Binary: cf.binary})
	if err != nil {
		return err
	}
	defer l.Close()
	topo, tm, img := l.Topology(), l.Timing(), l.Image()
	net := "one flat network"
	if l.Segmented() {
		net = "segmented zones joined by application gateways"
	}
	fmt.Fprintf(stdout, "pumplab: container hospital %s up in %v: %d pumps, posture %s (%s), seed %d, clock x%g. Not for clinical use.\n",
		l.RunID(), time.Since(start).Round(time.Millisecond), topo.Pumps, pst.Name, net, topo.Seed, topo.Speed)
	fmt.Fprintf(stdout, "image %s (%.1f MB, %s in %v); networks %v, services %v, gateways %v, fleet %v, online %v\n\n",
		img.Tag, float64(img.Size)/1e6, map[bool]string{true: "built", false: "reused"}[img.Built], tm.Image.Round(time.Millisecond),
		tm.Networks.Round(time.Millisecond), tm.Services.Round(time.Millisecond), tm.Gateways.Round(time.Millisecond),
		tm.Fleet.Round(time.Millisecond), tm.Online.Round(time.Millisecond))
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tPROTOCOL\tADDRESS\tPURPOSE")
	for _, e := range l.Endpoints() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, e.Protocol, e.Address, e.Purpose)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\nevery object carries the label %s=%s; Ctrl-C removes them.\n", containers.LabelLab, l.RunID())
	<-ctx.Done()
	fmt.Fprintln(stdout, "pumplab: stopping, removing containers and networks")
	return l.Close()
}
