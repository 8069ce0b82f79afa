// Package ehr simulates the hospital's EHR around the infusion pump: ADT
// (admit, transfer, weight update, discharge), CPOE (the prescriber's
// order), pharmacy verification, and the documentation side (IHE PCD DEC
// and IPEC Device Observation Consumer) that receives device data.
//
// Every message crosses a real MLLP socket. The EHR has one MLLP listener
// (MLLPAddr) that is both the pharmacy inbox (OMP^O09 from its own CPOE)
// and the documentation inbox (PCD-01 ORU^R01 and PCD-10 ORU^R42 from the
// pump server, RAS^O17 from the eMAR). ADT messages and verified orders
// (RDE^O11) go out to the eMAR at Config.EMARAddr.
//
//	CPOE  --OMP^O09-->  pharmacy inbox (MLLPAddr)
//	pharmacy --RDE^O11--> eMAR          ADT^A01/A02/A08/A03 --> eMAR
//	pump server --ORU^R01 / ORU^R42--> DOC (MLLPAddr)
//	eMAR --RAS^O17--> DOC (MLLPAddr)
//
// Documentation records are keyed by order (OBR-2) and pump channel;
// [EHR.Documented] gives the view of one order, [EHR.WaitDocumented] waits
// for a condition without polling. Retransmitted messages (same sender and
// MSH-10) are documented once.
//
// The order layout of OMP^O09 and RDE^O11 is defined here ([BuildOMP],
// [BuildRDE], [ParseOrder]) and shared with the eMAR.
package ehr

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// Default applications and facilities (MSH-3..6).
const (
	DefaultApp          = "EHR_SIM"
	DefaultFacility     = "HOSP_EHR"
	DefaultEMARApp      = "BCMA_SIM"
	DefaultEMARFacility = "HOSP_BCMA"
	DefaultAuthority    = "HOSP"
)

// Config configures an EHR. The zero value works: listener on
// 127.0.0.1:0, plain MLLP, wall clock, nothing sent to an eMAR.
type Config struct {
	// Addr is the MLLP listen address (pharmacy and documentation inbox),
	// default 127.0.0.1:0.
	Addr string
	// TLS makes the listener speak MLLP over TLS; set ClientAuth for mutual
	// TLS.
	TLS *tls.Config
	// ClientTLS is used for every outgoing connection (eMAR, and the CPOE's
	// connection to the pharmacy inbox); nil means plain TCP.
	ClientTLS *tls.Config
	// EMARAddr is the MLLP address of the eMAR that receives ADT and
	// RDE^O11. Empty: those messages are built and recorded but not sent.
	EMARAddr string
	// Clock is the lab clock (MSH-7, order and verification times); nil is
	// the wall clock.
	Clock clock.Clock
	// Logger receives logs; nil discards.
	Logger *slog.Logger
	// App and Facility are MSH-3 and MSH-4 of the EHR's messages ("NAME" or
	// "NAME^ID^TYPE"), default EHR_SIM and HOSP_EHR. App is also the placer
	// application (ORC-2.2).
	App, Facility string
	// EMARApp and EMARFacility are MSH-5/6 of messages to the eMAR, default
	// BCMA_SIM and HOSP_BCMA.
	EMARApp, EMARFacility string
	// Authority is the assigning authority of MRNs (PID-3.4), default HOSP.
	Authority string
	// IDPrefix prefixes MSH-10 of sent messages (followed by a six-digit
	// counter), default "EHR".
	IDPrefix string
	// SendTimeout bounds one outgoing exchange in wall time (on top of the
	// caller's ctx), default 10 s.
	SendTimeout time.Duration
	// DedupeWindow is the number of (sender, MSH-10) pairs remembered to
	// drop retransmissions, default 65536.
	DedupeWindow int
}

// Patient is a patient as ADT knows it.
type Patient struct {
	MRN      string
	Family   string
	Given    string
	DOB      string // YYYYMMDD
	Sex      string // F, M, O, U
	Location hl7.Location
	WeightKg float64
	HeightCm float64
	// Discharged is set by Discharge.
	Discharged bool
}

// OrderStatus is the life cycle of an order on the EHR side.
type OrderStatus string

// Order statuses.
const (
	// OrderEntered: stored by CPOE; the OMP^O09 has not reached the pharmacy
	// inbox (yet).
	OrderEntered OrderStatus = "entered"
	// OrderPending: in the pharmacy inbox, awaiting verification.
	OrderPending OrderStatus = "pending"
	// OrderVerified: verified by a pharmacist; RDE^O11 sent to the eMAR.
	OrderVerified OrderStatus = "verified"
	// OrderRejected: refused by the pharmacist.
	OrderRejected OrderStatus = "rejected"
	// OrderDiscontinued: discontinued after verification (RDE^O11 DC).
	OrderDiscontinued OrderStatus = "discontinued"
)

// OrderRecord is an order and its state. Order holds what the pharmacy
// received on the wire once the OMP^O09 arrived (what CPOE entered before).
type OrderRecord struct {
	Order
	Status OrderStatus
	// FromCPOE is false for an OMP^O09 that reached the pharmacy inbox
	// without being entered through Order (an injected order).
	FromCPOE     bool
	EnteredAt    time.Time // CPOE entry (lab time)
	ReceivedAt   time.Time // pharmacy inbox receipt
	VerifiedAt   time.Time
	Pharmacist   string // verifier or rejecter
	RejectReason string
	// SentToEMAR reports that the last RDE^O11 for the order was
	// acknowledged by the eMAR.
	SentToEMAR bool
}

// Stats counts what the EHR received on its listener.
type Stats struct {
	PharmacyOrders  int64 // OMP^O09 accepted into the pharmacy inbox
	Observations    int64 // PCD-01 documented
	Events          int64 // PCD-10 documented
	Administrations int64 // RAS^O17 documented
	Duplicates      int64 // retransmissions dropped (same sender and MSH-10)
	Rejected        int64 // messages answered with an error (unsupported, malformed content)
}

// EHR is the simulated EHR. Create it with New, then Start; Close stops it.
type EHR struct {
	cfg Config
	log *slog.Logger
	clk clock.Clock
	srv *hl7.Server
	// handler answers every message of the listener (also called directly
	// by the fuzz target).
	handler hl7.Handler

	mu        sync.Mutex
	started   bool
	patients  map[string]*Patient
	orders    map[string]*OrderRecord
	orderSeq  int
	fillerSeq int
	msgSeq    int
	stats     Stats
	doc       docStore
	changed   chan struct{} // closed and replaced on every documentation change
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// New returns an EHR for cfg; it does not listen until Start.
func New(cfg Config) *EHR {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.App == "" {
		cfg.App = DefaultApp
	}
	if cfg.Facility == "" {
		cfg.Facility = DefaultFacility
	}
	if cfg.EMARApp == "" {
		cfg.EMARApp = DefaultEMARApp
	}
	if cfg.EMARFacility == "" {
		cfg.EMARFacility = DefaultEMARFacility
	}
	if cfg.Authority == "" {
		cfg.Authority = DefaultAuthority
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "EHR"
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 10 * time.Second
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = 65536
	}
	e := &EHR{
		cfg:      cfg,
		log:      cfg.Logger,
		clk:      cfg.Clock,
		patients: map[string]*Patient{},
		orders:   map[string]*OrderRecord{},
		changed:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.clk == nil {
		e.clk = clock.Real()
	}
	e.doc.init(cfg.DedupeWindow)
	var mux hl7.Mux
	mux.Handle("OMP^O09", e.handlePharmacyOrder)
	mux.Handle("ORU^R01", e.handleObservation)
	mux.Handle("ORU^R42", e.handleEvent)
	mux.Handle("RAS^O17", e.handleAdministration)
	e.handler = e.countingHandler(mux.Serve)
	e.srv = hl7.New(hl7.Config{
		Addr:     cfg.Addr,
		TLS:      cfg.TLS,
		Handler:  e.handler,
		Logger:   e.log.With("component", "ehr-mllp"),
		Clock:    e.clk,
		App:      cfg.App,
		Facility: cfg.Facility,
		IDPrefix: cfg.IDPrefix + "ACK",
	})
	return e
}

// Start listens on Config.Addr. Cancelling ctx closes the EHR.
func (e *EHR) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("ehr: start: already started")
	}
	e.started = true
	e.mu.Unlock()
	if err := e.srv.Start(ctx); err != nil {
		return fmt.Errorf("ehr: start: %w", err)
	}
	context.AfterFunc(ctx, func() { _ = e.Close() })
	e.log.Info("ehr listening", "mllp", e.srv.Addr())
	return nil
}

// MLLPAddr is the address of the pharmacy and documentation inbox ("" before
// Start).
func (e *EHR) MLLPAddr() string { return e.srv.Addr() }

// Close stops the listener and waits for its connections and running
// handlers to finish; pending WaitDocumented calls return. Safe to call more
// than once.
func (e *EHR) Close() error {
	e.closeOnce.Do(func() { close(e.done) })
	if err := e.srv.Close(); err != nil {
		return fmt.Errorf("ehr: close: %w", err)
	}
	return nil
}

// Stats returns the inbox counters.
func (e *EHR) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

func (e *EHR) countingHandler(h hl7.Handler) hl7.Handler {
	return func(ctx context.Context, m *hl7.Message, meta hl7.ConnMeta) (*hl7.Message, error) {
		reply, err := h(ctx, m, meta)
		if err != nil {
			e.mu.Lock()
			e.stats.Rejected++
			e.mu.Unlock()
		}
		return reply, err
	}
}

// header returns an MSH for a message from app to the given receiver.
func (e *EHR) header(app, facility, toApp, toFacility string) hl7.Header {
	e.mu.Lock()
	e.msgSeq++
	id := fmt.Sprintf("%s%06d", e.cfg.IDPrefix, e.msgSeq)
	e.mu.Unlock()
	return hl7.Header{
		SendingApp:        hl7.ParseHD(app),
		SendingFacility:   hl7.ParseHD(facility),
		ReceivingApp:      hl7.ParseHD(toApp),
		ReceivingFacility: hl7.ParseHD(toFacility),
		Time:              e.clk.Now(),
		ControlID:         id,
		AcceptAck:         "AL",
		AppAck:            "NE",
	}
}

// send delivers m to addr and checks the acknowledgement.
func (e *EHR) send(ctx context.Context, addr, peer string, m *hl7.Message) error {
	what := m.Type().String()
	ctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
	defer cancel()
	reply, err := hl7.SendOnce(ctx, addr, e.cfg.ClientTLS, m)
	if err != nil {
		return fmt.Errorf("ehr: send %s %s to %s: %w", what, m.ControlID(), peer, err)
	}
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		return fmt.Errorf("ehr: send %s %s to %s: bad acknowledgement: %w", what, m.ControlID(), peer, err)
	}
	if ack.AckedID != m.ControlID() {
		return fmt.Errorf("ehr: send %s %s to %s: acknowledgement for %q", what, m.ControlID(), peer, ack.AckedID)
	}
	if err := ack.Err(); err != nil {
		return fmt.Errorf("ehr: send %s %s to %s: %s: %w", what, m.ControlID(), peer, ack.Code, err)
	}
	e.log.Debug("ehr sent", "type", what, "id", m.ControlID(), "to", peer)
	return nil
}

// SetEMARAddr sets the eMAR's address (for a lab that starts the eMAR after
// the EHR). Safe for concurrent use.
func (e *EHR) SetEMARAddr(addr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg.EMARAddr = addr
}

func (e *EHR) sendEMAR(ctx context.Context, m *hl7.Message) error {
	e.mu.Lock()
	addr := e.cfg.EMARAddr
	e.mu.Unlock()
	if addr == "" {
		e.log.Debug("ehr: no eMAR configured, not sent", "type", m.Type().String(), "id", m.ControlID())
		return nil
	}
	return e.send(ctx, addr, "eMAR", m)
}

func (p Patient) hl7(authority string) hl7.Patient {
	return hl7.Patient{MRN: p.MRN, Authority: authority, Family: p.Family, Given: p.Given,
		DOB: p.DOB, Sex: p.Sex, Class: "I", Location: p.Location}
}

// Admit stores p and sends ADT^A01 (with weight and height OBX rows) to the
// eMAR. Admitting a known MRN again replaces its record.
func (e *EHR) Admit(ctx context.Context, p Patient) error {
	if p.MRN == "" {
		return errors.New("ehr: admit: missing MRN")
	}
	p.Discharged = false
	e.mu.Lock()
	cp := p
	e.patients[p.MRN] = &cp
	e.mu.Unlock()
	return e.sendADT(ctx, hl7.ADTAdmit, p, hl7.Location{})
}

// Transfer moves the patient to a new location and sends ADT^A02 (PV1-3 new,
// PV1-6 prior location).
func (e *EHR) Transfer(ctx context.Context, mrn string, to hl7.Location) error {
	e.mu.Lock()
	p, ok := e.patients[mrn]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("ehr: transfer %s: unknown patient", mrn)
	}
	prior := p.Location
	p.Location = to
	cp := *p
	e.mu.Unlock()
	return e.sendADT(ctx, hl7.ADTTransfer, cp, prior)
}

// UpdateWeight records a new body weight and sends ADT^A08.
func (e *EHR) UpdateWeight(ctx context.Context, mrn string, kg float64) error {
	if kg <= 0 {
		return fmt.Errorf("ehr: update weight %s: weight %v kg not positive", mrn, kg)
	}
	e.mu.Lock()
	p, ok := e.patients[mrn]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("ehr: update weight %s: unknown patient", mrn)
	}
	p.WeightKg = kg
	cp := *p
	e.mu.Unlock()
	return e.sendADT(ctx, hl7.ADTUpdate, cp, hl7.Location{})
}

// Discharge marks the patient discharged and sends ADT^A03.
func (e *EHR) Discharge(ctx context.Context, mrn string) error {
	e.mu.Lock()
	p, ok := e.patients[mrn]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("ehr: discharge %s: unknown patient", mrn)
	}
	p.Discharged = true
	cp := *p
	e.mu.Unlock()
	return e.sendADT(ctx, hl7.ADTDischarge, cp, hl7.Location{})
}

func (e *EHR) sendADT(ctx context.Context, event string, p Patient, prior hl7.Location) error {
	h := e.header(e.cfg.App, e.cfg.Facility, e.cfg.EMARApp, e.cfg.EMARFacility)
	m := hl7.BuildADT(hl7.ADT{Header: h, Event: event, EventTime: h.Time, Patient: p.hl7(e.cfg.Authority),
		PriorLocation: prior, WeightKg: p.WeightKg, HeightCm: p.HeightCm})
	if err := e.sendEMAR(ctx, m); err != nil {
		return fmt.Errorf("ehr: ADT^%s %s: %w", event, p.MRN, err)
	}
	return nil
}

// Patient returns the patient with the given MRN.
func (e *EHR) Patient(mrn string) (Patient, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.patients[mrn]
	if !ok {
		return Patient{}, false
	}
	return *p, true
}

// Order enters o through CPOE: it checks it (admitted patient, give code,
// a dose rate or pump rate), assigns PlacerID when empty (ORD-000001, ...),
// stores it and sends OMP^O09 to the pharmacy inbox (the EHR's own MLLP
// listener, over a real socket). The order is then pending verification.
// It returns the stored order.
func (e *EHR) Order(ctx context.Context, o Order) (Order, error) {
	if o.DrugCode == "" {
		return o, errors.New("ehr: order: missing drug code")
	}
	if o.DoseRate <= 0 && o.RateMLH <= 0 {
		return o, fmt.Errorf("ehr: order %s: no dose rate or pump rate", o.DrugCode)
	}
	if o.Device == DevicePCA && o.PCA == nil {
		return o, fmt.Errorf("ehr: order %s: PCA device without PCA parameters", o.DrugCode)
	}
	addr := e.srv.Addr()
	if addr == "" {
		return o, errors.New("ehr: order: not started")
	}
	e.mu.Lock()
	p, ok := e.patients[o.MRN]
	if !ok || p.Discharged {
		e.mu.Unlock()
		return o, fmt.Errorf("ehr: order %s: patient %q not admitted", o.DrugCode, o.MRN)
	}
	if o.PlacerID == "" {
		for {
			e.orderSeq++
			o.PlacerID = fmt.Sprintf("ORD-%06d", e.orderSeq)
			if _, dup := e.orders[o.PlacerID]; !dup {
				break
			}
		}
	} else if _, dup := e.orders[o.PlacerID]; dup {
		e.mu.Unlock()
		return o, fmt.Errorf("ehr: order %s: placer ID already used", o.PlacerID)
	}
	o.PlacerApp = hl7.ParseHD(e.cfg.App).Namespace
	o.FillerID, o.Verifier = "", ""
	o.Control = ControlNew
	if o.Route == "" {
		o.Route = "IV"
	}
	if o.Device == "" {
		o.Device = DeviceLVP
	}
	if o.GiveSystem == "" {
		o.GiveSystem = DefaultGiveSystem
	}
	o.OrderedAt = e.clk.Now()
	if o.WeightKg == 0 {
		o.WeightKg = p.WeightKg
	}
	pat := p.hl7(e.cfg.Authority)
	e.orders[o.PlacerID] = &OrderRecord{Order: o, Status: OrderEntered, FromCPOE: true, EnteredAt: o.OrderedAt}
	e.mu.Unlock()

	h := e.header(e.cfg.App, e.cfg.Facility, PharmacyApp, PharmacyFacility)
	if err := e.send(ctx, addr, "pharmacy", BuildOMP(h, pat, o)); err != nil {
		return o, fmt.Errorf("ehr: order %s: %w", o.PlacerID, err)
	}
	e.log.Info("ehr: order entered", "order", o.PlacerID, "mrn", o.MRN, "drug", o.DrugCode)
	return o, nil
}

// handlePharmacyOrder is the pharmacy inbox: OMP^O09 from CPOE (or anyone
// who can reach the listener).
func (e *EHR) handlePharmacyOrder(_ context.Context, m *hl7.Message, meta hl7.ConnMeta) (*hl7.Message, error) {
	o, _, err := ParseOrder(m)
	if err != nil {
		return nil, err
	}
	if o.Control != ControlNew {
		return nil, &hl7.AckError{Code: hl7.ErrCodeTableValue, Segment: "ORC", Seq: segIndex(m, m.Segment("ORC")), Field: 1,
			Message: fmt.Sprintf("order control %q not supported by the pharmacy inbox", o.Control)}
	}
	now := e.clk.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, ok := e.orders[o.PlacerID]
	switch {
	case !ok:
		e.orders[o.PlacerID] = &OrderRecord{Order: o, Status: OrderPending, ReceivedAt: now}
		e.log.Warn("ehr: pharmacy received an order not entered through CPOE", "order", o.PlacerID,
			"mrn", o.MRN, "remote", meta.RemoteAddr)
	case rec.Status == OrderEntered:
		rec.Order = o
		rec.Status = OrderPending
		rec.ReceivedAt = now
	default:
		// A retransmission (or replay) of an order the pharmacy already
		// handled: acknowledged, state unchanged.
		e.stats.Duplicates++
		return nil, nil
	}
	e.stats.PharmacyOrders++
	return nil, nil
}

// Verify is the pharmacist's verification of a pending order: the order gets
// a filler ID (RX-000001, ...) and the verifier, is marked verified, and
// RDE^O11 goes to the eMAR (with the patient's current weight). The order
// stays verified when the eMAR cannot be reached; the error says so and
// OrderRecord.SentToEMAR is false.
func (e *EHR) Verify(ctx context.Context, placerID, pharmacist string) (Order, error) {
	if pharmacist == "" {
		return Order{}, fmt.Errorf("ehr: verify %s: missing pharmacist", placerID)
	}
	e.mu.Lock()
	rec, ok := e.orders[placerID]
	if !ok {
		e.mu.Unlock()
		return Order{}, fmt.Errorf("ehr: verify %s: unknown order", placerID)
	}
	if rec.Status != OrderPending {
		st := rec.Status
		e.mu.Unlock()
		return Order{}, fmt.Errorf("ehr: verify %s: order is %s, not pending", placerID, st)
	}
	e.fillerSeq++
	rec.FillerID = fmt.Sprintf("RX-%06d", e.fillerSeq)
	rec.Verifier = pharmacist
	rec.Pharmacist = pharmacist
	rec.Status = OrderVerified
	rec.VerifiedAt = e.clk.Now()
	var pat hl7.Patient
	if p, ok := e.patients[rec.MRN]; ok {
		pat = p.hl7(e.cfg.Authority)
		if p.WeightKg > 0 {
			rec.WeightKg = p.WeightKg
		}
	} else {
		pat = hl7.Patient{MRN: rec.MRN, Authority: e.cfg.Authority}
	}
	o := rec.Order
	e.mu.Unlock()

	err := e.sendRDE(ctx, pat, o)
	e.mu.Lock()
	rec.SentToEMAR = err == nil
	e.mu.Unlock()
	if err != nil {
		return o, fmt.Errorf("ehr: verify %s: %w", placerID, err)
	}
	e.log.Info("ehr: order verified", "order", placerID, "filler", o.FillerID, "pharmacist", pharmacist)
	return o, nil
}

func (e *EHR) sendRDE(ctx context.Context, pat hl7.Patient, o Order) error {
	h := e.header(PharmacyApp, PharmacyFacility, e.cfg.EMARApp, e.cfg.EMARFacility)
	return e.sendEMAR(ctx, BuildRDE(h, pat, o))
}

// Reject is the pharmacist's refusal of a pending order; nothing is sent to
// the eMAR.
func (e *EHR) Reject(placerID, pharmacist, reason string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, ok := e.orders[placerID]
	if !ok {
		return fmt.Errorf("ehr: reject %s: unknown order", placerID)
	}
	if rec.Status != OrderPending {
		return fmt.Errorf("ehr: reject %s: order is %s, not pending", placerID, rec.Status)
	}
	rec.Status = OrderRejected
	rec.Pharmacist = pharmacist
	rec.RejectReason = reason
	return nil
}

// Discontinue stops a verified order and sends RDE^O11 with ORC-1 DC to the
// eMAR.
func (e *EHR) Discontinue(ctx context.Context, placerID string) error {
	e.mu.Lock()
	rec, ok := e.orders[placerID]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("ehr: discontinue %s: unknown order", placerID)
	}
	if rec.Status != OrderVerified {
		st := rec.Status
		e.mu.Unlock()
		return fmt.Errorf("ehr: discontinue %s: order is %s, not verified", placerID, st)
	}
	rec.Status = OrderDiscontinued
	o := rec.Order
	o.Control = ControlDiscontinue
	pat := hl7.Patient{MRN: o.MRN, Authority: e.cfg.Authority}
	if p, ok := e.patients[o.MRN]; ok {
		pat = p.hl7(e.cfg.Authority)
	}
	e.mu.Unlock()
	if err := e.sendRDE(ctx, pat, o); err != nil {
		return fmt.Errorf("ehr: discontinue %s: %w", placerID, err)
	}
	return nil
}

// Lookup returns the order with the given placer ID.
func (e *EHR) Lookup(placerID string) (OrderRecord, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, ok := e.orders[placerID]
	if !ok {
		return OrderRecord{}, false
	}
	return copyRecord(rec), true
}

// Orders returns every order, sorted by placer ID.
func (e *EHR) Orders() []OrderRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]OrderRecord, 0, len(e.orders))
	for _, r := range e.orders {
		out = append(out, copyRecord(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PlacerID < out[j].PlacerID })
	return out
}

func copyRecord(r *OrderRecord) OrderRecord {
	c := *r
	if r.PCA != nil {
		p := *r.PCA
		c.PCA = &p
	}
	return c
}
