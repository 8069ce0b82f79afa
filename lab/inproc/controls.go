package inproc

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/audit"
	"github.com/pumplab/pumplab/lab/posture"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pumpserver"
)

// Implemented lists the posture controls the in-process lab enforces with
// any broker; the others a posture enables are reported unsupported and not
// scored as on.
var Implemented = []string{posture.PKI, posture.MTLSMLLP, posture.OrderCrosscheck, posture.AlarmHeartbeat,
	posture.SignedCommands, posture.AccessCodes, posture.ServiceModeAudit, posture.DecommissionWipe,
	posture.SignedLibrary, posture.SignedFirmware}

// EmbeddedBrokerControls are enforced only with the embedded broker (the
// lab cannot configure mosquitto's or an external broker's).
var EmbeddedBrokerControls = []string{posture.MTLSMQTT, posture.BrokerACL, posture.RateLimit}

func (l *Lab) implemented(name string) bool {
	return slices.Contains(Implemented, name) || (l.embedded && slices.Contains(EmbeddedBrokerControls, name))
}

// Enforces reports whether an in-process lab of topology t enforces the
// posture control name (before the lab runs, e.g. for a scorecard).
func Enforces(name string, t lab.Topology) bool {
	embedded := t.Broker == "" || t.Broker == "embedded"
	return slices.Contains(Implemented, name) || (embedded && slices.Contains(EmbeddedBrokerControls, name))
}

// controls holds the posture in force and the evidence the controls record.
type controls struct {
	posture *posture.Posture
	audit   *audit.Log
	mu      sync.Mutex
	ev      []lab.Evidence
	used    map[string]bool // PCD-03 control ids a BCMA scan already programmed (order-crosscheck)
}

func (c *controls) on(name string) bool { return c.posture != nil && c.posture.On(name) }

// record keeps the evidence and writes its audit line. app is the
// component that enforced the control (broker, pumpserver, PUMP-0001...).
func (c *controls) record(e lab.Evidence) { c.recordFrom("", "", e) }

func (c *controls) recordFrom(app, source string, e lab.Evidence) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	c.mu.Lock()
	c.ev = append(c.ev, e)
	c.mu.Unlock()
	if c.audit != nil {
		if app == "" {
			app = e.Target
		}
		c.audit.Write(audit.Record{Time: e.Time, LabTime: e.LabTime, App: app, Control: e.Control, Action: e.Action,
			Target: e.Target, Source: source, Reason: e.Reason, Ref: e.Ref})
	}
}

// Controls implements lab.Lab.
func (l *Lab) Controls() (enforced, unsupported []string) {
	if l.ctl.posture == nil {
		return nil, nil
	}
	for _, name := range l.ctl.posture.Enabled() {
		if l.implemented(name) {
			enforced = append(enforced, name)
		} else {
			unsupported = append(unsupported, name)
		}
	}
	return enforced, unsupported
}

// Evidence implements lab.Lab.
func (l *Lab) Evidence(ctx context.Context) ([]lab.Evidence, error) {
	l.ctl.mu.Lock()
	defer l.ctl.mu.Unlock()
	return append([]lab.Evidence(nil), l.ctl.ev...), nil
}

// orderCrosscheck is the pump server's order cross-check (posture control
// order-crosscheck): a PCD-03 is sent to a pump only when it matches a BCMA
// administration the eMAR recorded (same control id, patient, drug, pump and
// dose within the tolerance), made within the scan's maximum age. It stands
// for the query a real pump server makes to the eMAR.
func (l *Lab) orderCrosscheck(ctx context.Context, r hl7.RGV, meta hl7.ConnMeta) error {
	cfg := l.ctl.posture.Controls.OrderCrosscheck
	pumpID, _ := pumpserver.SplitPumpChannel(r.PumpID)
	refuse := func(why string) error {
		l.ctl.recordFrom("pumpserver", meta.RemoteAddr, lab.Evidence{Control: posture.OrderCrosscheck, Time: time.Now(), LabTime: l.clk.Now(), Target: pumpID,
			Action: "blocked", Reason: why, Ref: "hl7:" + r.Header.ControlID})
		return fmt.Errorf("order cross-check: %s", why)
	}
	for _, a := range l.clinical.EMAR.Administrations() {
		if a.ControlID != r.Header.ControlID {
			continue
		}
		// A scan programs a pump once: the same PCD-03 again is a replay
		// (ATK-15), whatever else it matches.
		l.ctl.mu.Lock()
		used := l.ctl.used[r.Header.ControlID]
		if !used {
			if l.ctl.used == nil {
				l.ctl.used = map[string]bool{}
			}
			l.ctl.used[r.Header.ControlID] = true
		}
		l.ctl.mu.Unlock()
		if used {
			return refuse(fmt.Sprintf("PCD-03 %s was already used to program a pump: replay of a past scan", r.Header.ControlID))
		}
		switch {
		case a.MRN != r.Patient.MRN:
			return refuse(fmt.Sprintf("patient %s is not the scanned patient %s", r.Patient.MRN, a.MRN))
		case a.DrugCode != r.GiveCode:
			return refuse(fmt.Sprintf("drug %s is not the scanned drug %s", r.GiveCode, a.DrugCode))
		case a.PumpID != "" && a.PumpID != pumpID:
			return refuse(fmt.Sprintf("pump %s is not the scanned pump %s", pumpID, a.PumpID))
		case a.DoseRate > 0 && math.Abs(r.DoseRate-a.DoseRate) > cfg.RateTolerance*a.DoseRate:
			return refuse(fmt.Sprintf("dose %g differs from the verified order's %g", r.DoseRate, a.DoseRate))
		case cfg.ScanMaxAge > 0 && l.clk.Now().Sub(a.SentAt) > cfg.ScanMaxAge:
			return refuse("the BCMA scan is older than " + cfg.ScanMaxAge.String())
		}
		return nil
	}
	if !cfg.RequireScan {
		return nil
	}
	return refuse(fmt.Sprintf("PCD-03 %s from %s matches no BCMA scan at the eMAR", r.Header.ControlID, meta.RemoteAddr))
}
