package score

import (
	"sort"
	"strings"
)

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
		SortAlerts(l)
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

// SortAlerts sorts alerts by time, then by their other fields, so that the
// order never depends on the order the alerts arrived in.
func SortAlerts(l []Alert) {
	sort.SliceStable(l, func(i, j int) bool {
		if !l[i].Time.Equal(l[j].Time) {
			return l[i].Time.Before(l[j].Time)
		}
		return alertKey(l[i]) < alertKey(l[j])
	})
}

func alertKey(a Alert) string {
	tel := "0"
	if a.Telemetry {
		tel = "1"
	}
	return strings.Join([]string{a.Tool, a.Reported.UTC().Format("2006-01-02T15:04:05.999999999"), a.Severity,
		strings.Join(a.Assets, "\x01"), strings.Join(a.Addresses, "\x01"), strings.Join(a.Techniques, "\x01"),
		strings.Join(a.Tactics, "\x01"), a.Category, a.Text, tel, a.Raw, a.Source}, "\x00")
}
