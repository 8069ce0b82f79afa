package containers

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/labapi"
	"github.com/pumplab/pumplab/lab/posture"
)

var _ lab.Zoned = (*Lab)(nil)

// Segmented implements lab.Zoned.
func (l *Lab) Segmented() bool { return l.seg }

// Host implements lab.Zoned: the system's address on its home network.
func (l *Lab) Host(system string) (string, error) {
	r, ok := l.role(system)
	if !ok || system == "gw-mllp" || system == "gw-mqtt" {
		return "", fmt.Errorf("containers: no system %q (want fleet, pumpserver, broker, ehr, emar, alarms or druglib)", system)
	}
	return r.ip[r.networks[0]], nil
}

// ServicePort implements lab.Zoned.
func (l *Lab) ServicePort(ctx context.Context, pumpID string) (string, error) {
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

// Subnets implements lab.Zoned.
func (l *Lab) Subnets() []string { return l.subnets() }

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

// denied records, as the zone firewall's deny log would, an attempt from
// the host's zone that the segmented networks did not carry to a target in
// another zone. The network decided; the lab only writes it down.
func (h *zoneHost) denied(target, what string) {
	if !h.l.seg {
		return
	}
	host := target
	if hh, _, err := net.SplitHostPort(target); err == nil {
		host = hh
	}
	tz := h.l.zoneOfAddr(host)
	if tz == "" || tz == h.zone {
		return
	}
	h.l.record(lab.Evidence{Control: posture.Segmentation, Time: time.Now(), LabTime: h.l.clk.Now(), Target: host,
		Action: "blocked", Reason: fmt.Sprintf("%s from zone %s to zone %s: no route between the zones' networks", what, h.zone, tz),
		Ref: "tcp:" + target})
}

// zoneOfAddr names the zone whose network holds addr ("" if none).
func (l *Lab) zoneOfAddr(addr string) lab.Zone {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return ""
	}
	for _, z := range lab.Zones {
		if p, err := netip.ParsePrefix(l.nets[z].subnet); err == nil && p.Contains(a) {
			return z
		}
	}
	return ""
}

func (h *zoneHost) Dial(ctx context.Context, addr, send string, timeout time.Duration) (lab.Probe, error) {
	var r labapi.DialResult
	if err := h.r.api.Call(ctx, "dial", labapi.Dial{Addr: addr, TimeoutMS: ms(timeout), Send: send}, &r); err != nil {
		return lab.Probe{}, err
	}
	if !r.Connected && !strings.Contains(r.Error, "refused") {
		h.denied(addr, "connection")
	}
	return lab.Probe{Connected: r.Connected, Banner: r.Banner, Err: r.Error, Elapsed: time.Duration(r.Millis) * time.Millisecond}, nil
}

func (h *zoneHost) Scan(ctx context.Context, hosts []string, ports []int, timeout time.Duration) (lab.ScanResult, error) {
	out := lab.ScanResult{Open: []string{}}
	for _, host := range hosts {
		var r labapi.ScanResult
		if err := h.r.api.Call(ctx, "scan", labapi.Scan{Hosts: []string{host}, Ports: ports, TimeoutMS: ms(timeout)}, &r); err != nil {
			return out, err
		}
		if len(r.Open) == 0 && r.Refused == 0 && r.Unreachable > 0 {
			h.denied(host, fmt.Sprintf("connect scan of %d ports", len(ports)))
		}
		out.Open = append(out.Open, r.Open...)
		out.Refused += r.Refused
		out.Unreachable += r.Unreachable
		out.Probes += r.Probes
	}
	return out, nil
}

func (h *zoneHost) Flood(ctx context.Context, addr string, conns, bytes int, d time.Duration) (lab.FloodResult, error) {
	var r labapi.FloodResult
	if err := h.r.api.Call(ctx, "flood", labapi.Flood{Addr: addr, Conns: conns, Bytes: bytes, DurationMS: ms(d)}, &r); err != nil {
		return lab.FloodResult{}, err
	}
	if r.Opened == 0 && r.Failed > 0 && !strings.Contains(r.FirstErr, "refused") {
		h.denied(addr, fmt.Sprintf("flood of %d connections", conns))
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

var _ lab.Adversary = (*Lab)(nil)

// Compromise implements lab.Adversary. The container lab runs no PKI and no
// broker logins (those controls are the in-process lab's), so a foothold on
// any identity holds the broker's address and nothing else: no client
// certificate, no password.
func (l *Lab) Compromise(ctx context.Context, identity string) (lab.Foothold, error) {
	known := []string{"pumpserver", "emar-bcma", "ehr", "alarm-manager"}
	if !slices.Contains(known, identity) && !slices.Contains(l.pumpIDs, identity) {
		return lab.Foothold{}, fmt.Errorf("containers: compromise %q: not a service (%v) or a pump of the lab", identity, known)
	}
	b, err := l.Host("broker")
	if err != nil {
		return lab.Foothold{}, err
	}
	return lab.Foothold{Identity: identity, MQTTURL: "tcp://" + net.JoinHostPort(b, strconv.Itoa(PortMQTT))}, nil
}
