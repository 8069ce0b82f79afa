package containers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/labapi"
)

var _ lab.Zoned = (*Lab)(nil)

// Segmented implements lab.Zoned.
func (l *Lab) Segmented() bool { return l.seg }

// Host implements lab.Zoned: the system's address on its home network.
func (l *Lab) Host(system string) (string, error) {
	r, ok := l.roles[system]
	if !ok || system == "gw-mllp" || system == "gw-mqtt" {
		return "", fmt.Errorf("containers: no system %q (want fleet, pumpserver, broker, ehr, emar, alarms or druglib)", system)
	}
	return r.ip[r.networks[0]], nil
}

// ServicePort implements lab.Zoned.
func (l *Lab) ServicePort(pumpID string) (string, error) {
	if !l.svcPorts {
		return "", fmt.Errorf("containers: the posture has the service-port weakness off: pumps expose no service port")
	}
	i := slices.Index(l.pumpIDs, pumpID)
	if i < 0 {
		return "", fmt.Errorf("containers: no pump %q in the lab", pumpID)
	}
	h, err := l.Host("fleet")
	if err != nil {
		return "", err
	}
	return h + ":" + strconv.Itoa(ServicePortBase+i+1), nil
}

// AttackFrom implements lab.Zoned: it starts (once per zone) an attacker
// container on the zone's network. Under the legacy flat network every zone
// is the same network.
func (l *Lab) AttackFrom(ctx context.Context, zone lab.Zone) (lab.ZoneHost, error) {
	if !slices.Contains(lab.Zones, zone) {
		return nil, fmt.Errorf("containers: no zone %q (want one of %v)", zone, lab.Zones)
	}
	l.mu.Lock()
	h, ok := l.foothold[zone]
	l.mu.Unlock()
	if ok {
		return h, nil
	}
	var args []string
	for _, s := range l.subnets() {
		args = append(args, "--lab-net", s)
	}
	name := "attacker-" + string(zone)
	r, err := l.startRole(ctx, name, args, map[lab.Zone][]string{zone: {name}})
	if err != nil {
		return nil, fmt.Errorf("containers: place an attacker in zone %s: %w", zone, err)
	}
	h = &zoneHost{l: l, zone: zone, r: r}
	l.mu.Lock()
	l.roles[name] = r
	l.foothold[zone] = h
	l.mu.Unlock()
	return h, nil
}

type zoneHost struct {
	l    *Lab
	zone lab.Zone
	r    *role
}

func (h *zoneHost) Zone() lab.Zone { return h.zone }

func ms(d time.Duration) int { return int(d / time.Millisecond) }

func (h *zoneHost) Dial(ctx context.Context, addr, send string, timeout time.Duration) (lab.Probe, error) {
	var r labapi.DialResult
	if err := h.r.api.Call(ctx, "dial", labapi.Dial{Addr: addr, TimeoutMS: ms(timeout), Send: send}, &r); err != nil {
		return lab.Probe{}, err
	}
	return lab.Probe{Connected: r.Connected, Banner: r.Banner, Err: r.Error, Elapsed: time.Duration(r.Millis) * time.Millisecond}, nil
}

func (h *zoneHost) Scan(ctx context.Context, hosts []string, ports []int, timeout time.Duration) (lab.ScanResult, error) {
	var r labapi.ScanResult
	if err := h.r.api.Call(ctx, "scan", labapi.Scan{Hosts: hosts, Ports: ports, TimeoutMS: ms(timeout)}, &r); err != nil {
		return lab.ScanResult{}, err
	}
	return lab.ScanResult{Open: r.Open, Refused: r.Refused, Unreachable: r.Unreachable, Probes: r.Probes}, nil
}

func (h *zoneHost) Flood(ctx context.Context, addr string, conns, bytes int, d time.Duration) (lab.FloodResult, error) {
	var r labapi.FloodResult
	if err := h.r.api.Call(ctx, "flood", labapi.Flood{Addr: addr, Conns: conns, Bytes: bytes, DurationMS: ms(d)}, &r); err != nil {
		return lab.FloodResult{}, err
	}
	return lab.FloodResult{Opened: r.Opened, Failed: r.Failed, BytesSent: r.BytesSent, FirstErr: r.FirstErr}, nil
}

func (h *zoneHost) Proxy(ctx context.Context, upstream string, factor float64) (string, error) {
	var a labapi.Addr
	listen := h.r.ip[h.r.networks[0]] + ":0"
	if err := h.r.api.Call(ctx, "proxy", labapi.Proxy{Listen: listen, Upstream: upstream, Factor: factor}, &a); err != nil {
		return "", err
	}
	return a.Addr, nil
}

func (h *zoneHost) ProxyStats(ctx context.Context) (lab.ProxyCounters, error) {
	var s labapi.ProxyStats
	if err := h.r.api.Call(ctx, "proxy-stats", nil, &s); err != nil {
		return lab.ProxyCounters{}, err
	}
	return lab.ProxyCounters{Connections: s.Connections, Forwarded: s.Forwarded, Changed: s.Changed}, nil
}
