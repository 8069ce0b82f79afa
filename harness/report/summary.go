package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

// OutcomeLabel is the short label of an outcome on the ladder: Prevented,
// Caught, Detected, Late, Missed, NA.
func OutcomeLabel(o score.Outcome) string {
	switch o {
	case score.OutcomePrevented:
		return "Prevented"
	case score.OutcomeCaughtBySafety:
		return "Caught"
	case score.OutcomeDetectedInTime:
		return "Detected"
	case score.OutcomeDetectedLate:
		return "Late"
	case score.OutcomeMissed:
		return "Missed"
	}
	return "NA"
}

// mdCell escapes a value for a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", `\|`)
	if s == "" {
		return "-"
	}
	return s
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// SummaryMarkdown is summary.md: run metadata, one row per scenario with
// its outcome per tool, the aggregates per tool, false positives,
// availability cost, harm and notes.
func SummaryMarkdown(sc Scorecard) []byte {
	var b strings.Builder
	r := sc.Run
	tools := scorecardTools(sc)
	fmt.Fprintf(&b, "# pumplab run %s\n\n", r.ID)
	fmt.Fprintf(&b, "Posture `%s` (controls: %s), provider `%s`, %d pumps, seed %d, clock x%g, pumplab %s, scorecard schema %s.\n",
		r.Posture.Name, mdCell(strings.Join(r.Posture.Controls, ", ")), r.Provider, r.Pumps, r.Seed, r.ClockSpeed,
		mdCell(r.PumplabVersion), sc.SchemaVersion)
	fmt.Fprintf(&b, "From %s to %s. Not for clinical use.\n\n", fmtTime(r.Start), fmtTime(r.End))
	if len(r.Tools) > 0 {
		b.WriteString("Tools: ")
		for i, t := range r.Tools {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %s", t.Name, mdCell(t.Version))
		}
		b.WriteString(".\n\n")
	}

	b.WriteString("## Scenarios\n\n| Scenario | Kind | Title | State | Duration | Outcome |")
	for _, t := range tools {
		fmt.Fprintf(&b, " %s |", mdCell(t))
	}
	b.WriteString("\n|---|---|---|---|---|---|")
	for range tools {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, s := range sc.Scenarios {
		state := s.State
		if s.Reason != "" {
			state += ": " + s.Reason
		}
		out := "-"
		if s.Outcome != "" {
			out = OutcomeLabel(s.Outcome)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |", s.ID, s.Kind, mdCell(s.Title), mdCell(state),
			time.Duration(s.DurationMs)*time.Millisecond, out)
		for _, t := range tools {
			b.WriteString(" " + scenarioToolCell(s, t) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\nOutcome of an attack scenario: its worst step (Prevented > Caught > Detected > Late > Missed; NA outside a tool's scope). Control scenarios show false positives per tool.\n")

	if len(sc.Aggregates) > 0 {
		b.WriteString("\n## Aggregates per tool\n\n| Posture | Tool | Protection | Visibility | Analytic | Technique | In time | TTD p50 / p95 / max | FP | FP per device-hour | Harm index | Harm prevented | Score |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, a := range sc.Aggregates {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %d / %d / %d ms | %d | %g | %g | %s | %.1f |\n",
				mdCell(a.Posture), mdCell(a.Tool), pct(a.ProtectionRate), pct(a.Visibility), pct(a.AnalyticCoverage),
				pct(a.TechniqueCoverage), pct(a.InTimeCoverage), a.TTD.P50, a.TTD.P95, a.TTD.Max, a.FalsePositives,
				a.FPPerDeviceHour, a.HarmIndex, pct(a.HarmPrevented), a.Score)
		}
		fmt.Fprintf(&b, "\n`%s`\n", score.ScoreFormula)
	}

	b.WriteString("\n## False positives\n\n")
	if len(sc.FalsePositives) == 0 {
		b.WriteString("No tool.\n")
	} else {
		b.WriteString("| Tool | Count | Per device-hour | First |\n|---|---|---|---|\n")
		for _, f := range sc.FalsePositives {
			first := "-"
			if len(f.Alerts) > 0 {
				a := f.Alerts[0]
				first = fmtTime(a.Time) + " " + mdCell(a.Text)
			}
			fmt.Fprintf(&b, "| %s | %d | %g | %s |\n", mdCell(f.Tool), f.Count, f.PerDeviceHour, first)
		}
	}

	if len(sc.Availability) > 0 {
		b.WriteString("\n## Availability cost\n\n| Posture | Metric | N | p50 | p95 | Baseline p50 | Baseline p95 | Δp50 | Δp95 |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, c := range sc.Availability {
			fmt.Fprintf(&b, "| %s | %s | %d | %d ms | %d ms | %d ms | %d ms | %+d ms | %+d ms |\n", mdCell(c.Posture), mdCell(c.Metric),
				c.N, c.P50Ms, c.P95Ms, c.BaseP50Ms, c.BaseP95Ms, c.DeltaP50Ms, c.DeltaP95Ms)
		}
	}

	h := sc.Harm
	fmt.Fprintf(&b, "\n## Harm\n\nHarm index %g (baseline %g, %s prevented); %d steps with harm.\n", h.HarmIndex, h.BaselineHarm, pct(h.HarmPrevented), h.StepsWithHarm)
	if len(h.Rows) > 0 {
		b.WriteString("\n| Step | Protection | Outcome | Weighted | Metrics |\n|---|---|---|---|---|\n")
		for _, row := range h.Rows {
			fmt.Fprintf(&b, "| %s | %s | %s | %g | %s |\n", row.StepID, row.Protection, OutcomeLabel(row.Outcome), row.Weighted, mdCell(HarmMetrics(row.Metrics)))
		}
	}

	if len(sc.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range sc.Notes {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
	}
	return []byte(b.String())
}

func scenarioToolCell(s Scenario, tool string) string {
	for _, st := range s.Tools {
		if st.Tool != tool {
			continue
		}
		if st.Outcome != "" {
			return OutcomeLabel(st.Outcome)
		}
		if !s.Start.IsZero() && !s.End.IsZero() {
			return fmt.Sprintf("%d FP", st.FalsePositives)
		}
	}
	return "-"
}

// HarmMetrics describes the non-zero harm metrics in words.
func HarmMetrics(m score.Harm) string {
	var p []string
	if m.DDR != 0 {
		p = append(p, fmt.Sprintf("DDR %g", m.DDR))
	}
	if m.ExcessDrug != 0 {
		p = append(p, fmt.Sprintf("excess drug %g", m.ExcessDrug))
	}
	if m.InterruptedMin != 0 {
		p = append(p, fmt.Sprintf("interrupted %g min", m.InterruptedMin))
	}
	if m.AlarmsMissed != 0 {
		p = append(p, fmt.Sprintf("%d alarms missed", m.AlarmsMissed))
	}
	if m.AlarmsLate != 0 {
		p = append(p, fmt.Sprintf("%d alarms late", m.AlarmsLate))
	}
	if m.DocMismatch {
		p = append(p, "documentation mismatch")
	}
	if m.PHIExposed != 0 {
		p = append(p, fmt.Sprintf("%d PHI records", m.PHIExposed))
	}
	if m.CredsExposed != 0 {
		p = append(p, fmt.Sprintf("%d credentials", m.CredsExposed))
	}
	if m.PumpMinutesOffline != 0 {
		p = append(p, fmt.Sprintf("%g pump-min offline", m.PumpMinutesOffline))
	}
	if m.HighAlert {
		p = append(p, "high-alert drug")
	}
	return strings.Join(p, ", ")
}

// scorecardTools are the tools of the scorecard, sorted (as FalsePositives
// lists them, which Build fills for every tool).
func scorecardTools(sc Scorecard) []string {
	out := make([]string, 0, len(sc.FalsePositives))
	for _, f := range sc.FalsePositives {
		out = append(out, f.Tool)
	}
	return out
}
