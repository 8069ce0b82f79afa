package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pumplab/pumplab/harness/score"
)

// TestSameSeedSameVerdictsAndCompare runs the attack scenarios twice with
// the same seed in fresh processes (Ginkgo runs one suite per process): the
// ground truth and the verdicts are the same, pumplab compare finds no
// regression between them, finds one in a deliberately regressed scorecard,
// and refuses a run that executed no scenario.
func TestSameSeedSameVerdictsAndCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the suite twice")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pumplab")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	runOnce := func(name string) string {
		out := filepath.Join(dir, name)
		cmd := exec.Command(bin, "run", "--out", out, "--seed", "42", "--pumps", "4", "--label-filter", "kind:attack", "--tool", "oracle", "--tool", "late")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pumplab run: %v\n%s", err, b)
		}
		ents, err := os.ReadDir(out)
		if err != nil || len(ents) != 1 {
			t.Fatalf("%s: %v %v", out, ents, err)
		}
		return filepath.Join(out, ents[0].Name())
	}
	a, b := runOnce("a"), runOnce("b")

	// Ground truth: the same steps, techniques, assets and criteria (times
	// and connection ids differ between runs).
	truth := func(d string) []string {
		f, err := os.Open(filepath.Join(d, "ground-truth.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var s score.Step
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				t.Fatal(err)
			}
			out = append(out, strings.Join([]string{s.ScenarioID, s.StepID, strings.Join(s.Techniques, ","), s.Tactic,
				strings.Join(s.Assets, ","), s.Criteria, s.Control}, "|"))
		}
		return out
	}
	ta, tb := truth(a), truth(b)
	if len(ta) < 2 || strings.Join(ta, "\n") != strings.Join(tb, "\n") {
		t.Fatalf("ground truth differs between two runs with seed 42:\n%v\n%v", ta, tb)
	}
	verdicts := func(d string) string {
		sc, err := loadScorecard(d)
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range sc.Steps {
			p := v.StepID + " " + string(v.Protection) + " " + string(v.Outcome)
			for _, td := range v.Tools {
				p += " " + td.Tool + ":" + string(td.Category) + "/" + string(td.Outcome)
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n")
	}
	if va, vb := verdicts(a), verdicts(b); va != vb {
		t.Fatalf("verdicts differ between two runs with seed 42:\n%s\n---\n%s", va, vb)
	}

	var out, errb bytes.Buffer
	if code := run([]string{"compare", a, b}, &out, &errb); code != 0 {
		t.Fatalf("compare of two identical-seed runs: exit %d\n%s%s", code, out.String(), errb.String())
	}

	// A regressed scorecard: the oracle misses ATK-25.
	raw, err := os.ReadFile(filepath.Join(b, "scorecard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, st := range m["steps"].([]any) {
		st := st.(map[string]any)
		if st["step_id"] != "ATK-25/1" {
			continue
		}
		for _, td := range st["tools"].([]any) {
			td := td.(map[string]any)
			if td["tool"] == "oracle" {
				td["category"], td["outcome"] = "none", "missed"
			}
		}
	}
	regressed := filepath.Join(dir, "regressed.json")
	rb, _ := json.Marshal(m)
	if err := os.WriteFile(regressed, rb, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"compare", a, regressed}, &out, &errb); code == 0 || !strings.Contains(out.String(), "new_miss") {
		t.Fatalf("compare against a regressed scorecard: exit %d\n%s%s", code, out.String(), errb.String())
	}

	// A vacuous run: no scenario executed.
	m["scenarios"] = []any{}
	empty := filepath.Join(dir, "empty.json")
	eb, _ := json.Marshal(m)
	if err := os.WriteFile(empty, eb, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"compare", a, empty}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "executed no scenario") {
		t.Fatalf("compare against an empty run: exit %d\n%s%s", code, out.String(), errb.String())
	}
}
