package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/lab/broker"
	"github.com/pumplab/pumplab/simulators/pumpserver"
)

func init() {
	register("bench", "fleet benchmark: N pumps, one status per pump per second", cmdBench)
}

// BenchResult is what pumplab bench measures (also printed as JSON with --json).
type BenchResult struct {
	Pumps          int     `json:"pumps"`
	FleetProcess   bool    `json:"fleet_process"`
	WindowS        float64 `json:"window_s"`
	Messages       int64   `json:"messages"`
	MessagesPerS   float64 `json:"messages_per_s"`
	ExpectedPerS   float64 `json:"expected_per_s"`
	CPUSeconds     float64 `json:"cpu_seconds"`
	CPUPer1000Msgs float64 `json:"cpu_s_per_1000_msgs"`
	Cores          float64 `json:"cores"`
	BrokerRSSMiB   float64 `json:"broker_server_peak_rss_mib"`
	FleetRSSMiB    float64 `json:"fleet_peak_rss_mib"`
	TotalRSSMiB    float64 `json:"total_peak_rss_mib"`
	LatencyP50Ms   float64 `json:"latency_p50_ms"`
	LatencyP99Ms   float64 `json:"latency_p99_ms"`
	LatencyMaxMs   float64 `json:"latency_max_ms"`
	ConnectSeconds float64 `json:"connect_s"`
	GoVersion      string  `json:"go"`
	CPUs           int     `json:"cpus"`
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	n := fs.Int("pumps", 1000, "pumps in the fleet")
	window := fs.Duration("duration", 30*time.Second, "measurement window")
	warm := fs.Duration("warmup", 5*time.Second, "time after the fleet connected before measuring")
	inproc := fs.Bool("inproc-fleet", false, "run the fleet in this process instead of a child process")
	ramp := fs.Duration("ramp", 0, "spread fleet connections over this duration (default N/1000 s)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *ramp == 0 {
		*ramp = time.Duration(*n) * time.Millisecond
	}
	clk := clock.Real()
	b := &broker.Embedded{MaxPendingWrites: 256}
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer b.Close()

	var mu sync.Mutex
	var lat []time.Duration
	var count int64
	measuring := false
	srv := pumpserver.New(pumpserver.Config{BrokerURL: b.URL(), Clock: clk, OnStatus: func(_ string, sent, recv time.Time) {
		mu.Lock()
		if measuring {
			count++
			lat = append(lat, recv.Sub(sent))
		}
		mu.Unlock()
	}})
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()

	res := BenchResult{Pumps: *n, FleetProcess: !*inproc, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), ExpectedPerS: float64(*n)}
	fmt.Fprintf(stderr, "bench: broker %s, starting %d pumps (%s)...\n", b.URL(), *n, map[bool]string{true: "in process", false: "fleet process"}[*inproc])
	t0 := time.Now()
	childPID := 0
	if *inproc {
		f, err := startFleet(ctx, fleetConfig{N: *n, First: 1, Broker: b.URL(), Interval: time.Second, Clock: clk, CareArea: "Adult ICU", Ramp: *ramp, Log: discardLogger()})
		if err != nil {
			return err
		}
		defer f.Close()
	} else {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, exe, "serve", "fleet", "--pumps", strconv.Itoa(*n), "--broker", b.URL(),
			"--status-interval", "1s", "--speed", "1", "--ramp", ramp.String())
		cmd.Stderr = stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start fleet process: %w", err)
		}
		defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
		sc := bufio.NewScanner(out)
		ready := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "fleet:") {
				ready = true
				break
			}
		}
		if !ready {
			return fmt.Errorf("fleet process ended before it was ready")
		}
		go io.Copy(io.Discard, out)
		childPID = cmd.Process.Pid
	}
	res.ConnectSeconds = time.Since(t0).Seconds()
	fmt.Fprintf(stderr, "bench: fleet connected in %.1fs; warming up %v, measuring %v\n", res.ConnectSeconds, *warm, *window)
	select {
	case <-time.After(*warm):
	case <-ctx.Done():
		return ctx.Err()
	}
	cpu0 := cpuSeconds(os.Getpid()) + cpuSeconds(childPID)
	mu.Lock()
	measuring = true
	mu.Unlock()
	w0 := time.Now()
	select {
	case <-time.After(*window):
	case <-ctx.Done():
		return ctx.Err()
	}
	mu.Lock()
	measuring = false
	samples := slices.Clone(lat)
	res.Messages = count
	mu.Unlock()
	res.WindowS = time.Since(w0).Seconds()
	res.CPUSeconds = cpuSeconds(os.Getpid()) + cpuSeconds(childPID) - cpu0
	res.MessagesPerS = float64(res.Messages) / res.WindowS
	res.Cores = res.CPUSeconds / res.WindowS
	if res.Messages > 0 {
		res.CPUPer1000Msgs = res.CPUSeconds / float64(res.Messages) * 1000
	}
	res.BrokerRSSMiB = peakRSS(os.Getpid())
	if childPID != 0 {
		res.FleetRSSMiB = peakRSS(childPID)
	}
	res.TotalRSSMiB = res.BrokerRSSMiB + res.FleetRSSMiB
	slices.Sort(samples)
	if len(samples) > 0 {
		q := func(p float64) float64 {
			return float64(samples[min(len(samples)-1, int(p*float64(len(samples))))]) / 1e6
		}
		res.LatencyP50Ms, res.LatencyP99Ms, res.LatencyMaxMs = q(0.50), q(0.99), float64(samples[len(samples)-1])/1e6
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "pumps %d (%s), window %.1fs, %s, %d CPUs\n", res.Pumps,
		map[bool]string{true: "fleet in its own process", false: "fleet in process"}[res.FleetProcess], res.WindowS, res.GoVersion, res.CPUs)
	fmt.Fprintf(stdout, "  messages       %d (%.0f/s, expected %.0f/s)\n", res.Messages, res.MessagesPerS, res.ExpectedPerS)
	fmt.Fprintf(stdout, "  cpu            %.2f s (%.2f cores), %.3f CPU-s per 1,000 messages\n", res.CPUSeconds, res.Cores, res.CPUPer1000Msgs)
	fmt.Fprintf(stdout, "  peak RSS       broker+server %.0f MiB, fleet %.0f MiB, total %.0f MiB\n", res.BrokerRSSMiB, res.FleetRSSMiB, res.TotalRSSMiB)
	fmt.Fprintf(stdout, "  latency        p50 %.2f ms, p99 %.2f ms, max %.2f ms (pump -> broker -> pump server)\n", res.LatencyP50Ms, res.LatencyP99Ms, res.LatencyMaxMs)
	return nil
}

// cpuSeconds reads utime+stime of a process from /proc (0 for pid 0).
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// peakRSS reads VmHWM of a process in MiB.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
