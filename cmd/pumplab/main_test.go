package main

import (
	"bytes"
	"encoding/json"
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
// make run does, with two built-in calibration tools, and checks the reports
// it writes and the calibration verdicts (design/SCORING.md): the oracle
// detects every attack step at technique level in time without false
// positives, the late oracle is Delayed on every step.
func TestRunWritesReports(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"run", "--out", dir, "--pumps", "5", "--tool", "oracle", "--tool", "late"}, &out, &errb); code != 0 {
		t.Fatalf("pumplab run exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	runs, err := os.ReadDir(dir)
	if err != nil || len(runs) != 1 {
		t.Fatalf("run directories %v %v", runs, err)
	}
	rd := filepath.Join(dir, runs[0].Name())
	for _, f := range []string{"summary.md", "junit.xml", "ginkgo-report.json", "scorecard.json", "report.html", "navigator-layer.json"} {
		b, err := os.ReadFile(filepath.Join(rd, f))
		if err != nil || !strings.Contains(string(b), "ATK-10") {
			t.Errorf("%s: %v (ATK-10 not in it)", f, err)
		}
	}
	for _, f := range []string{"ground-truth.jsonl", "alerts.jsonl"} {
		if b, err := os.ReadFile(filepath.Join(rd, f)); err != nil || len(b) == 0 {
			t.Errorf("%s: %v, %d bytes", f, err, len(b))
		}
	}
	var sc struct {
		Steps []struct {
			StepID string `json:"step_id"`
			Tools  []struct {
				Tool     string `json:"tool"`
				Category string `json:"category"`
				Delayed  bool   `json:"delayed"`
			} `json:"tools"`
		} `json:"steps"`
		Aggregates []struct {
			Tool              string  `json:"tool"`
			TechniqueCoverage float64 `json:"technique_coverage"`
			FalsePositives    int     `json:"false_positives"`
			Delayed           int     `json:"delayed"`
			Steps             int     `json:"steps"`
		} `json:"aggregates"`
	}
	b, err := os.ReadFile(filepath.Join(rd, "scorecard.json"))
	if err != nil || json.Unmarshal(b, &sc) != nil {
		t.Fatalf("scorecard.json: %v", err)
	}
	if len(sc.Steps) < 2 {
		t.Fatalf("%d attack steps scored, want ATK-10 and ATK-25", len(sc.Steps))
	}
	for _, a := range sc.Aggregates {
		switch a.Tool {
		case "oracle":
			if a.TechniqueCoverage != 1 || a.FalsePositives != 0 || a.Delayed != 0 {
				t.Errorf("oracle: %+v, want technique coverage 1, no FP, none delayed", a)
			}
		case "late":
			if a.Delayed != a.Steps || a.FalsePositives != 0 {
				t.Errorf("late oracle: %+v, want every step delayed", a)
			}
		}
	}
	for _, want := range []string{"CTL-01    passed", "ATK-10    passed", "ATK-25    passed", "oracle"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
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
