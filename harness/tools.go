package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

// Built-in calibration tools (design/SCORING.md "Calibration"). They use
// only the public contract: they post alerts to the lab's alert intake over
// HTTP, like any vendor's tool. The oracle and the late oracle read ground
// truth, which no real tool can; that is what makes them calibration.
const (
	ToolNull   = "null"   // never alerts
	ToolOracle = "oracle" // alerts on every step as it starts, with its techniques
	ToolNoisy  = "noisy"  // alerts on every pump at a fixed interval, without techniques
	ToolLate   = "late"   // the oracle, after each step's clinical window
)

// BuiltinTools lists the built-in tool names.
var BuiltinTools = []string{ToolNull, ToolOracle, ToolNoisy, ToolLate}

// BuiltinTool is a running built-in tool.
type BuiltinTool struct {
	Name   string
	url    string
	client *http.Client
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	sent   int
}

// StartBuiltinTool starts a built-in tool that posts to the intake at
// alertsURL (http://host:port, the intake's HTTPURL). assets are what the
// noisy tool alerts on; late is how long after the end of a step's clinical
// window the late oracle alerts (the scorer's tolerance and a margin).
func StartBuiltinTool(name, alertsURL string, run *Run, assets []string, noisyEvery, late time.Duration) (*BuiltinTool, error) {
	t := &BuiltinTool{Name: name, url: strings.TrimRight(alertsURL, "/") + "/v1/alerts",
		client: &http.Client{Timeout: 5 * time.Second}, stop: make(chan struct{})}
	switch name {
	case ToolNull:
	case ToolOracle:
		run.OnStep(func(s score.Step) { t.post(oracleAlert(name, s)) })
	case ToolLate:
		run.OnStepEnd(func(s score.Step) {
			window := s.Window
			if window <= 0 {
				window = score.DefaultWindow
			}
			wait := time.Until(s.End.Add(window + late))
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				select {
				case <-time.After(wait):
				case <-t.stop:
					return
				}
				t.post(oracleAlert(name, s))
			}()
		})
	case ToolNoisy:
		if noisyEvery <= 0 {
			noisyEvery = time.Second
		}
		sorted := append([]string(nil), assets...)
		sort.Strings(sorted)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			tick := time.NewTicker(noisyEvery)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					for _, a := range sorted {
						t.post(map[string]any{"tool": name, "assets": []string{a}, "severity": "low", "text": "anomalous traffic on " + a})
					}
				case <-t.stop:
					return
				}
			}
		}()
	default:
		return nil, fmt.Errorf("harness: no built-in tool %q (built in: %s)", name, strings.Join(BuiltinTools, ", "))
	}
	return t, nil
}

func oracleAlert(tool string, s score.Step) map[string]any {
	a := map[string]any{"tool": tool, "assets": s.Assets[:1], "techniques": s.Techniques, "severity": "high",
		"text": "calibration alert for " + s.StepID}
	if s.Tactic != "" {
		a["tactics"] = []string{s.Tactic}
	}
	return a
}

func (t *BuiltinTool) post(alert map[string]any) {
	b, _ := json.Marshal(alert)
	resp, err := t.client.Post(t.url, "application/json", bytes.NewReader(b))
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.errs = append(t.errs, err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.errs = append(t.errs, fmt.Errorf("intake answered %s", resp.Status))
		return
	}
	t.sent++
}

// Stop waits for alerts still pending (the late oracle's) until ctx ends,
// then stops the tool; it reports how many alerts were delivered and the
// first delivery error.
func (t *BuiltinTool) Stop(ctx context.Context) (sent int, err error) {
	done := make(chan struct{})
	if t.Name == ToolNoisy {
		close(t.stop)
	}
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if t.Name != ToolNoisy {
			close(t.stop)
		}
		<-done
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.errs) > 0 {
		err = fmt.Errorf("tool %s: %d alerts not delivered, first: %w", t.Name, len(t.errs), t.errs[0])
	}
	return t.sent, err
}
