package containers_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/containers"
	"github.com/pumplab/pumplab/lab/posture"
	_ "github.com/pumplab/pumplab/scenarios"
)

// postureEnv selects the posture of one suite run; TestSegmentedZones
// re-runs this test binary with it, because Ginkgo runs one suite per
// process.
const postureEnv = "PUMPLAB_CONTAINER_POSTURE"

// requireDocker skips without a usable engine, or fails when
// PUMPLAB_REQUIRE_DOCKER is set.
func requireDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := containers.Available(ctx); err != nil {
		if os.Getenv("PUMPLAB_REQUIRE_DOCKER") != "" {
			t.Fatalf("PUMPLAB_REQUIRE_DOCKER is set but the Docker engine is not usable: %v", err)
		}
		t.Skipf("Docker engine not usable (%v); the container lab tests need one (.ci/run requires it)", err)
	}
}

func TestMain(m *testing.M) {
	// One image for every lab of this process, removed at the end.
	os.Setenv("PUMPLAB_KEEP_IMAGE", "1")
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if err := containers.Cleanup(ctx); err != nil && !errors.Is(err, containers.ErrNoDocker) {
		fmt.Fprintln(os.Stderr, "container lab cleanup:", err)
		if code == 0 {
			code = 1
		}
	}
	cancel()
	os.Exit(code)
}

// TestContainerSuite runs the suite on the container lab under the posture
// of postureEnv (default legacy: one flat network).
func TestContainerSuite(t *testing.T) {
	requireDocker(t)
	name := os.Getenv(postureEnv)
	if name == "" {
		name = "legacy"
	}
	pst, err := posture.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	filter := "ATK-04 || ATK-11 || ATK-31"
	if pst.On(posture.Segmentation) {
		filter = "CTL-01 || " + filter
	}
	RegisterFailHandler(Fail)
	harness.DefaultTimeouts.LabStart = 3 * time.Minute
	harness.Use("containers", lab.Topology{Pumps: 100, Speed: 120, StatusInterval: 60 * time.Second, Posture: pst})
	suite, reporter := GinkgoConfiguration()
	suite.LabelFilter = filter
	RunSpecs(t, "pumplab scenarios on the container lab ("+name+")", suite, reporter)
}

// TestSegmentedZones runs the suite again, in a child process, with the
// nccoe posture: segmented zones joined by the application gateways.
func TestSegmentedZones(t *testing.T) {
	requireDocker(t)
	if os.Getenv(postureEnv) != "" {
		t.Skip("child run")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestContainerSuite$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), postureEnv+"=nccoe")
	out, err := cmd.CombinedOutput()
	t.Logf("segmented run:\n%s", out)
	if err != nil {
		t.Fatalf("segmented suite failed: %v", err)
	}
	if !strings.Contains(string(out), "Ran 4 of") {
		t.Fatalf("the segmented run did not run the 4 specs (CTL-01, ATK-04, ATK-11, ATK-31)")
	}
}

// TestNothingLeftBehind runs last (go test runs tests in source order): no
// container or network of this process's labs may remain.
func TestNothingLeftBehind(t *testing.T) {
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	left, err := containers.Leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("left behind with label %s: %v", containers.LabelLab, left)
	}
}
