package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/intake"
	"github.com/pumplab/pumplab/harness/report"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/harness/toolspec"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/capture"
)

// toolRunner runs the tools of manifests (--tool FILE) and the run's
// traffic capture: it starts "during" tools before the suite and stops them
// after it, runs "after" tools on the finished capture, and tells tools
// about every lab that starts (lab-events.jsonl). A manifest with an error,
// a tool that cannot start and a tool that crashes are notes: the run goes
// on and scores the others (docs/tools.md).
type toolRunner struct {
	dir    string
	runID  string
	topo   lab.Topology
	stderr io.Writer

	capture *capture.Capture
	iface   string
	events  *os.File
	evMu    sync.Mutex
	labs    int

	tools []*toolProc
	mu    sync.Mutex
	notes []string
}

// toolProc is one tool of a manifest.
type toolProc struct {
	m      *toolspec.Manifest
	dir    string // its work directory under the run
	vars   map[string]string
	cmd    *exec.Cmd
	done   chan struct{}
	exit   error
	stderr *tailBuffer
	// started: the tool ran (it is scored); stopping: the lab asked it to stop.
	started, stopping bool
	crashed           string
}

// isManifestRef reports whether a --tool value names a manifest file rather
// than a built-in tool.
func isManifestRef(ref string) bool {
	return !slices.Contains(harness.BuiltinTools, ref)
}

// newToolRunner loads the manifests, starts the capture and opens the lab
// events file. Problems with one manifest or with the capture are notes.
func newToolRunner(dir, runID string, topo lab.Topology, refs []string, iface string, stderr io.Writer) *toolRunner {
	r := &toolRunner{dir: dir, runID: runID, topo: topo.WithDefaults(), stderr: stderr, iface: iface}
	for _, ref := range refs {
		m, err := toolspec.Load(ref)
		if err != nil {
			r.note("tool manifest %s not used: %v", ref, err)
			continue
		}
		if slices.ContainsFunc(r.tools, func(t *toolProc) bool { return t.m.Name == m.Name }) || slices.Contains(harness.BuiltinTools, m.Name) {
			r.note("tool manifest %s not used: a tool named %q is already in the run", ref, m.Name)
			continue
		}
		if m.Start.Command == "" {
			r.note("tool %s (%s) not started: %v", m.Name, ref, toolspec.ErrNoCommand)
			continue
		}
		if m.Start.When == toolspec.WhenAfter && m.Report.Via != toolspec.ViaFile {
			r.note("tool %s (%s) not started: a tool started after the run reports through a file (report.via: file), not %s", m.Name, ref, m.Report.Via)
			continue
		}
		tdir := filepath.Join(dir, "tools", m.Name)
		if err := os.MkdirAll(tdir, 0o755); err != nil {
			r.note("tool %s not started: %v", m.Name, err)
			continue
		}
		r.tools = append(r.tools, &toolProc{m: m, dir: tdir, done: make(chan struct{}), stderr: &tailBuffer{max: 4096}})
	}
	if iface != "-" {
		c, err := capture.Start(capture.Config{Interface: iface, Path: filepath.Join(dir, "traffic.pcapng"), App: "pumplab " + version})
		if err != nil {
			r.note("no traffic capture for this run: %v", err)
		} else {
			r.capture = c
		}
	}
	f, err := os.Create(filepath.Join(dir, "lab-events.jsonl"))
	if err != nil {
		r.note("no lab events file: %v", err)
	} else {
		r.events = f
	}
	return r
}

func (r *toolRunner) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.notes = append(r.notes, msg)
	r.mu.Unlock()
	fmt.Fprintf(r.stderr, "pumplab: %s\n", msg)
}

// intakeFiles are the files of "during" tools that report through a file,
// as --alerts-file values (tool=path), for the intake to tail (their alerts
// are stamped with receive time).
func (r *toolRunner) intakeFiles() []string {
	var out []string
	for _, t := range r.tools {
		if t.m.Start.When != toolspec.WhenDuring || t.m.Report.Via != toolspec.ViaFile {
			continue
		}
		p, err := toolspec.Expand(t.m.Report.Path, r.baseVars(t, nil))
		if err != nil {
			continue // reported when the tool starts
		}
		out = append(out, t.m.Name+"="+p)
	}
	return out
}

// baseVars are the ${VAR}s of docs/tools.md for tool t.
func (r *toolRunner) baseVars(t *toolProc, in *intake.Intake) map[string]string {
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	v := map[string]string{
		"PUMPLAB_RUN_ID":       r.runID,
		"PUMPLAB_RUN_DIR":      abs(r.dir),
		"PUMPLAB_TOOL_NAME":    t.m.Name,
		"PUMPLAB_TOOL_DIR":     abs(t.dir),
		"PUMPLAB_MANIFEST_DIR": abs(filepath.Dir(t.m.File)),
		"PUMPLAB_LAB_EVENTS":   abs(filepath.Join(r.dir, "lab-events.jsonl")),
		"PUMPLAB_CLOCK_SPEED":  strconv.FormatFloat(r.topo.Speed, 'g', -1, 64),
		"PUMPLAB_SEED":         strconv.FormatInt(r.topo.Seed, 10),
		"PUMPLAB_INTERFACE":    r.iface,
		"PUMPLAB_PCAP":         "",
		"PUMPLAB_ALERTS_URL":   "",
		"PUMPLAB_SYSLOG_UDP":   "",
		"PUMPLAB_SYSLOG_TCP":   "",
	}
	if r.capture != nil {
		v["PUMPLAB_PCAP"] = abs(r.capture.Path())
	}
	if in != nil {
		v["PUMPLAB_ALERTS_URL"] = in.HTTPURL() + "/v1/alerts"
		v["PUMPLAB_SYSLOG_UDP"] = in.SyslogUDPAddr()
		v["PUMPLAB_SYSLOG_TCP"] = in.SyslogTCPAddr()
	}
	return v
}

// startDuring starts every "during" tool and waits for each to be ready.
func (r *toolRunner) startDuring(ctx context.Context, in *intake.Intake) {
	for _, t := range r.tools {
		if t.m.Start.When != toolspec.WhenDuring {
			continue
		}
		if err := r.start(ctx, t, in); err != nil {
			r.note("tool %s could not start (not scored): %v", t.m.Name, err)
		}
	}
}

// start runs the tool's command; for a during tool it waits for the ready
// line (or, without one, only for the process to exist).
func (r *toolRunner) start(ctx context.Context, t *toolProc, in *intake.Intake) error {
	t.vars = r.baseVars(t, in)
	if (slices.Contains(t.m.Reads, toolspec.ReadPcap) || slices.Contains(t.m.Reads, toolspec.ReadInterface)) && r.capture == nil {
		return errors.New("it reads the traffic capture, and this run has none (see the capture note)")
	}
	name, err := toolspec.Expand(t.m.Start.Command, t.vars)
	if err != nil {
		return fmt.Errorf("start.command: %w", err)
	}
	args := make([]string, len(t.m.Start.Args))
	for i, a := range t.m.Start.Args {
		if args[i], err = toolspec.Expand(a, t.vars); err != nil {
			return fmt.Errorf("start.args[%d]: %w", i, err)
		}
	}
	env := os.Environ()
	for k, v := range t.vars {
		env = append(env, k+"="+v)
	}
	keys := make([]string, 0, len(t.m.Start.Env))
	for k := range t.m.Start.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, err := toolspec.Expand(t.m.Start.Env[k], t.vars)
		if err != nil {
			return fmt.Errorf("start.env.%s: %w", k, err)
		}
		env = append(env, k+"="+v)
	}
	wd := filepath.Dir(t.m.File)
	if t.m.Start.Dir != "" {
		d, err := toolspec.Expand(t.m.Start.Dir, t.vars)
		if err != nil {
			return fmt.Errorf("start.dir: %w", err)
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(wd, d)
		}
		wd = d
	}
	if r.capture != nil {
		r.capture.Sync()
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = wd
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(t.dir, "output.log"))
	if err != nil {
		return err
	}
	ready := make(chan struct{})
	var once sync.Once
	lw := &lineWatcher{want: t.m.Start.Ready, onMatch: func() { once.Do(func() { close(ready) }) }}
	cmd.Stdout = io.MultiWriter(logf, lw)
	cmd.Stderr = io.MultiWriter(logf, lw, t.stderr)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	t.cmd = cmd
	t.started = true
	go func() {
		t.exit = cmd.Wait()
		logf.Close()
		r.mu.Lock()
		stopping := t.stopping
		r.mu.Unlock()
		if !stopping && t.m.Start.When == toolspec.WhenDuring {
			t.crashed = time.Now().UTC().Format(time.RFC3339Nano)
			r.note("tool %s exited mid-run at %s (%v); the run goes on and scores the alerts it sent before; last output: %s",
				t.m.Name, t.crashed, t.exit, t.stderr.last())
		}
		close(t.done)
	}()
	if t.m.Start.When != toolspec.WhenDuring || t.m.Start.Ready == "" {
		return nil
	}
	timer := time.NewTimer(t.m.Start.Timeout)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-t.done:
		r.mu.Lock()
		t.started = false
		r.mu.Unlock()
		return fmt.Errorf("exited before it was ready (%v); last output: %s", t.exit, t.stderr.last())
	case <-timer.C:
		r.stop(t, 5*time.Second)
		t.started = false
		return fmt.Errorf("not ready after %s (no line containing %q on its output); last output: %s", t.m.Start.Timeout, t.m.Start.Ready, t.stderr.last())
	case <-ctx.Done():
		r.stop(t, 5*time.Second)
		return ctx.Err()
	}
}

// stop asks a running tool to finish (SIGTERM to its process group: a tool
// drains what it has read, then exits) and kills it after grace.
func (r *toolRunner) stop(t *toolProc, grace time.Duration) {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	r.mu.Lock()
	t.stopping = true
	r.mu.Unlock()
	select {
	case <-t.done:
		return
	default:
	}
	_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(grace):
		_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
		<-t.done
		r.note("tool %s did not stop within %s of SIGTERM and was killed", t.m.Name, grace)
	}
}

// labStarted is called by the provider wrapper for every lab: its ports
// join the capture filter and tools learn its endpoints.
func (r *toolRunner) labStarted(l lab.Lab, began time.Time) {
	eps := l.Endpoints()
	if r.capture != nil {
		for _, e := range eps {
			r.capture.AllowAddr(e.Address)
		}
	}
	r.evMu.Lock()
	defer r.evMu.Unlock()
	r.labs++
	if r.events == nil {
		return
	}
	ev := labEvent{Time: began.UTC(), Ready: time.Now().UTC(), Event: "lab-start", Lab: r.labs, Provider: l.Provider(),
		ClockSpeed: r.topo.Speed, LabTime: l.Clock().Now(), Pumps: l.Pumps(),
		PumpServerClientID: "pumpserver", MonitorUser: "monitor"}
	for _, e := range eps {
		ev.Endpoints = append(ev.Endpoints, labEndpoint{Name: e.Name, Protocol: e.Protocol, Address: e.Address, Purpose: e.Purpose})
	}
	b, _ := json.Marshal(ev)
	r.events.Write(append(b, '\n'))
}

// labEvent is one line of lab-events.jsonl (docs/tools.md).
type labEvent struct {
	// Time is when the lab began starting (its start-up traffic follows);
	// Ready when it was up.
	Time       time.Time     `json:"time"`
	Ready      time.Time     `json:"ready"`
	Event      string        `json:"event"`
	Lab        int           `json:"lab"`
	Provider   string        `json:"provider"`
	ClockSpeed float64       `json:"clock_speed"`
	LabTime    time.Time     `json:"lab_time"`
	Pumps      []string      `json:"pumps"`
	Endpoints  []labEndpoint `json:"endpoints"`
	// PumpServerClientID is the pump server's MQTT client id, MonitorUser
	// the broker's read-only identity for monitoring tools.
	PumpServerClientID string `json:"pump_server_client_id"`
	MonitorUser        string `json:"monitor_user"`
}

// labEndpoint is lab.Endpoint in lab-events.jsonl.
type labEndpoint struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
	Purpose  string `json:"purpose,omitempty"`
}

// stepEnded lets the capture keep the ports of the attack's connections.
func (r *toolRunner) stepEnded(s score.Step) {
	if r.capture == nil {
		return
	}
	for _, c := range s.Correlation {
		// tcp:a:p->b:p, mllp:h:p, service-port:h:p, ...: every address.
		for _, a := range addrRE.FindAllString(c, -1) {
			r.capture.AllowAddr(a)
		}
	}
}

// addrRE finds host:port addresses (IPv4 or [IPv6]) in a correlation id.
var addrRE = regexp.MustCompile(`(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):\d{1,5}`)

// finish stops the during tools, closes the capture, runs the after tools
// on it, writes the labels and returns the notes of the whole run.
func (r *toolRunner) finish(ctx context.Context, steps []score.Step, in *intake.Intake) []string {
	if r.capture != nil {
		st := r.capture.Stats()
		if err := r.capture.Close(); err != nil {
			r.note("traffic capture: %v", err)
		}
		r.writeLabels(steps)
		st = r.capture.Stats()
		r.note("traffic capture: %d packets (%d bytes) of the lab's ports in traffic.pcapng (%d from the pre-roll), %d other packets filtered out, %d dropped by the kernel; labels in traffic-labels.jsonl",
			st.Packets, st.Bytes, st.PreRoll, st.Filtered, st.Dropped)
	}
	for _, t := range r.tools {
		if t.m.Start.When == toolspec.WhenDuring && t.started {
			r.stop(t, 20*time.Second)
		}
	}
	for _, t := range r.tools {
		if t.m.Start.When != toolspec.WhenAfter {
			continue
		}
		r.runAfter(ctx, t, in)
	}
	if r.events != nil {
		r.events.Close()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.notes...)
}

// runAfter runs an offline tool to its end and reads its alert file; its
// alerts keep the time they report (the packets' time).
func (r *toolRunner) runAfter(ctx context.Context, t *toolProc, in *intake.Intake) {
	if err := r.start(ctx, t, in); err != nil {
		r.note("tool %s could not start (not scored): %v", t.m.Name, err)
		return
	}
	timer := time.NewTimer(t.m.Start.Timeout)
	defer timer.Stop()
	select {
	case <-t.done:
	case <-timer.C:
		r.stop(t, 5*time.Second)
		r.note("tool %s ran longer than %s and was stopped; the alerts it wrote are scored", t.m.Name, t.m.Start.Timeout)
	}
	if t.exit != nil {
		r.note("tool %s exited with %v; last output: %s", t.m.Name, t.exit, t.stderr.last())
	}
	path, err := toolspec.Expand(t.m.Report.Path, t.vars)
	if err != nil {
		r.note("tool %s: report.path: %v", t.m.Name, err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		r.note("tool %s wrote no alert file: %v", t.m.Name, err)
		return
	}
	defer f.Close()
	var alerts []score.Alert
	bad := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		as, err := intake.DecodeFileLine(line, t.m.Name)
		if err != nil {
			bad++
			continue
		}
		flow := eveFlow(line)
		for _, a := range as {
			if a.Tool == "" {
				a.Tool = t.m.Name
			}
			// An eve.json alert names its flow; as a 5-tuple it matches the
			// connections the ground truth names (tcp:src->dst).
			a.Assets = append(a.Assets, flow...)
			alerts = append(alerts, a)
		}
	}
	if err := sc.Err(); err != nil {
		r.note("tool %s: reading %s: %v", t.m.Name, path, err)
	}
	if bad > 0 {
		r.note("tool %s: %d lines of %s refused", t.m.Name, bad, path)
	}
	in.AddOffline(alerts)
}

// scored returns the tools that ran, as the scorer and the report list them.
func (r *toolRunner) scored() ([]score.Scope, []report.Tool) {
	var scopes []score.Scope
	var tools []report.Tool
	for _, t := range r.tools {
		if !t.started {
			continue
		}
		scopes = append(scopes, score.Scope{Tool: t.m.Name, Assets: t.m.Scope.Assets, Techniques: t.m.Scope.Techniques})
		v := t.m.Version
		if v == "" {
			v = "unversioned"
		}
		tools = append(tools, report.Tool{Name: t.m.Name, Version: v, Assets: t.m.Scope.Assets, Techniques: t.m.Scope.Techniques})
	}
	return scopes, tools
}

// trafficLabel is one line of traffic-labels.jsonl: a flow of the capture
// that belongs to an attack step.
type trafficLabel struct {
	RunID      string    `json:"run_id"`
	ScenarioID string    `json:"scenario_id"`
	StepID     string    `json:"step_id"`
	Techniques []string  `json:"techniques"`
	Tactic     string    `json:"tactic,omitempty"`
	Tuple      string    `json:"tuple"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
	Packets    int       `json:"packets"`
	Bytes      int       `json:"bytes"`
}

// writeLabels writes the flows of the capture that an attack step names in
// its correlation ids (tcp:src->dst), both directions.
func (r *toolRunner) writeLabels(steps []score.Step) {
	flows := map[string]capture.Flow{}
	for _, f := range r.capture.Flows() {
		flows[f.Tuple] = f
	}
	f, err := os.Create(filepath.Join(r.dir, "traffic-labels.jsonl"))
	if err != nil {
		r.note("traffic labels: %v", err)
		return
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, s := range steps {
		for _, c := range s.Correlation {
			rest, ok := strings.CutPrefix(c, "tcp:")
			if !ok {
				continue
			}
			a, b, _ := strings.Cut(rest, "->")
			for _, tup := range []string{"tcp:" + a + "->" + b, "tcp:" + b + "->" + a} {
				fl, ok := flows[tup]
				if !ok {
					continue
				}
				enc.Encode(trafficLabel{RunID: s.RunID, ScenarioID: s.ScenarioID, StepID: s.StepID, Techniques: s.Techniques,
					Tactic: s.Tactic, Tuple: tup, First: fl.First, Last: fl.Last, Packets: fl.Packets, Bytes: fl.Bytes})
			}
		}
	}
}

// providerHook is a provider that starts labs with the inner provider and
// tells the tool runner about each one. It returns the inner lab itself, so
// scenarios see exactly the provider's lab.
type providerHook struct {
	inner lab.Provider
	name  string
	onLab func(lab.Lab, time.Time)
}

func (p providerHook) Name() string { return p.name }

func (p providerHook) Start(ctx context.Context, t lab.Topology) (lab.Lab, error) {
	began := time.Now()
	l, err := p.inner.Start(ctx, t)
	if err == nil {
		p.onLab(l, began)
	}
	return l, err
}

// hookProvider registers a provider that wraps labName for this run and
// returns its name (lab.Register keeps names unique per process).
func (r *toolRunner) hookProvider(labName string) (string, error) {
	inner, err := lab.Lookup(labName)
	if err != nil {
		return "", err
	}
	name := labName + "+tools@" + r.runID
	if _, err := lab.Lookup(name); err == nil {
		return name, nil
	}
	lab.Register(providerHook{inner: inner, name: name, onLab: r.labStarted})
	return name, nil
}

// lineWatcher calls onMatch when a line containing want is written.
type lineWatcher struct {
	want    string
	onMatch func()
	mu      sync.Mutex
	buf     []byte
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	if w.want == "" {
		return len(p), nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			if len(w.buf) > 64<<10 {
				w.buf = w.buf[len(w.buf)-4096:]
			}
			return len(p), nil
		}
		if strings.Contains(string(w.buf[:i]), w.want) {
			w.onMatch()
		}
		w.buf = w.buf[i+1:]
	}
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

// last returns the last few lines, on one line.
func (t *tailBuffer) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.b)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	s := strings.Join(lines, " | ")
	if s == "" {
		return "(none)"
	}
	return s
}

// prepareTools splits --tool values into built-in tools and manifests,
// starts the capture, and registers the provider hook; run.go calls it
// before the intake starts (file-reporting tools join the intake's files).
func prepareTools(dir, runID, labName string, t lab.Topology, refs []string, iface string, stderr io.Writer) (*toolRunner, []string, string, error) {
	var builtins, manifests []string
	for _, ref := range refs {
		if isManifestRef(ref) {
			manifests = append(manifests, ref)
		} else {
			builtins = append(builtins, ref)
		}
	}
	r := newToolRunner(dir, runID, t, manifests, iface, stderr)
	provider, err := r.hookProvider(labName)
	if err != nil {
		return nil, nil, "", fmt.Errorf("--lab: %w", err)
	}
	return r, builtins, provider, nil
}

// attach starts the during tools once the intake listens, and makes the
// scoring side finish them.
func (r *toolRunner) attach(ctx context.Context, sc *scoring) {
	sc.ext = r
	sc.run.OnStepEnd(r.stepEnded)
	r.startDuring(ctx, sc.intake)
}

// eveFlow returns the flow of an eve.json line as ground-truth 5-tuples,
// both directions (tcp:SRC:PORT->DST:PORT), or nothing for other lines.
func eveFlow(line []byte) []string {
	var e struct {
		SrcIP   string `json:"src_ip"`
		SrcPort int    `json:"src_port"`
		DestIP  string `json:"dest_ip"`
		DstPort int    `json:"dest_port"`
		Proto   string `json:"proto"`
	}
	if json.Unmarshal(line, &e) != nil || e.SrcIP == "" || e.DestIP == "" || e.SrcPort == 0 || e.DstPort == 0 {
		return nil
	}
	hp := func(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
	proto := strings.ToLower(e.Proto)
	a, b := hp(e.SrcIP, e.SrcPort), hp(e.DestIP, e.DstPort)
	return []string{proto + ":" + a + "->" + b, proto + ":" + b + "->" + a}
}
