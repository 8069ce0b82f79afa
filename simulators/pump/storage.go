package pump

import (
	"fmt"
	"slices"
	"strings"
)

// Credentials are the secrets a real pump stores in its comm module: what
// an attacker harvests from a disposed device (REFERENCE.md ATK-01).
type Credentials struct {
	BrokerUsername string
	BrokerPassword string
	WiFiSSID       string
	WiFiPSK        string
	ClientCertPEM  string // the device certificate
	ClientKeyPEM   string // its private key
}

// fields lists the non-empty credentials by name.
func (c Credentials) fields() map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{"broker_username": c.BrokerUsername, "broker_password": c.BrokerPassword,
		"wifi_ssid": c.WiFiSSID, "wifi_psk": c.WiFiPSK, "client_cert_pem": c.ClientCertPEM, "client_key_pem": c.ClientKeyPEM} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// ConfigDump is the pump's configuration as the service menu shows it: the
// device settings (thresholds, calibration, server address), the stored
// credentials in clear, the patients seen recently and the access users.
type ConfigDump struct {
	PumpID         string
	Model          string
	Firmware       string
	LibraryVersion string
	LibrarySeq     uint64
	CareArea       string
	Settings       map[string]string // pumpwire.SettingKeys -> value
	Credentials    Credentials
	RecentPatients []string // newest last
	AccessUsers    []string // users with a code (not the codes)
	Decommissioned bool
}

// ConfigDump returns the configuration dump (what SHOW CONFIG prints).
func (p *Pump) ConfigDump() ConfigDump {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.configDumpLocked()
}

func (p *Pump) configDumpLocked() ConfigDump {
	d := ConfigDump{PumpID: p.cfg.ID, Model: p.cfg.Model, Firmware: p.firmware, LibrarySeq: p.libSeq, CareArea: p.careArea,
		Settings: map[string]string{}, Credentials: p.creds, RecentPatients: slices.Clone(p.patients), Decommissioned: p.decommissioned}
	if p.lib != nil {
		d.LibraryVersion = p.lib.Version
	}
	for _, k := range []string{"flow_calibration", "occlusion_threshold_mmhg", "air_in_line_ul", "server_address"} {
		d.Settings[k], _ = p.settingLocked(k)
	}
	for u := range p.acc.codes {
		d.AccessUsers = append(d.AccessUsers, u)
	}
	slices.Sort(d.AccessUsers)
	return d
}

// notePatient remembers a patient id in the recent-patients list (at most
// 20). Caller holds p.mu.
func (p *Pump) notePatient(id string) {
	if id == "" {
		return
	}
	p.patients = slices.DeleteFunc(p.patients, func(x string) bool { return x == id })
	p.patients = append(p.patients, id)
	if len(p.patients) > 20 {
		p.patients = p.patients[len(p.patients)-20:]
	}
}

// PHIRecord is one place a patient identifier is stored on the pump.
type PHIRecord struct {
	Where     string // "recent_patients", "current_patient", "channel A program", "log #12"
	PatientID string
}

// Storage is what can be read from the pump's memory — by an attacker who
// takes a disposed pump apart (ATK-01) or by the wipe verification.
type Storage struct {
	Credentials     map[string]string // non-empty stored credentials by name
	CredentialCount int
	PHI             []PHIRecord
	PHICount        int
	LogEntries      int // entries in the event log
	ProgramHistory  int // programs and truth layers still held by the channels
	AccessCodes     int // per-user codes still stored
}

// Storage reads the pump's memory.
func (p *Pump) Storage() Storage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.storageLocked()
}

func (p *Pump) storageLocked() Storage {
	s := Storage{Credentials: p.creds.fields(), LogEntries: len(p.logs), AccessCodes: len(p.acc.codes)}
	s.CredentialCount = len(s.Credentials)
	known := map[string]bool{}
	for _, id := range p.patients {
		known[id] = true
		s.PHI = append(s.PHI, PHIRecord{Where: "recent_patients", PatientID: id})
	}
	if p.patientID != "" {
		known[p.patientID] = true
		s.PHI = append(s.PHI, PHIRecord{Where: "current_patient", PatientID: p.patientID})
	}
	for _, c := range p.channels {
		for _, pr := range []*program{c.prog, c.pending} {
			if pr != nil {
				s.ProgramHistory++
				if id := pr.wire.PatientID; id != "" {
					known[id] = true
					s.PHI = append(s.PHI, PHIRecord{Where: "channel " + c.name + " program", PatientID: id})
				}
			}
		}
		for _, l := range []Setting{c.ordered, c.programmed, c.displayed, c.reported, c.documented} {
			if !l.IsZero() {
				s.ProgramHistory++
			}
		}
	}
	ids := make([]string, 0, len(known))
	for id := range known {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, e := range p.logs {
		for _, id := range ids {
			if strings.Contains(e.Detail, id) {
				s.PHI = append(s.PHI, PHIRecord{Where: fmt.Sprintf("log #%d", e.Seq), PatientID: id})
			}
		}
	}
	s.PHICount = len(s.PHI)
	return s
}

// Decommission takes the pump out of service: every channel stops, the pump
// powers off and stays decommissioned (PowerOn does nothing). With wipe it
// then erases the stored credentials, the per-user access codes and
// sessions, the PHI (patient ids, programs and truth layers of every
// channel) and the event log, verifies the result (VerifyWiped) and reports
// a ControlEvent{decommission-wipe, audited} with what was erased and what
// remained. It returns what remained (empty after a clean wipe).
func (p *Pump) Decommission(wipe bool) []string {
	p.mu.Lock()
	defer p.unlock()
	p.addLog(LogEntry{Kind: LogPower, Source: "biomed", Action: "decommission", Detail: fmt.Sprintf("wipe=%v", wipe)})
	for _, c := range p.channels {
		if c.state.active() || c.state == ChProgramming {
			p.endTherapy(c, "decommissioned")
		}
	}
	for len(p.alarms) > 0 {
		p.endAlarm(p.alarms[0], "decommissioned")
	}
	p.disarm(&p.postSlot)
	p.disarm(&p.bat.low)
	p.disarm(&p.bat.empty)
	p.power = powerOff
	p.service = false
	p.decommissioned = true
	if !wipe {
		return p.wipeLeftLocked()
	}
	before := p.storageLocked()
	p.creds = Credentials{}
	p.set.serverAddress = ""
	clear(p.acc.codes)
	clear(p.acc.sessions)
	p.patientID = ""
	p.patients = nil
	for _, c := range p.channels {
		c.prog, c.pending, c.started = nil, nil, false
		c.state = ChIdle
		c.ordered, c.programmed, c.displayed, c.reported, c.documented = Setting{}, Setting{}, Setting{}, Setting{}, Setting{}
	}
	p.logs = nil
	left := p.wipeLeftLocked()
	verdict := "verify: clean"
	if len(left) > 0 {
		verdict = "verify: left " + strings.Join(left, "; ")
	}
	p.control(CtlDecommissionWipe, ActionAudited, p.cfg.ID, fmt.Sprintf("wiped %d credentials, %d PHI records, %d log entries, %d access codes; %s",
		before.CredentialCount, before.PHICount, before.LogEntries, before.AccessCodes, verdict))
	return left
}

// Decommissioned reports whether the pump was decommissioned.
func (p *Pump) Decommissioned() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.decommissioned
}

// VerifyWiped lists what a wipe should have erased and is still stored
// (empty when the pump holds no credentials, codes, PHI, programs or log).
func (p *Pump) VerifyWiped() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wipeLeftLocked()
}

func (p *Pump) wipeLeftLocked() []string {
	s := p.storageLocked()
	var left []string
	keys := make([]string, 0, len(s.Credentials))
	for k := range s.Credentials {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		left = append(left, "credential "+k)
	}
	if p.set.serverAddress != "" {
		left = append(left, "server address")
	}
	for _, r := range s.PHI {
		left = append(left, fmt.Sprintf("PHI %s in %s", r.PatientID, r.Where))
	}
	if s.AccessCodes > 0 {
		left = append(left, fmt.Sprintf("%d access codes", s.AccessCodes))
	}
	if s.ProgramHistory > 0 {
		left = append(left, fmt.Sprintf("%d programs or truth layers", s.ProgramHistory))
	}
	if s.LogEntries > 0 {
		left = append(left, fmt.Sprintf("%d log entries", s.LogEntries))
	}
	return left
}
