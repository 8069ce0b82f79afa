package inproc

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/posture"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// Staff with personal pump access codes under access-codes. BME99 left the
// hospital: under per-user codes that code is revoked; the factory code
// everyone knew is what access-codes takes away.
var (
	staffUsers    = []string{"BME01", "BME02", "RN0042", "RN0043"}
	departedStaff = "BME99"
)

// WorkOrderOpen is the CMMS work order the lab keeps open for every pump
// (preventive maintenance); service mode under service-mode-audit needs it.
const WorkOrderOpen = "WO-PM-2026-01"

// cmdKeyID names the pump server's command-signing key.
const cmdKeyID = "pumpserver-cmd-1"

// pumpSecurity is the pump-side posture: command signing, access codes,
// audited service mode, stored credentials. Built once, before the fleet.
type pumpSecurity struct {
	signer   *pumpwire.Signer
	cmdPub   ed25519.PublicKey
	ports    map[string]*pump.ServicePort
	disposed map[string]bool
}

func (l *Lab) startPumpSecurity() error {
	l.psec = &pumpSecurity{ports: map[string]*pump.ServicePort{}, disposed: map[string]bool{}}
	if l.ctl.on(posture.SignedCommands) {
		seed := make([]byte, ed25519.SeedSize)
		copy(seed, []byte(l.secret("command-signing-key")))
		key := ed25519.NewKeyFromSeed(seed)
		l.psec.signer = &pumpwire.Signer{KeyID: cmdKeyID, Key: key}
		l.psec.cmdPub = key.Public().(ed25519.PublicKey)
	}
	return nil
}

// commandVerifier is a pump's verifier of signed commands (nil when
// signed-commands is off: the pump takes any command on its topic).
func (l *Lab) commandVerifier() *pumpwire.Verifier {
	if l.psec.signer == nil {
		return nil
	}
	c := l.topo.Posture.Controls.SignedCommands
	// max_skew is lab time; at a high clock speed a command's wall transit
	// on a loaded machine is many lab seconds. Accept at least 5 wall
	// seconds' worth (a replay is caught by nonce and counter anyway).
	skew := max(c.MaxSkew, time.Duration(float64(5*time.Second)*l.topo.Speed))
	return pumpwire.NewVerifier(pumpwire.VerifierConfig{Keys: map[string]ed25519.PublicKey{cmdKeyID: l.psec.cmdPub},
		Owners: map[string]string{cmdKeyID: idPumpServer}, NonceCache: c.NonceCache, CounterWindow: c.CounterWindow,
		MaxSkew: skew, Clock: l.clk})
}

// accessPolicy is a pump's access policy under the posture.
func (l *Lab) accessPolicy(id string) *pump.AccessPolicy {
	pos := l.topo.Posture
	ap := &pump.AccessPolicy{FactoryCode: pos.Weaknesses.SharedCredentials.AccessCode,
		Unauthenticated: pos.Weaknesses.ServicePort.Enabled}
	if l.ctl.on(posture.AccessCodes) {
		c := pos.Controls.AccessCodes
		ap.FactoryCode, ap.PerUser = "", true
		ap.Users = map[string]string{}
		for _, u := range staffUsers {
			ap.Users[u] = l.staffCode(u)
		}
		ap.MinLength, ap.CodeLifetime, ap.MaxFailures = c.MinLength, c.RotateEvery, c.MaxFailures
	}
	if l.ctl.on(posture.ServiceModeAudit) {
		c := pos.Controls.ServiceModeAudit
		ap.ServiceAudit, ap.RequireReason, ap.SessionTimeout = true, c.RequireReason, c.SessionTimeout
		ap.WorkOrderCheck = func(pumpID, wo string) bool { return wo == WorkOrderOpen }
	}
	return ap
}

// staffCode is a staff member's personal code (8 digits from the seed).
func (l *Lab) staffCode(user string) string {
	s := l.secret("access-code:" + user)
	var b strings.Builder
	for _, c := range s[:8] {
		b.WriteByte('0' + byte(c)%10)
	}
	return b.String()
}

// credentials are what a pump stores: its broker login, the device Wi-Fi
// PSK and, under the PKI, its certificate and key.
func (l *Lab) credentials(id string) pump.Credentials {
	user, pass := l.brokerLogin(id)
	c := pump.Credentials{BrokerUsername: user, BrokerPassword: pass, WiFiSSID: "PUMPNET-4W", WiFiPSK: l.secret("wifi-psk")}
	if l.pki != nil {
		if ident, ok := l.pki.Identity(id); ok {
			c.ClientCertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ident.Leaf.Raw}))
			c.ClientKeyPEM = "-----BEGIN EC PRIVATE KEY-----\n(device key of " + id + ")\n-----END EC PRIVATE KEY-----\n"
		}
	}
	return c
}

// onPumpControl turns a pump's control events into evidence and audit lines.
func (l *Lab) onPumpControl(e pump.ControlEvent) {
	l.ctl.recordFrom(e.PumpID, "", lab.Evidence{Control: e.Control, LabTime: e.At, Target: e.PumpID, Action: e.Action,
		Reason: e.Reason, Ref: e.Ref})
}

// Biomed implements lab.Biomed.

func (l *Lab) pumpModel(id string) (*pump.Pump, error) {
	p, ok := l.PumpModels[id]
	if !ok {
		return nil, fmt.Errorf("inproc: no pump %q", id)
	}
	return p, nil
}

// ServicePort starts (once) and returns the pump's service port.
func (l *Lab) ServicePort(ctx context.Context, pumpID string) (string, error) {
	p, err := l.pumpModel(pumpID)
	if err != nil {
		return "", err
	}
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if sp, ok := l.psec.ports[pumpID]; ok {
		return sp.Addr(), nil
	}
	sp, err := pump.NewServicePort(p, "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	l.psec.ports[pumpID] = sp
	l.onClose(sp.Close)
	return sp.Addr(), nil
}

// StaffCode implements lab.Biomed.
func (l *Lab) StaffCode(ctx context.Context, user string) (string, error) {
	if !l.ctl.on(posture.AccessCodes) {
		return "", errors.New("inproc: the posture has no per-user access codes (pumps take the factory code)")
	}
	if !slices.Contains(staffUsers, user) {
		return "", fmt.Errorf("inproc: %s has no access code", user)
	}
	return l.staffCode(user), nil
}

// KeypadLogin implements lab.Biomed.
func (l *Lab) KeypadLogin(ctx context.Context, pumpID, user, code string) (string, error) {
	p, err := l.pumpModel(pumpID)
	if err != nil {
		return "", err
	}
	return p.ServiceLogin(user, code)
}

// KeypadService implements lab.Biomed.
func (l *Lab) KeypadService(ctx context.Context, pumpID, session, workOrder, reason string) error {
	p, err := l.pumpModel(pumpID)
	if err != nil {
		return err
	}
	return p.ServiceEnter(session, workOrder, reason)
}

// KeypadSet implements lab.Biomed.
func (l *Lab) KeypadSet(ctx context.Context, pumpID, session, key, value string) error {
	p, err := l.pumpModel(pumpID)
	if err != nil {
		return err
	}
	return p.ServiceSet(session, key, value)
}

// Settings implements lab.Biomed.
func (l *Lab) Settings(ctx context.Context, pumpID string) (map[string]string, error) {
	p, err := l.pumpModel(pumpID)
	if err != nil {
		return nil, err
	}
	return p.ConfigDump().Settings, nil
}

// Decommission implements lab.Biomed: the pump leaves the network; under
// decommission-wipe its storage is erased and verified and its certificate
// revoked.
func (l *Lab) Decommission(ctx context.Context, pumpID string) error {
	p, err := l.pumpModel(pumpID)
	if err != nil {
		return err
	}
	wipe := l.ctl.on(posture.DecommissionWipe)
	if a := l.Agents[pumpID]; a != nil {
		_ = a.Close()
	}
	left := p.Decommission(wipe)
	l.rmu.Lock()
	l.psec.disposed[pumpID] = true
	l.rmu.Unlock()
	if !wipe {
		return nil
	}
	c := l.topo.Posture.Controls.DecommissionWipe
	reason := "credentials, PHI and logs erased"
	if c.Verify {
		if len(left) > 0 {
			return fmt.Errorf("inproc: decommission %s: the wipe left %v", pumpID, left)
		}
		reason += ", verified empty"
	}
	if c.RevokeCertificate && l.pki != nil {
		if err := l.pki.Revoke(pumpID); err != nil {
			return fmt.Errorf("inproc: decommission %s: revoke: %w", pumpID, err)
		}
		reason += ", certificate revoked"
	}
	l.ctl.recordFrom("biomed", "", lab.Evidence{Control: posture.DecommissionWipe, LabTime: l.clk.Now(), Target: pumpID,
		Action: "blocked", Reason: reason + " before disposal", Ref: "decommission:" + pumpID})
	return nil
}

// Disposed implements lab.Biomed.
func (l *Lab) Disposed(ctx context.Context, pumpID string) (lab.Disposed, error) {
	p, err := l.pumpModel(pumpID)
	if err != nil {
		return lab.Disposed{}, err
	}
	l.rmu.Lock()
	gone := l.psec.disposed[pumpID]
	l.rmu.Unlock()
	if !gone {
		return lab.Disposed{}, fmt.Errorf("inproc: %s is still in service", pumpID)
	}
	s := p.Storage()
	return lab.Disposed{PumpID: pumpID, Credentials: s.Credentials, PHI: s.PHICount}, nil
}

// The pharmacy's library-signing key and the vendor's firmware key (seeded).
const (
	pharmacyKeyID = "pharmacy-1"
	vendorKeyID   = "vendor-fw-1"
)

func (l *Lab) seededKey(purpose string) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, []byte(l.secret(purpose)+l.secret(purpose+"/2")))
	return ed25519.NewKeyFromSeed(seed)
}

func (l *Lab) pharmacyKey() ed25519.PrivateKey { return l.seededKey("pharmacy-signing-key") }

// VendorFirmwareKey is the pump vendor's firmware-signing key of this lab.
func (l *Lab) VendorFirmwareKey() (string, ed25519.PrivateKey) {
	return vendorKeyID, l.seededKey("vendor-firmware-key")
}

// libraryPolicy is the pumps' library policy under signed-library (nil:
// a pump takes any library its server pushes).
func (l *Lab) libraryPolicy() *pump.LibraryPolicy {
	if !l.ctl.on(posture.SignedLibrary) {
		return nil
	}
	c := l.topo.Posture.Controls.SignedLibrary
	return &pump.LibraryPolicy{Keys: map[string]ed25519.PublicKey{pharmacyKeyID: l.pharmacyKey().Public().(ed25519.PublicKey)},
		RequireSignature: true, RequireApproval: c.RequireApproval, AllowRollback: c.AllowRollback}
}

// firmwarePolicy is the pumps' firmware policy under signed-firmware.
func (l *Lab) firmwarePolicy() *pump.FirmwarePolicy {
	if !l.ctl.on(posture.SignedFirmware) {
		return nil
	}
	c := l.topo.Posture.Controls.SignedFirmware
	kid, key := l.VendorFirmwareKey()
	return &pump.FirmwarePolicy{VendorKeys: map[string]ed25519.PublicKey{kid: key.Public().(ed25519.PublicKey)},
		RequireSignature: true, AllowRollback: c.AllowRollback, MinVersion: c.MinVersion}
}
