package score

import "sort"

// FalsePositives returns, per tool, the alerts that match no step (by the
// time and asset rule of Matches), in time order. Telemetry records are
// never false positives. Tools without a false positive are absent.
func FalsePositives(steps []Step, alerts []Alert, opt Options) map[string][]Alert {
	type prepared struct {
		b      Bounds
		assets map[string]bool
	}
	ps := make([]prepared, len(steps))
	for i, s := range steps {
		ps[i] = prepared{StepBounds(s, opt), stepAssetSet(s)}
	}
	out := map[string][]Alert{}
	for _, a := range alerts {
		if a.Telemetry {
			continue
		}
		matched := false
		for _, p := range ps {
			if p.b.contains(a.Time) && namesAsset(a, p.assets) {
				matched = true
				break
			}
		}
		if !matched {
			out[a.Tool] = append(out[a.Tool], a)
		}
	}
	for _, l := range out {
		sort.SliceStable(l, func(i, j int) bool { return l[i].Time.Before(l[j].Time) })
	}
	return out
}

// FPRate is false positives per device-hour (0 when deviceHours <= 0).
func FPRate(n int, deviceHours float64) float64 {
	if deviceHours <= 0 {
		return 0
	}
	return round6(float64(n) / deviceHours)
}
