package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/labapi"
	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pump"
)

func init() {
	register("serve", "run one role of the hospital (fleet, broker, druglib, ehr, emar, pumpserver, alarms, gateway, attacker)", cmdServe)
}

// roles are the roles `pumplab serve` runs, each in its own process (the
// container lab runs each in its own container).
var roles = map[string]func(ctx context.Context, rf *roleFlags, args []string, stdout, stderr io.Writer) error{
	"fleet": serveFleet,
}

func roleNames() string {
	names := []string{"fleet"} // the first role, kept first in the usage line
	var rest []string
	for n := range roles {
		if n != "fleet" {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return strings.Join(append(names, rest...), ", ")
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || roles[args[0]] == nil {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "pumplab serve: unknown role %q\n", args[0])
		}
		fmt.Fprintf(stderr, "usage: pumplab serve ROLE [flags]   (roles available in this build: %s)\n", roleNames())
		return errUsage
	}
	rf := &roleFlags{role: args[0]}
	return roles[args[0]](ctx, rf, args[1:], stdout, stderr)
}

// roleFlags are the flags every role shares: its control API, the shared
// lab clock and logging.
type roleFlags struct {
	role    string
	control string
	allow   string
	epoch   string
	anchor  int64
	speed   float64
	seed    int64
	verbose bool
}

func (rf *roleFlags) add(fs *flag.FlagSet, defSpeed float64) {
	fs.StringVar(&rf.control, "control", "", "listen address of the JSON control API (POST /v1/METHOD); empty: none")
	fs.StringVar(&rf.allow, "control-allow", "", "comma-separated peer IPs the control API accepts; empty: any peer")
	fs.StringVar(&rf.epoch, "epoch", "", "lab time at the anchor (RFC 3339); empty: the wall time at start")
	fs.Int64Var(&rf.anchor, "anchor", 0, "wall time (Unix nanoseconds) at which the lab clock read --epoch; 0: now")
	fs.Float64Var(&rf.speed, "speed", defSpeed, "lab seconds per wall second")
	fs.Int64Var(&rf.seed, "seed", 1, "master seed of the role's random choices")
	fs.BoolVar(&rf.verbose, "v", false, "log to stderr")
}

func (rf *roleFlags) logger(stderr io.Writer) *slog.Logger {
	if rf.verbose {
		return slog.New(slog.NewTextHandler(stderr, nil)).With("role", rf.role)
	}
	return discardLogger()
}

// clock is the lab clock every role of one lab shares.
func (rf *roleFlags) clock() (clock.Clock, error) {
	var epoch time.Time
	if rf.epoch != "" {
		t, err := time.Parse(time.RFC3339Nano, rf.epoch)
		if err != nil {
			return nil, fmt.Errorf("--epoch %q: want RFC 3339 (2026-01-05T08:00:00Z): %w", rf.epoch, err)
		}
		epoch = t
	}
	if rf.anchor == 0 {
		return clock.NewScaled(epoch, rf.speed), nil
	}
	if epoch.IsZero() {
		return nil, errors.New("--anchor needs --epoch")
	}
	return clock.NewScaledAt(time.Unix(0, rf.anchor), epoch, rf.speed), nil
}

// serveControl starts the role's control API when --control is set; the
// returned stop is never nil.
func (rf *roleFlags) serveControl(methods map[string]labapi.Handler, log *slog.Logger) (func() error, error) {
	if rf.control == "" {
		return func() error { return nil }, nil
	}
	allow, err := labapi.ParseAllow(rf.allow)
	if err != nil {
		return nil, err
	}
	s := &labapi.Server{Role: rf.role, Methods: methods, Allow: allow, Logger: log}
	if err := s.Start(rf.control); err != nil {
		return nil, err
	}
	return s.Close, nil
}

// ready prints the role's ready line (the container lab waits for it) and
// blocks until ctx ends.
func ready(ctx context.Context, stdout io.Writer, format string, args ...any) {
	fmt.Fprintf(stdout, format+"\n", args...)
	fmt.Fprintln(stdout, "READY")
	<-ctx.Done()
}

func serveFleet(ctx context.Context, rf *roleFlags, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve fleet", stderr)
	n := fs.Int("pumps", 100, "pumps in the fleet")
	first := fs.Int("first", 1, "number of the first pump (PUMP-0001 is 1)")
	brokerURL := fs.String("broker", "", "MQTT broker URL (required)")
	interval := fs.Duration("status-interval", 10*time.Second, "status period (lab time)")
	careArea := fs.String("care-area", "Adult ICU", "care area")
	ramp := fs.Duration("ramp", 0, "spread the connections over this wall duration")
	libURL := fs.String("druglib", "", "drug-library server URL the pumps fetch new libraries from; empty: none")
	awaitServer := fs.Bool("await-server", false, "pumps wait for the pump server's presence before publishing")
	nurse := fs.Bool("nurse", false, "run the bedside nurse model: confirm auto-programmed infusions")
	nurseClear := fs.Bool("nurse-clear", false, "the bedside nurse also clears alarms at the pump on her own (without a phone dispatch)")
	confirm := fs.Duration("nurse-confirm", 20*time.Second, "nurse: median time to confirm a program (lab time)")
	clear := fs.Duration("nurse-alarm", 45*time.Second, "nurse: median time to clear an alarm at the pump (lab time)")
	sigma := fs.Float64("nurse-sigma", 0.4, "nurse: log-normal spread")
	override := fs.String("nurse-override-reason", "clinically indicated", "nurse: reason for soft-limit overrides")
	servicePort := fs.Int("service-port", 0, "legacy weakness: the comm module's telnet-style service port of pump i at PORT+i, no login required (0: off)")
	factoryCode := fs.String("factory-code", "", "the pumps' shared factory access code (keypad and service port); empty: the pump default")
	rf.add(fs, 1)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *brokerURL == "" {
		fmt.Fprintln(stderr, "pumplab serve fleet: --broker is required")
		return errUsage
	}
	if *n <= 0 || *n > 20000 {
		return fmt.Errorf("--pumps %d: want 1..20000", *n)
	}
	log := rf.logger(stderr)
	clk, err := rf.clock()
	if err != nil {
		return err
	}
	cfg := fleetConfig{N: *n, First: *first, Broker: *brokerURL, Interval: *interval,
		Clock: clk, CareArea: *careArea, Ramp: *ramp, Log: log, AwaitServer: *awaitServer, Seed: rf.seed,
		FactoryCode: *factoryCode, ServiceUnauth: *servicePort > 0}
	if *libURL != "" {
		cfg.Fetch = libraryFetcher(*libURL)
	}
	f, err := startFleet(ctx, cfg)
	if err != nil {
		return err
	}
	defer f.Close()
	if *nurse {
		if !*nurseClear {
			*clear = 0
		}
		nm := newBedsideNurse(f, clk, rf.seed, *confirm, *clear, *sigma, *override, log)
		defer nm.close()
	}
	if *servicePort > 0 {
		stop, err := f.serveServicePorts(*servicePort)
		if err != nil {
			return err
		}
		defer stop()
	}
	stop, err := rf.serveControl(f.methods(), log)
	if err != nil {
		return err
	}
	defer stop()
	if os.Getenv("PUMPLAB_READY_FD") != "" || rf.control != "" {
		ready(ctx, stdout, "fleet: %d pumps connected to %s", *n, *brokerURL)
		return nil
	}
	fmt.Fprintf(stdout, "fleet: %d pumps connected to %s\n", *n, *brokerURL)
	<-ctx.Done()
	return nil
}

type fleetConfig struct {
	N, First    int
	Broker      string
	Interval    time.Duration
	Clock       clock.Clock
	CareArea    string
	Ramp        time.Duration
	Log         *slog.Logger
	AwaitServer bool
	Seed        int64
	Fetch       pump.LibraryFetcher
	// FactoryCode is the shared access code; ServiceUnauth opens service
	// sessions without a login (the legacy service-port weakness).
	FactoryCode   string
	ServiceUnauth bool
}

type fleet struct {
	agents []*pump.Agent
	pumps  map[string]*pump.Pump
	ids    []string
}

func libraryFetcher(base string) pump.LibraryFetcher {
	c := &druglib.Client{BaseURL: base}
	return func(ctx context.Context, url, hash string) (*druglib.Library, error) {
		b, err := c.Fetch(ctx, url)
		if err != nil {
			return nil, err
		}
		if hash != "" && b.Hash != hash {
			return nil, fmt.Errorf("library at %s hashes to %s, command said %s", url, b.Hash, hash)
		}
		return b.Library, nil
	}
}

// startFleet starts N pump agents against a broker; it returns once all are
// connected.
func startFleet(ctx context.Context, c fleetConfig) (*fleet, error) {
	lib := druglib.Default()
	f := &fleet{agents: make([]*pump.Agent, c.N), pumps: map[string]*pump.Pump{}}
	seed := uint64(max(c.Seed, 1))
	for i := range c.N {
		id := lab.PumpID(c.First + i)
		var access *pump.AccessPolicy
		if c.FactoryCode != "" || c.ServiceUnauth {
			access = &pump.AccessPolicy{FactoryCode: c.FactoryCode, Unauthenticated: c.ServiceUnauth}
		}
		p := pump.New(pump.Config{ID: id, Clock: c.Clock, Library: lib, CareArea: c.CareArea,
			Seed: seed*1000003 + uint64(c.First+i), Logger: c.Log, Access: access})
		f.agents[i] = pump.NewAgent(p, pump.AgentConfig{BrokerURL: c.Broker, StatusInterval: c.Interval, Logger: c.Log,
			KeepAlive: 60 * time.Second, ConnectTimeout: 30 * time.Second, AwaitServer: c.AwaitServer, LibraryFetcher: c.Fetch})
		f.pumps[id] = p
		f.ids = append(f.ids, id)
	}
	var wg sync.WaitGroup
	errs := make([]error, c.N)
	sem := make(chan struct{}, 32)
	var pause time.Duration
	if c.Ramp > 0 && c.N > 0 {
		pause = c.Ramp / time.Duration(c.N)
	}
	for i, a := range f.agents {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = a.Start(ctx)
		}()
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *fleet) Close() error {
	var wg sync.WaitGroup
	for _, a := range f.agents {
		if a == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Close() }()
	}
	wg.Wait()
	return nil
}

// discardLogger is a logger that writes nothing.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// lognormal draws latencies from a seeded source.
type lognormal struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newLognormal(seed int64, stream uint64) *lognormal {
	return &lognormal{rng: rand.New(rand.NewPCG(uint64(seed), stream))}
}

func (l *lognormal) draw(median time.Duration, sigma float64) time.Duration {
	l.mu.Lock()
	z := l.rng.NormFloat64()
	l.mu.Unlock()
	return time.Duration(float64(median) * math.Exp(sigma*z))
}
