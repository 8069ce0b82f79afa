package score

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// AggregateInput is one posture's scored run.
type AggregateInput struct {
	Posture  string        `json:"posture"`
	Verdicts []StepVerdict `json:"verdicts"`
	// FalsePositives per tool, as FalsePositives returns them.
	FalsePositives map[string][]Alert `json:"false_positives,omitempty"`
	// DeviceHours is pumps x hours the run observed (for FP rates).
	DeviceHours float64 `json:"device_hours"`
	// BaselineHarm is the harm index of the same steps under the baseline
	// posture (every control off); 0 when unknown or harmless.
	BaselineHarm float64 `json:"baseline_harm"`
}

// TTD summarises times to detect (ms, nearest-rank percentiles).
type TTD struct {
	N   int   `json:"n"`
	P50 int64 `json:"p50_ms"`
	P95 int64 `json:"p95_ms"`
	Max int64 `json:"max_ms"`
}

// ToolScore is the aggregate vector of one (posture, tool).
type ToolScore struct {
	Posture string `json:"posture"`
	Tool    string `json:"tool"`
	Steps   int    `json:"steps"`

	// Protection (posture-wide, the same for every tool).
	ProtectionApplicable int     `json:"protection_applicable"`
	Blocked              int     `json:"blocked"`
	ProtectionRate       float64 `json:"protection_rate"`
	SafetyCaught         int     `json:"safety_caught"`

	// Detection of this tool.
	DetectionApplicable int     `json:"detection_applicable"`
	Visible             int     `json:"visible"`
	Analytic            int     `json:"analytic"`
	Technique           int     `json:"technique"`
	InTime              int     `json:"in_time"`
	Delayed             int     `json:"delayed"`
	Correlated          int     `json:"correlated"`
	Visibility          float64 `json:"visibility"`
	AnalyticCoverage    float64 `json:"analytic_coverage"`
	TechniqueCoverage   float64 `json:"technique_coverage"`
	InTimeCoverage      float64 `json:"in_time_coverage"`
	TTD                 TTD     `json:"ttd"`

	FalsePositives  int     `json:"false_positives"`
	DeviceHours     float64 `json:"device_hours"`
	FPPerDeviceHour float64 `json:"fp_per_device_hour"`

	// Harm (posture-wide).
	HarmSteps     int     `json:"harm_steps"`
	HarmIndex     float64 `json:"harm_index"`
	BaselineHarm  float64 `json:"baseline_harm"`
	HarmPrevented float64 `json:"harm_prevented"`

	Outcomes map[Outcome]int `json:"outcomes"`

	// Score is the single 0-100 lab score; ScoreFormula prints how.
	Score        float64 `json:"score"`
	ScoreFormula string  `json:"score_formula"`
}

// ScoreFormula is the formula of ToolScore.Score.
const ScoreFormula = "score = 100 * (protection_rate + harm_prevented + in_time_coverage / (1 + fp_per_device_hour)) / 3"

func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return round6(float64(n) / float64(d))
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of
// values: the ceil(p/100*n)-th smallest; 0 for no values.
func Percentile(values []int64, p float64) int64 {
	if len(values) == 0 {
		return 0
	}
	s := append([]int64(nil), values...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(math.Ceil(p / 100 * float64(len(s))))
	k = min(max(k, 1), len(s))
	return s[k-1]
}

// HarmPreventedShare is (baseline - harm) / baseline clamped to [0, 1];
// with no baseline harm it is 1 when harm is 0 too, else 0.
func HarmPreventedShare(harm, baseline float64) float64 {
	if baseline <= 0 {
		if harm <= 0 {
			return 1
		}
		return 0
	}
	return round6(math.Min(1, math.Max(0, (baseline-harm)/baseline)))
}

// HarmIndex is the sum of the steps' weighted harm.
func HarmIndex(vs []StepVerdict) float64 {
	var h float64
	for _, v := range vs {
		h += v.Harm.Weighted
	}
	return round6(h)
}

// Aggregate computes the vector of every tool that appears in the
// verdicts or the false positives, sorted by tool name.
func Aggregate(in AggregateInput) []ToolScore {
	tools := map[string]bool{}
	for _, v := range in.Verdicts {
		for _, d := range v.Tools {
			tools[d.Tool] = true
		}
	}
	for t := range in.FalsePositives {
		tools[t] = true
	}
	names := make([]string, 0, len(tools))
	for t := range tools {
		names = append(names, t)
	}
	sort.Strings(names)

	var base ToolScore
	base.Posture, base.Steps = in.Posture, len(in.Verdicts)
	for _, v := range in.Verdicts {
		if v.Protection != ProtectionNotApplicable {
			base.ProtectionApplicable++
		}
		if v.Protection == ProtectionBlocked {
			base.Blocked++
		}
		if v.Safety == SafetyCaught {
			base.SafetyCaught++
		}
		if v.Harm.Occurred {
			base.HarmSteps++
		}
	}
	base.ProtectionRate = ratio(base.Blocked, base.ProtectionApplicable)
	base.HarmIndex = HarmIndex(in.Verdicts)
	base.BaselineHarm = in.BaselineHarm
	base.HarmPrevented = HarmPreventedShare(base.HarmIndex, in.BaselineHarm)
	base.DeviceHours = in.DeviceHours

	out := make([]ToolScore, 0, len(names))
	for _, name := range names {
		ts := base
		ts.Tool = name
		ts.Outcomes = map[Outcome]int{}
		var ttds []int64
		for _, v := range in.Verdicts {
			d, ok := v.Tool(name)
			if !ok {
				d = ToolDetection{Tool: name, Category: CategoryNone, Outcome: v.Outcome}
				if v.Outcome != OutcomePrevented && v.Outcome != OutcomeCaughtBySafety {
					d.Outcome = OutcomeMissed
				}
			}
			ts.Outcomes[d.Outcome]++
			if d.Category == CategoryNotApplicable {
				continue
			}
			ts.DetectionApplicable++
			if d.Category.Visible() {
				ts.Visible++
			}
			if d.Category.Analytic() {
				ts.Analytic++
			}
			if d.Category == CategoryTechnique {
				ts.Technique++
			}
			if d.InTime {
				ts.InTime++
			}
			if d.Delayed {
				ts.Delayed++
			}
			if d.Correlated {
				ts.Correlated++
			}
			if d.TTDMs != nil {
				ttds = append(ttds, *d.TTDMs)
			}
		}
		ts.Visibility = ratio(ts.Visible, ts.DetectionApplicable)
		ts.AnalyticCoverage = ratio(ts.Analytic, ts.DetectionApplicable)
		ts.TechniqueCoverage = ratio(ts.Technique, ts.DetectionApplicable)
		ts.InTimeCoverage = ratio(ts.InTime, ts.DetectionApplicable)
		ts.TTD = TTD{N: len(ttds), P50: Percentile(ttds, 50), P95: Percentile(ttds, 95), Max: Percentile(ttds, 100)}
		ts.FalsePositives = len(in.FalsePositives[name])
		ts.FPPerDeviceHour = FPRate(ts.FalsePositives, in.DeviceHours)
		ts.Score = LabScore(ts)
		ts.ScoreFormula = ScoreFormula
		out = append(out, ts)
	}
	return out
}

// LabScore is ScoreFormula on a vector, rounded to 0.1.
func LabScore(ts ToolScore) float64 {
	s := 100 * (ts.ProtectionRate + ts.HarmPrevented + ts.InTimeCoverage/(1+ts.FPPerDeviceHour)) / 3
	return math.Round(s*10) / 10
}

// LatencySamples are a control scenario's latencies: posture -> metric
// (e.g. "order_to_infusion", "alarm_to_nurse") -> samples.
type LatencySamples map[string]map[string][]time.Duration

// AvailabilityCost is the latency cost of a posture on one metric against
// the baseline posture (ms, nearest-rank percentiles).
type AvailabilityCost struct {
	Posture    string `json:"posture"`
	Metric     string `json:"metric"`
	N          int    `json:"n"`
	P50Ms      int64  `json:"p50_ms"`
	P95Ms      int64  `json:"p95_ms"`
	BaseP50Ms  int64  `json:"base_p50_ms"`
	BaseP95Ms  int64  `json:"base_p95_ms"`
	DeltaP50Ms int64  `json:"delta_p50_ms"`
	DeltaP95Ms int64  `json:"delta_p95_ms"`
}

// Availability computes, for every posture other than baseline and every
// metric with samples in both, the p50 and p95 and their deltas against
// the baseline, sorted by posture then metric.
func Availability(samples LatencySamples, baseline string) []AvailabilityCost {
	ms := func(ds []time.Duration) []int64 {
		out := make([]int64, len(ds))
		for i, d := range ds {
			out[i] = d.Milliseconds()
		}
		return out
	}
	base := samples[baseline]
	var out []AvailabilityCost
	for posture, metrics := range samples {
		if posture == baseline {
			continue
		}
		for metric, ds := range metrics {
			bs := base[metric]
			if len(ds) == 0 || len(bs) == 0 {
				continue
			}
			v, b := ms(ds), ms(bs)
			c := AvailabilityCost{Posture: posture, Metric: metric, N: len(ds),
				P50Ms: Percentile(v, 50), P95Ms: Percentile(v, 95),
				BaseP50Ms: Percentile(b, 50), BaseP95Ms: Percentile(b, 95)}
			c.DeltaP50Ms, c.DeltaP95Ms = c.P50Ms-c.BaseP50Ms, c.P95Ms-c.BaseP95Ms
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Posture != out[j].Posture {
			return out[i].Posture < out[j].Posture
		}
		return out[i].Metric < out[j].Metric
	})
	return out
}

// String is a one-line summary of the vector.
func (ts ToolScore) String() string {
	return fmt.Sprintf("%s/%s protection=%.2f visibility=%.2f analytic=%.2f technique=%.2f ttd_p50=%dms fp=%d harm=%.1f prevented=%.2f score=%.1f",
		ts.Posture, ts.Tool, ts.ProtectionRate, ts.Visibility, ts.AnalyticCoverage, ts.TechniqueCoverage,
		ts.TTD.P50, ts.FalsePositives, ts.HarmIndex, ts.HarmPrevented, ts.Score)
}
