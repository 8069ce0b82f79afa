package score

import "time"

// Defaults of Options.
const (
	// DefaultTolerance widens the match interval of a step on both edges
	// (pipeline latency and timestamp rounding).
	DefaultTolerance = 30 * time.Second
	// DefaultMaxLateness is how long after a step's clinical deadline an
	// alert still matches it (as Delayed).
	DefaultMaxLateness = 30 * time.Minute
)

// Options tune the scorer. The zero value uses the defaults.
type Options struct {
	// Tolerance widens each step's match interval on both edges; 0 means
	// DefaultTolerance, a negative value means no tolerance.
	Tolerance time.Duration
	// MaxLateness is how long after the clinical deadline an alert still
	// matches (Delayed); 0 means DefaultMaxLateness, negative means none.
	MaxLateness time.Duration
	// Weights of the harm value; the zero value means DefaultHarmWeights.
	Weights HarmWeights
}

func (o Options) tolerance() time.Duration {
	switch {
	case o.Tolerance == 0:
		return DefaultTolerance
	case o.Tolerance < 0:
		return 0
	}
	return o.Tolerance
}

func (o Options) maxLateness() time.Duration {
	switch {
	case o.MaxLateness == 0:
		return DefaultMaxLateness
	case o.MaxLateness < 0:
		return 0
	}
	return o.MaxLateness
}

func (o Options) weights() HarmWeights {
	if o.Weights == (HarmWeights{}) {
		return DefaultHarmWeights
	}
	return o.Weights
}

// Bounds are the times that decide whether an alert matches a step.
type Bounds struct {
	// From is Start - Tolerance: the first matching instant.
	From time.Time `json:"from"`
	// Deadline is End + Window + Tolerance: matches up to it are in time.
	Deadline time.Time `json:"deadline"`
	// Cutoff is Deadline + MaxLateness: matches after Deadline and up to
	// Cutoff are Delayed; later alerts do not match.
	Cutoff time.Time `json:"cutoff"`
}

// StepBounds returns the match bounds of a step under the options.
func StepBounds(s Step, opt Options) Bounds {
	w := s.Window
	if w <= 0 {
		w = DefaultWindow
	}
	end := s.End
	if end.Before(s.Start) {
		end = s.Start
	}
	tol := opt.tolerance()
	dl := end.Add(w + tol)
	return Bounds{From: s.Start.Add(-tol), Deadline: dl, Cutoff: dl.Add(opt.maxLateness())}
}

// contains reports From <= t <= Cutoff.
func (b Bounds) contains(t time.Time) bool { return !t.Before(b.From) && !t.After(b.Cutoff) }

// late reports t > Deadline.
func (b Bounds) late(t time.Time) bool { return t.After(b.Deadline) }
