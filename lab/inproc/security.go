package inproc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/broker"
	"github.com/pumplab/pumplab/lab/pki"
	"github.com/pumplab/pumplab/lab/posture"
	"github.com/pumplab/pumplab/simulators/alarms"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pumpserver"
)

// The identities of the hospital's services in the lab PKI. MLLP listeners
// are named as in posture.MLLPListeners (and lab endpoints); the pump server's
// listener "pumpserver-ioc" presents the "pumpserver" certificate.
const (
	idPumpServer = "pumpserver"
	idEMAR       = "emar-bcma"
	idEHR        = "ehr"
	idAM         = "alarm-manager"
	idMonitor    = "monitor"
)

// startPKI generates the lab PKI when the posture has it: a CA, a
// certificate per service and per pump, and one for monitoring tools.
func (l *Lab) startPKI() error {
	if !l.ctl.on(posture.PKI) {
		return nil
	}
	cfg := l.topo.Posture.Controls.PKI
	p, err := pki.New(pki.Options{Clock: l.clk, Lab: "pumplab", CALifetime: cfg.CALifetime, CertLifetime: cfg.CertLifetime,
		CRLLifetime: cfg.CRLLifetime})
	if err != nil {
		return err
	}
	for _, name := range []string{idPumpServer, idEMAR, idEHR, idAM} {
		if _, err := p.Issue(name, pki.Service, nil); err != nil {
			return err
		}
	}
	if _, err := p.Issue(idMonitor, pki.User, nil); err != nil {
		return err
	}
	for i := 1; i <= l.topo.Pumps; i++ {
		if _, err := p.Issue(lab.PumpID(i), pki.Device, nil); err != nil {
			return err
		}
	}
	l.pki = p
	l.ctl.record(lab.Evidence{Control: posture.PKI, LabTime: l.clk.Now(), Target: "lab-ca", Action: "allowed",
		Reason: fmt.Sprintf("lab CA issued %d certificates", len(p.Names()))})
	return nil
}

// mllpServerTLS is the TLS configuration of an MLLP listener under
// mtls-mllp, or nil when the control is off. The listener requests a client
// certificate and checks it itself (chain to the lab CA at lab time, not
// revoked, common name among the listener's allowed sources) so that every
// refusal is recorded as evidence and written to the audit trail.
func (l *Lab) mllpServerTLS(listener, identity string) (*tls.Config, error) {
	if !l.ctl.on(posture.MTLSMLLP) || l.pki == nil {
		return nil, nil
	}
	cfg, err := l.pki.ServerTLS(identity)
	if err != nil {
		return nil, err
	}
	mt := l.topo.Posture.Controls.MTLSMLLP
	if mt.MinVersion == "1.3" {
		cfg.MinVersion = tls.VersionTLS13
	}
	allowed, restricted := mt.AllowedSources[listener]
	cfg.ClientAuth = tls.RequestClientCert
	cfg.VerifyPeerCertificate = nil
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		refuse := func(source, why string) error {
			l.ctl.recordFrom(listener, source, lab.Evidence{Control: posture.MTLSMLLP, LabTime: l.clk.Now(), Target: listener,
				Action: "blocked", Reason: why, Ref: "tls:" + listener})
			return fmt.Errorf("mtls-mllp: %s", why)
		}
		if len(cs.PeerCertificates) == 0 {
			return refuse("", "TLS client without a certificate refused at "+listener)
		}
		leaf := cs.PeerCertificates[0]
		cn := leaf.Subject.CommonName
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: l.pki.Pool(), Intermediates: inter, CurrentTime: l.clk.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return refuse(cn, fmt.Sprintf("client certificate %q is not from the lab CA: %v", cn, err))
		}
		if l.pki.IsRevoked(leaf.SerialNumber) {
			return refuse(cn, fmt.Sprintf("client certificate %q (serial %s) is revoked", cn, leaf.SerialNumber))
		}
		if restricted && !slices.Contains(allowed, cn) {
			return refuse(cn, fmt.Sprintf("%q may not send to %s (allowed: %s)", cn, listener, strings.Join(allowed, ", ")))
		}
		return nil
	}
	return cfg, nil
}

// mllpClientTLS is the client configuration of identity under mtls-mllp
// (nil when off). The client accepts only servers whose certificate names
// one of peers: a man in the middle with some other certificate, or none
// from the lab CA, fails the handshake, and the refusal is evidence.
func (l *Lab) mllpClientTLS(identity string, peers ...string) (*tls.Config, error) {
	if !l.ctl.on(posture.MTLSMLLP) || l.pki == nil {
		return nil, nil
	}
	cfg, err := l.pki.ClientTLS(identity)
	if err != nil {
		return nil, err
	}
	// Verification is done here (not by the standard verifier against the
	// dialled address) so that every failure is recorded.
	cfg.InsecureSkipVerify = true
	cfg.VerifyPeerCertificate = nil
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		refuse := func(why string) error {
			l.ctl.recordFrom(identity, "", lab.Evidence{Control: posture.MTLSMLLP, LabTime: l.clk.Now(), Target: identity,
				Action: "blocked", Reason: why, Ref: "tls-client:" + identity})
			return fmt.Errorf("mtls-mllp: %s", why)
		}
		if len(cs.PeerCertificates) == 0 {
			return refuse("server presented no certificate")
		}
		leaf := cs.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: l.pki.Pool(), Intermediates: inter, CurrentTime: l.clk.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return refuse(fmt.Sprintf("%s refused the server certificate %q: not from the lab CA (%v): possible man in the middle",
				identity, leaf.Subject.CommonName, err))
		}
		if l.pki.IsRevoked(leaf.SerialNumber) {
			return refuse(fmt.Sprintf("server certificate %q is revoked", leaf.Subject.CommonName))
		}
		if !slices.Contains(peers, leaf.Subject.CommonName) {
			return refuse(fmt.Sprintf("%s expected one of %s, the server presented %q: possible man in the middle",
				identity, strings.Join(peers, ", "), leaf.Subject.CommonName))
		}
		return nil
	}
	return cfg, nil
}

// Compromise implements lab.Adversary: what an attacker who took over
// identity holds (its certificate and key, its broker login).
func (l *Lab) Compromise(ctx context.Context, identity string) (lab.Foothold, error) {
	f := lab.Foothold{Identity: identity, MQTTURL: l.Broker.URL()}
	known := slices.Contains([]string{idPumpServer, idEMAR, idEHR, idAM}, identity) || slices.Contains(l.pumpIDs, identity)
	if !known {
		return f, fmt.Errorf("inproc: compromise %q: no such identity (services %s, %s, %s, %s or a pump id)", identity,
			idPumpServer, idEMAR, idEHR, idAM)
	}
	f.MQTTUsername, f.MQTTPassword = l.brokerLogin(identity)
	if identity == idPumpServer {
		f.PushLibrary = func(ctx context.Context, version, url, hash string, pumpIDs ...string) (map[string]lab.LibraryPush, error) {
			acks, err := l.Server.PushLibrary(ctx, version, url, hash, pumpIDs...)
			out := make(map[string]lab.LibraryPush, len(acks))
			for id, a := range acks {
				out[id] = lab.LibraryPush{Result: a.Result, Code: a.Code, Reason: a.Reason}
			}
			return out, err
		}
	}
	if identity == idEMAR {
		f.Outbox = func(ctx context.Context) ([][]byte, error) {
			var out [][]byte
			for _, a := range l.clinical.EMAR.Administrations() {
				out = append(out, a.Message)
			}
			return out, nil
		}
	}
	if l.pki != nil {
		cfg, err := l.pki.ClientTLS(identity)
		if err != nil {
			return f, err
		}
		cfg.ServerName = "127.0.0.1"
		f.TLS = cfg
	}
	return f, nil
}

// brokerLogin is the broker username and password identity uses.
func (l *Lab) brokerLogin(identity string) (user, pass string) {
	w := l.topo.Posture.Weaknesses.SharedCredentials
	if w.Enabled {
		return w.Username, w.Password
	}
	return identity, l.secret("broker:" + identity)
}

// secret derives a per-lab secret (a password, a code) from the seed; the
// same seed gives the same lab.
func (l *Lab) secret(purpose string) string {
	h := uint64(l.topo.Seed)*0x9E3779B97F4A7C15 + 0x70756d70
	for _, c := range purpose {
		h ^= uint64(c)
		h *= 0x100000001B3
	}
	return fmt.Sprintf("%016x", h)
}

// idBroker is the broker's identity in the lab PKI.
const idBroker = "broker"

// brokerControls sets the posture's broker controls on the embedded broker:
// logins (one shared login under the shared-credentials weakness, else one
// per identity), mtls-mqtt, broker-acl and the mqtt target of rate-limit.
// Every decision becomes evidence and an audit line.
func (l *Lab) brokerControls(b *broker.Embedded) error {
	pos := l.topo.Posture
	users := map[string]string{}
	if w := pos.Weaknesses.SharedCredentials; w.Enabled {
		users[w.Username] = w.Password
	} else {
		for _, id := range append([]string{idPumpServer, pos.Controls.BrokerACL.MonitorUser}, l.fleetIDs()...) {
			if id != "" {
				u, p := l.brokerLogin(id)
				users[u] = p
			}
		}
	}
	b.Users = users
	if l.ctl.on(posture.MTLSMQTT) && l.pki != nil {
		if _, err := l.pki.Issue(idBroker, pki.Service, nil); err != nil {
			return err
		}
		cfg, err := l.pki.ServerTLS(idBroker)
		if err != nil {
			return err
		}
		if pos.Controls.MTLSMQTT.MinVersion == "1.3" {
			cfg.MinVersion = tls.VersionTLS13
		}
		b.TLS, b.Revoked, b.IdentityFromCert = cfg, l.pki.IsRevoked, pos.Controls.MTLSMQTT.IdentityFromCert
	}
	if l.ctl.on(posture.BrokerACL) {
		c := pos.Controls.BrokerACL
		b.ACL = &broker.ACL{Server: idPumpServer, Monitor: c.MonitorUser, LogDenials: c.LogDenials}
	}
	if c := pos.Controls.RateLimit; l.ctl.on(posture.RateLimit) && slices.Contains(c.Targets, "mqtt") {
		// The pump server speaks for the whole fleet (commands, receipts):
		// the limit is per source, and it is not one.
		b.RateLimit = &broker.RateLimit{PerSecond: c.PerSecond, Burst: c.Burst, Exempt: []string{idPumpServer}}
	}
	b.OnDecision = func(d broker.Decision) {
		l.ctl.recordFrom("broker", d.Source, lab.Evidence{Control: d.Control, LabTime: l.clk.Now(), Target: d.Target,
			Action: d.Action, Reason: d.Reason, Ref: d.Ref})
	}
	return nil
}

// fleetIDs are the pump ids the lab will run (known before the fleet starts).
func (l *Lab) fleetIDs() []string {
	ids := make([]string, l.topo.Pumps)
	for i := range ids {
		ids[i] = lab.PumpID(i + 1)
	}
	return ids
}

// mqttClientTLS is identity's client TLS configuration for the broker under
// mtls-mqtt (nil when off or the broker is not the embedded one).
func (l *Lab) mqttClientTLS(identity string) (*tls.Config, error) {
	if !l.ctl.on(posture.MTLSMQTT) || l.pki == nil || !l.embedded {
		return nil, nil
	}
	return l.pki.ClientTLS(identity)
}

// alarmControls sets the alarm manager's controls: alarm-heartbeat (the
// reporter's heartbeat, sequence numbers and deferred alert ends) and the
// mllp target of rate-limit on its PCD-04 listener.
func (l *Lab) alarmControls(cfg *alarms.Config) {
	pos := l.topo.Posture
	if l.ctl.on(posture.AlarmHeartbeat) {
		c := pos.Controls.AlarmHeartbeat
		reporter := "PUMPSRV_SIM" // MSH-3.1 of the pump server's PCD-04
		if l.ctl.on(posture.MTLSMLLP) {
			reporter = idPumpServer // the certificate name under mutual TLS
		}
		cfg.Heartbeat = &alarms.HeartbeatCheck{Interval: c.Interval, Missed: c.Missed, SequenceCheck: c.SequenceCheck,
			Reporters: []string{reporter}, WallFloor: heartbeatWallFloor}
	}
	if c := pos.Controls.RateLimit; l.ctl.on(posture.RateLimit) && slices.Contains(c.Targets, "mllp") {
		cfg.MLLPRateLimit = &hl7.RateLimit{PerSecond: c.PerSecond, Burst: c.Burst}
	}
	cfg.OnControl = func(e alarms.ControlEvent) {
		action, reason := e.Action, e.Reason
		if strings.HasPrefix(e.Ref, "AM-SILENT") {
			// A silent reporter is paged to the charge nurse, who then
			// answers the pumps at the bedside: the control has stopped
			// the suppression's effect (nobody told) by another path,
			// "contained" (score counts it as a block; it blocked no therapy).
			action, reason = "contained", "alarm path silent, charge nurse paged instead: "+reason
		}
		l.ctl.recordFrom(idAM, e.Source, lab.Evidence{Control: e.Control, LabTime: l.clk.Now(), Target: e.Target,
			Action: action, Reason: reason, Ref: e.Ref})
	}
	cfg.OnReject = func(r hl7.Reject) {
		l.ctl.recordFrom(idAM, r.Source, lab.Evidence{Control: r.Control, LabTime: l.clk.Now(), Target: r.Target,
			Action: r.Action, Reason: r.Reason, Ref: r.Ref})
	}
}

// heartbeatWallFloor is the wall time a reporter must be quiet before the
// alarm manager calls it silent (alarms.HeartbeatCheck.WallFloor): at x300
// three missed 10 s heartbeats are 0.1 s of wall time, less than a loaded
// CI machine can stall. Scenarios that measure the silence detection run
// at a slower clock (ATK-25 at x60: the floor is a lab minute).
const heartbeatWallFloor = time.Second

// heartbeat is the pump server's side of alarm-heartbeat (nil when off).
func (l *Lab) heartbeat() *pumpserver.HeartbeatConfig {
	if !l.ctl.on(posture.AlarmHeartbeat) {
		return nil
	}
	return &pumpserver.HeartbeatConfig{Interval: l.topo.Posture.Controls.AlarmHeartbeat.Interval}
}
