package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nosuch"}, 2, `unknown command "nosuch"`},
		{[]string{"up", "--bogus"}, 1, "flag provided but not defined: -bogus"},
		{[]string{"up", "extra"}, 1, `unexpected argument "extra"`},
		{[]string{"serve", "pharmacy"}, 1, "roles available in this build: fleet"},
		{[]string{"serve", "fleet"}, 1, "--broker is required"},
		{[]string{"run", "--lab", "nowhere"}, 1, `no provider "nowhere"`},
		{[]string{"up", "--broker", "tcp://192.0.2.1:1883"}, 1, "only uses loopback brokers"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String()+out.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d and %q", tc.args, code, errb.String()+out.String(), tc.code, tc.want)
		}
	}
}

// TestRunWritesReports runs the suite from the binary's own entry point, as
// make run does, and checks the reports it writes.
func TestRunWritesReports(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"run", "--out", dir, "--pumps", "5", "--label-filter", "CTL-01"}, &out, &errb); code != 0 {
		t.Fatalf("pumplab run exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	runs, err := os.ReadDir(dir)
	if err != nil || len(runs) != 1 {
		t.Fatalf("run directories %v %v", runs, err)
	}
	for _, f := range []string{"summary.md", "junit.xml", "ginkgo-report.json"} {
		b, err := os.ReadFile(filepath.Join(dir, runs[0].Name(), f))
		if err != nil || !strings.Contains(string(b), "CTL-01") {
			t.Errorf("%s: %v (CTL-01 not in it)", f, err)
		}
	}
	if !strings.Contains(out.String(), "CTL-01    passed") {
		t.Errorf("summary table missing:\n%s", out.String())
	}
}

func TestScenariosCommandListsCTL01(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"scenarios"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "CTL-01") || !strings.Contains(out.String(), "control") || !strings.Contains(out.String(), "AU,US") {
		t.Fatalf("scenarios output:\n%s", out.String())
	}
}
