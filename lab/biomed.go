package lab

import "context"

// Disposed is what an attacker reads from the storage of a pump that left
// service (REFERENCE.md ATK-01: pumps and batteries sold on with their
// configuration).
type Disposed struct {
	PumpID string
	// Credentials are the stored secrets still readable, by name
	// (broker_password, wifi_psk, client_key, ...).
	Credentials map[string]string
	// PHI is the number of patient records still readable (patient ids in
	// logs and program history).
	PHI int
}

// Biomed is biomedical engineering's access to the fleet: the pumps'
// service ports and keypad service menus, staff codes, and decommissioning.
// It is optional: a scenario that needs it and gets a lab without it reports
// Not Applicable.
type Biomed interface {
	// ServicePort is the address of a pump's telnet-style service port.
	ServicePort(ctx context.Context, pumpID string) (string, error)
	// StaffCode is the current personal access code of a staff member
	// (an insider's own code); an error when the posture has no per-user
	// codes or the user has none.
	StaffCode(ctx context.Context, user string) (string, error)
	// KeypadLogin logs in at the pump's keypad and returns a session.
	KeypadLogin(ctx context.Context, pumpID, user, code string) (string, error)
	// KeypadService enters service (biomed) mode with a work order and a
	// reason.
	KeypadService(ctx context.Context, pumpID, session, workOrder, reason string) error
	// KeypadSet changes a device setting in a session (keys of
	// pumpwire.SettingKeys).
	KeypadSet(ctx context.Context, pumpID, session, key, value string) error
	// Settings are a pump's device settings now.
	Settings(ctx context.Context, pumpID string) (map[string]string, error)
	// Decommission takes a pump out of service as biomed does under the
	// posture (wipe and certificate revocation when decommission-wipe is on)
	// and hands it over for disposal.
	Decommission(ctx context.Context, pumpID string) error
	// Disposed reads a decommissioned pump's storage.
	Disposed(ctx context.Context, pumpID string) (Disposed, error)
}
