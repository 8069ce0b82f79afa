package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/lab/containers"
)

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
