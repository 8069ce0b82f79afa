package lab

import (
	"context"
	"time"
)

// Patient is an admitted patient.
type Patient struct {
	MRN, Family, Given string
	DOB                string // YYYYMMDD
	Sex                string // F, M, O, U
	Unit, Room, Bed    string
	WeightKg           float64
	HeightCm           float64
}

// Order is a CPOE infusion order. DoseUnit "mL/h" (or empty with RateMLH)
// orders a plain rate.
type Order struct {
	PlacerID   string // generated when empty
	MRN        string
	DrugCode   string // give code, matched against the drug library (e.g. NOREPI-4-250)
	DrugText   string
	DoseRate   float64
	DoseUnit   string
	RateMLH    float64
	DrugAmount float64
	DrugUnit   string
	DiluentML  float64
	VTBI       float64
	Device     string // IVP (LVP), SYR, PCA
	Prescriber string
	// PCA settings.
	PCALockoutMin float64
	PCAHourLimit  float64
	PCAMaxPerHour float64
}

// Scan is the bedside barcode workflow: wristband, drug, pump channel.
type Scan struct {
	Nurse   string
	MRN     string // wristband
	Drug    string // drug barcode (give code)
	PumpID  string
	Channel string // default A
	OrderID string // optional; default the patient's active order for the drug
}

// AdminResult is what the BCMA learnt from the pump server (ACK^O15, RRG^O16).
type AdminResult struct {
	OrderID   string
	ControlID string // MSH-10 of the RGV^O15
	Accepted  bool   // RRG^O16 MSA-1 AA
	AckCode   string // MSA-1 of RRG^O16
	ErrCode   string // ERR-5.1, e.g. LIB-HARDMAX
	ErrText   string
	SentAt    time.Time // lab time
	ResultAt  time.Time // lab time
}

// Documentation is what the EHR stored for an order (the documented truth layer).
type Documentation struct {
	OrderID      string
	PumpID       string
	VolumeML     float64   // latest documented volume infused
	RateMLH      float64   // latest documented rate
	Status       string    // latest documented infusing status
	LastObs      time.Time // lab time of the latest observation
	Observations int       // PCD-01 reports taken
	Events       []DocEvent
}

// DocEvent is one PCD-10 event as documented.
type DocEvent struct {
	Type     string    // e.g. MDC_EVT_PUMP_DELIV_START
	At       time.Time // original event time
	VolumeML float64
	RateMLH  float64
}

// Has reports whether the documentation holds an event of type typ.
func (d Documentation) Has(typ string) bool {
	for _, e := range d.Events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// Clinical is the clinical side of the hospital.
type Clinical interface {
	Admit(ctx context.Context, p Patient) error
	Order(ctx context.Context, o Order) (placerID string, err error)
	Verify(ctx context.Context, placerID, pharmacist string) error
	// Administer runs the BCMA scan and auto-programming (PCD-03) and returns
	// once the pump server answered with RRG^O16.
	Administer(ctx context.Context, s Scan) (AdminResult, error)
	// Documented returns what the EHR documented for an order.
	Documented(ctx context.Context, orderID string) (Documentation, error)
	// WaitDocumented waits until cond holds for the order's documentation.
	WaitDocumented(ctx context.Context, orderID string, cond func(Documentation) bool) (Documentation, error)
}

// Layer is one truth layer of a channel.
type Layer struct {
	At       time.Time
	OrderID  string
	DrugID   string
	RateMLH  float64
	DoseRate float64
	DoseUnit string
	VolumeML float64
	Drug     float64 // drug amount, in the drug's amount unit
	State    string
	// Conc is the concentration (drug per mL) of this layer: for the
	// ordered layer, what pharmacy put in the bag; for the programmed layer,
	// what the pump was told. 0 for basic fluids.
	Conc float64
}

// Truth is the six truth layers of one channel (REFERENCE.md §3.0).
type Truth struct {
	PumpID, Channel                                                 string
	Ordered, Programmed, Displayed, Delivered, Reported, Documented Layer
}

// Segment is one piece of a channel's delivery at a constant motor rate
// (the delivered truth), from Start until the next segment.
type Segment struct {
	Start      time.Time // lab time
	RateMLH    float64   // motor rate
	NominalMLH float64   // rate the pump believes it runs (differs under flow error or tampering)
	Conc       float64   // drug per mL of the running program (0 for basic fluids)
}

// PumpAlarm is an alarm active on a pump.
type PumpAlarm struct {
	ID       string // the alarm id, also the PCD-04 alert id
	Code     string // e.g. occlusion_downstream
	Priority string // PH, PM, PL, PN
	Channel  string
	Onset    time.Time // lab time
}

// Devices is the bedside.
type Devices interface {
	// Segments returns the channel's delivery history (motor truth).
	Segments(ctx context.Context, pumpID, channel string) ([]Segment, error)
	// Truth returns a channel's truth layers now.
	Truth(ctx context.Context, pumpID, channel string) (Truth, error)
	// DDR is the delivered-dose ratio over [from, to]: drug delivered (motor
	// truth) over drug ordered (REFERENCE.md §3.0).
	DDR(ctx context.Context, pumpID, channel string, from, to time.Time) (float64, error)
	// ActiveAlarms lists the alarms a pump shows now (the local truth: they
	// sound at the bedside whether or not anyone was notified).
	ActiveAlarms(ctx context.Context, pumpID string) ([]PumpAlarm, error)
	// WaitState waits until the channel is in one of states.
	WaitState(ctx context.Context, pumpID, channel string, states ...string) error
	// InjectFault raises a fault (occlusion_downstream, air_in_line, door_open, ...).
	InjectFault(ctx context.Context, pumpID, channel, fault string) error
	// Stop stops a channel at the pump (the nurse presses stop).
	Stop(ctx context.Context, pumpID, channel, user string) error
}

// AlarmRecord is the alarm manager's record of one alert.
type AlarmRecord struct {
	AlertID    string
	PumpID     string
	Code       string
	Priority   string
	Onset      time.Time // lab time at the pump
	Received   time.Time
	Delivered  time.Time // first delivery to a communicator (zero if never)
	Accepted   time.Time
	AcceptedBy string
	Ended      time.Time
	Level      int
	Status     string
}

// Alarms is the alarm manager.
type Alarms interface {
	Records(ctx context.Context) ([]AlarmRecord, error)
	WaitAlarm(ctx context.Context, cond func(AlarmRecord) bool) (AlarmRecord, error)
}

// PumpInfo is the pump server's registry entry of one pump.
type PumpInfo struct {
	ID, Firmware, LibraryVersion string
	Online                       bool
	LastSeen                     time.Time
}

// Presence is one change of a pump's online state at the pump server.
type Presence struct {
	PumpID string
	Online bool
	At     time.Time // lab time
}

// PumpServer is the pump server.
type PumpServer interface {
	// Presence returns every online/offline change the server saw, in order.
	Presence(ctx context.Context) ([]Presence, error)
	Pumps(ctx context.Context) ([]PumpInfo, error)
	// WaitOnline waits until n pumps are registered and online.
	WaitOnline(ctx context.Context, n int) error
}

// Link is one HL7 path between two systems of the hospital.
type Link string

// The links an on-path attacker (or a tool under test) can be placed on.
const (
	LinkBCMAToPumpServer   Link = "bcma->pumpserver"   // PCD-03 RGV^O15
	LinkPumpServerToBCMA   Link = "pumpserver->bcma"   // RRG^O16
	LinkPumpServerToEHR    Link = "pumpserver->ehr"    // PCD-01, PCD-10
	LinkPumpServerToAlarms Link = "pumpserver->alarms" // PCD-04
)

// Network gives on-path positions on the hospital's links. In process this
// re-points the sending system at the given address; a container provider
// places the attacker on the wire. Either way the proxy must forward to the
// returned upstream address for the hospital to keep working.
type Network interface {
	// Interpose sends link's traffic to proxyAddr and returns the real
	// upstream address; restore puts the link back.
	Interpose(ctx context.Context, link Link, proxyAddr string) (upstream string, restore func() error, err error)
}

// Evidence is a control acting in the lab: what, when, on what, why.
type Evidence struct {
	Control string    // e.g. order-crosscheck
	Time    time.Time // wall time (the scorer's clock)
	LabTime time.Time
	Target  string // asset it protected (pump id, service)
	Action  string // blocked, allowed
	Reason  string
	Ref     string // message id or connection it acted on
}
