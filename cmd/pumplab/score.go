package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/intake"
	"github.com/pumplab/pumplab/harness/report"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/posture"
)

// scoring is the scoring side of one `pumplab run`: the alert intake, the
// tools under test, and, after the suite, the scorer and the reports.
type scoring struct {
	run     *harness.Run
	intake  *intake.Intake
	tools   []*harness.BuiltinTool
	names   []string
	opt     score.Options
	posture *posture.Posture
	start   time.Time
	ext     *toolRunner // tools of manifests and the capture (run_tools.go)
	// baseline is a previous run directory whose latency samples the
	// scorecard's availability compares this run with (--baseline).
	baseline string
}

// intakeFlags are where tools under test send alerts.
type intakeFlags struct {
	HTTP, SyslogUDP, SyslogTCP string
	Files                      []string
}

func startScoring(ctx context.Context, runID string, pst *posture.Posture, tools []string, t lab.Topology, in intakeFlags) (*scoring, error) {
	t = t.WithDefaults()
	run := harness.NewRun(runID, t.Speed)
	s := &scoring{run: run, opt: run.ScoreOptions(), posture: pst, start: time.Now()}
	harness.UseRun(s.run)
	var files []intake.File
	for _, f := range in.Files {
		tool, path, ok := strings.Cut(f, "=")
		if !ok {
			tool, path = "", f
		}
		files = append(files, intake.File{Path: path, Tool: tool})
	}
	s.intake = intake.New(intake.Config{HTTPAddr: in.HTTP, SyslogUDPAddr: in.SyslogUDP, SyslogTCPAddr: in.SyslogTCP, Files: files})
	if err := s.intake.Start(ctx); err != nil {
		return nil, fmt.Errorf("alert intake: %w", err)
	}
	s.run.SetAlertSource(s.intake.Alerts)
	assets := []string{"pumpserver", "alarm-manager", "ehr", "emar-bcma"}
	for i := 1; i <= t.Pumps; i++ {
		assets = append(assets, lab.PumpID(i))
	}
	late := s.opt.Tolerance + time.Second
	for _, name := range tools {
		bt, err := harness.StartBuiltinTool(name, s.intake.HTTPURL(), s.run, assets, time.Second, late)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("--tool: %w", err)
		}
		s.tools = append(s.tools, bt)
		s.names = append(s.names, name)
	}
	return s, nil
}

func (s *scoring) close() {
	if s.intake != nil {
		s.intake.Close()
	}
}

// finish stops the tools, scores the run and writes the reports.
func (s *scoring) finish(dir, runID, labName string, t lab.Topology, gr types.Report) (report.Scorecard, []string, error) {
	defer s.close()
	t = t.WithDefaults()
	var notes []string
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, bt := range s.tools {
		n, err := bt.Stop(ctx)
		if err != nil {
			notes = append(notes, err.Error())
		}
		if n == 0 && bt.Name != harness.ToolNull {
			notes = append(notes, fmt.Sprintf("tool %s delivered no alert", bt.Name))
		}
	}
	if s.ext != nil {
		notes = append(notes, s.ext.finish(ctx, s.run.Steps(), s.intake)...)
	}
	end := time.Now()
	steps := s.run.Steps()
	alerts := s.intake.Alerts()
	var scopes []score.Scope
	var tools []report.Tool
	for _, n := range s.names {
		scopes = append(scopes, score.Scope{Tool: n})
		tools = append(tools, report.Tool{Name: n, Version: "builtin"})
	}
	if s.ext != nil {
		sc, tl := s.ext.scored()
		scopes, tools = append(scopes, sc...), append(tools, tl...)
	}
	// Only the controls this lab enforces count as on; the others the
	// posture enables are noted, never scored as if they protected anything.
	var enforced, unsupported []string
	for _, c := range s.posture.Enabled() {
		if labEnforces(labName, c, t) {
			enforced = append(enforced, c)
		} else {
			unsupported = append(unsupported, c)
		}
	}
	if len(unsupported) > 0 {
		notes = append(notes, fmt.Sprintf("posture %s enables controls the %s lab does not implement yet (scored as off): %s",
			s.posture.Name, labName, strings.Join(unsupported, ", ")))
	}
	in := score.Inputs{Steps: steps, Evidence: s.run.Evidence(), PostureControls: enforced, Alerts: alerts, Tools: scopes}
	verdicts := score.ScoreSteps(steps, s.run.Observed(), in, s.opt)
	fps := score.FalsePositives(steps, alerts, s.opt)
	var scen []report.Scenario
	byID := map[string]harness.Scenario{}
	for _, sc := range harness.Scenarios() {
		byID[sc.ID] = sc
	}
	labHours := 0.0
	for _, sr := range gr.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt {
			continue
		}
		id := scenarioID(sr)
		reg := byID[id]
		rs := report.Scenario{ID: id, Kind: reg.Kind(), Title: reg.Title, State: specState(sr),
			DurationMs: sr.RunTime.Milliseconds(), Start: sr.StartTime, End: sr.EndTime,
			Areas: reg.Values("area"), Techniques: reg.Values("technique")}
		if sr.Failed() {
			rs.Reason = strings.TrimSpace(sr.Failure.Message)
		}
		if why, ok := harness.NotApplicableReason(sr); ok {
			rs.State, rs.Reason = report.StateNotApplicable, why
		}
		for _, e := range sr.ReportEntries {
			rs.Entries = append(rs.Entries, report.Entry{Name: e.Name, Value: e.StringRepresentation()})
		}
		if sr.State.Is(types.SpecStatePassed | types.SpecStateFailed) {
			labHours += sr.RunTime.Hours() * t.Speed
		}
		scen = append(scen, rs)
	}
	if len(scen) == 0 {
		notes = append(notes, "no scenario ran")
	}
	var avail []score.AvailabilityCost
	if s.baseline != "" {
		base, err := loadScorecard(s.baseline)
		if err != nil {
			return report.Scorecard{}, notes, fmt.Errorf("--baseline: %w", err)
		}
		lat, err := readLatency(s.baseline)
		if err != nil {
			return report.Scorecard{}, notes, fmt.Errorf("--baseline: %w", err)
		}
		bname := base.Run.Posture.Name
		if bname == s.posture.Name {
			bname += " (baseline run)"
		}
		own := s.run.LatencySamples(s.posture.Name)
		own[bname] = lat
		avail = score.Availability(own, bname)
	}
	sc := report.Build(report.Input{
		Run: report.Run{ID: runID, Start: s.start, End: end, Seed: t.Seed, Provider: labName,
			Posture: report.Posture{Name: s.posture.Name, Controls: append([]string{}, enforced...)}, BaselinePosture: "legacy", Tools: tools,
			Pumps: t.Pumps, ClockSpeed: t.Speed, DeviceHours: float64(t.Pumps) * labHours, PumplabVersion: version},
		Scenarios: scen, Verdicts: verdicts, FalsePositives: fps, Notes: notes, Availability: avail,
	})
	if err := report.Write(dir, sc, steps, alerts); err != nil {
		return sc, notes, err
	}
	if err := writeLatency(dir, s.run.Latencies()); err != nil {
		return sc, notes, err
	}
	return sc, notes, nil
}

func specState(sr types.SpecReport) string {
	switch {
	case sr.State.Is(types.SpecStatePassed):
		return "passed"
	case sr.State.Is(types.SpecStateSkipped | types.SpecStatePending):
		return "skipped"
	default:
		return "failed"
	}
}

// version is the pumplab version written in reports.
const version = "0.1.0-dev"
