package pumpwire

import "time"

// Control names of ControlEvent.Control: the posture controls that pumps and
// the pump server enforce, as named in lab/posture.
const (
	CtlSignedCommands   = "signed-commands"
	CtlSignedLibrary    = "signed-library"
	CtlSignedFirmware   = "signed-firmware"
	CtlAccessCodes      = "access-codes"
	CtlServiceModeAudit = "service-mode-audit"
	CtlDecommissionWipe = "decommission-wipe"
)

// Actions of ControlEvent.Action.
const (
	ActionBlocked = "blocked" // the control refused the input
	ActionAllowed = "allowed" // the control checked the input and let it through
	ActionAudited = "audited" // the control recorded an action it permits (service session, change, wipe)
)

// ControlEvent is one act of a security control on a pump or at the pump
// server: the one hook (pump.Config.OnControl, pumpserver.Config.OnControl)
// the lab turns into evidence and syslog audit lines.
type ControlEvent struct {
	Control string    // CtlSignedCommands, ...
	Action  string    // ActionBlocked, ActionAllowed, ActionAudited
	PumpID  string    // the pump concerned
	Reason  string    // human text: why
	Ref     string    // cmd id, message id, session id, library or firmware version
	At      time.Time // lab time
}
