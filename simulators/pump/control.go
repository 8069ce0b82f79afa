package pump

import "github.com/pumplab/pumplab/simulators/pumpwire"

// ControlEvent is one act of a security control on this pump (defined in
// pumpwire so that the pump server reports the same type).
type ControlEvent = pumpwire.ControlEvent

// Control names and actions (see pumpwire).
const (
	CtlSignedCommands   = pumpwire.CtlSignedCommands
	CtlSignedLibrary    = pumpwire.CtlSignedLibrary
	CtlSignedFirmware   = pumpwire.CtlSignedFirmware
	CtlAccessCodes      = pumpwire.CtlAccessCodes
	CtlServiceModeAudit = pumpwire.CtlServiceModeAudit
	CtlDecommissionWipe = pumpwire.CtlDecommissionWipe

	ActionBlocked = pumpwire.ActionBlocked
	ActionAllowed = pumpwire.ActionAllowed
	ActionAudited = pumpwire.ActionAudited
)

// control queues an event for Config.OnControl; it is delivered after p.mu
// is released. Caller holds p.mu and ends with p.unlock.
func (p *Pump) control(ctl, action, ref, reason string) {
	if p.cfg.OnControl == nil {
		return
	}
	p.pendingCtl = append(p.pendingCtl, ControlEvent{Control: ctl, Action: action, PumpID: p.cfg.ID, Reason: reason, Ref: ref, At: p.now()})
}

// ReportControl hands ev to Config.OnControl at once (PumpID and At filled in
// when empty). The agent reports its command checks through it. It must not
// be called with the pump locked.
func (p *Pump) ReportControl(ev ControlEvent) {
	if p.cfg.OnControl == nil {
		return
	}
	if ev.PumpID == "" {
		ev.PumpID = p.cfg.ID
	}
	if ev.At.IsZero() {
		ev.At = p.now()
	}
	p.cfg.OnControl(ev)
}
