package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/report"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/posture"
	_ "github.com/pumplab/pumplab/scenarios" // the suite the binary carries
)

func init() {
	register("run", "run the scenario suite on a lab and write the reports", cmdRun)
}

// failT is the GinkgoTestingT of a suite run from the binary.
type failT struct{ failed bool }

func (t *failT) Fail() { t.failed = true }

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	var t lab.Topology
	topologyFlags(fs, &t, 300)
	out := fs.String("out", "out", "directory for the run's reports (a subdirectory per run)")
	labName := fs.String("lab", "inproc", "lab provider")
	filter := fs.String("label-filter", "", "Ginkgo label filter, e.g. 'kind:control && !CTL-04'")
	postureRef := fs.String("posture", "legacy", "security posture: a built-in name (legacy, nccoe) or a posture YAML file")
	baseline := fs.String("baseline", "", "a previous run directory (the baseline posture's): the scorecard's availability gives this run's latency cost against it")
	var controlFlags multiFlag
	fs.Var(&controlFlags, "control", "switch one control, NAME=on|off (or NAME.PARAM=VALUE), repeatable")
	var tools multiFlag
	fs.Var(&tools, "tool", "tool under test, repeatable: a tool manifest (YAML, docs/tools.md) or built in: null, oracle, noisy, late")
	var in intakeFlags
	fs.StringVar(&in.HTTP, "alerts-http", "127.0.0.1:0", "alert intake: HTTP POST /v1/alerts listen address (- disables)")
	fs.StringVar(&in.SyslogUDP, "alerts-syslog-udp", "127.0.0.1:0", "alert intake: syslog RFC 5424 over UDP (- disables)")
	fs.StringVar(&in.SyslogTCP, "alerts-syslog-tcp", "127.0.0.1:0", "alert intake: syslog RFC 5424 over TCP (- disables)")
	var files multiFlag
	fs.Var(&files, "alerts-file", "alert intake: tail a JSON-lines or eve.json file, [tool=]path, repeatable")
	captureIface := fs.String("capture", "lo", "interface to capture to traffic.pcapng, filtered to the lab's ports (- disables; needs CAP_NET_RAW)")
	verbose := fs.Bool("v", false, "verbose spec output")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := lab.Lookup(*labName); err != nil {
		return fmt.Errorf("--lab: %w", err)
	}
	pst, err := posture.Resolve(*postureRef)
	if err != nil {
		return fmt.Errorf("--posture: %w", err)
	}
	if len(controlFlags) > 0 {
		if pst, err = pst.Apply(controlFlags); err != nil {
			return fmt.Errorf("--control: %w", err)
		}
	}
	t.Posture = pst
	runID := fmt.Sprintf("%s-s%d", time.Now().UTC().Format("20060102T150405Z"), t.Seed)
	dir := filepath.Join(*out, runID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	tr, builtins, provider, err := prepareTools(dir, runID, *labName, t, tools, *captureIface, stderr)
	if err != nil {
		return err
	}
	harness.Use(provider, t)
	defer containersRun(*labName, stderr)()
	in.Files = append(files, tr.intakeFiles()...)
	sc, err := startScoring(ctx, runID, pst, builtins, t, in)
	if sc != nil {
		sc.baseline = *baseline
	}
	if err != nil {
		return err
	}
	tr.attach(ctx, sc)
	fmt.Fprintf(stdout, "alert intake: %s/v1/alerts, syslog udp %s, syslog tcp %s\n", sc.intake.HTTPURL(), sc.intake.SyslogUDPAddr(), sc.intake.SyslogTCPAddr())

	suite, reporter := ginkgo.GinkgoConfiguration()
	suite.RandomSeed = t.Seed
	suite.LabelFilter = *filter
	suite.Timeout = 80 * time.Minute
	reporter.NoColor = !isTerminal(stdout)
	reporter.JUnitReport = filepath.Join(dir, "junit.xml")
	reporter.JSONReport = filepath.Join(dir, "ginkgo-report.json")
	reporter.Verbose = *verbose
	reporter.Succinct = !*verbose

	var report types.Report
	ginkgo.ReportAfterSuite("pumplab summary", func(r ginkgo.Report) { report = r })
	gomega.RegisterFailHandler(ginkgo.Fail)
	ft := &failT{}
	fmt.Fprintf(stdout, "pumplab run %s: lab %s, %d pumps, seed %d, clock x%g -> %s\n", runID, *labName, t.Pumps, t.Seed, t.Speed, dir)
	ginkgo.RunSpecs(ft, "pumplab scenarios", suite, reporter)

	card, notes, err := sc.finish(dir, runID, *labName, t, report)
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	printTable(stdout, report)
	printScores(stdout, card)
	for _, n := range notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	fmt.Fprintf(stdout, "\nreports: %s\n", dir)
	if ft.failed || !report.SuiteSucceeded {
		return fmt.Errorf("suite failed (see %s)", filepath.Join(dir, "summary.md"))
	}
	return nil
}

func scenarioID(s types.SpecReport) string {
	for _, l := range s.Labels() {
		if strings.HasPrefix(l, "ATK-") || strings.HasPrefix(l, "CTL-") {
			return l
		}
	}
	return "-"
}

func printTable(w io.Writer, r types.Report) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSCENARIO\tSTATE\tDURATION\tSPEC")
	for _, s := range r.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", scenarioID(s), s.State, s.RunTime.Round(time.Millisecond), s.FullText())
	}
	tw.Flush()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func printScores(w io.Writer, sc report.Scorecard) {
	if len(sc.Steps) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSTEP\tPROTECTION\tHARM\tOUTCOME")
	for _, v := range sc.Steps {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", v.StepID, v.Protection, v.Harm.Occurred, v.Outcome)
	}
	if len(sc.Aggregates) > 0 {
		fmt.Fprintln(tw, "\nTOOL\tVISIBILITY\tTECHNIQUE\tFALSE POSITIVES\tTTD p50 ms\tSCORE")
		for _, a := range sc.Aggregates {
			fmt.Fprintf(tw, "%s\t%.0f%%\t%.0f%%\t%d\t%d\t%.1f\n", a.Tool, 100*a.Visibility, 100*a.TechniqueCoverage, a.FalsePositives, a.TTD.P50, a.Score)
		}
	}
	tw.Flush()
}
