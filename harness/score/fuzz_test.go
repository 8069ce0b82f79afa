package score

import (
	"testing"
	"time"
)

// FuzzAlert feeds tool-controlled alert fields (assets, addresses,
// techniques, text, time) to the matcher: it must not panic, and Matches,
// Detect and FalsePositives must agree.
func FuzzAlert(f *testing.F) {
	for _, s := range []struct {
		asset, addr, tech, text string
		offset                  int64
	}{
		{"pump-001", "", "T0836", "", 1000},
		{"", "10.0.4.11:1883", "", "", 0},
		{"", "[10.0.4.11]:1883", "", "MSG-0042", -30000},
		{" PUMP-001 ", "fe80::1", "t0855", "mqtt-evil-1", 2190000},
		{"[", "]:", "", "", 2190001},
		{"pump-00", "host:http", "T0831", "x", 600000},
	} {
		f.Add(s.asset, s.addr, s.tech, s.text, s.offset)
	}
	steps := calibrationSteps()
	f.Fuzz(func(t *testing.T, asset, addr, tech, text string, offsetMs int64) {
		a := Alert{Tool: "fz", Time: steps[1].Start.Add(time.Duration(offsetMs) * time.Millisecond),
			Assets: []string{asset}, Addresses: []string{addr}, Techniques: []string{tech}, Text: text}
		any := false
		for _, s := range steps {
			m := Matches(s, a, Options{})
			d := Detect(s, Scope{Tool: "fz"}, []Alert{a}, steps, Options{})
			if m != (d.Alerts == 1) || m != d.Category.Visible() {
				t.Fatalf("%s: Matches %v but Detect %+v", s.StepID, m, d)
			}
			any = any || m
		}
		if fps := FalsePositives(steps, []Alert{a}, Options{}); any == (len(fps["fz"]) == 1) {
			t.Fatalf("matched %v but false positives %v", any, fps)
		}
	})
}
