// Package lab brings a simulated hospital up: the requested topology (a plain
// value), the providers that turn it into a running Lab, and the operations
// scenarios drive the hospital with.
//
// A Topology says what to run (how many pumps, which broker, the clock speed,
// the seed); a Provider (lab/inproc by default, lab/containers for segmented
// networks) starts it and returns a Lab. Scenarios talk to the Lab only
// through this package's interface, so the same scenario runs on every
// provider. Providers register themselves by name; only cmd/ and suite entry
// points import a provider package and so choose one.
package lab

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/lab/posture"
)

// Topology is the requested hospital. Its zero value is a valid default lab.
type Topology struct {
	// Pumps in the fleet; default 20.
	Pumps int
	// Seed drives every random choice of the lab (nurse latencies, fleet
	// population); default 1.
	Seed int64
	// Speed is lab seconds per wall second; default 60 (an hour in a minute).
	Speed float64
	// Epoch is the lab time at start; default 2026-01-05 08:00 UTC.
	Epoch time.Time
	// Broker: "" or "embedded" for the embedded mochi broker, "mosquitto" for
	// Debian's mosquitto started by the lab, or an MQTT URL (tcp://host:port)
	// of any external broker.
	Broker string
	// CareArea of the fleet's drug-library profile; default "Adult ICU".
	CareArea string
	// StatusInterval is the pumps' status period in lab time; default 10 s.
	StatusInterval time.Duration
	// PCD01Interval is the pump server's PCD-01 period in lab time; default 60 s.
	PCD01Interval time.Duration
	// Nurse is the behaviour of the simulated nurses.
	Nurse NurseModel
	// Nurses is the number of nurse communicators; default 2 (primary and charge).
	Nurses int
	// Posture is the security posture; nil means the built-in legacy
	// posture (flat trust, no controls).
	Posture *posture.Posture
	// AuditSyslog is where controls send their audit lines (RFC 5424 over
	// "udp://127.0.0.1:port" or "tcp://127.0.0.1:port", see lab/audit); ""
	// keeps them in memory only (Lab.Evidence has them either way).
	AuditSyslog string
}

// NurseModel parameterises the simulated nurses. Latencies are lab time,
// drawn from a log-normal distribution with the given median and spread.
type NurseModel struct {
	// ConfirmMedian is the time from a program appearing on the pump to the
	// nurse confirming and starting it; default 20 s.
	ConfirmMedian time.Duration
	// AlarmAcceptMedian is the time from a dispatch on the phone to the nurse
	// accepting it; default 45 s.
	AlarmAcceptMedian time.Duration
	// Sigma is the log-normal spread (of ln seconds); default 0.4.
	Sigma float64
	// OverrideReason is the reason given for soft-limit overrides; default
	// "clinically indicated".
	OverrideReason string
	// Disabled turns the nurse model off (scenarios then act themselves).
	Disabled bool
}

// WithDefaults returns t with every zero field set to its default.
func (t Topology) WithDefaults() Topology {
	if t.Pumps <= 0 {
		t.Pumps = 20
	}
	if t.Seed == 0 {
		t.Seed = 1
	}
	if t.Speed <= 0 {
		t.Speed = 60
	}
	if t.Epoch.IsZero() {
		t.Epoch = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	}
	if t.CareArea == "" {
		t.CareArea = "Adult ICU"
	}
	if t.StatusInterval <= 0 {
		t.StatusInterval = 10 * time.Second
	}
	if t.PCD01Interval <= 0 {
		t.PCD01Interval = 60 * time.Second
	}
	if t.Nurses <= 0 {
		t.Nurses = 2
	}
	n := &t.Nurse
	if n.ConfirmMedian <= 0 {
		n.ConfirmMedian = 20 * time.Second
	}
	if n.AlarmAcceptMedian <= 0 {
		n.AlarmAcceptMedian = 45 * time.Second
	}
	if n.Sigma <= 0 {
		n.Sigma = 0.4
	}
	if n.OverrideReason == "" {
		n.OverrideReason = "clinically indicated"
	}
	return t
}

// PumpID is the id of the i-th pump (1-based) of a lab fleet.
func PumpID(i int) string { return fmt.Sprintf("PUMP-%04d", i) }

// Endpoint is one address a researcher can script against.
type Endpoint struct {
	Name     string // e.g. "broker", "pumpserver-mllp"
	Protocol string // mqtt, mllp, http
	Address  string // URL or host:port
	Purpose  string
}

// Provider turns a Topology into a running Lab.
type Provider interface {
	Name() string
	Start(ctx context.Context, t Topology) (Lab, error)
}

var (
	regMu     sync.Mutex
	providers = map[string]Provider{}
)

// Register makes a provider available by name; it panics on a duplicate.
func Register(p Provider) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := providers[p.Name()]; dup {
		panic("lab: provider " + p.Name() + " registered twice")
	}
	providers[p.Name()] = p
}

// Lookup returns a registered provider.
func Lookup(name string) (Provider, error) {
	regMu.Lock()
	defer regMu.Unlock()
	p, ok := providers[name]
	if !ok {
		names := make([]string, 0, len(providers))
		for n := range providers {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("lab: no provider %q (registered: %v)", name, names)
	}
	return p, nil
}

// Lab is a running hospital. Every method that waits takes a context.
type Lab interface {
	// Provider names the provider that runs the lab.
	Provider() string
	// Clock is the lab clock.
	Clock() clock.Clock
	// Endpoints lists every address of the lab.
	Endpoints() []Endpoint
	// Pumps lists the fleet's pump ids.
	Pumps() []string
	// Clinical gives the clinical workflows (ADT, CPOE, pharmacy, BCMA).
	Clinical() Clinical
	// Devices gives the bedside: pump truth, faults, the nurse at the pump.
	Devices() Devices
	// Alarms gives the alarm manager's records.
	Alarms() Alarms
	// PumpServer gives the pump server's registry and counters.
	PumpServer() PumpServer
	// Network gives on-path positions on the hospital's HL7 links.
	Network() Network
	// Controls reports which of the posture's controls this lab enforces
	// and which it does not implement (those must not be scored as if on).
	Controls() (enforced, unsupported []string)
	// Evidence returns what the controls did so far (blocked, allowed...).
	Evidence(ctx context.Context) ([]Evidence, error)
	// Close stops the whole hospital and waits for it.
	Close() error
}
