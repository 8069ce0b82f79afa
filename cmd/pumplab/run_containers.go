package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/containers"
	"github.com/pumplab/pumplab/lab/inproc"
)

// labEnforces reports whether the named lab enforces posture control c:
// the container lab enforces containers.Implemented, the in-process lab
// what inproc.Enforces says.
func labEnforces(labName, c string, t lab.Topology) bool {
	if labName == "containers" {
		return slices.Contains(containers.Implemented, c)
	}
	return inproc.Enforces(c, t)
}

// containersRun prepares `pumplab run --lab containers`: one image for
// every spec's lab, longer lab starts; the returned cleanup removes the
// run's containers, networks and image, also after a failed or interrupted
// run. Other labs need nothing.
func containersRun(labName string, stderr io.Writer) func() {
	if labName != "containers" {
		return func() {}
	}
	os.Setenv("PUMPLAB_KEEP_IMAGE", "1")
	harness.DefaultTimeouts.LabStart = max(harness.DefaultTimeouts.LabStart, 3*time.Minute)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := containers.Cleanup(ctx); err != nil {
			fmt.Fprintf(stderr, "pumplab run: container lab cleanup: %v\n", err)
		}
	}
}
