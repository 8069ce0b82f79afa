package containers

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestSweepRemovesOnlyOrphans creates two labelled networks on the real
// engine: one owned by a process that has exited (a crashed run) and one
// owned by this process. Sweep removes the first and keeps the second;
// Cleanup then removes this process's.
func TestSweepRemovesOnlyOrphans(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Available(ctx); err != nil {
		if os.Getenv("PUMPLAB_REQUIRE_DOCKER") != "" {
			t.Fatalf("PUMPLAB_REQUIRE_DOCKER is set but the Docker engine is not usable: %v", err)
		}
		t.Skipf("Docker engine not usable (%v); .ci/run requires it", err)
	}
	c, err := dockerClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A pid that is certainly gone: a child that has exited and was reaped.
	child := exec.Command("true")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	dead := ownerLabels("sweeptest-dead")
	dead[LabelPID] = strconv.Itoa(child.Process.Pid)
	mine := ownerLabels("sweeptest-mine")
	for name, labels := range map[string]map[string]string{"pumplab-sweeptest-dead": dead, "pumplab-sweeptest-mine": mine} {
		if _, err := c.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Internal: true, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { sweepRun(context.Background(), "sweeptest-mine") })

	s, err := Sweep(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Networks < 1 {
		t.Fatalf("sweep removed %d networks, want the orphan", s.Networks)
	}
	left, err := Leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != "network pumplab-sweeptest-mine (sweeptest-mine)" {
		t.Fatalf("after the sweep: %v, want only this process's network", left)
	}
	if err := Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if left, _ := Leftovers(ctx); len(left) != 0 {
		t.Fatalf("after Cleanup: %v", left)
	}
}
