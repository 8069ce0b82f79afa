// Package posture reads the lab's security postures: named sets of controls
// (mutual TLS, broker ACLs, signed commands, order cross-check, ...) and of
// legacy weaknesses (shared credentials, a telnet-style service port, remote
// start), from YAML files with a documented schema (docs/postures.md).
//
// A posture is data, not behaviour: the lab reads the typed fields of a
// Posture and switches the matching stages of its simulators on or off.
// Loading is strict: unknown fields, duplicate keys, aliases, wrong types
// and out-of-range values are refused, and every error names the file, the
// line and the field:
//
//	posture: postures/nccoe.yaml:14: controls.rate-limit.per_second: -3 must be > 0
//
// Every control can be switched alone from the command line with Apply
// (`--control order-crosscheck=off`); the resulting posture's Name records
// the overrides (`nccoe+order-crosscheck=off`) so that a scorecard says
// exactly which posture a run used. The built-in postures (legacy, nccoe)
// are embedded from lab/posture/postures/*.yaml.
package posture

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Control names, as written in posture files and on the command line.
const (
	PKI              = "pki"
	MTLSMQTT         = "mtls-mqtt"
	MTLSMLLP         = "mtls-mllp"
	BrokerACL        = "broker-acl"
	SignedCommands   = "signed-commands"
	SignedLibrary    = "signed-library"
	SignedFirmware   = "signed-firmware"
	OrderCrosscheck  = "order-crosscheck"
	AccessCodes      = "access-codes"
	ServiceModeAudit = "service-mode-audit"
	AlarmHeartbeat   = "alarm-heartbeat"
	RateLimit        = "rate-limit"
	DecommissionWipe = "decommission-wipe"
	Segmentation     = "segmentation"
)

// Weakness names: legacy behaviours a posture can leave on.
const (
	SharedCredentials = "shared-credentials"
	ServicePort       = "service-port"
	RemoteStart       = "remote-start"
)

// Posture is a named set of controls and weaknesses.
type Posture struct {
	// Name identifies the posture: lower-case letters, digits and '-'. After
	// Apply it carries the overrides, e.g. "nccoe+order-crosscheck=off".
	Name string `yaml:"name"`
	// Description is one or two sentences for reports.
	Description string `yaml:"description"`
	// Controls are the preventive controls.
	Controls Controls `yaml:"controls"`
	// Weaknesses are the legacy behaviours left on.
	Weaknesses Weaknesses `yaml:"weaknesses"`
	// Overrides are the Apply arguments that made this posture from the
	// file, normalised ("order-crosscheck=off"); empty for a loaded file.
	Overrides []string `yaml:"-"`
	// Source is where the posture came from: a file path or "builtin:NAME".
	Source string `yaml:"-"`
}

// Controls holds one typed field per control. A control given in a file
// only as `name: true` (or false) keeps its default parameters.
type Controls struct {
	PKI              PKIControl              `yaml:"pki"`
	MTLSMQTT         MTLSMQTTControl         `yaml:"mtls-mqtt"`
	MTLSMLLP         MTLSMLLPControl         `yaml:"mtls-mllp"`
	BrokerACL        BrokerACLControl        `yaml:"broker-acl"`
	SignedCommands   SignedCommandsControl   `yaml:"signed-commands"`
	SignedLibrary    SignedLibraryControl    `yaml:"signed-library"`
	SignedFirmware   SignedFirmwareControl   `yaml:"signed-firmware"`
	OrderCrosscheck  OrderCrosscheckControl  `yaml:"order-crosscheck"`
	AccessCodes      AccessCodesControl      `yaml:"access-codes"`
	ServiceModeAudit ServiceModeAuditControl `yaml:"service-mode-audit"`
	AlarmHeartbeat   AlarmHeartbeatControl   `yaml:"alarm-heartbeat"`
	RateLimit        RateLimitControl        `yaml:"rate-limit"`
	DecommissionWipe DecommissionWipeControl `yaml:"decommission-wipe"`
	Segmentation     SegmentationControl     `yaml:"segmentation"`
}

// PKIControl is the lab PKI generated at lab start (see lab/pki): a root CA,
// per-device and per-service certificates and a revocation list.
type PKIControl struct {
	Enabled bool `yaml:"enabled"`
	// CALifetime is the validity of the root CA in lab time (default 720h).
	CALifetime time.Duration `yaml:"ca_lifetime"`
	// CertLifetime is the validity of issued certificates (default 168h);
	// at most CALifetime.
	CertLifetime time.Duration `yaml:"cert_lifetime"`
	// CRLLifetime is the NextUpdate distance of the revocation list
	// (default 24h).
	CRLLifetime time.Duration `yaml:"crl_lifetime"`
}

// MTLSMQTTControl is mutual TLS on MQTT: the broker requires a client
// certificate from the lab CA.
type MTLSMQTTControl struct {
	Enabled bool `yaml:"enabled"`
	// MinVersion is "1.2" or "1.3" (default "1.2").
	MinVersion string `yaml:"min_version"`
	// IdentityFromCert makes the broker take the client's identity (for
	// ACLs) from the certificate's common name, ignoring the MQTT username
	// (default true).
	IdentityFromCert bool `yaml:"identity_from_cert"`
}

// MTLSMLLPControl is mutual TLS on every MLLP (HL7) link.
type MTLSMLLPControl struct {
	Enabled bool `yaml:"enabled"`
	// MinVersion is "1.2" or "1.3" (default "1.2").
	MinVersion string `yaml:"min_version"`
	// AllowedSources maps an MLLP listener (one of MLLPListeners) to the
	// certificate common names allowed to send to it. A listener that is
	// absent accepts any certificate of the lab CA.
	AllowedSources map[string][]string `yaml:"allowed_sources"`
}

// BrokerACLControl is deny-by-default topic ACLs at the MQTT broker: a pump
// publishes only under its own topics, only the pump server publishes
// commands.
type BrokerACLControl struct {
	Enabled bool `yaml:"enabled"`
	// MonitorUser is the read-only identity given to monitoring tools
	// (subscribe to everything, publish nothing); "" for none (default
	// "monitor").
	MonitorUser string `yaml:"monitor_user"`
	// LogDenials writes an audit event for every refused publish or
	// subscribe (default true).
	LogDenials bool `yaml:"log_denials"`
}

// SignedCommandsControl is signed pump commands with anti-replay: every command
// carries a key id, a nonce and a signature (pumpwire Auth), and the pump
// refuses replays by nonce and by per-sender counter.
type SignedCommandsControl struct {
	Enabled bool `yaml:"enabled"`
	// NonceCache is how many recent nonces a receiver remembers per sender
	// (default 4096).
	NonceCache int `yaml:"nonce_cache"`
	// CounterWindow is how far below the highest counter seen a message's
	// counter may be and still be accepted (once) (default 32).
	CounterWindow int `yaml:"counter_window"`
	// MaxSkew is the largest accepted distance between a message's lab time
	// and the receiver's (default 30s).
	MaxSkew time.Duration `yaml:"max_skew"`
	// SignReports also signs pump to server messages (status, events,
	// alarms), not only commands (default true).
	SignReports bool `yaml:"sign_reports"`
}

// SignedLibraryControl is the signed drug library with anti-rollback.
type SignedLibraryControl struct {
	Enabled bool `yaml:"enabled"`
	// AllowRollback accepts a signed library older than the installed one
	// (default false).
	AllowRollback bool `yaml:"allow_rollback"`
	// RequireApproval requires a second pharmacist's approval record in the
	// signed bundle (default true).
	RequireApproval bool `yaml:"require_approval"`
}

// SignedFirmwareControl is signed firmware with anti-rollback and a minimum
// version gate.
type SignedFirmwareControl struct {
	Enabled bool `yaml:"enabled"`
	// AllowRollback accepts signed firmware older than the installed one
	// (default false).
	AllowRollback bool `yaml:"allow_rollback"`
	// MinVersion is the lowest firmware version allowed on the network
	// (dotted numbers such as "4.2.0"); "" for no gate (default).
	MinVersion string `yaml:"min_version"`
}

// OrderCrosscheckControl is the order cross-check at the pump server: a PCD-03
// program is sent to a pump only if it matches the eMAR's active order and
// a recent BCMA scan.
type OrderCrosscheckControl struct {
	Enabled bool `yaml:"enabled"`
	// RequireScan requires a BCMA scan (patient, medication, pump channel)
	// for the order (default true).
	RequireScan bool `yaml:"require_scan"`
	// ScanMaxAge is how old that scan may be, in lab time (default 10m).
	ScanMaxAge time.Duration `yaml:"scan_max_age"`
	// RateTolerance is the accepted relative difference between the
	// programmed and the ordered rate or dose, 0 to 1 (default 0.05).
	RateTolerance float64 `yaml:"rate_tolerance"`
}

// AccessCodesControl is per-user, rotatable access codes on pumps, replacing
// the shared factory code.
type AccessCodesControl struct {
	Enabled bool `yaml:"enabled"`
	// MinLength of a code in digits, 4 to 16 (default 6).
	MinLength int `yaml:"min_length"`
	// RotateEvery is the lab-time lifetime of a code (default 2160h, 90 days).
	RotateEvery time.Duration `yaml:"rotate_every"`
	// MaxFailures before the keypad locks (default 5).
	MaxFailures int `yaml:"max_failures"`
}

// ServiceModeAuditControl is audited service (biomed) mode on pumps: entering
// needs an access code, every action is logged, sessions time out.
type ServiceModeAuditControl struct {
	Enabled bool `yaml:"enabled"`
	// SessionTimeout ends an idle service session (lab time, default 15m).
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// RequireReason asks for a work-order reference on entry (default true).
	RequireReason bool `yaml:"require_reason"`
}

// AlarmHeartbeatControl is alarm heartbeat and sequence checks at the alarm manager:
// every reporter sends a heartbeat; a missing one or a gap in the alarm
// sequence raises a technical alarm.
type AlarmHeartbeatControl struct {
	Enabled bool `yaml:"enabled"`
	// Interval between heartbeats (lab time, default 30s).
	Interval time.Duration `yaml:"interval"`
	// Missed heartbeats before the alarm manager raises an alarm (default 3).
	Missed int `yaml:"missed"`
	// SequenceCheck flags gaps and repeats in alarm sequence numbers
	// (default true).
	SequenceCheck bool `yaml:"sequence_check"`
}

// RateLimitControl is rate limiting per source at the broker and the MLLP
// listeners (token bucket).
type RateLimitControl struct {
	Enabled bool `yaml:"enabled"`
	// PerSecond is the sustained rate per source, messages per wall second
	// (default 50).
	PerSecond float64 `yaml:"per_second"`
	// Burst is the bucket size (default 100); at least 1.
	Burst int `yaml:"burst"`
	// Targets are where the limit applies: "mqtt", "mllp" (default both).
	Targets []string `yaml:"targets"`
}

// DecommissionWipeControl is the decommission wipe: credentials and PHI are erased from a
// pump leaving service, and its certificate is revoked.
type DecommissionWipeControl struct {
	Enabled bool `yaml:"enabled"`
	// RevokeCertificate revokes the pump's certificate in the lab PKI
	// (default true; needs pki).
	RevokeCertificate bool `yaml:"revoke_certificate"`
	// Verify reads the pump back after the wipe and fails the step if
	// anything remains (default true).
	Verify bool `yaml:"verify"`
}

// SegmentationControl is network segmentation by zone (REFERENCE.md §1.3):
// each zone is its own network, reachable from another only through the
// application gateways (MQTT for pumps to the pump server, MLLP for the
// clinical systems to the pump server). Only a provider with real networks
// (lab/containers) enforces it; the in-process lab reports it unsupported.
type SegmentationControl struct {
	Enabled bool `yaml:"enabled"`
	// Gateways places the dual-homed application gateways between zones
	// (default true); without them zones are isolated outright.
	Gateways bool `yaml:"gateways"`
}

// Weaknesses holds the legacy behaviours. Enabled means the weakness is
// present.
type Weaknesses struct {
	SharedCredentials SharedCredentialsWeakness `yaml:"shared-credentials"`
	ServicePort       ServicePortWeakness       `yaml:"service-port"`
	RemoteStart       RemoteStartWeakness       `yaml:"remote-start"`
}

// SharedCredentialsWeakness: every pump and the pump server log in to the broker with
// the same username and password, and pumps share one factory access code.
type SharedCredentialsWeakness struct {
	Enabled bool `yaml:"enabled"`
	// Username of the shared broker login (default "pump").
	Username string `yaml:"username"`
	// Password of the shared broker login (default "pump123").
	Password string `yaml:"password"`
	// AccessCode is the factory keypad code of every pump (default "1234").
	AccessCode string `yaml:"access_code"`
}

// ServicePortWeakness: each pump listens on an unauthenticated, telnet-style
// service port (loopback only).
type ServicePortWeakness struct {
	Enabled bool `yaml:"enabled"`
	// Port is 0 for an ephemeral port per pump (default 0).
	Port int `yaml:"port"`
}

// RemoteStartWeakness: the pump server may start an infusion remotely, without
// a clinician confirming at the pump.
type RemoteStartWeakness struct {
	Enabled bool `yaml:"enabled"`
}

// MLLPListeners are the MLLP listeners named in mtls-mllp.allowed_sources:
// the lab's endpoint names (lab.Endpoint.Name).
var MLLPListeners = []string{"alarm-manager", "ehr", "emar-bcma", "pumpserver-ioc"}

// RateLimitTargets are the values of rate-limit.targets.
var RateLimitTargets = []string{"mllp", "mqtt"}

// Defaults returns a posture with every control and weakness off and every
// parameter at its default. Posture files are decoded on top of it.
func Defaults() *Posture {
	return &Posture{
		Controls: Controls{
			PKI:       PKIControl{CALifetime: 720 * time.Hour, CertLifetime: 168 * time.Hour, CRLLifetime: 24 * time.Hour},
			MTLSMQTT:  MTLSMQTTControl{MinVersion: "1.2", IdentityFromCert: true},
			MTLSMLLP:  MTLSMLLPControl{MinVersion: "1.2"},
			BrokerACL: BrokerACLControl{MonitorUser: "monitor", LogDenials: true},
			SignedCommands: SignedCommandsControl{NonceCache: 4096, CounterWindow: 32, MaxSkew: 30 * time.Second,
				SignReports: true},
			SignedLibrary:    SignedLibraryControl{RequireApproval: true},
			SignedFirmware:   SignedFirmwareControl{},
			OrderCrosscheck:  OrderCrosscheckControl{RequireScan: true, ScanMaxAge: 10 * time.Minute, RateTolerance: 0.05},
			AccessCodes:      AccessCodesControl{MinLength: 6, RotateEvery: 2160 * time.Hour, MaxFailures: 5},
			ServiceModeAudit: ServiceModeAuditControl{SessionTimeout: 15 * time.Minute, RequireReason: true},
			AlarmHeartbeat:   AlarmHeartbeatControl{Interval: 30 * time.Second, Missed: 3, SequenceCheck: true},
			RateLimit:        RateLimitControl{PerSecond: 50, Burst: 100, Targets: []string{"mllp", "mqtt"}},
			DecommissionWipe: DecommissionWipeControl{RevokeCertificate: true, Verify: true},
			Segmentation:     SegmentationControl{Gateways: true},
		},
		Weaknesses: Weaknesses{
			SharedCredentials: SharedCredentialsWeakness{Username: "pump", Password: "pump123", AccessCode: "1234"},
		},
	}
}

// switchField describes one control or weakness: its name, its section and
// its index in the section struct.
type switchField struct {
	name    string
	section string // "controls" or "weaknesses"
	index   int
}

var (
	controlFields  = sectionFields(reflect.TypeOf(Controls{}), "controls")
	weaknessFields = sectionFields(reflect.TypeOf(Weaknesses{}), "weaknesses")
)

func sectionFields(t reflect.Type, section string) []switchField {
	var out []switchField
	for i := 0; i < t.NumField(); i++ {
		out = append(out, switchField{name: yamlName(t.Field(i)), section: section, index: i})
	}
	return out
}

// ControlNames returns the names of every control, in schema order.
func ControlNames() []string { return names(controlFields) }

// WeaknessNames returns the names of every weakness, in schema order.
func WeaknessNames() []string { return names(weaknessFields) }

func names(fs []switchField) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.name
	}
	return out
}

// lookup finds a control or weakness by name.
func lookup(name string) (switchField, bool) {
	for _, f := range controlFields {
		if f.name == name {
			return f, true
		}
	}
	for _, f := range weaknessFields {
		if f.name == name {
			return f, true
		}
	}
	return switchField{}, false
}

// value returns the addressable struct of control or weakness f in p.
func (p *Posture) value(f switchField) reflect.Value {
	sec := reflect.ValueOf(&p.Controls).Elem()
	if f.section == "weaknesses" {
		sec = reflect.ValueOf(&p.Weaknesses).Elem()
	}
	return sec.Field(f.index)
}

// On reports whether the control or weakness called name is enabled; an
// unknown name is off.
func (p *Posture) On(name string) bool {
	f, ok := lookup(name)
	if !ok {
		return false
	}
	return p.value(f).FieldByName("Enabled").Bool()
}

// Enabled returns the names of the enabled controls, sorted: what the
// scorecard records as the posture's controls.
func (p *Posture) Enabled() []string { return p.enabledIn(controlFields) }

// EnabledWeaknesses returns the names of the weaknesses left on, sorted.
func (p *Posture) EnabledWeaknesses() []string { return p.enabledIn(weaknessFields) }

func (p *Posture) enabledIn(fs []switchField) []string {
	out := []string{}
	for _, f := range fs {
		if p.value(f).FieldByName("Enabled").Bool() {
			out = append(out, f.name)
		}
	}
	sort.Strings(out)
	return out
}

// Clone returns a deep copy of p.
func (p *Posture) Clone() *Posture {
	c := *p
	c.Overrides = append([]string(nil), p.Overrides...)
	c.Controls.RateLimit.Targets = append([]string(nil), p.Controls.RateLimit.Targets...)
	if p.Controls.RateLimit.Targets == nil {
		c.Controls.RateLimit.Targets = nil
	}
	if p.Controls.MTLSMLLP.AllowedSources != nil {
		m := make(map[string][]string, len(p.Controls.MTLSMLLP.AllowedSources))
		for k, v := range p.Controls.MTLSMLLP.AllowedSources {
			m[k] = append([]string(nil), v...)
		}
		c.Controls.MTLSMLLP.AllowedSources = m
	}
	return &c
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Validate checks ranges and dependencies. Problems name the field
// (controls.rate-limit.per_second) but no file or line.
func (p *Posture) Validate() error {
	var ps problems
	add := func(field, format string, args ...any) {
		ps.add(&FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	// A posture made by Apply (and written by Marshal) carries its
	// overrides after the base name: nccoe+pki=off.
	if base, _, _ := strings.Cut(p.Name, "+"); !nameRE.MatchString(base) {
		add("name", "%q must be 1 to 63 lower-case letters, digits or '-', starting with a letter or digit", p.Name)
	}
	c := &p.Controls
	positiveDur := func(field string, d time.Duration) {
		if d <= 0 {
			add(field, "%s must be > 0", FormatDuration(d))
		}
	}
	tlsVersion := func(field, v string) {
		if v != "1.2" && v != "1.3" {
			add(field, "%q must be \"1.2\" or \"1.3\"", v)
		}
	}
	const ctl = "controls."
	positiveDur(ctl+PKI+".ca_lifetime", c.PKI.CALifetime)
	positiveDur(ctl+PKI+".cert_lifetime", c.PKI.CertLifetime)
	positiveDur(ctl+PKI+".crl_lifetime", c.PKI.CRLLifetime)
	if c.PKI.CertLifetime > c.PKI.CALifetime && c.PKI.CALifetime > 0 {
		add(ctl+PKI+".cert_lifetime", "%s must not exceed ca_lifetime %s", FormatDuration(c.PKI.CertLifetime), FormatDuration(c.PKI.CALifetime))
	}
	tlsVersion(ctl+MTLSMQTT+".min_version", c.MTLSMQTT.MinVersion)
	tlsVersion(ctl+MTLSMLLP+".min_version", c.MTLSMLLP.MinVersion)
	for _, l := range sortedKeys(c.MTLSMLLP.AllowedSources) {
		field := ctl + MTLSMLLP + ".allowed_sources." + l
		if !contains(MLLPListeners, l) {
			add(field, "unknown MLLP listener %q (known: %s)", l, strings.Join(MLLPListeners, ", "))
		}
		srcs := c.MTLSMLLP.AllowedSources[l]
		if len(srcs) == 0 {
			add(field, "empty list would refuse every sender; remove the listener to accept any lab certificate")
		}
		for i, s := range srcs {
			if strings.TrimSpace(s) == "" || s != strings.TrimSpace(s) {
				add(fmt.Sprintf("%s[%d]", field, i), "%q is not a certificate common name", s)
			}
		}
	}
	if c.SignedCommands.NonceCache < 1 {
		add(ctl+SignedCommands+".nonce_cache", "%d must be >= 1", c.SignedCommands.NonceCache)
	}
	if c.SignedCommands.CounterWindow < 0 {
		add(ctl+SignedCommands+".counter_window", "%d must be >= 0", c.SignedCommands.CounterWindow)
	}
	positiveDur(ctl+SignedCommands+".max_skew", c.SignedCommands.MaxSkew)
	if v := c.SignedFirmware.MinVersion; v != "" && !versionRE.MatchString(v) {
		add(ctl+SignedFirmware+".min_version", "%q must be dotted numbers such as \"4.2.0\"", v)
	}
	positiveDur(ctl+OrderCrosscheck+".scan_max_age", c.OrderCrosscheck.ScanMaxAge)
	if t := c.OrderCrosscheck.RateTolerance; t < 0 || t > 1 {
		add(ctl+OrderCrosscheck+".rate_tolerance", "%g must be between 0 and 1", t)
	}
	if l := c.AccessCodes.MinLength; l < 4 || l > 16 {
		add(ctl+AccessCodes+".min_length", "%d must be between 4 and 16", l)
	}
	positiveDur(ctl+AccessCodes+".rotate_every", c.AccessCodes.RotateEvery)
	if c.AccessCodes.MaxFailures < 1 {
		add(ctl+AccessCodes+".max_failures", "%d must be >= 1", c.AccessCodes.MaxFailures)
	}
	positiveDur(ctl+ServiceModeAudit+".session_timeout", c.ServiceModeAudit.SessionTimeout)
	positiveDur(ctl+AlarmHeartbeat+".interval", c.AlarmHeartbeat.Interval)
	if c.AlarmHeartbeat.Missed < 1 {
		add(ctl+AlarmHeartbeat+".missed", "%d must be >= 1", c.AlarmHeartbeat.Missed)
	}
	if c.RateLimit.PerSecond <= 0 {
		add(ctl+RateLimit+".per_second", "%g must be > 0", c.RateLimit.PerSecond)
	}
	if c.RateLimit.Burst < 1 {
		add(ctl+RateLimit+".burst", "%d must be >= 1", c.RateLimit.Burst)
	}
	if len(c.RateLimit.Targets) == 0 {
		add(ctl+RateLimit+".targets", "must name at least one of %s", strings.Join(RateLimitTargets, ", "))
	}
	seen := map[string]bool{}
	for i, t := range c.RateLimit.Targets {
		field := fmt.Sprintf("%s%s.targets[%d]", ctl, RateLimit, i)
		switch {
		case !contains(RateLimitTargets, t):
			add(field, "unknown target %q (known: %s)", t, strings.Join(RateLimitTargets, ", "))
		case seen[t]:
			add(field, "%q listed twice", t)
		}
		seen[t] = true
	}
	w := &p.Weaknesses
	const weak = "weaknesses."
	if w.SharedCredentials.Enabled {
		if w.SharedCredentials.Username == "" {
			add(weak+SharedCredentials+".username", "must not be empty when the weakness is enabled")
		}
		if w.SharedCredentials.AccessCode != "" && !digitsRE.MatchString(w.SharedCredentials.AccessCode) {
			add(weak+SharedCredentials+".access_code", "%q must be 1 to 16 digits", w.SharedCredentials.AccessCode)
		}
	}
	if pt := w.ServicePort.Port; pt < 0 || pt > 65535 {
		add(weak+ServicePort+".port", "%d must be between 0 and 65535", pt)
	}
	// Dependencies, checked only for enabled controls.
	needsPKI := func(name string, on bool, why string) {
		if on && !c.PKI.Enabled {
			add(ctl+name, "needs %s, which is off (%s); switch %s on or %s off", PKI, why, PKI, name)
		}
	}
	needsPKI(MTLSMQTT, c.MTLSMQTT.Enabled, "certificates come from the lab CA")
	needsPKI(MTLSMLLP, c.MTLSMLLP.Enabled, "certificates come from the lab CA")
	needsPKI(SignedCommands, c.SignedCommands.Enabled, "signing keys come from the lab PKI")
	needsPKI(SignedLibrary, c.SignedLibrary.Enabled, "signing keys come from the lab PKI")
	needsPKI(SignedFirmware, c.SignedFirmware.Enabled, "signing keys come from the lab PKI")
	if c.DecommissionWipe.Enabled && c.DecommissionWipe.RevokeCertificate && !c.PKI.Enabled {
		add(ctl+DecommissionWipe+".revoke_certificate", "needs %s, which is off (there is no certificate to revoke); "+
			"switch %s on or set revoke_certificate: false", PKI, PKI)
	}
	return ps.err()
}

var (
	versionRE = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$`)
	digitsRE  = regexp.MustCompile(`^[0-9]{1,16}$`)
)

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
