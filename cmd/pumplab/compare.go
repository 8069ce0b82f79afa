package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pumplab/pumplab/harness/compare"
	"github.com/pumplab/pumplab/harness/report"
)

func init() {
	register("compare", "list regressions of run NEW against run BASE; non-zero exit on any", cmdCompare)
}

// errRegressed marks a comparison that found regressions.
var errRegressed = errors.New("regressions found")

func cmdCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compare", stderr)
	ttd := fs.Duration("ttd-tolerance", 0, "how much a tool's p50/p95 time to detect may grow (default 1s)")
	cov := fs.Float64("coverage-tolerance", 0, "how much a coverage ratio may drop (0..1)")
	fp := fs.Int("fp-tolerance", 0, "how many more false positives a tool may raise")
	asJSON := fs.Bool("json", false, "print the regressions as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pumplab compare [flags] BASE NEW   (each a scorecard.json or a run directory)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flagErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(stderr, "pumplab compare: want BASE and NEW (scorecard.json files or run directories)")
		return errUsage
	}
	base, err := loadScorecard(fs.Arg(0))
	if err != nil {
		return err
	}
	cur, err := loadScorecard(fs.Arg(1))
	if err != nil {
		return err
	}
	for _, sc := range []report.Scorecard{base, cur} {
		if why := compare.Vacuous(sc); why != "" {
			return fmt.Errorf("refused, vacuous run: %s", why)
		}
	}
	regs := compare.Regressions(base, cur, compare.Options{TTDToleranceMs: ttd.Milliseconds(), CoverageTolerance: *cov, FPTolerance: *fp})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if regs == nil {
			regs = []compare.Regression{}
		}
		if err := enc.Encode(regs); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "compare %s (base) -> %s (new): %d regressions\n", base.Run.ID, cur.Run.ID, len(regs))
		for _, r := range regs {
			fmt.Fprintln(stdout, "  "+r.String())
		}
	}
	if len(regs) > 0 {
		return errRegressed
	}
	return nil
}

// loadScorecard reads a scorecard.json, or the one in a run directory.
func loadScorecard(path string) (report.Scorecard, error) {
	var sc report.Scorecard
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, report.FileScorecard)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return sc, fmt.Errorf("read scorecard: %w", err)
	}
	if err := json.Unmarshal(b, &sc); err != nil {
		return sc, fmt.Errorf("scorecard %s: %w", path, err)
	}
	if sc.SchemaVersion == "" {
		return sc, fmt.Errorf("scorecard %s: no schema_version: not a pumplab scorecard", path)
	}
	if sc.SchemaVersion != report.SchemaVersion {
		return sc, fmt.Errorf("scorecard %s: schema version %s, this pumplab reads %s", path, sc.SchemaVersion, report.SchemaVersion)
	}
	return sc, nil
}
