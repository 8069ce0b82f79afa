package score

import (
	"slices"
	"sort"
	"time"
)

// Calibration tools: pure alert generators that the scorer is tested
// against (SCORING.md, Calibration), usable as real tools of the lab.

// NullAlerts is the null tool: it never alerts.
func NullAlerts(tool string, steps []Step) []Alert { return nil }

// OracleAlerts is the oracle tool: one alert per step at Start + 1 s naming
// the step's first asset, all its techniques and its tactic.
func OracleAlerts(tool string, steps []Step) []Alert {
	return shifted(tool, steps, func(s Step) time.Time { return s.Start.Add(time.Second) })
}

// LateAlerts is the late oracle: the oracle's alert moved to 1 s after the
// step's clinical deadline (End + Window + Tolerance), so every step is
// Delayed; it stays within MaxLateness as long as that is over 1 s.
func LateAlerts(tool string, steps []Step, opt Options) []Alert {
	return shifted(tool, steps, func(s Step) time.Time { return StepBounds(s, opt).Deadline.Add(time.Second) })
}

func shifted(tool string, steps []Step, at func(Step) time.Time) []Alert {
	out := make([]Alert, 0, len(steps))
	for _, s := range steps {
		a := Alert{Tool: tool, Time: at(s), Severity: "high", Category: "calibration",
			Techniques: slices.Clone(s.Techniques), Text: "oracle: " + s.StepID, Source: "calibration"}
		if len(s.Assets) > 0 {
			a.Assets = []string{s.Assets[0]}
		}
		if s.Tactic != "" {
			a.Tactics = []string{s.Tactic}
		}
		out = append(out, a)
	}
	return out
}

// NoisyAlerts is the noisy tool: one alert naming each asset, no technique
// or tactic, at from, from+every, ... up to and including to. every <= 0
// means one minute. Assets are deduplicated and sorted.
func NoisyAlerts(tool string, assets []string, from, to time.Time, every time.Duration) []Alert {
	if every <= 0 {
		every = time.Minute
	}
	as := slices.Clone(assets)
	sort.Strings(as)
	as = slices.Compact(as)
	var out []Alert
	for t := from; !t.After(to); t = t.Add(every) {
		for _, a := range as {
			out = append(out, Alert{Tool: tool, Time: t, Severity: "low", Category: "calibration",
				Assets: []string{a}, Text: "noisy: activity on " + a, Source: "calibration"})
		}
	}
	return out
}

// StepAssets is the sorted, deduplicated union of the steps' assets.
func StepAssets(steps []Step) []string {
	var as []string
	for _, s := range steps {
		as = append(as, s.Assets...)
	}
	sort.Strings(as)
	return slices.Compact(as)
}
