package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/posture"
)

func TestComposeProjectSegmented(t *testing.T) {
	pst, err := posture.Builtin("nccoe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := composeProject(lab.Topology{Pumps: 30, Posture: pst}.WithDefaults(), netip.MustParsePrefix("10.77.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Networks) != 6 {
		t.Fatalf("%d networks, want one per zone", len(f.Networks))
	}
	for n, nw := range f.Networks {
		if !nw.Internal {
			t.Errorf("network %s is not internal", n)
		}
	}
	// Only the gateways span zones; the fleet sits in the device zone alone.
	for name, s := range f.Services {
		want := 1
		if strings.HasPrefix(name, "gw-") {
			want = 2
		}
		if len(s.Networks) != want {
			t.Errorf("%s is on %d networks, want %d", name, len(s.Networks), want)
		}
	}
	if _, ok := f.Services["fleet"].Networks["device"]; !ok {
		t.Error("the fleet is not in the device zone")
	}
	// gw-mllp relays PCD-03 to the pump server's address on the servers network.
	ps := f.Services["pumpserver"].Networks["servers"].IPv4
	cmd := strings.Join(f.Services["gw-mllp"].Command, " ")
	if !strings.Contains(cmd, "ioc=:2577>"+ps+":2577/mllp") {
		t.Errorf("gw-mllp routes %q do not reach the pump server at %s", cmd, ps)
	}
	if a := f.Services["gw-mllp"].Networks["clinical"].Aliases; !slices.Contains(a, "pumpserver") {
		t.Errorf("gw-mllp is not 'pumpserver' in the clinical zone: %v", a)
	}
}

func TestComposeWritesAProjectDockerComposeAccepts(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	err := cmdCompose(context.Background(), []string{"--out", dir, "--pumps", "5", "--no-binary", "--posture", "legacy"}, &out, &errb)
	if err != nil {
		t.Fatalf("compose: %v %s", err, errb.String())
	}
	for _, name := range []string{"docker-compose.yml", "Dockerfile"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmdCompose(context.Background(), []string{"--out", dir, "--subnet", "10.0.0.0/24"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "--subnet") {
		t.Fatalf("a /24 block: %v", err)
	}
	dc, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose not installed: the file's structure is checked by TestComposeProjectSegmented")
	}
	cmd := exec.Command(dc, "-f", filepath.Join(dir, "docker-compose.yml"), "config", "-q")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, b)
	}
}
