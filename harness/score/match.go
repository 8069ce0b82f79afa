package score

import "strings"

// normAsset normalises an asset or address for comparison: trimmed,
// lower-case, and for host:port or [v6]:port forms the host alone.
func normAsset(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]"); i > 0 {
			return s[1:i]
		}
		return s
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 && strings.Count(s, ":") == 1 && allDigits(s[i+1:]) {
		return s[:i]
	}
	return s
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// stepAssetSet is the set of a step's normalised assets and correlation ids.
func stepAssetSet(s Step) map[string]bool {
	m := make(map[string]bool, len(s.Assets)+len(s.Correlation))
	for _, a := range s.Assets {
		if n := normAsset(a); n != "" {
			m[n] = true
		}
	}
	for _, c := range s.Correlation {
		if n := normAsset(c); n != "" {
			m[n] = true
		}
	}
	return m
}

// namesAsset reports whether the alert names one of the assets (in its
// Assets or Addresses).
func namesAsset(a Alert, set map[string]bool) bool {
	for _, x := range a.Assets {
		if set[normAsset(x)] {
			return true
		}
	}
	for _, x := range a.Addresses {
		if set[normAsset(x)] {
			return true
		}
	}
	return false
}

// Matches reports whether the alert matches the step: its time is inside
// StepBounds (From <= Time <= Cutoff) and it names a step asset or
// correlation id in its Assets or Addresses (case-insensitive, host:port
// compared by host).
func Matches(s Step, a Alert, opt Options) bool {
	return StepBounds(s, opt).contains(a.Time) && namesAsset(a, stepAssetSet(s))
}

func eqFold(list []string, v string) bool {
	v = strings.TrimSpace(v)
	if v == "" {
		return false
	}
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), v) {
			return true
		}
	}
	return false
}

func anyEqFold(list, want []string) bool {
	for _, w := range want {
		if eqFold(list, w) {
			return true
		}
	}
	return false
}

// alertCategory is the category one matching alert earns on the step.
func alertCategory(s Step, a Alert) Category {
	switch {
	case a.Telemetry:
		return CategoryTelemetry
	case anyEqFold(a.Techniques, s.Techniques):
		return CategoryTechnique
	case eqFold(a.Tactics, s.Tactic):
		return CategoryTactic
	}
	return CategoryGeneral
}

// namesOtherStep reports whether the alert names a correlation id of
// another step of the same scenario (in Assets, Addresses or, as a
// case-insensitive substring of at least 3 characters, Text).
func namesOtherStep(s Step, a Alert, all []Step) bool {
	text := strings.ToLower(a.Text)
	for _, o := range all {
		if o.StepID == s.StepID || o.ScenarioID != s.ScenarioID || (o.RunID != s.RunID && o.RunID != "" && s.RunID != "") {
			continue
		}
		for _, c := range o.Correlation {
			n := normAsset(c)
			if n == "" {
				continue
			}
			if namesAsset(a, map[string]bool{n: true}) {
				return true
			}
			if lc := strings.ToLower(strings.TrimSpace(c)); len(lc) >= 3 && strings.Contains(text, lc) {
				return true
			}
		}
	}
	return false
}
