// Package inproc is the default lab provider: the whole hospital in one
// process, every component on its own loopback socket, with the embedded MQTT
// broker (or mosquitto, or any external broker). Zone segmentation cannot be
// real here; scenarios that need it are reported Not Applicable.
//
// Importing the package registers the provider under the name "inproc".
package inproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/audit"
	"github.com/pumplab/pumplab/lab/broker"
	"github.com/pumplab/pumplab/lab/pki"
	"github.com/pumplab/pumplab/lab/posture"
	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpserver"
)

func init() { lab.Register(Provider{}) }

// Provider starts in-process labs.
type Provider struct {
	// Logger receives every component's logs; nil discards.
	Logger *slog.Logger
}

// Name implements lab.Provider.
func (Provider) Name() string { return "inproc" }

// Start implements lab.Provider.
func (p Provider) Start(ctx context.Context, t lab.Topology) (lab.Lab, error) {
	return Start(ctx, t, p.Logger)
}

// Lab is a running in-process hospital. Besides lab.Lab it gives direct
// access to its parts for tests and benchmarks of this provider.
type Lab struct {
	topo lab.Topology
	clk  clock.Clock
	log  *slog.Logger
	rng  *rand.Rand
	rmu  sync.Mutex

	Broker     broker.Broker
	LibServer  *druglib.Server
	Server     *pumpserver.Server
	PumpModels map[string]*pump.Pump
	Agents     map[string]*pump.Agent
	pumpIDs    []string

	clinical
	pki      *pki.PKI
	psec     *pumpSecurity
	embedded bool // the broker is the embedded one (the broker controls need it)
	nurse    *nurse
	ctl      controls

	closers []func() error
	once    sync.Once
	err     error
}

// Start brings up a hospital for topology t.
func Start(ctx context.Context, t lab.Topology, log *slog.Logger) (*Lab, error) {
	t = t.WithDefaults()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if t.Posture == nil {
		p, err := posture.Builtin("legacy")
		if err != nil {
			return nil, fmt.Errorf("inproc: %w", err)
		}
		t.Posture = p
	}
	// Some listeners take addresses reserved a moment earlier (the clinical
	// systems point at each other in a cycle); another process on a busy
	// machine may grab one in between. Such a start is retried on fresh
	// addresses, a few times.
	for attempt := 1; ; attempt++ {
		l, err := start(ctx, t, log)
		if err == nil || attempt == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			return l, err
		}
		log.Warn("inproc: a reserved address was taken; starting again", "attempt", attempt, "err", err)
	}
}

func start(ctx context.Context, t lab.Topology, log *slog.Logger) (*Lab, error) {
	trail, err := audit.New(t.AuditSyslog)
	if err != nil {
		return nil, fmt.Errorf("inproc: %w", err)
	}
	l := &Lab{topo: t, clk: clock.NewScaled(t.Epoch, t.Speed), log: log, ctl: controls{posture: t.Posture, audit: trail},
		rng:        rand.New(rand.NewPCG(uint64(t.Seed), 0x70756d706c6162)),
		PumpModels: map[string]*pump.Pump{}, Agents: map[string]*pump.Agent{}}
	l.onClose(trail.Close)
	if err := l.start(ctx); err != nil {
		l.Close()
		return nil, fmt.Errorf("inproc: start lab: %w", err)
	}
	return l, nil
}

func (l *Lab) onClose(f func() error) { l.closers = append(l.closers, f) }

func (l *Lab) start(ctx context.Context) error {
	t := l.topo
	// Components may tie their lifetime to the context they start with; the
	// lab lives until Close, not until the caller's start deadline.
	wait := ctx
	ctx = context.WithoutCancel(ctx)
	// Broker.
	// The PKI comes first: the broker's TLS listener needs its certificate.
	if err := l.startPKI(); err != nil {
		return err
	}
	switch {
	case t.Broker == "" || t.Broker == "embedded":
		b := &broker.Embedded{Logger: l.log.With("component", "broker")}
		if err := l.brokerControls(b); err != nil {
			return err
		}
		if err := b.Start(ctx); err != nil {
			return err
		}
		l.Broker = b
		l.embedded = true
	case t.Broker == "mosquitto":
		b := &broker.Mosquitto{}
		if err := b.Start(ctx); err != nil {
			return err
		}
		l.Broker = b
	case strings.Contains(t.Broker, "://"):
		if err := checkLabURL(t.Broker); err != nil {
			return err
		}
		l.Broker = broker.External{Address: t.Broker}
	default:
		return fmt.Errorf("broker %q: want embedded, mosquitto or an MQTT URL", t.Broker)
	}
	l.onClose(l.Broker.Close)

	// Drug library: the default library, drafted, approved by a second
	// pharmacist and published.
	scfgLib := druglib.StoreConfig{Clock: l.clk, Logger: l.log.With("component", "druglib")}
	if l.ctl.on(posture.SignedLibrary) {
		scfgLib.SigningKey, scfgLib.KeyID = l.pharmacyKey(), pharmacyKeyID
	}
	store := druglib.NewStore(scfgLib)
	if _, err := store.Release(druglib.Default(), "pharmacist.alice", "pharmacist.bob"); err != nil {
		return fmt.Errorf("release default drug library: %w", err)
	}
	l.LibServer = druglib.NewServer(druglib.ServerConfig{Store: store, Logger: l.log.With("component", "druglib")})
	if err := l.LibServer.Start(ctx); err != nil {
		return err
	}
	l.onClose(l.LibServer.Close)
	bundle, _ := store.Published()

	// Clinical systems first: the pump server needs their addresses.
	if err := l.startClinical(ctx); err != nil {
		return err
	}

	if err := l.startPumpSecurity(); err != nil {
		return err
	}
	suser, spass := l.brokerLogin(idPumpServer)
	stls, err := l.mqttClientTLS(idPumpServer)
	if err != nil {
		return err
	}
	scfg := pumpserver.Config{BrokerURL: l.Broker.URL(), Clock: l.clk, Username: suser, Password: spass, TLS: stls,
		Logger: l.log, PCD01Interval: t.PCD01Interval, MLLPAddr: l.iocAddr(),
		IOPAddr: l.emarAddr(), DOCAddr: l.ehrAddr(), AMAddr: l.amAddr()}
	if l.ctl.on(posture.OrderCrosscheck) {
		scfg.OrderCheck = l.orderCrosscheck
	}
	scfg.Heartbeat = l.heartbeat()
	scfg.CommandSigner = l.psec.signer
	scfg.OnControl = l.onPumpControl
	if scfg.MLLPTLS, err = l.mllpServerTLS("pumpserver-ioc", idPumpServer); err != nil {
		return err
	}
	if scfg.ClientTLS, err = l.mllpClientTLS(idPumpServer, idEMAR, idEHR, idAM); err != nil {
		return err
	}
	l.Server = pumpserver.New(scfg)
	if err := l.Server.Start(ctx); err != nil {
		return err
	}
	l.onClose(l.Server.Close)

	// The fleet.
	for i := 1; i <= t.Pumps; i++ {
		id := lab.PumpID(i)
		pc := l.pumpConfig(id, bundle)
		pc.Seed = uint64(t.Seed)*1000003 + uint64(i)
		p := pump.New(pc)
		ac, err := l.agentConfig(id)
		if err != nil {
			return err
		}
		a := pump.NewAgent(p, ac)
		l.PumpModels[id], l.Agents[id] = p, a
		l.pumpIDs = append(l.pumpIDs, id)
	}
	if !t.Nurse.Disabled {
		l.nurse = newNurse(l)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(l.pumpIDs))
	sem := make(chan struct{}, 64)
	for i, id := range l.pumpIDs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = l.Agents[id].Start(ctx)
		}()
	}
	wg.Wait()
	for _, id := range l.pumpIDs {
		a := l.Agents[id]
		l.onClose(a.Close)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(wait, 60*time.Second)
	defer cancel()
	if err := l.WaitOnline(wctx, len(l.pumpIDs)); err != nil {
		return fmt.Errorf("fleet did not come online: %w", err)
	}
	return nil
}

// checkLabURL refuses brokers outside loopback: the lab only talks to itself.
func checkLabURL(u string) error {
	_, rest, _ := strings.Cut(u, "://")
	host := rest
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		host = rest[:i]
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1" {
		return nil
	}
	return fmt.Errorf("broker %s: the in-process lab only uses loopback brokers (127.0.0.0/8, ::1, localhost)", u)
}

// Provider implements lab.Lab.
func (l *Lab) Provider() string { return "inproc" }

// Clock implements lab.Lab.
func (l *Lab) Clock() clock.Clock { return l.clk }

// Topology is the topology the lab runs (with defaults filled in).
func (l *Lab) Topology() lab.Topology { return l.topo }

// Pumps implements lab.Lab.
func (l *Lab) Pumps() []string { return append([]string(nil), l.pumpIDs...) }

// Clinical implements lab.Lab.
func (l *Lab) Clinical() lab.Clinical { return &l.clinical }

// Devices implements lab.Lab.
func (l *Lab) Devices() lab.Devices { return devices{l} }

// Alarms implements lab.Lab.
func (l *Lab) Alarms() lab.Alarms { return alarmsView{l} }

// PumpServer implements lab.Lab.
func (l *Lab) PumpServer() lab.PumpServer { return serverView{l} }

// Endpoints implements lab.Lab.
func (l *Lab) Endpoints() []lab.Endpoint {
	eps := []lab.Endpoint{
		{Name: "broker", Protocol: "mqtt", Address: l.Broker.URL(), Purpose: "pump <-> pump server, topics pumplab/v1/pumps/{id}/..." + l.loginHint()},
		{Name: "pumpserver-ioc", Protocol: "mllp", Address: l.Server.MLLPAddr(), Purpose: "PCD-03 RGV^O15 in (IOC), PCD-05 ORA^R41 in"},
		{Name: "druglib", Protocol: "http", Address: l.LibServer.URL(), Purpose: "drug-library distribution and approval API"},
	}
	return append(eps, l.clinicalEndpoints()...)
}

// Close implements lab.Lab: it stops the fleet first, then the servers, then
// the broker.
func (l *Lab) Close() error {
	l.once.Do(func() {
		if l.nurse != nil {
			l.nurse.close()
		}
		var errs []error
		for i := len(l.closers) - 1; i >= 0; i-- {
			if err := l.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		l.err = errors.Join(errs...)
	})
	return l.err
}

// lognormal draws a latency with the given median, from the lab's seeded
// source.
func (l *Lab) lognormal(median time.Duration, sigma float64) time.Duration {
	l.rmu.Lock()
	z := l.rng.NormFloat64()
	l.rmu.Unlock()
	return time.Duration(float64(median) * math.Exp(sigma*z))
}

// WaitOnline waits until n pumps are online at the pump server.
func (l *Lab) WaitOnline(ctx context.Context, n int) error {
	return l.Server.Wait(ctx, func(v pumpserver.View) bool {
		c := 0
		for _, id := range l.pumpIDs {
			if p, ok := v.Pump(id); ok && p.Online {
				c++
			}
		}
		return c >= n
	})
}

type serverView struct{ l *Lab }

func (s serverView) Pumps(ctx context.Context) ([]lab.PumpInfo, error) {
	var out []lab.PumpInfo
	for _, p := range s.l.Server.Pumps() {
		out = append(out, lab.PumpInfo{ID: p.ID, Firmware: p.Firmware, LibraryVersion: p.LibraryVersion, Online: p.Online, LastSeen: p.LastSeen})
	}
	return out, nil
}

func (s serverView) Presence(ctx context.Context) ([]lab.Presence, error) {
	var out []lab.Presence
	for _, p := range s.l.Server.PresenceHistory() {
		out = append(out, lab.Presence{PumpID: p.PumpID, Online: p.Online, At: p.At})
	}
	return out, nil
}

func (s serverView) WaitOnline(ctx context.Context, n int) error { return s.l.WaitOnline(ctx, n) }

// pumpConfig is the configuration of a pump of this lab under its posture
// (the fleet's and a pump biomed swaps in alike): library and its policy,
// firmware policy, access policy, stored credentials, control hook.
func (l *Lab) pumpConfig(id string, bundle *druglib.Bundle) pump.Config {
	return pump.Config{ID: id, Clock: l.clk, Library: bundle.Library, LibraryHash: bundle.Hash,
		CareArea: l.topo.CareArea, Logger: l.log.With("pump", id),
		Access: l.accessPolicy(id), Credentials: l.credentials(id), OnControl: l.onPumpControl,
		LibrarySeq: bundle.Seq(), LibraryPolicy: l.libraryPolicy(), FirmwarePolicy: l.firmwarePolicy(),
		RemoteStartAllowed: l.topo.Posture.Weaknesses.RemoteStart.Enabled}
}

// agentConfig is the network module configuration of pump id: broker,
// login, mTLS certificate, command verification, library download.
func (l *Lab) agentConfig(id string) (pump.AgentConfig, error) {
	user, pass := l.brokerLogin(id)
	ptls, err := l.mqttClientTLS(id)
	if err != nil {
		return pump.AgentConfig{}, err
	}
	return pump.AgentConfig{BrokerURL: l.Broker.URL(), StatusInterval: l.topo.StatusInterval,
		Logger: l.log.With("agent", id), BundleFetcher: l.fetchBundle, AwaitServer: true,
		ClientID: id, Username: user, Password: pass, TLS: ptls, CommandVerifier: l.commandVerifier()}, nil
}

// fetchBundle is the pumps' library download: the bundle at url (a lab
// address), checked against the hash the command named.
func (l *Lab) fetchBundle(ctx context.Context, url, hash string) (*druglib.Bundle, error) {
	if err := checkLabURL(url); err != nil {
		return nil, err
	}
	b, err := (&druglib.Client{BaseURL: l.LibServer.URL()}).Fetch(ctx, url)
	if err != nil {
		return nil, err
	}
	if hash != "" && b.Hash != hash {
		return nil, fmt.Errorf("library at %s hashes to %s, command said %s", url, b.Hash, hash)
	}
	return b, nil
}

// loginHint tells a researcher how to log in to the broker.
func (l *Lab) loginHint() string {
	if !l.embedded {
		return ""
	}
	if w := l.topo.Posture.Weaknesses.SharedCredentials; w.Enabled {
		return fmt.Sprintf("; login %s/%s (the shared credentials)", w.Username, w.Password)
	}
	return "; per-identity logins (and certificates under mtls-mqtt)"
}
