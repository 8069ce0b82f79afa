// Package emar simulates the eMAR with barcode medication administration
// (BCMA): the IHE PCD PIV Infusion Order Programmer (IOP) that turns a
// nurse's scan of wristband, bag and pump channel into a PCD-03 order for
// the pump server.
//
// The eMAR listens on one MLLP port (MLLPAddr) for ADT (patients, weights,
// locations) and RDE^O11 (pharmacy-verified orders) from the EHR, and for
// RRG^O16, the application acknowledgement the pump server (IOC) sends on a
// new connection after programming the pump.
//
// [EMAR.Scan] runs the five-rights checks (nurse, patient, order,
// drug, pump, weight), builds RGV^O15 (ORC-1 RE) and sends it to the IOC
// (Config.IOCAddr), expects ACK^O15 (MSA CA) on the same connection, waits
// for the RRG^O16 whose MSA-2 is the RGV's MSH-10, and returns an
// [AdminResult]. An accepted program is documented to the EHR with
// RAS^O17. [EMAR.ChangeRate] sends ORC-1 XO for titration.
//
// The pump channel travels in OBX-4 of the pump-ID row
// (69986^MDC_DEV_PUMP_INFUS_VMD): dotted containment notation whose second
// element is the channel's VMD index, 1.1.0.0 for channel A, 1.2.0.0 for
// B (see ehr.ChannelSubID); the pump ID is in OBX-18 (^^PUMP-0007^HOSP).
package emar

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/ehr"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// Default applications and facilities (MSH-3..6).
const (
	DefaultApp         = "BCMA_SIM"
	DefaultFacility    = "HOSP_BCMA"
	DefaultIOCApp      = "PUMPSRV_SIM"
	DefaultIOCFacility = "HOSP_BIOMED"
)

// Config configures an eMAR. The zero value works: listener on 127.0.0.1:0,
// wall clock; Scan fails its send step until IOCAddr is set.
type Config struct {
	// Addr is the MLLP listen address (ADT, RDE^O11, RRG^O16), default
	// 127.0.0.1:0.
	Addr string
	// TLS makes the listener speak MLLP over TLS; set ClientAuth for mutual
	// TLS (the IOC then needs a client certificate to deliver RRG^O16).
	TLS *tls.Config
	// ClientTLS is used for outgoing connections (IOC and EHR); nil means
	// plain TCP.
	ClientTLS *tls.Config
	// IOCAddr is the pump server's PCD-03 MLLP address.
	IOCAddr string
	// EHRAddr is the EHR's MLLP address for RAS^O17; empty means
	// administrations are not documented to an EHR.
	EHRAddr string
	// Clock is the lab clock; nil is the wall clock.
	Clock clock.Clock
	// Logger receives logs; nil discards.
	Logger *slog.Logger
	// App and Facility are MSH-3/4 of the eMAR's messages, default BCMA_SIM
	// and HOSP_BCMA.
	App, Facility string
	// IOCApp and IOCFacility are MSH-5/6 of PCD-03, default PUMPSRV_SIM and
	// HOSP_BIOMED.
	IOCApp, IOCFacility string
	// EHRApp and EHRFacility are MSH-5/6 of RAS^O17, default EHR_SIM and
	// HOSP_EHR.
	EHRApp, EHRFacility string
	// Authority is the assigning authority of MRNs and pump IDs (PID-3.4,
	// OBX-18.4), default HOSP.
	Authority string
	// IDPrefix prefixes MSH-10 (followed by a six-digit counter), default
	// "BCMA".
	IDPrefix string
	// RRGTimeout is how long, in lab time, Scan waits for RRG^O16 after the
	// accept acknowledgement, default 30 s. The caller's ctx bounds the wait
	// too (with a fast scaled clock the lab timeout is short in wall time).
	RRGTimeout time.Duration
	// SendTimeout bounds one outgoing exchange in wall time, on top of ctx,
	// default 10 s.
	SendTimeout time.Duration
}

// Patient is a patient as the eMAR learned it from ADT.
type Patient struct {
	MRN        string
	Family     string
	Given      string
	DOB        string
	Sex        string
	Location   hl7.Location
	WeightKg   float64
	HeightCm   float64
	Discharged bool
	UpdatedAt  time.Time // lab time of the last ADT
}

// OrderState is the eMAR state of a verified order.
type OrderState string

// Order states.
const (
	StateVerified     OrderState = "verified"     // RDE^O11 received, not yet given
	StateAdministered OrderState = "administered" // a PCD-03 program was accepted
	StateCompleted    OrderState = "completed"    // Complete was called
	StateDiscontinued OrderState = "discontinued" // RDE^O11 with ORC-1 DC
)

// Active reports whether a scan may program the order.
func (s OrderState) Active() bool { return s == StateVerified || s == StateAdministered }

// Order is a verified order held by the eMAR.
type Order struct {
	ehr.Order
	State      OrderState
	ReceivedAt time.Time // lab time of the (last) RDE^O11
	// Program in force after the last accepted PCD-03.
	PumpID          string
	Channel         string
	CurrentDoseRate float64
	CurrentDoseUnit string
	LastControlID   string
}

// Stats counts the eMAR's activity.
type Stats struct {
	ADT          int64 // ADT messages applied
	Orders       int64 // RDE^O11 applied
	Scans        int64 // Scan and ChangeRate calls
	Refused      int64 // refused by a five-rights check (nothing sent)
	Sent         int64 // RGV^O15 sent
	Accepted     int64 // RRG^O16 AA
	Rejected     int64 // not accepted (ACK^O15 not CA/AA, or RRG^O16 AR/AE)
	TimedOut     int64 // no RRG^O16 in time
	RRG          int64 // RRG^O16 received
	UnmatchedRRG int64 // RRG^O16 whose MSA-2 is no RGV of ours
	Documented   int64 // RAS^O17 acknowledged by the EHR
}

// EMAR is the simulated eMAR/BCMA. Create it with New, then Start.
type EMAR struct {
	cfg Config
	log *slog.Logger
	clk clock.Clock
	srv *hl7.Server
	// handler answers every message of the listener (also called directly
	// by the fuzz target).
	handler hl7.Handler

	mu       sync.Mutex
	started  bool
	patients map[string]*Patient
	orders   map[string]*Order
	sent     map[string]*pending // by MSH-10 of our RGV^O15
	admins   []*Administration
	seq      int
	stats    Stats
	done     chan struct{}
	closeOne sync.Once
}

// pending is one RGV^O15 waiting for (or past) its RRG^O16.
type pending struct {
	ch    chan hl7.Ack // buffered 1; nil once the Scan stopped waiting
	admin *Administration
	got   bool
}

// New returns an eMAR for cfg; it does not listen until Start.
func New(cfg Config) *EMAR {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.Addr, "127.0.0.1:0")
	def(&cfg.App, DefaultApp)
	def(&cfg.Facility, DefaultFacility)
	def(&cfg.IOCApp, DefaultIOCApp)
	def(&cfg.IOCFacility, DefaultIOCFacility)
	def(&cfg.EHRApp, ehr.DefaultApp)
	def(&cfg.EHRFacility, ehr.DefaultFacility)
	def(&cfg.Authority, ehr.DefaultAuthority)
	def(&cfg.IDPrefix, "BCMA")
	if cfg.RRGTimeout <= 0 {
		cfg.RRGTimeout = 30 * time.Second
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 10 * time.Second
	}
	e := &EMAR{
		cfg:      cfg,
		log:      cfg.Logger,
		clk:      cfg.Clock,
		patients: map[string]*Patient{},
		orders:   map[string]*Order{},
		sent:     map[string]*pending{},
		done:     make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.clk == nil {
		e.clk = clock.Real()
	}
	var mux hl7.Mux
	mux.Handle("ADT", e.handleADT)
	mux.Handle("RDE^O11", e.handleRDE)
	mux.Handle("RRG^O16", e.handleRRG)
	e.handler = mux.Serve
	e.srv = hl7.New(hl7.Config{
		Addr:     cfg.Addr,
		TLS:      cfg.TLS,
		Handler:  e.handler,
		Logger:   e.log.With("component", "emar-mllp"),
		Clock:    e.clk,
		App:      cfg.App,
		Facility: cfg.Facility,
		IDPrefix: cfg.IDPrefix + "ACK",
	})
	return e
}

// Start listens on Config.Addr. Cancelling ctx closes the eMAR.
func (e *EMAR) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("emar: start: already started")
	}
	e.started = true
	e.mu.Unlock()
	if err := e.srv.Start(ctx); err != nil {
		return fmt.Errorf("emar: start: %w", err)
	}
	context.AfterFunc(ctx, func() { _ = e.Close() })
	e.log.Info("emar listening", "mllp", e.srv.Addr())
	return nil
}

// MLLPAddr is the listener address ("" before Start).
func (e *EMAR) MLLPAddr() string { return e.srv.Addr() }

// Close stops the listener and waits for its connections and handlers;
// Scans waiting for an RRG^O16 return ErrClosed. Safe to call more than once.
func (e *EMAR) Close() error {
	e.closeOne.Do(func() { close(e.done) })
	if err := e.srv.Close(); err != nil {
		return fmt.Errorf("emar: close: %w", err)
	}
	return nil
}

// SetIOCAddr sets the pump server's PCD-03 address (for a lab that starts
// the pump server after the eMAR). Safe for concurrent use.
func (e *EMAR) SetIOCAddr(addr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg.IOCAddr = addr
}

// SetEHRAddr sets the EHR's address for RAS^O17. Safe for concurrent use.
func (e *EMAR) SetEHRAddr(addr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg.EHRAddr = addr
}

func (e *EMAR) peers() (ioc, ehr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.IOCAddr, e.cfg.EHRAddr
}

// ErrClosed is returned by calls interrupted by Close.
var ErrClosed = errors.New("emar: closed")

// Stats returns the counters.
func (e *EMAR) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Patient returns the patient with the given MRN.
func (e *EMAR) Patient(mrn string) (Patient, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.patients[mrn]
	if !ok {
		return Patient{}, false
	}
	return *p, true
}

// Order returns the order with the given placer ID.
func (e *EMAR) Order(placerID string) (Order, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o, ok := e.orders[placerID]
	if !ok {
		return Order{}, false
	}
	return copyOrder(o), true
}

// Orders returns every order, sorted by placer ID.
func (e *EMAR) Orders() []Order {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Order, 0, len(e.orders))
	for _, o := range e.orders {
		out = append(out, copyOrder(o))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PlacerID < out[j].PlacerID })
	return out
}

func copyOrder(o *Order) Order {
	c := *o
	if o.PCA != nil {
		p := *o.PCA
		c.PCA = &p
	}
	return c
}

// Complete marks an administered order completed (bag finished); it can no
// longer be scanned or titrated.
func (e *EMAR) Complete(placerID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	o, ok := e.orders[placerID]
	if !ok {
		return fmt.Errorf("emar: complete %s: unknown order", placerID)
	}
	if !o.State.Active() {
		return fmt.Errorf("emar: complete %s: order is %s", placerID, o.State)
	}
	o.State = StateCompleted
	return nil
}

func (e *EMAR) nextID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	return fmt.Sprintf("%s%06d", e.cfg.IDPrefix, e.seq)
}

// handleADT applies A01 (admit, replaces), A02 (location), A08 (update:
// demographics, and weight/height when present) and A03 (discharge).
func (e *EMAR) handleADT(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
	a, err := hl7.ParseADT(m)
	if err != nil {
		return nil, err
	}
	switch a.Event {
	case hl7.ADTAdmit, hl7.ADTTransfer, hl7.ADTUpdate, hl7.ADTDischarge:
	default:
		return nil, &hl7.AckError{Code: hl7.ErrCodeUnsupportedEvent, Segment: "MSH", Seq: 1, Field: 9, AckCode: hl7.AckAR,
			Message: fmt.Sprintf("ADT event %s not supported", a.Event)}
	}
	now := e.clk.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.patients[a.Patient.MRN]
	if !ok || a.Event == hl7.ADTAdmit {
		p = &Patient{MRN: a.Patient.MRN}
		e.patients[p.MRN] = p
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&p.Family, a.Patient.Family)
	set(&p.Given, a.Patient.Given)
	set(&p.DOB, a.Patient.DOB)
	set(&p.Sex, a.Patient.Sex)
	if a.Patient.Location != (hl7.Location{}) {
		p.Location = a.Patient.Location
	}
	if a.WeightKg > 0 {
		p.WeightKg = a.WeightKg
	}
	if a.HeightCm > 0 {
		p.HeightCm = a.HeightCm
	}
	p.Discharged = a.Event == hl7.ADTDischarge
	p.UpdatedAt = now
	e.stats.ADT++
	e.log.Debug("emar: ADT applied", "event", a.Event, "mrn", p.MRN)
	return nil, nil
}

// handleRDE applies a verified order: NW (new or updated), DC (discontinue).
func (e *EMAR) handleRDE(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
	o, _, err := ehr.ParseOrder(m)
	if err != nil {
		return nil, err
	}
	orcIdx := 0
	for i, s := range m.Segs {
		if s.Name == "ORC" {
			orcIdx = i + 1
			break
		}
	}
	now := e.clk.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	cur, ok := e.orders[o.PlacerID]
	switch o.Control {
	case "", ehr.ControlNew:
		if ok && cur.State != StateVerified && cur.State != StateAdministered {
			return nil, &hl7.AckError{Code: hl7.ErrCodeDuplicateKey, Segment: "ORC", Seq: orcIdx, Field: 2,
				Message: fmt.Sprintf("order %s is %s", o.PlacerID, cur.State)}
		}
		if !ok {
			cur = &Order{State: StateVerified}
			e.orders[o.PlacerID] = cur
		}
		cur.Order = o
		cur.ReceivedAt = now
	case ehr.ControlDiscontinue:
		if !ok {
			return nil, &hl7.AckError{Code: hl7.ErrCodeUnknownKey, Segment: "ORC", Seq: orcIdx, Field: 2,
				Message: fmt.Sprintf("unknown order %s", o.PlacerID)}
		}
		cur.State = StateDiscontinued
		cur.ReceivedAt = now
	default:
		return nil, &hl7.AckError{Code: hl7.ErrCodeTableValue, Segment: "ORC", Seq: orcIdx, Field: 1,
			Message: fmt.Sprintf("order control %q not supported", o.Control)}
	}
	e.stats.Orders++
	e.log.Debug("emar: order applied", "order", o.PlacerID, "control", o.Control, "state", cur.State)
	return nil, nil
}

// handleRRG correlates an RRG^O16 with our RGV^O15 by MSA-2 and answers
// with the default ACK^O16.
func (e *EMAR) handleRRG(_ context.Context, m *hl7.Message, meta hl7.ConnMeta) (*hl7.Message, error) {
	ack, err := hl7.ParseRRG(m)
	if err != nil {
		return nil, err
	}
	now := e.clk.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.RRG++
	p, ok := e.sent[ack.AckedID]
	if !ok {
		e.stats.UnmatchedRRG++
		e.log.Warn("emar: RRG^O16 for a message we did not send", "msa2", ack.AckedID, "remote", meta.RemoteAddr)
		return nil, &hl7.AckError{Code: hl7.ErrCodeUnknownKey, Segment: "MSA", Seq: 2, Field: 2,
			Message: fmt.Sprintf("no RGV^O15 with control ID %q", ack.AckedID)}
	}
	if p.got {
		return nil, nil // retransmission
	}
	p.got = true
	if p.ch != nil {
		p.ch <- ack
		return nil, nil
	}
	// Late result: the Scan gave up; record what the IOC decided.
	a := p.admin
	applyAck(&a.AdminResult, ack, now)
	a.Late = true
	e.log.Warn("emar: late RRG^O16", "msa2", ack.AckedID, "code", ack.Code)
	return nil, nil
}

// applyAck fills the outcome of r from an RRG^O16.
func applyAck(r *AdminResult, ack hl7.Ack, now time.Time) {
	r.ResultAt = now
	r.AckCode = ack.Code
	r.Accepted = ack.Code == hl7.AckAA
	if len(ack.Errors) > 0 {
		r.ErrCode, r.ErrText = errInfo(ack.Errors[0])
	}
}

func errInfo(ae hl7.AckError) (code, text string) {
	code, text = ae.AppCode, ae.AppText
	if code == "" && ae.Code != 0 {
		code = fmt.Sprint(ae.Code)
	}
	if text == "" {
		text = ae.Text
	}
	if ae.Message != "" {
		if text == "" {
			text = ae.Message
		} else if !strings.Contains(text, ae.Message) {
			text += ": " + ae.Message
		}
	}
	return code, text
}
