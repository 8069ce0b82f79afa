package lab

import (
	"context"
	"errors"
	"time"
)

// ErrInterposeUnsupported is wrapped by Network.Interpose when the lab
// cannot put the given proxy on the given link (the container lab re-points
// only the BCMA -> pump-server link, and only at an address on its own
// networks). A scenario that meets it can report Not Applicable.
var ErrInterposeUnsupported = errors.New("interpose not supported on this lab for this link or proxy address")

// Zone is a network zone of the hospital (REFERENCE.md §1.3, the lab's zone
// model): each is its own network when the lab segments.
type Zone string

// The lab's zones.
const (
	ZoneEnterprise Zone = "enterprise" // Z1: directory, DNS, PKI, SIEM
	ZoneClinical   Zone = "clinical"   // Z2: EHR, CPOE, pharmacy, eMAR/BCMA
	ZoneServers    Zone = "servers"    // Z3: pump server, drug library, alarm manager, broker
	ZoneDevice     Zone = "device"     // Z4: the pumps
	ZoneUntrusted  Zone = "untrusted"  // Z6: guest network, attacker foothold
	ZoneMonitor    Zone = "monitor"    // Z7: IDS sensors, read-only
)

// Zones lists every zone in a stable order.
var Zones = []Zone{ZoneEnterprise, ZoneClinical, ZoneServers, ZoneDevice, ZoneUntrusted, ZoneMonitor}

// Zoned is a lab whose zones are real networks (lab/containers). Scenarios
// that need segmentation type-assert the Lab to it; a lab that does not
// implement it cannot host them (they are reported Not Applicable).
type Zoned interface {
	// Segmented reports whether zones are separate networks joined only by
	// the application gateways (posture control segmentation); false means
	// one flat network.
	Segmented() bool
	// Host returns the address of a lab system on its own network, as an
	// attacker would target it: "fleet" (the pumps' host), "pumpserver",
	// "broker", "ehr", "emar", "alarms", "druglib".
	Host(system string) (string, error)
	// ServicePort returns host:port of a pump's comm-module service port
	// (the legacy telnet-style weakness) on the device network; an error
	// when the fleet does not expose it. (Same signature as
	// Biomed.ServicePort.)
	ServicePort(ctx context.Context, pumpID string) (string, error)
	// Subnets are the CIDRs of the lab's networks: what a host-side attack
	// helper's safety rail must allow (attack.Targets.AddLab) to reach the
	// lab's addresses.
	Subnets() []string
	// AttackFrom places an attacker host in zone and returns it.
	AttackFrom(ctx context.Context, zone Zone) (ZoneHost, error)
}

// ZoneHost is an attacker host placed in one zone: everything it does leaves from
// that zone's network.
type ZoneHost interface {
	Zone() Zone
	// Dial connects to addr, reads what the service says first and, when
	// send is not empty, writes it and reads the answer.
	Dial(ctx context.Context, addr, send string, timeout time.Duration) (Probe, error)
	// Scan is a TCP connect scan of hosts x ports.
	Scan(ctx context.Context, hosts []string, ports []int, timeout time.Duration) (ScanResult, error)
	// Flood opens conns connections to addr and writes junk bytes on each,
	// bounded by d.
	Flood(ctx context.Context, addr string, conns, bytes int, d time.Duration) (FloodResult, error)
	// Proxy starts an MLLP man in the middle on the host that forwards
	// to upstream and multiplies the dose (RXG-15) of every PCD-03 by
	// factor; it returns the proxy's address.
	Proxy(ctx context.Context, upstream string, factor float64) (string, error)
	// ProxyStats counts what the host's proxies did.
	ProxyStats(ctx context.Context) (ProxyCounters, error)
}

// Probe is the outcome of one connection attempt.
type Probe struct {
	Connected bool
	Banner    string
	Err       string
	Elapsed   time.Duration
}

// ScanResult is the outcome of a connect scan.
type ScanResult struct {
	Open        []string // host:port that accepted
	Refused     int      // reset by the host (reachable, port closed)
	Unreachable int      // no answer (filtered, no route)
	Probes      int
}

// FloodResult counts what a flood achieved.
type FloodResult struct {
	Opened, Failed int
	BytesSent      int64
	FirstErr       string
}

// ProxyCounters counts what an on-path proxy did.
type ProxyCounters struct {
	Connections, Forwarded, Changed int64
}
