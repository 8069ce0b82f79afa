package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/pumplab/pumplab/harness/score"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func scenarioByID(t *testing.T, sc Scorecard, id string) Scenario {
	t.Helper()
	for _, s := range sc.Scenarios {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("scenario %s missing", id)
	return Scenario{}
}

func toolOf(s Scenario, tool string) (ScenarioTool, bool) {
	for _, st := range s.Tools {
		if st.Tool == tool {
			return st, true
		}
	}
	return ScenarioTool{}, false
}

func TestBuildDerivesScenarioOutcomes(t *testing.T) {
	in, _, _ := fixture()
	sc := Build(in)
	if sc.SchemaVersion != SchemaVersion {
		t.Fatalf("schema_version %q", sc.SchemaVersion)
	}
	var ids []string
	for _, s := range sc.Scenarios {
		ids = append(ids, s.ID)
	}
	if got, want := strings.Join(ids, " "), "ATK-16 ATK-25 ATK-30 CTL-01"; got != want {
		t.Fatalf("scenario order %q, want %q", got, want)
	}
	cases := []struct {
		id, tool string
		want     score.Outcome
		fp       int
	}{
		{"ATK-16", "", score.OutcomeDetectedInTime, 0}, // worst of detected (step 1) and prevented (step 2)
		{"ATK-16", "ids-a", score.OutcomeDetectedInTime, 0},
		{"ATK-16", "ids-b", score.OutcomeDetectedInTime, 0},
		{"ATK-25", "", score.OutcomeDetectedLate, 0},
		{"ATK-25", "ids-a", score.OutcomeDetectedLate, 0},
		{"ATK-25", "ids-b", score.OutcomeNotApplicable, 0}, // alarm-manager is outside ids-b's scope
		{"ATK-30", "", score.OutcomeNotApplicable, 0},
		{"ATK-30", "ids-a", score.OutcomeNotApplicable, 0},
		{"CTL-01", "", "", 0},
		{"CTL-01", "ids-a", "", 0},
		{"CTL-01", "ids-b", "", 3}, // noisy on pump-002 at 45, 50, 55 min
	}
	for _, c := range cases {
		s := scenarioByID(t, sc, c.id)
		if c.tool == "" {
			if s.Outcome != c.want {
				t.Errorf("%s outcome %q, want %q", c.id, s.Outcome, c.want)
			}
			continue
		}
		st, ok := toolOf(s, c.tool)
		if !ok {
			t.Errorf("%s has no result for %s", c.id, c.tool)
			continue
		}
		if st.Outcome != c.want || st.FalsePositives != c.fp {
			t.Errorf("%s/%s = %q, %d FP; want %q, %d FP", c.id, c.tool, st.Outcome, st.FalsePositives, c.want, c.fp)
		}
	}
	if got := strings.Join(scenarioByID(t, sc, "ATK-16").Steps, " "); got != "ATK-16/1 ATK-16/2" {
		t.Errorf("ATK-16 steps %q", got)
	}
	if got := strings.Join(scenarioByID(t, sc, "ATK-16").Techniques, " "); got != "T0836 T0846 T0855" {
		t.Errorf("ATK-16 techniques not sorted: %q", got)
	}
	if got := strings.Join(sc.Run.Posture.Controls, " "); got != "mqtt-acl tls" {
		t.Errorf("controls not sorted: %q", got)
	}
	if sc.Run.Tools[0].Name != "ids-a" || strings.Join(sc.Run.Tools[1].Assets, " ") != "pump-001 pump-002" {
		t.Errorf("tools not sorted: %+v", sc.Run.Tools)
	}
	fp := map[string]int{}
	for _, f := range sc.FalsePositives {
		fp[f.Tool] = f.Count
		if f.Count != len(f.Alerts) {
			t.Errorf("%s: count %d but %d alerts", f.Tool, f.Count, len(f.Alerts))
		}
	}
	if !reflect.DeepEqual(fp, map[string]int{"ids-a": 0, "ids-b": 3}) {
		t.Errorf("false positives %v", fp)
	}
	if sc.FalsePositives[1].PerDeviceHour != 1.5 {
		t.Errorf("ids-b FP per device-hour %g, want 3/2", sc.FalsePositives[1].PerDeviceHour)
	}
	// Harm: 3 PHI records (0.3) + a missed alarm on a high-alert drug (5 x 3).
	h := sc.Harm
	if h.HarmIndex != 15.3 || h.StepsWithHarm != 2 || len(h.Rows) != 2 || h.Totals.PHIExposed != 3 ||
		h.Totals.AlarmsMissed != 1 || h.Totals.HighAlertSteps != 1 || h.BaselineHarm != 40 {
		t.Errorf("harm summary %+v", h)
	}
	if want := score.HarmPreventedShare(15.3, 40); h.HarmPrevented != want {
		t.Errorf("harm prevented %g, want %g", h.HarmPrevented, want)
	}
	if len(sc.Aggregates) != 2 || sc.Aggregates[0].Tool != "ids-a" || sc.Aggregates[0].Posture != "hardened" ||
		sc.Aggregates[1].FalsePositives != 3 || sc.Aggregates[0].Blocked != 1 {
		t.Errorf("aggregates %v", sc.Aggregates)
	}
	if len(sc.Availability) != 2 || sc.Availability[0].Metric != "alarm_to_nurse" || sc.Availability[1].DeltaP50Ms != 500 {
		t.Errorf("availability %+v", sc.Availability)
	}
}

// TestBuildOrderIndependent shuffles every input list: the scorecard and
// every file must be byte-identical.
func TestBuildOrderIndependent(t *testing.T) {
	in, steps, alerts := fixture()
	want, err := Files(Build(in), steps, alerts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 20; i++ {
		in2, steps2, alerts2 := fixture()
		rng.Shuffle(len(in2.Scenarios), func(a, b int) { in2.Scenarios[a], in2.Scenarios[b] = in2.Scenarios[b], in2.Scenarios[a] })
		rng.Shuffle(len(in2.Verdicts), func(a, b int) { in2.Verdicts[a], in2.Verdicts[b] = in2.Verdicts[b], in2.Verdicts[a] })
		rng.Shuffle(len(in2.Run.Tools), func(a, b int) { in2.Run.Tools[a], in2.Run.Tools[b] = in2.Run.Tools[b], in2.Run.Tools[a] })
		rng.Shuffle(len(in2.Availability), func(a, b int) {
			in2.Availability[a], in2.Availability[b] = in2.Availability[b], in2.Availability[a]
		})
		for _, l := range in2.FalsePositives {
			rng.Shuffle(len(l), func(a, b int) { l[a], l[b] = l[b], l[a] })
		}
		rng.Shuffle(len(steps2), func(a, b int) { steps2[a], steps2[b] = steps2[b], steps2[a] })
		rng.Shuffle(len(alerts2), func(a, b int) { alerts2[a], alerts2[b] = alerts2[b], alerts2[a] })
		got, err := Files(Build(in2), steps2, alerts2)
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range want {
			if !bytes.Equal(got[name], b) {
				t.Fatalf("shuffle %d: %s differs", i, name)
			}
		}
	}
}

func TestBuildDoesNotChangeItsInput(t *testing.T) {
	in, _, _ := fixture()
	before, _ := json.Marshal(in)
	sc := Build(in)
	sc.Run.Posture.Controls[0] = "changed"
	sc.Scenarios[0].Areas[0] = "XX"
	sc.Steps[0].Techniques[0] = "T9999"
	sc.FalsePositives[1].Alerts[0].Assets[0] = "changed"
	after, _ := json.Marshal(in)
	if !bytes.Equal(before, after) {
		t.Fatal("Build or a change to its result changed the input")
	}
}

func TestCompareIDs(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"ATK-2", "ATK-10", -1}, {"ATK-10", "ATK-2", 1}, {"ATK-10/2", "ATK-10/10", -1}, {"ATK-01", "ATK-1", 1},
		{"ATK-16", "ATK-16", 0}, {"ATK-16", "CTL-01", -1}, {"ATK-16", "ATK-16/1", -1}, {"", "A", -1}, {"T0800", "T0831", -1},
	}
	for _, c := range cases {
		if got := CompareIDs(c.a, c.b); got != c.want {
			t.Errorf("CompareIDs(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestWorstOutcome(t *testing.T) {
	o := score.Outcomes
	cases := []struct {
		in   []score.Outcome
		want score.Outcome
	}{
		{nil, score.OutcomeNotApplicable},
		{[]score.Outcome{o[5], o[5]}, score.OutcomeNotApplicable},
		{[]score.Outcome{o[0], o[5]}, score.OutcomePrevented},
		{[]score.Outcome{o[0], o[2], o[1]}, score.OutcomeDetectedInTime},
		{[]score.Outcome{o[4], o[0]}, score.OutcomeMissed},
		{[]score.Outcome{"bogus", o[3]}, score.OutcomeDetectedLate},
	}
	for _, c := range cases {
		if got := WorstOutcome(c.in); got != c.want {
			t.Errorf("WorstOutcome(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNavigatorLayer(t *testing.T) {
	in, _, _ := fixture()
	// Drop ids-a: only ids-b's general detection of ATK-16/1 remains.
	var vs []score.StepVerdict
	for _, v := range in.Verdicts {
		var ds []score.ToolDetection
		for _, d := range v.Tools {
			if d.Tool != "ids-a" {
				ds = append(ds, d)
			}
		}
		v.Tools = ds
		vs = append(vs, v)
	}
	cases := []struct {
		name  string
		vs    []score.StepVerdict
		score map[string]int
	}{
		{"both tools", in.Verdicts, map[string]int{"T0836": 4, "T0846": 4, "T0855": 4, "T0878": 4}},
		{"ids-b only", vs, map[string]int{"T0836": 0, "T0846": 2, "T0855": 0, "T0878": 0}},
	}
	for _, c := range cases {
		in.Verdicts = c.vs
		l := NavigatorLayer(Build(in))
		if l.Domain != "ics-attack" || l.Versions.Layer != "4.5" {
			t.Fatalf("%s: domain %q layer %q", c.name, l.Domain, l.Versions.Layer)
		}
		got := map[string]int{}
		for _, tq := range l.Techniques {
			got[tq.TechniqueID] = tq.Score
			if !strings.Contains(tq.Comment, "ATK-") {
				t.Errorf("%s: %s comment names no scenario: %q", c.name, tq.TechniqueID, tq.Comment)
			}
		}
		if !reflect.DeepEqual(got, c.score) {
			t.Errorf("%s: scores %v, want %v", c.name, got, c.score)
		}
	}
	l := NavigatorLayer(Build(func() Input { in, _, _ := fixture(); return in }()))
	for _, tq := range l.Techniques {
		switch tq.TechniqueID {
		case "T0878":
			if !strings.Contains(tq.Comment, "ATK-25") || !reflect.DeepEqual(tq.Metadata, []LayerMeta{{Name: "ids-a", Value: "technique (delayed)"}, {Name: "ids-b", Value: "not_applicable"}}) {
				t.Errorf("T0878: %q %v", tq.Comment, tq.Metadata)
			}
		case "T0836":
			if !strings.Contains(tq.Comment, "Prevented by a control on 1 of 1 steps") {
				t.Errorf("T0836 comment %q", tq.Comment)
			}
		}
	}
}

func TestSummaryMarkdown(t *testing.T) {
	in, _, _ := fixture()
	md := string(SummaryMarkdown(Build(in)))
	for _, want := range []string{
		"# pumplab run run-fixture",
		"| ATK-16 | attack | Rate change over MQTT | passed | 11m0s | Detected | Detected | Detected |",
		"| ATK-25 | attack | Alarm suppression | passed | 1m0s | Late | Late | NA |",
		"| ATK-30 | attack | Firmware downgrade | not_applicable: needs:containers | 0s | NA | NA | NA |",
		"| CTL-01 | control | Closed-loop PIV order | passed | 20m0s | - | 0 FP | 3 FP |",
		"| ids-b | 3 | 1.5 |",
		"| hardened | order_to_infusion | 2 | 2500 ms | 3200 ms | 2000 ms | 3000 ms | +500 ms | +200 ms |",
		"Harm index 15.3 (baseline 40, 62% prevented); 2 steps with harm.",
		"| ATK-25/1 | not_applicable | Late | 15 | 1 alarms missed, high-alert drug |",
		"- fixture run: not a real lab",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
}

var externalRef = regexp.MustCompile(`(?i)(src|href|action|xlink:href|srcset|poster|data)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|@import|<script|<link|<iframe|<object|<embed`)

func TestHTMLSelfContained(t *testing.T) {
	in, _, _ := fixture()
	page := string(HTML(Build(in)))
	for _, id := range SectionIDs {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("report.html lacks id=%q", id)
		}
	}
	if m := externalRef.FindString(page); m != "" {
		t.Errorf("report.html references an external resource or script: %q", m)
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("report.html contains an http(s) URL")
	}
	for _, want := range []string{
		`<td class="o o-detected_late" title="ATK-25/1: Late">Late</td>`,
		`<td class="o o-not_applicable" title="ATK-25/1: NA">NA</td>`, // ids-b on ATK-25
		"<svg ", "<circle ", "AL Alarms", "TA0106 Impair Process Control", "ids-b",
		"not_applicable: needs:containers", "<style>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// A title with markup is escaped.
	in.Scenarios[0].Title = `<img src="https://evil.example/x.png">`
	page = string(HTML(Build(in)))
	if strings.Contains(page, "<img") || externalRef.MatchString(page) {
		t.Error("report.html does not escape a scenario title")
	}
}

func TestExternalRefPattern(t *testing.T) {
	for _, bad := range []string{`<img src="https://cdn.example/a.png">`, `<link rel="stylesheet" href="x.css">`,
		`<script>alert(1)</script>`, `background:url(//fonts.example/f.woff)`, `@import "x.css";`} {
		if !externalRef.MatchString(bad) {
			t.Errorf("pattern misses %q", bad)
		}
	}
	if externalRef.MatchString(`<td class="o">x</td><svg width="1">`) {
		t.Error("pattern matches a clean fragment")
	}
}

func TestCoverage(t *testing.T) {
	in, _, _ := fixture()
	sc := Build(in)
	area := CoverageByArea(sc)
	var keys []string
	for _, a := range area {
		keys = append(keys, a.Key)
	}
	// REFERENCE.md §1.7 order; MU (ATK-30, no step) and CTL-01's steps (none) are absent.
	if got := strings.Join(keys, " "); got != "AL AU NW" {
		t.Fatalf("areas %q", got)
	}
	if !reflect.DeepEqual(area[1].Outcomes, map[score.Outcome]int{score.OutcomePrevented: 1, score.OutcomeDetectedInTime: 1}) {
		t.Errorf("AU %v", area[1].Outcomes)
	}
	tac := CoverageByTactic(sc)
	if len(tac) != 3 || tac[0].Key != "TA0102" || tac[0].Name != "Discovery" || tac[2].Outcomes[score.OutcomeDetectedLate] != 1 {
		t.Errorf("tactics %+v", tac)
	}
}

// TestWriteGolden writes the run directory and compares it to the golden
// files in testdata/golden (go test -run TestWriteGolden -update rewrites them).
func TestWriteGolden(t *testing.T) {
	in, steps, alerts := fixture()
	dir := filepath.Join(t.TempDir(), "out", "run-fixture")
	if err := Write(dir, Build(in), steps, alerts); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, " "), "alerts.jsonl ground-truth.jsonl navigator-layer.json report.html scorecard.json summary.md"; got != want {
		t.Fatalf("files %q, want %q", got, want)
	}
	for _, n := range names {
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "golden", n)
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run with -update after checking the change)", n, golden)
		}
	}
}

func TestJSONLines(t *testing.T) {
	_, steps, alerts := fixture()
	gt, err := GroundTruthJSONL([]score.Step{steps[2], steps[0], steps[1]})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(gt), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		var s score.Step
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s, steps[i]) {
			t.Errorf("line %d: %+v, want %+v", i, s, steps[i])
		}
	}
	al, err := AlertsJSONL(alerts)
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSuffix(string(al), "\n"), "\n")
	if len(lines) != len(alerts) {
		t.Fatalf("%d alert lines, want %d", len(lines), len(alerts))
	}
	var prev score.Alert
	for i, l := range lines {
		var a score.Alert
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		if i > 0 && a.Time.Before(prev.Time) {
			t.Errorf("alerts.jsonl not in time order at line %d", i)
		}
		prev = a
	}
}
