package report

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/pumplab/pumplab/harness/attck"
	"github.com/pumplab/pumplab/harness/score"
)

// Element ids of the sections of report.html (stable: tests and browser
// checks look for them).
const (
	IDRunMetadata      = "run-metadata"
	IDOutcomeMatrix    = "outcome-matrix"
	IDSteps            = "steps"
	IDAggregates       = "aggregates"
	IDTTDChart         = "ttd-chart"
	IDCoverageArea     = "coverage-area"
	IDCoverageTactic   = "coverage-tactic"
	IDControlScenarios = "control-scenarios"
	IDAvailability     = "availability"
	IDFalsePositives   = "false-positives"
	IDHarm             = "harm"
	IDNotes            = "notes"
)

// SectionIDs are the ids every report.html has, in page order.
var SectionIDs = []string{IDRunMetadata, IDOutcomeMatrix, IDSteps, IDAggregates, IDTTDChart, IDCoverageArea,
	IDCoverageTactic, IDControlScenarios, IDAvailability, IDFalsePositives, IDHarm, IDNotes}

// OutcomeColors are the cell colours of the outcome ladder.
var OutcomeColors = map[score.Outcome]string{
	score.OutcomePrevented:      "#1b7f4c",
	score.OutcomeCaughtBySafety: "#4aa564",
	score.OutcomeDetectedInTime: "#a6d96a",
	score.OutcomeDetectedLate:   "#fdd835",
	score.OutcomeMissed:         "#d73027",
	score.OutcomeNotApplicable:  "#cfcfcf",
}

// Areas are the SP 1800-8 challenge areas (REFERENCE.md §1.7) by code.
var Areas = map[string]string{
	"AC": "Access codes", "WL": "Wireless configuration", "AL": "Alarms", "AM": "Asset management",
	"AU": "Authentication", "MU": "Maintenance / updates", "PV": "Pump variability", "US": "Use",
	"EM": "Emergency use", "DL": "Drug library", "NW": "Network / segmentation",
}

// areaOrder is the order of the areas in REFERENCE.md §1.7.
var areaOrder = []string{"AC", "WL", "AL", "AM", "AU", "MU", "PV", "US", "EM", "DL", "NW"}

const css = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:1.5rem 2rem;color:#1d2329;background:#fff;font-size:14px}
h1{font-size:1.6rem;margin:0 0 .3rem}h2{font-size:1.2rem;margin:2rem 0 .6rem;border-bottom:2px solid #e3e6ea;padding-bottom:.2rem}
header{background:#f3f5f8;border:1px solid #dde2e8;border-radius:6px;padding:1rem 1.2rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.6rem 0 0}dl.meta dt{font-weight:600;color:#4a5561}dl.meta dd{margin:0}
table{border-collapse:collapse;margin:.4rem 0}th,td{border:1px solid #d7dce2;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.o{text-align:center;font-weight:600;min-width:5.5rem}
.o-prevented{background:#1b7f4c;color:#fff}.o-caught_by_safety{background:#4aa564;color:#fff}.o-detected_in_time{background:#a6d96a}
.o-detected_late{background:#fdd835}.o-missed{background:#d73027;color:#fff}.o-not_applicable{background:#cfcfcf;color:#444}
.legend span{display:inline-block;padding:.1rem .5rem;margin-right:.3rem;border-radius:3px;font-size:.85rem}
.warn{color:#b00020;font-weight:600}.muted{color:#6b7682}p.note{color:#4a5561;max-width:60rem}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:12px;fill:#1d2329}
footer{margin-top:2.5rem;color:#6b7682;font-size:.85rem}`

type htmlWriter struct{ strings.Builder }

func (w *htmlWriter) p(format string, args ...any) { fmt.Fprintf(&w.Builder, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

// HTML is report.html: one self-contained page (inline CSS and SVG, no
// script, no external resource) with the sections of SectionIDs.
func HTML(sc Scorecard) []byte {
	var w htmlWriter
	r := sc.Run
	tools := scorecardTools(sc)
	w.p("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>pumplab run %s</title>\n<style>\n%s\n</style>\n</head>\n<body>\n", esc(r.ID), css)

	// Header.
	w.p("<header id=%q>\n<h1>pumplab run %s</h1>\n<div class=\"muted\">Simulated lab: not for clinical use. Scorecard schema %s.</div>\n<dl class=\"meta\">\n", IDRunMetadata, esc(r.ID), esc(sc.SchemaVersion))
	meta := [][2]string{
		{"Posture", r.Posture.Name}, {"Controls", orDash(strings.Join(r.Posture.Controls, ", "))},
		{"Baseline posture", orDash(r.BaselinePosture)}, {"Provider", r.Provider},
		{"Start", fmtTime(r.Start)}, {"End", fmtTime(r.End)}, {"Duration", r.End.Sub(r.Start).Round(time.Second).String()},
		{"Seed", fmt.Sprint(r.Seed)}, {"Pumps", fmt.Sprint(r.Pumps)}, {"Clock speed", fmt.Sprintf("x%g", r.ClockSpeed)},
		{"Device-hours", fmt.Sprintf("%g", r.DeviceHours)}, {"pumplab", orDash(r.PumplabVersion)},
	}
	for _, m := range meta {
		w.p("<dt>%s</dt><dd>%s</dd>\n", esc(m[0]), esc(m[1]))
	}
	var ts []string
	for _, t := range r.Tools {
		s := t.Name + " " + t.Version
		if len(t.Assets)+len(t.Techniques) > 0 {
			s += " (scope: " + strings.Join(append(append([]string{}, t.Assets...), t.Techniques...), ", ") + ")"
		}
		ts = append(ts, s)
	}
	w.p("<dt>Tools</dt><dd>%s</dd>\n</dl>\n</header>\n", esc(orDash(strings.Join(ts, "; "))))

	w.outcomeMatrix(sc, tools)
	w.stepsTable(sc)
	w.aggregates(sc)
	w.ttdChart(sc, tools)
	w.coverage(sc)
	w.controls(sc, tools)
	w.falsePositives(sc)
	w.harm(sc)

	w.p("<section id=%q>\n<h2>Notes</h2>\n", IDNotes)
	if len(sc.Notes) == 0 {
		w.p("<p class=\"muted\">None.</p>\n")
	} else {
		w.p("<ul>\n")
		for _, n := range sc.Notes {
			w.p("<li>%s</li>\n", esc(n))
		}
		w.p("</ul>\n")
	}
	w.p("</section>\n<footer>Generated by pumplab %s. Score formula: <code>%s</code>.</footer>\n</body>\n</html>\n", esc(orDash(r.PumplabVersion)), esc(score.ScoreFormula))
	return []byte(w.String())
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func (w *htmlWriter) legend() {
	w.p("<div class=\"legend\">")
	for _, o := range score.Outcomes {
		w.p("<span class=\"o-%s\">%s</span>", o, OutcomeLabel(o))
	}
	w.p("</div>\n")
}

func (w *htmlWriter) cell(o score.Outcome, title string) {
	if o == "" {
		w.p("<td class=\"o\">-</td>")
		return
	}
	w.p("<td class=\"o o-%s\" title=\"%s\">%s</td>", esc(string(o)), esc(title), OutcomeLabel(o))
}

func (w *htmlWriter) outcomeMatrix(sc Scorecard, tools []string) {
	w.p("<section id=%q>\n<h2>Outcome matrix</h2>\n", IDOutcomeMatrix)
	w.p("<p class=\"note\">One row per attack scenario. The posture column is the best outcome over the tools; a tool's cell is the worst of the scenario's steps for that tool (the weakest link). Hover a cell for every step.</p>\n")
	w.legend()
	w.p("<table>\n<thead><tr><th>Scenario</th><th>Title</th><th>State</th><th>Posture %s</th>", esc(sc.Run.Posture.Name))
	for _, t := range tools {
		w.p("<th>%s</th>", esc(t))
	}
	w.p("</tr></thead>\n<tbody>\n")
	n := 0
	for _, s := range sc.Scenarios {
		if s.Kind == KindControl {
			continue
		}
		n++
		steps := stepsOf(sc, s.ID)
		w.p("<tr><td>%s</td><td>%s</td><td>%s</td>", esc(s.ID), esc(s.Title), esc(stateText(s)))
		var tt []string
		for _, v := range steps {
			tt = append(tt, v.StepID+": "+OutcomeLabel(v.Outcome))
		}
		w.cell(orNA(s.Outcome), strings.Join(tt, "\n"))
		for _, t := range tools {
			tt = tt[:0]
			for _, v := range steps {
				tt = append(tt, v.StepID+": "+OutcomeLabel(ToolOutcome(v, t)))
			}
			o := score.OutcomeNotApplicable
			for _, st := range s.Tools {
				if st.Tool == t && st.Outcome != "" {
					o = st.Outcome
				}
			}
			w.cell(o, strings.Join(tt, "\n"))
		}
		w.p("</tr>\n")
	}
	if n == 0 {
		w.p("<tr><td colspan=\"%d\" class=\"muted\">No attack scenario in this run.</td></tr>\n", 4+len(tools))
	}
	w.p("</tbody>\n</table>\n</section>\n")
}

func orNA(o score.Outcome) score.Outcome {
	if o == "" {
		return score.OutcomeNotApplicable
	}
	return o
}

func stateText(s Scenario) string {
	if s.Reason != "" {
		return s.State + ": " + s.Reason
	}
	return s.State
}

func stepsOf(sc Scorecard, scenario string) []score.StepVerdict {
	var out []score.StepVerdict
	for _, v := range sc.Steps {
		if v.ScenarioID == scenario {
			out = append(out, v)
		}
	}
	return out
}

func (w *htmlWriter) stepsTable(sc Scorecard) {
	w.p("<section id=%q>\n<h2>Steps</h2>\n", IDSteps)
	if len(sc.Steps) == 0 {
		w.p("<p class=\"muted\">No attack step was scored.</p>\n</section>\n")
		return
	}
	w.p("<table>\n<thead><tr><th>Step</th><th>Techniques</th><th>Tactic</th><th>Protection</th><th>Safety layer</th><th>Harm</th><th>Outcome</th><th>Detections (tool: category, time to detect)</th></tr></thead>\n<tbody>\n")
	for _, v := range sc.Steps {
		var techs []string
		for _, t := range v.Techniques {
			techs = append(techs, t+" "+attck.Techniques[t])
		}
		tactic := v.Tactic
		if n, ok := attck.Tactics[v.Tactic]; ok {
			tactic += " " + n
		}
		harm := "none"
		if v.Harm.Occurred {
			harm = fmt.Sprintf("%g: %s", v.Harm.Weighted, HarmMetrics(v.Harm.Metrics))
		}
		var dets []string
		for _, d := range v.Tools {
			s := d.Tool + ": " + string(d.Category)
			if d.TTDMs != nil {
				s += fmt.Sprintf(", %d ms", *d.TTDMs)
			}
			if d.Delayed {
				s += ", delayed"
			}
			if d.Correlated {
				s += ", correlated"
			}
			dets = append(dets, s)
		}
		w.p("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>", esc(v.StepID), esc(strings.Join(techs, "; ")),
			esc(orDash(tactic)), esc(string(v.Protection)), esc(string(v.Safety)), esc(harm))
		w.cell(v.Outcome, "")
		w.p("<td>%s</td></tr>\n", esc(orDash(strings.Join(dets, "; "))))
	}
	w.p("</tbody>\n</table>\n</section>\n")
}

func (w *htmlWriter) aggregates(sc Scorecard) {
	w.p("<section id=%q>\n<h2>Aggregates per tool</h2>\n", IDAggregates)
	if len(sc.Aggregates) == 0 {
		w.p("<p class=\"muted\">No tool was scored.</p>\n</section>\n")
		return
	}
	w.p("<table>\n<thead><tr><th>Posture</th><th>Tool</th><th>Protection</th><th>Visibility</th><th>Analytic</th><th>Technique</th><th>In time</th><th>TTD p50</th><th>TTD p95</th><th>TTD max</th><th>FP</th><th>FP / device-hour</th><th>Harm index</th><th>Harm prevented</th><th>Score</th></tr></thead>\n<tbody>\n")
	for _, a := range sc.Aggregates {
		w.p("<tr><td>%s</td><td>%s</td>", esc(a.Posture), esc(a.Tool))
		for _, v := range []string{pct(a.ProtectionRate), pct(a.Visibility), pct(a.AnalyticCoverage), pct(a.TechniqueCoverage), pct(a.InTimeCoverage),
			fmt.Sprintf("%d ms", a.TTD.P50), fmt.Sprintf("%d ms", a.TTD.P95), fmt.Sprintf("%d ms", a.TTD.Max), fmt.Sprint(a.FalsePositives),
			fmt.Sprintf("%g", a.FPPerDeviceHour), fmt.Sprintf("%g", a.HarmIndex), pct(a.HarmPrevented), fmt.Sprintf("%.1f", a.Score)} {
			w.p("<td class=\"num\">%s</td>", esc(v))
		}
		w.p("</tr>\n")
	}
	w.p("</tbody>\n</table>\n<p class=\"note\"><code>%s</code></p>\n</section>\n", esc(score.ScoreFormula))
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// fmtTick labels an axis tick in seconds when the axis reaches 1 s, else
// in milliseconds.
func fmtTick(ms, axisMax float64) string {
	if axisMax >= 1000 {
		return fmt.Sprintf("%gs", math.Round(ms/100)/10)
	}
	return fmt.Sprintf("%gms", ms)
}

func (w *htmlWriter) ttdChart(sc Scorecard, tools []string) {
	w.p("<section id=%q>\n<h2>Time to detect</h2>\n", IDTTDChart)
	w.p("<p class=\"note\">One dot per detected step (first matching alert minus the step's start); green in time, yellow delayed. Ticks mark p50 (solid) and p95 (dashed).</p>\n")
	type dot struct {
		ms      int64
		delayed bool
		step    string
	}
	byTool := map[string][]dot{}
	var maxMs int64
	for _, v := range sc.Steps {
		for _, d := range v.Tools {
			if d.TTDMs == nil {
				continue
			}
			byTool[d.Tool] = append(byTool[d.Tool], dot{*d.TTDMs, d.Delayed, v.StepID})
			maxMs = max(maxMs, *d.TTDMs)
		}
	}
	if len(byTool) == 0 {
		w.p("<p class=\"muted\">No tool detected any step.</p>\n</section>\n")
		return
	}
	const left, plotW, rowH, top = 170.0, 720.0, 34.0, 16.0
	xmax := niceCeil(float64(maxMs))
	x := func(ms float64) float64 { return left + plotW*ms/xmax }
	height := top + rowH*float64(len(tools)) + 40
	w.p("<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"time to detect per tool\">\n",
		int(left+plotW+40), int(height), int(left+plotW+40), int(height))
	w.p("<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"#f7f9fb\" stroke=\"#d7dce2\"/>\n", left, top, plotW, rowH*float64(len(tools)))
	for i := 0; i <= 5; i++ {
		ms := xmax * float64(i) / 5
		w.p("<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#d7dce2\"/>", x(ms), top, x(ms), top+rowH*float64(len(tools)))
		w.p("<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n", x(ms), top+rowH*float64(len(tools))+16, esc(fmtTick(ms, xmax)))
	}
	for i, t := range tools {
		y := top + rowH*float64(i) + rowH/2
		w.p("<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\" dominant-baseline=\"middle\">%s</text>\n", left-8, y, esc(t))
		ds := byTool[t]
		sort.Slice(ds, func(a, b int) bool {
			if ds[a].ms != ds[b].ms {
				return ds[a].ms < ds[b].ms
			}
			return CompareIDs(ds[a].step, ds[b].step) < 0
		})
		for _, d := range ds {
			c := OutcomeColors[score.OutcomeDetectedInTime]
			if d.delayed {
				c = OutcomeColors[score.OutcomeDetectedLate]
			}
			w.p("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"%s\" stroke=\"#1d2329\" stroke-width=\"0.8\"><title>%s: %d ms</title></circle>\n", x(float64(d.ms)), y, c, esc(d.step), d.ms)
		}
		for _, a := range sc.Aggregates {
			if a.Tool != t || a.Posture != sc.Run.Posture.Name || a.TTD.N == 0 {
				continue
			}
			w.p("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#1d2329\" stroke-width=\"2\"><title>p50 %d ms</title></line>\n", x(float64(a.TTD.P50)), y-12, x(float64(a.TTD.P50)), y+12, a.TTD.P50)
			w.p("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#1d2329\" stroke-width=\"2\" stroke-dasharray=\"3 2\"><title>p95 %d ms</title></line>\n", x(float64(a.TTD.P95)), y-12, x(float64(a.TTD.P95)), y+12, a.TTD.P95)
		}
	}
	w.p("</svg>\n</section>\n")
}

type barRow struct {
	label  string
	counts map[score.Outcome]int
}

// stackedBars is an inline SVG horizontal bar chart: one bar per row,
// stacked by outcome in ladder order.
func (w *htmlWriter) stackedBars(label string, rows []barRow) {
	if len(rows) == 0 {
		w.p("<p class=\"muted\">No attack step to chart.</p>\n")
		return
	}
	w.legend()
	const left, plotW, rowH, top = 260.0, 560.0, 26.0, 6.0
	maxTotal := 0
	for _, r := range rows {
		n := 0
		for _, c := range r.counts {
			n += c
		}
		maxTotal = max(maxTotal, n)
	}
	height := top + rowH*float64(len(rows)) + 10
	w.p("<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n",
		int(left+plotW+60), int(height), int(left+plotW+60), int(height), esc(label))
	for i, r := range rows {
		y := top + rowH*float64(i)
		w.p("<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\" dominant-baseline=\"middle\">%s</text>\n", left-8, y+rowH/2-2, esc(r.label))
		xx, n := left, 0
		for _, o := range score.Outcomes {
			c := r.counts[o]
			if c == 0 {
				continue
			}
			bw := plotW * float64(c) / float64(maxTotal)
			w.p("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%g\" fill=\"%s\" stroke=\"#fff\"><title>%s: %d %s</title></rect>\n",
				xx, y, bw, rowH-6, OutcomeColors[o], esc(r.label), c, OutcomeLabel(o))
			xx += bw
			n += c
		}
		w.p("<text x=\"%.1f\" y=\"%.1f\" dominant-baseline=\"middle\">%d</text>\n", xx+6, y+rowH/2-2, n)
	}
	w.p("</svg>\n")
}

// CoverageByArea counts the attack steps of each SP 1800-8 area (from the
// scenarios' area labels) by overall outcome, areas in REFERENCE.md §1.7
// order; areas without steps are left out.
func CoverageByArea(sc Scorecard) []AreaCoverage {
	counts := map[string]map[score.Outcome]int{}
	for _, s := range sc.Scenarios {
		for _, a := range s.Areas {
			for _, v := range stepsOf(sc, s.ID) {
				if counts[a] == nil {
					counts[a] = map[score.Outcome]int{}
				}
				counts[a][v.Outcome]++
			}
		}
	}
	var out []AreaCoverage
	seen := map[string]bool{}
	for _, a := range areaOrder {
		seen[a] = true
		if counts[a] != nil {
			out = append(out, AreaCoverage{Key: a, Name: Areas[a], Outcomes: counts[a]})
		}
	}
	var rest []string
	for a := range counts {
		if !seen[a] {
			rest = append(rest, a)
		}
	}
	sort.Strings(rest)
	for _, a := range rest {
		out = append(out, AreaCoverage{Key: a, Name: a, Outcomes: counts[a]})
	}
	return out
}

// AreaCoverage is the count of steps by outcome for one area or tactic.
type AreaCoverage struct {
	Key      string
	Name     string
	Outcomes map[score.Outcome]int
}

// CoverageByTactic counts the attack steps of each ATT&CK for ICS tactic
// (the step's tactic; "none" without one) by overall outcome, by tactic id.
func CoverageByTactic(sc Scorecard) []AreaCoverage {
	counts := map[string]map[score.Outcome]int{}
	for _, v := range sc.Steps {
		t := v.Tactic
		if t == "" {
			t = "none"
		}
		if counts[t] == nil {
			counts[t] = map[score.Outcome]int{}
		}
		counts[t][v.Outcome]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]AreaCoverage, 0, len(keys))
	for _, k := range keys {
		name := attck.Tactics[k]
		if name == "" {
			name = k
		}
		out = append(out, AreaCoverage{Key: k, Name: name, Outcomes: counts[k]})
	}
	return out
}

func (w *htmlWriter) coverage(sc Scorecard) {
	rows := func(cs []AreaCoverage) []barRow {
		out := make([]barRow, 0, len(cs))
		for _, c := range cs {
			out = append(out, barRow{label: c.Key + " " + c.Name, counts: c.Outcomes})
		}
		return out
	}
	w.p("<section id=%q>\n<h2>Coverage by SP 1800-8 area</h2>\n", IDCoverageArea)
	w.p("<p class=\"note\">Attack steps of the scenarios labelled with each area, by their outcome under the posture (best over tools).</p>\n")
	w.stackedBars("coverage by SP 1800-8 area", rows(CoverageByArea(sc)))
	w.p("</section>\n<section id=%q>\n<h2>Coverage by ATT&amp;CK for ICS tactic</h2>\n", IDCoverageTactic)
	w.p("<p class=\"note\">Attack steps by their tactic, by outcome under the posture (best over tools).</p>\n")
	w.stackedBars("coverage by ATT&CK for ICS tactic", rows(CoverageByTactic(sc)))
	w.p("</section>\n")
}

func (w *htmlWriter) controls(sc Scorecard, tools []string) {
	w.p("<section id=%q>\n<h2>Control scenarios</h2>\n", IDControlScenarios)
	w.p("<p class=\"note\">Benign clinical workflows under the posture: they pass when the workflow succeeds. False positives per tool are the alerts that matched no attack step inside the scenario's time span.</p>\n")
	w.p("<table>\n<thead><tr><th>Scenario</th><th>Title</th><th>State</th><th>Duration</th>")
	for _, t := range tools {
		w.p("<th>FP %s</th>", esc(t))
	}
	w.p("<th>Entries</th></tr></thead>\n<tbody>\n")
	n := 0
	for _, s := range sc.Scenarios {
		if s.Kind != KindControl {
			continue
		}
		n++
		cls := ""
		if s.State == StateFailed {
			cls = " class=\"warn\""
		}
		w.p("<tr><td>%s</td><td>%s</td><td%s>%s</td><td class=\"num\">%s</td>", esc(s.ID), esc(s.Title), cls, esc(stateText(s)),
			esc((time.Duration(s.DurationMs) * time.Millisecond).String()))
		for _, t := range tools {
			w.p("<td class=\"num\">%s</td>", esc(scenarioToolCell(s, t)))
		}
		var es []string
		for _, e := range s.Entries {
			es = append(es, e.Name+": "+e.Value)
		}
		w.p("<td>%s</td></tr>\n", esc(orDash(strings.Join(es, "; "))))
	}
	if n == 0 {
		w.p("<tr><td colspan=\"%d\" class=\"muted\">No control scenario in this run.</td></tr>\n", 5+len(tools))
	}
	w.p("</tbody>\n</table>\n</section>\n")

	w.p("<section id=%q>\n<h2>Availability cost</h2>\n", IDAvailability)
	if len(sc.Availability) == 0 {
		w.p("<p class=\"muted\">No latency measured against the baseline posture.</p>\n</section>\n")
		return
	}
	w.p("<table>\n<thead><tr><th>Posture</th><th>Metric</th><th>N</th><th>p50</th><th>p95</th><th>Baseline p50</th><th>Baseline p95</th><th>&Delta; p50</th><th>&Delta; p95</th></tr></thead>\n<tbody>\n")
	for _, c := range sc.Availability {
		w.p("<tr><td>%s</td><td>%s</td><td class=\"num\">%d</td><td class=\"num\">%d ms</td><td class=\"num\">%d ms</td><td class=\"num\">%d ms</td><td class=\"num\">%d ms</td><td class=\"num\">%+d ms</td><td class=\"num\">%+d ms</td></tr>\n",
			esc(c.Posture), esc(c.Metric), c.N, c.P50Ms, c.P95Ms, c.BaseP50Ms, c.BaseP95Ms, c.DeltaP50Ms, c.DeltaP95Ms)
	}
	w.p("</tbody>\n</table>\n</section>\n")
}

func (w *htmlWriter) falsePositives(sc Scorecard) {
	w.p("<section id=%q>\n<h2>False positives</h2>\n", IDFalsePositives)
	if len(sc.FalsePositives) == 0 {
		w.p("<p class=\"muted\">No tool.</p>\n</section>\n")
		return
	}
	w.p("<table>\n<thead><tr><th>Tool</th><th>Count</th><th>Per device-hour</th><th>First alerts</th></tr></thead>\n<tbody>\n")
	for _, f := range sc.FalsePositives {
		var first []string
		for i, a := range f.Alerts {
			if i == 5 {
				first = append(first, fmt.Sprintf("... %d more", len(f.Alerts)-5))
				break
			}
			first = append(first, fmtTime(a.Time)+" "+strings.Join(a.Assets, ",")+" "+a.Text)
		}
		w.p("<tr><td>%s</td><td class=\"num\">%d</td><td class=\"num\">%g</td><td>%s</td></tr>\n", esc(f.Tool), f.Count, f.PerDeviceHour,
			strings.ReplaceAll(esc(orDash(strings.Join(first, "\n"))), "\n", "<br>"))
	}
	w.p("</tbody>\n</table>\n</section>\n")
}

func (w *htmlWriter) harm(sc Scorecard) {
	h := sc.Harm
	w.p("<section id=%q>\n<h2>Harm</h2>\n", IDHarm)
	w.p("<p>Harm index <strong>%g</strong> (baseline %g, %s prevented); %d steps with harm, %d on high-alert drugs.</p>\n",
		h.HarmIndex, h.BaselineHarm, pct(h.HarmPrevented), h.StepsWithHarm, h.Totals.HighAlertSteps)
	t := h.Totals
	w.p("<table>\n<thead><tr><th>Max DDR</th><th>Excess drug</th><th>Interrupted min</th><th>Alarms missed</th><th>Alarms late</th><th>Doc mismatches</th><th>PHI records</th><th>Credentials</th><th>Pump-min offline</th></tr></thead>\n")
	w.p("<tbody><tr><td class=\"num\">%g</td><td class=\"num\">%g</td><td class=\"num\">%g</td><td class=\"num\">%d</td><td class=\"num\">%d</td><td class=\"num\">%d</td><td class=\"num\">%d</td><td class=\"num\">%d</td><td class=\"num\">%g</td></tr></tbody>\n</table>\n",
		t.MaxDDR, t.ExcessDrug, t.InterruptedMin, t.AlarmsMissed, t.AlarmsLate, t.DocMismatches, t.PHIExposed, t.CredsExposed, t.PumpMinutesOffline)
	if len(h.Rows) > 0 {
		w.p("<table>\n<thead><tr><th>Step</th><th>Protection</th><th>Outcome</th><th>Weighted</th><th>Metrics</th></tr></thead>\n<tbody>\n")
		for _, r := range h.Rows {
			w.p("<tr><td>%s</td><td>%s</td>", esc(r.StepID), esc(string(r.Protection)))
			w.cell(r.Outcome, "")
			w.p("<td class=\"num\">%g</td><td>%s</td></tr>\n", r.Weighted, esc(HarmMetrics(r.Metrics)))
		}
		w.p("</tbody>\n</table>\n")
	}
	w.p("</section>\n")
}
