// Package containers is the container lab provider: the same hospital as
// lab/inproc, one role per container (`pumplab serve ROLE` in one image built
// FROM scratch with testcontainers-go), on Docker networks that are the
// hospital's zones.
//
// The legacy posture puts every container on one flat network. With the
// posture control segmentation on, every zone (enterprise, clinical,
// servers, device, untrusted, monitor) is its own internal network and the
// only paths between zones are two dual-homed application gateways: MQTT
// (and drug-library HTTP) from the pumps to the servers, MLLP between the
// clinical systems and the pump server. The host drives the hospital and
// reads its truth through each role's control API (lab/labapi), which
// accepts only the host's side of the lab's networks. Attackers are
// containers placed in a chosen zone (lab.Zoned).
//
// Every container, network and image carries the label org.pumplab.lab;
// Close removes the lab's objects, and Sweep removes the leftovers of a run
// that crashed. Importing the package registers the provider "containers".
package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/labapi"
	"github.com/pumplab/pumplab/lab/posture"
)

func init() { lab.Register(Provider{}) }

// Ports of the lab's services inside their containers (the same in every
// topology, so that a name:port pair means one service).
const (
	PortEHR         = 2575
	PortEMAR        = 2576
	PortIOC         = 2577
	PortAM          = 2578
	PortMQTT        = 1883
	PortDruglib     = 8080
	ServicePortBase = 20000 // pump i's service port is ServicePortBase+i
)

// Provider starts container labs.
type Provider struct {
	// Logger receives the provider's progress; nil discards.
	Logger *slog.Logger
	// Binary is a static pumplab binary for the image; empty: see
	// BuildImage.
	Binary string
	// KeepImage keeps the image after Close (also PUMPLAB_KEEP_IMAGE=1);
	// the next lab of the same binary then starts without a build.
	KeepImage bool
	// StartTimeout bounds each container's start; default 90 s.
	StartTimeout time.Duration
}

// Name implements lab.Provider.
func (Provider) Name() string { return "containers" }

// Start implements lab.Provider.
func (p Provider) Start(ctx context.Context, t lab.Topology) (lab.Lab, error) {
	return Start(ctx, t, p)
}

// Timing is how long the parts of a start took (wall time).
type Timing struct {
	Image, Networks, Services, Gateways, Fleet, Online, Total time.Duration
}

// role is one running container.
type role struct {
	name     string
	c        testcontainers.Container
	ip       map[string]string // network name -> address
	zone     lab.Zone
	api      *labapi.Client
	networks []string
}

// Lab is a running container hospital.
type Lab struct {
	topo   lab.Topology
	prov   Provider
	log    *slog.Logger
	clk    clock.Clock
	run    string
	image  Image
	seg    bool
	anchor time.Time

	nets     map[lab.Zone]netInfo // zone -> network (legacy: every zone -> the flat one)
	roles    map[string]*role
	pumpIDs  []string
	svcPorts bool
	timing   Timing

	mu       sync.Mutex
	foothold map[lab.Zone]*zoneHost
	ev       []lab.Evidence

	stopNurse func()

	once sync.Once
	err  error
}

type netInfo struct {
	name, id, subnet, gateway string
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "pl" + hex.EncodeToString(b)
}

// Start brings a container hospital up. On any failure (and when ctx ends)
// it removes what it created before returning.
func Start(ctx context.Context, t lab.Topology, p Provider) (*Lab, error) {
	t = t.WithDefaults()
	if t.Posture == nil {
		pst, err := posture.Builtin("legacy")
		if err != nil {
			return nil, fmt.Errorf("containers: %w", err)
		}
		t.Posture = pst
	}
	if t.Broker != "" && t.Broker != "embedded" {
		return nil, fmt.Errorf("containers: broker %q: the container lab runs its own broker container (leave --broker empty)", t.Broker)
	}
	if t.Pumps > 5000 {
		return nil, fmt.Errorf("containers: %d pumps: the fleet container takes at most 5000", t.Pumps)
	}
	if p.StartTimeout <= 0 {
		p.StartTimeout = 90 * time.Second
	}
	if os.Getenv("PUMPLAB_KEEP_IMAGE") != "" {
		p.KeepImage = true
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := Available(ctx); err != nil {
		return nil, err
	}
	if s, err := Sweep(ctx, false); err != nil {
		log.Warn("sweep of leftovers failed", "err", err)
	} else if s.Containers+s.Networks > 0 {
		log.Info("swept leftovers of a crashed lab", "containers", s.Containers, "networks", s.Networks)
	}
	anchor := time.Now()
	l := &Lab{topo: t, prov: p, log: log, run: newRunID(), anchor: anchor,
		clk: clock.NewScaledAt(anchor, t.Epoch, t.Speed), seg: t.Posture.On(posture.Segmentation),
		nets: map[lab.Zone]netInfo{}, roles: map[string]*role{}, foothold: map[lab.Zone]*zoneHost{},
		svcPorts: t.Posture.Weaknesses.ServicePort.Enabled}
	for i := 1; i <= t.Pumps; i++ {
		l.pumpIDs = append(l.pumpIDs, lab.PumpID(i))
	}
	if err := l.start(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		if _, serr := sweepRun(cctx, l.run); serr != nil {
			err = errors.Join(err, serr)
		}
		return nil, fmt.Errorf("containers: start lab %s: %w", l.run, err)
	}
	return l, nil
}

// zone network names.
func (l *Lab) netName(z string) string { return "pumplab-" + l.run + "-" + z }

func (l *Lab) start(ctx context.Context) error {
	t0 := time.Now()
	img, err := BuildImage(ctx, l.prov.Binary)
	if err != nil {
		return err
	}
	l.image = img
	l.timing.Image = time.Since(t0)
	l.log.Info("image ready", "tag", img.Tag, "size", img.Size, "built", img.Built, "took", l.timing.Image)

	t1 := time.Now()
	if l.seg {
		for _, z := range lab.Zones {
			n, err := l.createNetwork(ctx, string(z))
			if err != nil {
				return err
			}
			l.nets[z] = n
		}
	} else {
		n, err := l.createNetwork(ctx, "flat")
		if err != nil {
			return err
		}
		for _, z := range lab.Zones {
			l.nets[z] = n
		}
	}
	l.timing.Networks = time.Since(t1)

	layout := Layout(l.topo)
	stage := func(n int) []Service {
		var out []Service
		for _, s := range layout {
			if s.Stage == n {
				out = append(out, s)
			}
		}
		return out
	}
	startStage := func(n int) error {
		svcs := stage(n)
		return l.startAll(ctx, len(svcs), func(i int) (string, []string, map[lab.Zone][]string, error) {
			s := svcs[i]
			args := append([]string(nil), s.Args...)
			// Gateways relay to upstreams by address, so that their own
			// aliases never resolve to themselves.
			for _, r := range s.Routes {
				up, ok := l.role(r.Upstream)
				if !ok {
					return "", nil, nil, fmt.Errorf("gateway %s: route %s: no %s container", s.Name, r.Name, r.Upstream)
				}
				args = append(args, "--route", r.RouteArg(up.ip[l.nets[r.UpstreamZone].name]))
			}
			return s.Name, args, s.Aliases, nil
		})
	}
	// The services in their zones, then the gateways between zones
	// (segmented only), then the fleet.
	t2 := time.Now()
	if err := startStage(0); err != nil {
		return err
	}
	l.timing.Services = time.Since(t2)
	t3 := time.Now()
	if err := startStage(1); err != nil {
		return err
	}
	l.timing.Gateways = time.Since(t3)
	t4 := time.Now()
	if err := startStage(2); err != nil {
		return err
	}
	l.timing.Fleet = time.Since(t4)
	t5 := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if err := l.WaitOnline(wctx, l.topo.Pumps); err != nil {
		return fmt.Errorf("fleet did not come online: %w", err)
	}
	l.timing.Online = time.Since(t5)
	if !l.topo.Nurse.Disabled {
		l.stopNurse = l.walkToPump()
	}
	l.timing.Total = time.Since(t0)
	return nil
}

func (l *Lab) createNetwork(ctx context.Context, zone string) (netInfo, error) {
	c, err := dockerClient(ctx)
	if err != nil {
		return netInfo{}, err
	}
	name := l.netName(zone)
	labels := ownerLabels(l.run)
	labels["org.pumplab.zone"] = zone
	// Internal: no route out of the lab, whatever the posture.
	r, err := c.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Internal: true, Labels: labels})
	if err != nil {
		return netInfo{}, fmt.Errorf("create network %s: %w", name, err)
	}
	in, err := c.NetworkInspect(ctx, r.ID, client.NetworkInspectOptions{})
	if err != nil {
		return netInfo{}, fmt.Errorf("inspect network %s: %w", name, err)
	}
	n := netInfo{name: name, id: r.ID}
	for _, cfg := range in.Network.IPAM.Config {
		if cfg.Subnet.Addr().Is4() {
			n.subnet, n.gateway = cfg.Subnet.String(), cfg.Gateway.String()
		}
	}
	if n.subnet == "" || n.gateway == "" {
		return netInfo{}, fmt.Errorf("network %s has no IPv4 subnet and gateway", name)
	}
	return n, nil
}

// gateways are the host's addresses on every lab network: the only peers a
// control API accepts.
func (l *Lab) gateways() string {
	seen := map[string]bool{}
	var out []string
	for _, z := range lab.Zones {
		g := l.nets[z].gateway
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return strings.Join(out, ",")
}

func (l *Lab) subnets() []string {
	seen := map[string]bool{}
	var out []string
	for _, z := range lab.Zones {
		s := l.nets[z].subnet
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// startAll starts n containers concurrently; spec returns the role, its
// arguments and its network aliases per zone (the first zone is its home).
func (l *Lab) startAll(ctx context.Context, n int, spec func(i int) (string, []string, map[lab.Zone][]string, error)) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		name, args, aliases, err := spec(i)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := l.startRole(ctx, name, args, aliases)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", name, err)
				return
			}
			l.mu.Lock()
			l.roles[name] = r
			l.mu.Unlock()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// role returns a running container by name.
func (l *Lab) role(name string) (*role, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.roles[name]
	return r, ok
}

// zoneOrder puts a role's home zone first.
var zoneOrder = map[string]lab.Zone{"broker": lab.ZoneServers, "druglib": lab.ZoneServers, "pumpserver": lab.ZoneServers,
	"alarms": lab.ZoneServers, "ehr": lab.ZoneClinical, "emar": lab.ZoneClinical, "fleet": lab.ZoneDevice,
	"gw-mllp": lab.ZoneClinical, "gw-mqtt": lab.ZoneDevice}

func (l *Lab) startRole(ctx context.Context, name string, args []string, aliases map[lab.Zone][]string) (*role, error) {
	kind := strings.SplitN(name, "-", 2)[0]
	if kind == "gw" {
		kind = "gateway"
	}
	t := l.topo
	cmd := append([]string{"serve", kind}, args...)
	cmd = append(cmd, "--control", ":"+strconv.Itoa(labapi.ControlPort), "--control-allow", l.gateways(),
		"--epoch", t.Epoch.Format(time.RFC3339Nano), "--anchor", strconv.FormatInt(l.anchor.UnixNano(), 10),
		"--speed", strconv.FormatFloat(t.Speed, 'f', -1, 64), "--seed", strconv.FormatInt(t.Seed, 10))
	home, ok := zoneOrder[name]
	if !ok {
		for z := range aliases {
			home = z
		}
	}
	var networks []string
	netAliases := map[string][]string{}
	add := func(z lab.Zone) {
		n := l.nets[z].name
		for _, have := range networks {
			if have == n {
				netAliases[n] = append(netAliases[n], aliases[z]...)
				return
			}
		}
		networks = append(networks, n)
		netAliases[n] = append([]string{}, aliases[z]...)
	}
	add(home)
	for _, z := range lab.Zones {
		if _, ok := aliases[z]; ok && z != home {
			add(z)
		}
	}
	labels := ownerLabels(l.run)
	labels["org.pumplab.role"] = name
	req := testcontainers.ContainerRequest{
		Image:          l.image.Tag,
		Name:           "pumplab-" + l.run + "-" + name,
		Cmd:            cmd,
		Labels:         labels,
		Networks:       networks,
		NetworkAliases: netAliases,
		WaitingFor:     wait.ForLog("READY").WithStartupTimeout(l.prov.StartTimeout),
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	if err != nil {
		if c != nil {
			if logs := containerLogs(c); logs != "" {
				err = fmt.Errorf("%w\n--- %s output ---\n%s", err, name, logs)
			}
		}
		return nil, err
	}
	in, err := c.Inspect(ctx)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	r := &role{name: name, c: c, ip: map[string]string{}, zone: home, networks: networks}
	for n, es := range in.NetworkSettings.Networks {
		r.ip[n] = es.IPAddress.String()
	}
	for n := range r.ip {
		if !contains(networks, n) {
			return nil, fmt.Errorf("attached to network %s outside the lab (want only %v)", n, networks)
		}
	}
	r.api = &labapi.Client{Role: name, Base: "http://" + r.ip[networks[0]] + ":" + strconv.Itoa(labapi.ControlPort),
		HTTP: &http.Client{Timeout: 60 * time.Second}}
	return r, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func containerLogs(c testcontainers.Container) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
	return tail(string(b))
}

// Timing returns how long the lab's start took, part by part.
func (l *Lab) Timing() Timing { return l.timing }

// Image returns the image the lab runs.
func (l *Lab) Image() Image { return l.image }

// RunID is the value of the lab's org.pumplab.lab label.
func (l *Lab) RunID() string { return l.run }

// Topology is the topology the lab runs (with defaults filled in).
func (l *Lab) Topology() lab.Topology { return l.topo }

// Close implements lab.Lab: it removes every container and network of the
// lab, and the image unless kept.
func (l *Lab) Close() error {
	l.once.Do(func() {
		if l.stopNurse != nil {
			l.stopNurse()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		_, err := sweepRun(ctx, l.run)
		if err == nil && !l.prov.KeepImage && l.image.Tag != "" {
			err = RemoveImage(ctx, l.image.Tag)
		}
		l.err = err
	})
	return l.err
}
