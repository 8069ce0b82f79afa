package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/pumplab/pumplab/harness/score"
)

// File names of the run directory written by Write (junit.xml is Ginkgo's).
const (
	FileScorecard   = "scorecard.json"
	FileSummary     = "summary.md"
	FileNavigator   = "navigator-layer.json"
	FileGroundTruth = "ground-truth.jsonl"
	FileAlerts      = "alerts.jsonl"
	FileHTML        = "report.html"
)

// Files renders every file of the run directory in memory, keyed by file
// name. steps are the ground truth and alerts every alert of the run; both
// are written sorted (steps by start, scenario and step id; alerts by
// score.SortAlerts) without changing the caller's slices.
func Files(sc Scorecard, steps []score.Step, alerts []score.Alert) (map[string][]byte, error) {
	card, err := indentJSON(sc)
	if err != nil {
		return nil, fmt.Errorf("report: encode %s: %w", FileScorecard, err)
	}
	layer, err := indentJSON(NavigatorLayer(sc))
	if err != nil {
		return nil, fmt.Errorf("report: encode %s: %w", FileNavigator, err)
	}
	gt, err := GroundTruthJSONL(steps)
	if err != nil {
		return nil, err
	}
	al, err := AlertsJSONL(alerts)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		FileScorecard:   card,
		FileSummary:     SummaryMarkdown(sc),
		FileNavigator:   layer,
		FileGroundTruth: gt,
		FileAlerts:      al,
		FileHTML:        HTML(sc),
	}, nil
}

// Write writes every file of the run directory into dir (created if
// missing): scorecard.json, summary.md, navigator-layer.json,
// ground-truth.jsonl, alerts.jsonl and report.html. It is the package's
// only function with side effects.
func Write(dir string, sc Scorecard, steps []score.Step, alerts []score.Alert) error {
	files, err := Files(sc, steps, alerts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: write %s: %w", dir, err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o644); err != nil {
			return fmt.Errorf("report: write %s: %w", n, err)
		}
	}
	return nil
}

// MarshalScorecard is scorecard.json: indented JSON with a final newline.
func MarshalScorecard(sc Scorecard) ([]byte, error) { return indentJSON(sc) }

func indentJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// GroundTruthJSONL is ground-truth.jsonl: one score.Step per line, times
// in UTC, sorted by start, then scenario and step id.
func GroundTruthJSONL(steps []score.Step) ([]byte, error) {
	s := slices.Clone(steps)
	for i := range s {
		s[i].Start, s[i].End = utcOrZero(s[i].Start), utcOrZero(s[i].End)
		s[i].LabStart, s[i].LabEnd = utcOrZero(s[i].LabStart), utcOrZero(s[i].LabEnd)
	}
	sort.SliceStable(s, func(i, j int) bool {
		if !s[i].Start.Equal(s[j].Start) {
			return s[i].Start.Before(s[j].Start)
		}
		if c := CompareIDs(s[i].ScenarioID, s[j].ScenarioID); c != 0 {
			return c < 0
		}
		return CompareIDs(s[i].StepID, s[j].StepID) < 0
	})
	return jsonl(s, FileGroundTruth)
}

// AlertsJSONL is alerts.jsonl: one score.Alert per line, times in UTC,
// in score.SortAlerts order.
func AlertsJSONL(alerts []score.Alert) ([]byte, error) {
	as := cloneAlerts(alerts)
	score.SortAlerts(as)
	return jsonl(as, FileAlerts)
}

func jsonl[T any](items []T, name string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return nil, fmt.Errorf("report: encode %s: %w", name, err)
		}
	}
	return b.Bytes(), nil
}
