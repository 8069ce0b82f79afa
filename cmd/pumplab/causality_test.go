package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pumplab/pumplab/harness/report"
)

// TestEveryControlIsCausal is issue 4's causality check, for every attack
// scenario the in-process lab hosts: under nccoe each attack step is Blocked
// by a control with no harm; switching off only the step's expected control
// (nccoe+CONTROL=off) lets it through with harm. The expected control of a
// step is the one its ground truth names.
func TestEveryControlIsCausal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs every attack scenario twice")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pumplab")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(name, filter string, extra ...string) (report.Scorecard, string) {
		out := filepath.Join(dir, name)
		args := append([]string{"run", "--out", out, "--label-filter", filter, "--posture", "nccoe",
			"--alerts-syslog-udp", "-", "--alerts-syslog-tcp", "-"}, extra...)
		b, err := exec.Command(bin, args...).CombinedOutput()
		ents, _ := os.ReadDir(out)
		if len(ents) != 1 {
			t.Fatalf("pumplab %v: %v, %d run directories\n%s", args, err, len(ents), b)
		}
		rd := filepath.Join(out, ents[0].Name())
		sc, lerr := loadScorecard(rd)
		if lerr != nil {
			t.Fatalf("pumplab %v: %v\n%s", args, lerr, b)
		}
		if err != nil {
			t.Errorf("pumplab %v: %v (suite failures are in %s)\n%s", args, err, rd, tail(string(b), 3000))
		}
		return sc, rd
	}

	on, onDir := run("on", "kind:attack")
	controls, err := stepControls(onDir)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, s := range on.Scenarios {
		states[s.ID] = s.State
	}
	byControl := map[string][]string{} // control -> scenario ids
	checked := 0
	for _, v := range on.Steps {
		c := controls[v.StepID]
		if c == "" || states[v.ScenarioID] == report.StateNotApplicable {
			continue
		}
		checked++
		if string(v.Protection) != "blocked" || v.Harm.Occurred || v.Effect {
			t.Errorf("nccoe: %s protection %s, effect %v, harm %v; want blocked by %s, no harm", v.StepID, v.Protection, v.Effect, v.Harm.Occurred, c)
		}
		ids := byControl[c]
		if len(ids) == 0 || ids[len(ids)-1] != v.ScenarioID {
			byControl[c] = append(ids, v.ScenarioID)
		}
	}
	if checked < 15 {
		t.Fatalf("only %d attack steps ran under nccoe; the in-process lab hosts more", checked)
	}
	names := make([]string, 0, len(byControl))
	for c := range byControl {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		off, _ := run("off-"+c, strings.Join(byControl[c], " || "), "--control", c+"=off")
		if want := "nccoe+" + c + "=off"; off.Run.Posture.Name != want {
			t.Errorf("posture %q, want %q", off.Run.Posture.Name, want)
		}
		for _, v := range off.Steps {
			if controls[v.StepID] != c {
				continue
			}
			if string(v.Protection) == "blocked" || !v.Harm.Occurred {
				t.Errorf("nccoe+%s=off: %s protection %s, harm %v; want not blocked, harm", c, v.StepID, v.Protection, v.Harm.Occurred)
			} else {
				t.Logf("%s: blocked by %s under nccoe; harm %.1f with it off", v.StepID, c, v.Harm.Weighted)
			}
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
