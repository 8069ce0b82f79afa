package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/report"
	"github.com/pumplab/pumplab/harness/score"
)

func init() {
	register("matrix", "the control matrix of two runs: pumplab matrix LEGACY_RUN_DIR HARDENED_RUN_DIR [--out DIR]", cmdMatrix)
}

// FileLatency is the run's workflow latency samples (one JSON object a
// line: scenario, metric, value in lab nanoseconds, wall time recorded).
const FileLatency = "latency.jsonl"

// writeLatency writes the run's latency samples into dir.
func writeLatency(dir string, samples []harness.LatencySample) error {
	var b strings.Builder
	for _, s := range samples {
		line, err := json.Marshal(s)
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return os.WriteFile(filepath.Join(dir, FileLatency), []byte(b.String()), 0o644)
}

// readLatency reads a run directory's latency samples by metric.
func readLatency(dir string) (map[string][]time.Duration, error) {
	f, err := os.Open(filepath.Join(dir, FileLatency))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]time.Duration{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var s harness.LatencySample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", filepath.Join(dir, FileLatency), n, err)
		}
		out[s.Metric] = append(out[s.Metric], s.Value)
	}
	return out, sc.Err()
}

// Matrix is the control matrix of a baseline run and a hardened run.
type Matrix struct {
	Baseline string      `json:"baseline"` // posture names
	Hardened string      `json:"hardened"`
	Rows     []MatrixRow `json:"rows"`
	// Availability is the latency cost of the hardened posture against the
	// baseline (lab milliseconds, p50 and p95).
	Availability []score.AvailabilityCost `json:"availability"`
	// Problems are rows that do not show what the matrix must show: an
	// attack without measured harm under the baseline, an attack not
	// blocked (or with harm) under the hardened posture, a control scenario
	// that failed under either.
	Problems []string `json:"problems"`
}

// MatrixRow is one scenario under both postures.
type MatrixRow struct {
	Scenario string `json:"scenario"`
	Kind     string `json:"kind"`
	Title    string `json:"title"`
	// State under each posture (passed, failed, not_applicable, ...).
	BaselineState string `json:"baseline_state"`
	HardenedState string `json:"hardened_state"`
	// Attack steps: the expected control, the hardened protection, the
	// harm under each posture.
	Steps []MatrixStep `json:"steps,omitempty"`
}

// MatrixStep is one attack step under both postures.
type MatrixStep struct {
	StepID             string  `json:"step_id"`
	Control            string  `json:"control,omitempty"`
	BaselineProtection string  `json:"baseline_protection"`
	HardenedProtection string  `json:"hardened_protection"`
	BlockedBy          string  `json:"blocked_by,omitempty"`
	BaselineHarm       bool    `json:"baseline_harm"`
	BaselineHarmValue  float64 `json:"baseline_harm_value"`
	HardenedHarm       bool    `json:"hardened_harm"`
	HardenedHarmValue  float64 `json:"hardened_harm_value"`
}

// BuildMatrix compares a baseline and a hardened run.
func BuildMatrix(base, hard report.Scorecard, baseLat, hardLat map[string][]time.Duration, controls map[string]string) Matrix {
	m := Matrix{Baseline: base.Run.Posture.Name, Hardened: hard.Run.Posture.Name}
	steps := func(sc report.Scorecard) map[string]score.StepVerdict {
		out := map[string]score.StepVerdict{}
		for _, v := range sc.Steps {
			out[v.StepID] = v
		}
		return out
	}
	bs, hs := steps(base), steps(hard)
	hscen := map[string]report.Scenario{}
	for _, s := range hard.Scenarios {
		hscen[s.ID] = s
	}
	ids := map[string]report.Scenario{}
	for _, s := range base.Scenarios {
		ids[s.ID] = s
	}
	for id, s := range hscen {
		if _, ok := ids[id]; !ok {
			ids[id] = s
		}
	}
	var order []string
	for id := range ids {
		order = append(order, id)
	}
	sort.Slice(order, func(i, j int) bool { return scenarioLess(order[i], order[j]) })
	bstate := map[string]string{}
	for _, s := range base.Scenarios {
		bstate[s.ID] = s.State
	}
	for _, id := range order {
		s := ids[id]
		row := MatrixRow{Scenario: id, Kind: s.Kind, Title: s.Title, BaselineState: orNone(bstate[id]), HardenedState: orNone(hscen[id].State)}
		var stepIDs []string
		seen := map[string]bool{}
		for _, v := range append(append([]score.StepVerdict{}, base.Steps...), hard.Steps...) {
			if v.ScenarioID == id && !seen[v.StepID] {
				seen[v.StepID] = true
				stepIDs = append(stepIDs, v.StepID)
			}
		}
		sort.Strings(stepIDs)
		for _, sid := range stepIDs {
			b, h := bs[sid], hs[sid]
			st := MatrixStep{StepID: sid, Control: controls[sid], BaselineProtection: orNone(string(b.Protection)),
				HardenedProtection: orNone(string(h.Protection)), BaselineHarm: b.Harm.Occurred, BaselineHarmValue: b.Harm.Weighted,
				HardenedHarm: h.Harm.Occurred, HardenedHarmValue: h.Harm.Weighted}
			if len(h.Evidence) > 0 {
				st.BlockedBy = h.Evidence[0].Control
			}
			row.Steps = append(row.Steps, st)
		}
		m.Rows = append(m.Rows, row)
		m.Problems = append(m.Problems, rowProblems(row)...)
	}
	m.Availability = score.Availability(score.LatencySamples{m.Baseline: baseLat, m.Hardened: hardLat}, m.Baseline)
	return m
}

func rowProblems(r MatrixRow) []string {
	var out []string
	if r.Kind == "control" {
		for _, st := range []struct{ p, s string }{{"baseline", r.BaselineState}, {"hardened", r.HardenedState}} {
			if st.s != "passed" && st.s != report.StateNotApplicable {
				out = append(out, fmt.Sprintf("%s: control scenario %s under the %s posture", r.Scenario, st.s, st.p))
			}
		}
		return out
	}
	if r.BaselineState == report.StateNotApplicable && r.HardenedState == report.StateNotApplicable {
		return nil
	}
	for _, st := range r.Steps {
		if !st.BaselineHarm {
			out = append(out, fmt.Sprintf("%s: no harm measured under the baseline posture", st.StepID))
		}
		if st.HardenedProtection != string(score.ProtectionBlocked) || st.HardenedHarm {
			out = append(out, fmt.Sprintf("%s: %s with harm %v under the hardened posture (expected control %s)",
				st.StepID, st.HardenedProtection, st.HardenedHarm, st.Control))
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// scenarioLess orders ATK-2 before ATK-10 and attacks before controls.
func scenarioLess(a, b string) bool {
	pa, na := splitID(a)
	pb, nb := splitID(b)
	if pa != pb {
		return pa < pb
	}
	return na < nb
}

func splitID(id string) (string, int) {
	p, n, _ := strings.Cut(id, "-")
	v := 0
	fmt.Sscanf(n, "%d", &v)
	return p, v
}

// Markdown renders the matrix.
func (m Matrix) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Control matrix: %s vs %s\n\n", m.Baseline, m.Hardened)
	fmt.Fprintf(&b, "| Scenario | Step | Expected control | %s: protection / harm | %s: protection (by) / harm |\n|---|---|---|---|---|\n",
		m.Baseline, m.Hardened)
	for _, r := range m.Rows {
		if r.Kind != "attack" {
			continue
		}
		if len(r.Steps) == 0 {
			fmt.Fprintf(&b, "| %s | - | - | %s | %s |\n", r.Scenario, r.BaselineState, r.HardenedState)
		}
		for _, s := range r.Steps {
			by := ""
			if s.BlockedBy != "" {
				by = " (" + s.BlockedBy + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s / %s | %s%s / %s |\n", r.Scenario, s.StepID, orNone(s.Control),
				s.BaselineProtection, harmText(s.BaselineHarm, s.BaselineHarmValue), s.HardenedProtection, by,
				harmText(s.HardenedHarm, s.HardenedHarmValue))
		}
	}
	fmt.Fprintf(&b, "\n## Control scenarios\n\n| Scenario | %s | %s |\n|---|---|---|\n", m.Baseline, m.Hardened)
	for _, r := range m.Rows {
		if r.Kind == "control" {
			fmt.Fprintf(&b, "| %s %s | %s | %s |\n", r.Scenario, r.Title, r.BaselineState, r.HardenedState)
		}
	}
	fmt.Fprintf(&b, "\n## Latency cost of %s against %s (lab time)\n\n| Metric | n | %s p50 / p95 | %s p50 / p95 | delta p50 / p95 |\n|---|---|---|---|---|\n",
		m.Hardened, m.Baseline, m.Baseline, m.Hardened)
	for _, a := range m.Availability {
		fmt.Fprintf(&b, "| %s | %d | %s / %s | %s / %s | %+.1fs / %+.1fs |\n", a.Metric, a.N, msText(a.BaseP50Ms), msText(a.BaseP95Ms),
			msText(a.P50Ms), msText(a.P95Ms), float64(a.DeltaP50Ms)/1000, float64(a.DeltaP95Ms)/1000)
	}
	if len(m.Problems) > 0 {
		b.WriteString("\n## Problems\n\n")
		for _, p := range m.Problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	} else {
		b.WriteString("\nEvery attack shows harm under the baseline and is blocked without harm under the hardened posture; every control scenario passes under both.\n")
	}
	return b.String()
}

func harmText(h bool, v float64) string {
	if !h {
		return "no harm"
	}
	return fmt.Sprintf("harm %.1f", v)
}

func msText(ms int64) string { return fmt.Sprintf("%.1fs", float64(ms)/1000) }

// stepControls reads the expected control of every step from a run's
// ground truth.
func stepControls(dirs ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, dir := range dirs {
		f, err := os.Open(filepath.Join(dir, report.FileGroundTruth))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var s score.Step
			if json.Unmarshal(sc.Bytes(), &s) == nil && s.Control != "" {
				out[s.StepID] = s.Control
			}
		}
		f.Close()
	}
	return out, nil
}

func cmdMatrix(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("matrix", stderr)
	out := fs.String("out", "", "directory for matrix.md and matrix.json (default: the hardened run's directory)")
	strict := fs.Bool("strict", false, "exit 1 when the matrix has problems")
	var dirs []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		rest = fs.Args()
		if len(rest) > 0 {
			dirs = append(dirs, rest[0])
			rest = rest[1:]
		}
	}
	if len(dirs) != 2 {
		fmt.Fprintln(stderr, "usage: pumplab matrix LEGACY_RUN_DIR HARDENED_RUN_DIR [--out DIR] [--strict]")
		return errUsage
	}
	var scs [2]report.Scorecard
	var lats [2]map[string][]time.Duration
	for i, d := range dirs {
		sc, err := loadScorecard(d)
		if err != nil {
			return err
		}
		lat, err := readLatency(d)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		scs[i], lats[i] = sc, lat
	}
	ctl, err := stepControls(dirs...)
	if err != nil {
		return err
	}
	m := BuildMatrix(scs[0], scs[1], lats[0], lats[1], ctl)
	dir := *out
	if dir == "" {
		dir = dirs[1]
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "matrix.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	md := m.Markdown()
	if err := os.WriteFile(filepath.Join(dir, "matrix.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprint(stdout, md)
	fmt.Fprintf(stdout, "\nmatrix: %s\n", filepath.Join(dir, "matrix.md"))
	if *strict && len(m.Problems) > 0 {
		return fmt.Errorf("matrix: %d problems", len(m.Problems))
	}
	return nil
}
