package containers

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/labapi"
	"github.com/pumplab/pumplab/lab/posture"
)

// Implemented lists the posture controls the container lab enforces; the
// others a posture enables are reported unsupported and not scored as on.
var Implemented = []string{posture.Segmentation}

// poll is the wall period of the host's waits on a role's state.
const poll = 100 * time.Millisecond

func (l *Lab) call(ctx context.Context, role, method string, in, out any) error {
	r, ok := l.role(role)
	if !ok {
		return fmt.Errorf("containers: the lab runs no %s", role)
	}
	return r.api.Call(ctx, method, in, out)
}

// await polls check until it reports done, an error, or ctx ends.
func await(ctx context.Context, what string, check func() (bool, error)) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containers: waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// Provider implements lab.Lab.
func (l *Lab) Provider() string { return "containers" }

// Clock implements lab.Lab: the host reads the same lab time as every
// container (one anchor, epoch and speed).
func (l *Lab) Clock() clock.Clock { return l.clk }

// Pumps implements lab.Lab.
func (l *Lab) Pumps() []string { return append([]string(nil), l.pumpIDs...) }

// Clinical implements lab.Lab.
func (l *Lab) Clinical() lab.Clinical { return clinical{l} }

// Devices implements lab.Lab.
func (l *Lab) Devices() lab.Devices { return devices{l} }

// Alarms implements lab.Lab.
func (l *Lab) Alarms() lab.Alarms { return alarmsView{l} }

// PumpServer implements lab.Lab.
func (l *Lab) PumpServer() lab.PumpServer { return serverView{l} }

// Network implements lab.Lab.
func (l *Lab) Network() lab.Network { return network{l} }

// Endpoints implements lab.Lab: every address is a container's address on
// the lab's networks, reachable from this host only.
func (l *Lab) Endpoints() []lab.Endpoint {
	ip := func(r string) string {
		if x, ok := l.role(r); ok {
			return x.ip[x.networks[0]]
		}
		return ""
	}
	port := func(r string, p int) string { return ip(r) + ":" + strconv.Itoa(p) }
	eps := []lab.Endpoint{
		{Name: "broker", Protocol: "mqtt", Address: "tcp://" + port("broker", PortMQTT), Purpose: "pump <-> pump server, topics pumplab/v1/pumps/{id}/..."},
		{Name: "pumpserver-ioc", Protocol: "mllp", Address: port("pumpserver", PortIOC), Purpose: "PCD-03 RGV^O15 in (IOC), PCD-05 ORA^R41 in"},
		{Name: "druglib", Protocol: "http", Address: "http://" + port("druglib", PortDruglib), Purpose: "drug-library distribution and approval API"},
		{Name: "ehr", Protocol: "mllp", Address: port("ehr", PortEHR), Purpose: "DOC: PCD-01 ORU^R01, PCD-10 ORU^R42, RAS^O17 in; pharmacy inbox OMP^O09"},
		{Name: "emar-bcma", Protocol: "mllp", Address: port("emar", PortEMAR), Purpose: "ADT, RDE^O11 and RRG^O16 in (IOP)"},
		{Name: "alarm-manager", Protocol: "mllp", Address: port("alarms", PortAM), Purpose: "PCD-04 ORU^R40 in (AM)"},
	}
	if l.svcPorts && len(l.pumpIDs) > 0 {
		eps = append(eps, lab.Endpoint{Name: "pump-service-ports", Protocol: "tcp",
			Address: fmt.Sprintf("%s:%d-%d", ip("fleet"), ServicePortBase+1, ServicePortBase+len(l.pumpIDs)),
			Purpose: "legacy weakness: telnet-style comm-module service port of pump i at " + strconv.Itoa(ServicePortBase) + "+i"})
	}
	l.mu.Lock()
	names := make([]string, 0, len(l.roles))
	for n := range l.roles {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		eps = append(eps, lab.Endpoint{Name: "control-" + n, Protocol: "http", Address: l.roles[n].api.Base,
			Purpose: "control API of the " + n + " container (POST /v1/METHOD), zone " + string(l.roles[n].zone)})
	}
	l.mu.Unlock()
	return eps
}

// Controls implements lab.Lab.
func (l *Lab) Controls() (enforced, unsupported []string) {
	for _, name := range l.topo.Posture.Enabled() {
		if slices.Contains(Implemented, name) {
			enforced = append(enforced, name)
		} else {
			unsupported = append(unsupported, name)
		}
	}
	return enforced, unsupported
}

// Evidence implements lab.Lab: what the gateways refused, and the attempts
// across zones the lab saw fail.
func (l *Lab) Evidence(ctx context.Context) ([]lab.Evidence, error) {
	l.mu.Lock()
	out := append([]lab.Evidence(nil), l.ev...)
	l.mu.Unlock()
	for _, g := range []string{"gw-mllp", "gw-mqtt"} {
		if _, ok := l.role(g); !ok {
			continue
		}
		var ev labapi.EvidenceList
		if err := l.call(ctx, g, "evidence", nil, &ev); err != nil {
			return out, err
		}
		out = append(out, ev.Evidence...)
	}
	slices.SortStableFunc(out, func(a, b lab.Evidence) int { return a.Time.Compare(b.Time) })
	return out, nil
}

func (l *Lab) record(e lab.Evidence) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e)
}

// WaitOnline waits until n pumps are online at the pump server.
func (l *Lab) WaitOnline(ctx context.Context, n int) error {
	return await(ctx, fmt.Sprintf("%d pumps online", n), func() (bool, error) {
		ps, err := serverView{l}.Pumps(ctx)
		if err != nil {
			return false, nil // the pump server may still be starting
		}
		c := 0
		for _, p := range ps {
			if p.Online {
				c++
			}
		}
		return c >= n, nil
	})
}

// --- lab.Clinical ---

type clinical struct{ l *Lab }

func (c clinical) Admit(ctx context.Context, p lab.Patient) error {
	return c.l.call(ctx, "ehr", "admit", p, nil)
}

func (c clinical) Order(ctx context.Context, o lab.Order) (string, error) {
	var r labapi.OrderID
	if err := c.l.call(ctx, "ehr", "order", o, &r); err != nil {
		return "", err
	}
	return r.OrderID, nil
}

func (c clinical) Verify(ctx context.Context, placerID, pharmacist string) error {
	return c.l.call(ctx, "ehr", "verify", labapi.OrderID{OrderID: placerID, Pharmacist: pharmacist}, nil)
}

func (c clinical) Administer(ctx context.Context, s lab.Scan) (lab.AdminResult, error) {
	if s.Channel == "" {
		s.Channel = "A"
	}
	// The ordered truth layer: what CPOE ordered, tied to the scanned channel.
	var of labapi.OrderForResult
	if err := c.l.call(ctx, "ehr", "order-for", labapi.OrderFor{Scan: s}, &of); err != nil {
		return lab.AdminResult{}, err
	}
	if of.Found {
		o := of.Ordered
		if err := c.l.call(ctx, "fleet", "set-ordered", labapi.ChannelReq{PumpID: s.PumpID, Channel: s.Channel, Ordered: &o}, nil); err != nil {
			return lab.AdminResult{}, err
		}
	}
	var r lab.AdminResult
	err := c.l.call(ctx, "emar", "scan", s, &r)
	return r, err
}

func (c clinical) Documented(ctx context.Context, orderID string) (lab.Documentation, error) {
	var d lab.Documentation
	err := c.l.call(ctx, "ehr", "documented", labapi.OrderID{OrderID: orderID}, &d)
	return d, err
}

func (c clinical) WaitDocumented(ctx context.Context, orderID string, cond func(lab.Documentation) bool) (lab.Documentation, error) {
	var d lab.Documentation
	err := await(ctx, "documentation of "+orderID, func() (bool, error) {
		var err error
		d, err = c.Documented(ctx, orderID)
		return err == nil && cond(d), err
	})
	return d, err
}

// --- lab.Devices ---

type devices struct{ l *Lab }

func (d devices) Segments(ctx context.Context, pumpID, channel string) ([]lab.Segment, error) {
	var out []lab.Segment
	err := d.l.call(ctx, "fleet", "segments", labapi.ChannelReq{PumpID: pumpID, Channel: channel}, &out)
	return out, err
}

func (d devices) Truth(ctx context.Context, pumpID, channel string) (lab.Truth, error) {
	var out lab.Truth
	err := d.l.call(ctx, "fleet", "truth", labapi.ChannelReq{PumpID: pumpID, Channel: channel}, &out)
	return out, err
}

func (d devices) DDR(ctx context.Context, pumpID, channel string, from, to time.Time) (float64, error) {
	var v labapi.Value
	err := d.l.call(ctx, "fleet", "ddr", labapi.ChannelReq{PumpID: pumpID, Channel: channel, From: from, To: to}, &v)
	return v.Value, err
}

func (d devices) ActiveAlarms(ctx context.Context, pumpID string) ([]lab.PumpAlarm, error) {
	var out []lab.PumpAlarm
	err := d.l.call(ctx, "fleet", "alarms", labapi.ChannelReq{PumpID: pumpID}, &out)
	return out, err
}

func (d devices) WaitState(ctx context.Context, pumpID, channel string, states ...string) error {
	last := ""
	err := await(ctx, fmt.Sprintf("%s/%s in %v", pumpID, channel, states), func() (bool, error) {
		var s labapi.State
		if err := d.l.call(ctx, "fleet", "state", labapi.ChannelReq{PumpID: pumpID, Channel: channel}, &s); err != nil {
			return false, err
		}
		last = s.State
		return slices.Contains(states, s.State), nil
	})
	if err != nil && last != "" {
		return fmt.Errorf("%w (still %s)", err, last)
	}
	return err
}

func (d devices) InjectFault(ctx context.Context, pumpID, channel, fault string) error {
	return d.l.call(ctx, "fleet", "inject-fault", labapi.ChannelReq{PumpID: pumpID, Channel: channel, Fault: fault}, nil)
}

func (d devices) Stop(ctx context.Context, pumpID, channel, user string) error {
	return d.l.call(ctx, "fleet", "stop", labapi.ChannelReq{PumpID: pumpID, Channel: channel, User: user}, nil)
}

// --- lab.Alarms ---

type alarmsView struct{ l *Lab }

func (a alarmsView) Records(ctx context.Context) ([]lab.AlarmRecord, error) {
	var out []lab.AlarmRecord
	err := a.l.call(ctx, "alarms", "records", nil, &out)
	return out, err
}

func (a alarmsView) WaitAlarm(ctx context.Context, cond func(lab.AlarmRecord) bool) (lab.AlarmRecord, error) {
	var found lab.AlarmRecord
	err := await(ctx, "an alarm record", func() (bool, error) {
		recs, err := a.Records(ctx)
		if err != nil {
			return false, err
		}
		for _, r := range recs {
			if cond(r) {
				found = r
				return true, nil
			}
		}
		return false, nil
	})
	return found, err
}

// --- lab.PumpServer ---

type serverView struct{ l *Lab }

func (s serverView) Presence(ctx context.Context) ([]lab.Presence, error) {
	var out []lab.Presence
	err := s.l.call(ctx, "pumpserver", "presence", nil, &out)
	return out, err
}

func (s serverView) Pumps(ctx context.Context) ([]lab.PumpInfo, error) {
	var out []lab.PumpInfo
	err := s.l.call(ctx, "pumpserver", "pumps", nil, &out)
	return out, err
}

func (s serverView) WaitOnline(ctx context.Context, n int) error { return s.l.WaitOnline(ctx, n) }

// --- lab.Network ---

type network struct{ l *Lab }

// Interpose re-points the BCMA's PCD-03 link at proxyAddr, which must be an
// address inside the lab's networks (an attacker container's proxy, see
// lab.Zoned): a proxy on the host's loopback is out of the containers'
// reach. Whether the eMAR's packets then reach the proxy is up to the
// network: across segmented zones they do not.
func (n network) Interpose(ctx context.Context, link lab.Link, proxyAddr string) (string, func() error, error) {
	if link != lab.LinkBCMAToPumpServer {
		return "", nil, fmt.Errorf("containers: interpose %s: %w: only %s can be re-pointed in the container lab; place an attacker with lab.Zoned.AttackFrom", link, lab.ErrInterposeUnsupported, lab.LinkBCMAToPumpServer)
	}
	if host, _, err := net.SplitHostPort(proxyAddr); err != nil || n.l.zoneOfAddr(host) == "" {
		return "", nil, fmt.Errorf("containers: interpose %s at %s: %w: the proxy must listen on the lab's networks (an attacker's proxy, lab.ZoneHost.Proxy), not on the host", link, proxyAddr, lab.ErrInterposeUnsupported)
	}
	name := "pumpserver:" + strconv.Itoa(PortIOC)
	up, err := n.l.Host("pumpserver")
	if err != nil {
		return "", nil, err
	}
	up += ":" + strconv.Itoa(PortIOC)
	if host, _, err := net.SplitHostPort(proxyAddr); err == nil && n.l.seg {
		if pz := n.l.zoneOfAddr(host); pz != "" && pz != lab.ZoneClinical {
			// The eMAR's traffic to the proxy leaves the clinical zone's
			// network, which has no route to the proxy's: the zone
			// firewall's deny, as its log would show it.
			n.l.record(lab.Evidence{Control: posture.Segmentation, Time: time.Now(), LabTime: n.l.clk.Now(), Target: host,
				Action: "blocked", Reason: fmt.Sprintf("PCD-03 from the eMAR (zone clinical) re-pointed at %s (zone %s): no route between the zones' networks", proxyAddr, pz),
				Ref: "mllp:" + proxyAddr})
		}
	}
	if err := n.l.call(ctx, "emar", "set-ioc", labapi.Addr{Addr: proxyAddr}, nil); err != nil {
		return "", nil, err
	}
	restore := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return n.l.call(ctx, "emar", "set-ioc", labapi.Addr{Addr: name}, nil)
	}
	return up, restore, nil
}
