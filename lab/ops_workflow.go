package lab

import (
	"context"
	"time"
)

// The interfaces below are optional: a provider implements those it can
// host, and a control scenario type-asserts the one it needs (see
// AsBedside and friends). A lab without one reports the scenario Not
// Applicable, never passed.

// ManualProgram is a program keyed in at the pump by the nurse: no BCMA
// scan, no PCD-03 (emergency use, CTL-11) or a PCA program at a PCA pump.
type ManualProgram struct {
	// OrderID is optional (an emergency infusion has none).
	OrderID string
	// DrugID is the library entry (e.g. NS-BASIC); empty is a basic
	// infusion with no drug selected.
	DrugID     string
	DoseRate   float64
	DoseUnit   string
	RateMLH    float64
	VTBI       float64
	WeightKg   float64
	DrugAmount float64
	DrugUnit   string
	DiluentML  float64
	// Change is an XO at the keypad: a new rate for the running program
	// instead of a new bag.
	Change bool
	// PCA settings (a PCA channel).
	PCADose, PCALockoutMin, PCAHourLimit, BasalRate float64
}

// ProgramResult is the pump's answer to a program keyed in at the pump.
type ProgramResult struct {
	Accepted      bool
	Code          string // refusal code (LIB-HARDMAX) or the soft-limit code of an accepted program
	Reason        string
	RateMLH       float64
	NeedsOverride bool // a soft limit: Override before Start
}

// PCAStats counts the patient demands of a PCA program.
type PCAStats struct {
	Demands, Delivered, Rejected   int
	RejectedLockout, RejectedLimit int
	Limited                        bool // the hourly limit holds the channel in limit KVO
	DeliveredML                    float64
	State                          string
}

// PumpLogEntry is one line of a pump's own event log.
type PumpLogEntry struct {
	At                          time.Time // lab time
	Kind, Source, User, Channel string
	Action, Code, Detail        string
}

// Bedside is the nurse and the patient at the pump: the keypad, the PCA
// button, the care-area profile, the pump's event log, and biomed swapping
// the pump at a bed.
type Bedside interface {
	// ReplacePump is biomed swapping the pump at a bed for one with other
	// channel types (lvp, syringe, pca), e.g. a PCA pump: the new device
	// takes over pumpID's network identity (certificate, broker login,
	// registry entry), so every posture control treats it as the fleet
	// member it replaces. It returns once the pump server sees the new
	// device online. Devices may keep describing the replaced device; use
	// the Bedside methods for the new one.
	ReplacePump(ctx context.Context, pumpID string, channels ...string) error
	ManualProgram(ctx context.Context, pumpID, channel, user string, p ManualProgram) (ProgramResult, error)
	Override(ctx context.Context, pumpID, channel, reason, user string) error
	// Start is the start/confirm key (also confirms a pending XO).
	Start(ctx context.Context, pumpID, channel, user string) error
	ClearAlarm(ctx context.Context, pumpID, alarmID, user string) error
	PCADemand(ctx context.Context, pumpID, channel string) (delivered bool, err error)
	PCAStats(ctx context.Context, pumpID, channel string) (PCAStats, error)
	SetCareArea(ctx context.Context, pumpID, area, user string) error
	CareArea(ctx context.Context, pumpID string) (string, error)
	PumpLog(ctx context.Context, pumpID string) ([]PumpLogEntry, error)
	// Connected reports whether the pump's network module has a session.
	Connected(ctx context.Context, pumpID string) (bool, error)
}

// Location is a bed in the hospital.
type Location struct{ Unit, Room, Bed string }

// Titration is a rate change of a running infusion scanned at the bedside:
// a new PCD-03 with ORC-1 XO (CTL-02).
type Titration struct {
	Nurse, MRN, OrderID string
	DoseRate            float64
	DoseUnit            string // default the order's
}

// Ward is ADT and BCMA beyond the first bag: transfers and titrations.
type Ward interface {
	// Transfer moves a patient (ADT^A02) to a new location.
	Transfer(ctx context.Context, mrn string, to Location) error
	// Location is where the EHR has the patient now.
	Location(ctx context.Context, mrn string) (Location, error)
	// Titrate sends the rate change and returns the RRG^O16 outcome. The
	// ordered truth layer follows the new dose.
	Titrate(ctx context.Context, t Titration) (AdminResult, error)
	// CareArea is the care area the EHR last documented for an order's
	// pump data (PCD-01), "" before any.
	DocumentedCareArea(ctx context.Context, orderID string) (string, error)
}

// LibraryPush is one pump's answer to a library push.
type LibraryPush struct {
	Result string // accepted, deferred, rejected
	Code   string
	Reason string
}

// Pharmacy is the drug-library side beyond the approval API of the
// "druglib" endpoint: pushing a published version to the fleet.
type Pharmacy interface {
	// PushLibrary sends the published version to the given pumps (every
	// registered pump when none): idle pumps activate it, infusing pumps
	// defer activation until idle.
	PushLibrary(ctx context.Context, version string, pumpIDs ...string) (map[string]LibraryPush, error)
}

// Facility is the hospital's infrastructure: outages and power. A stopped
// part comes back on the same address with the same configuration.
type Facility interface {
	// StopBroker stops the MQTT broker (every connection drops).
	StopBroker(ctx context.Context) error
	// StartBroker starts the stopped broker again.
	StartBroker(ctx context.Context) error
	// StopPumpServer takes the pump server down (MQTT and MLLP).
	StopPumpServer(ctx context.Context) error
	// StartPumpServer brings the stopped pump server back.
	StartPumpServer(ctx context.Context) error
	// Mains plugs pumps in (true) or unplugs them (a power transfer or a
	// patient transport); no ids means the whole fleet.
	Mains(ctx context.Context, on bool, pumpIDs ...string) error
}

// AsBedside returns l's Bedside, if it has one.
func AsBedside(l Lab) (Bedside, bool) { b, ok := l.(Bedside); return b, ok }

// AsWard returns l's Ward, if it has one.
func AsWard(l Lab) (Ward, bool) { w, ok := l.(Ward); return w, ok }

// AsPharmacy returns l's Pharmacy, if it has one.
func AsPharmacy(l Lab) (Pharmacy, bool) { p, ok := l.(Pharmacy); return p, ok }

// AsFacility returns l's Facility, if it has one.
func AsFacility(l Lab) (Facility, bool) { f, ok := l.(Facility); return f, ok }
