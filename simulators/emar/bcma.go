package emar

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pumplab/pumplab/simulators/ehr"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// Scan is what the nurse scans at the bedside.
type Scan struct {
	Nurse        string // nurse ID (ORC-19.1), e.g. RN0042
	WristbandMRN string // patient wristband
	DrugBarcode  string // bag barcode: the give code, e.g. NOREPI-4-250
	PumpID       string // pump barcode, e.g. PUMP-0007
	Channel      string // pump channel label, default A
	// OrderID is optional: without it the eMAR picks the active verified
	// order of that patient for that drug (not yet given first, oldest
	// first).
	OrderID string
}

// Check names one five-rights check of a scan.
type Check string

// The checks, in the order they run.
const (
	CheckNurse   Check = "nurse"   // a nurse is identified
	CheckPatient Check = "patient" // wristband known (admitted) and the order's patient
	CheckOrder   Check = "order"   // order verified by pharmacy (known to the eMAR) and active
	CheckDrug    Check = "drug"    // scanned bag matches the order's give code
	CheckPump    Check = "pump"    // a pump ID is given
	CheckWeight  Check = "weight"  // weight known for a weight-based dose
	CheckRate    Check = "rate"    // rate change: a positive new rate, not a PCA order
)

// CheckError is a failed five-rights check; nothing was sent.
type CheckError struct {
	Check  Check
	Reason string
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("emar: five-rights check %q failed: %s", e.Check, e.Reason)
}

// FailedCheck returns the check that refused err's scan ("" when err is not
// a *CheckError).
func FailedCheck(err error) Check {
	var ce *CheckError
	if errors.As(err, &ce) {
		return ce.Check
	}
	return ""
}

// ErrNoResult wraps the error of a Scan that got no RRG^O16 in time.
var ErrNoResult = errors.New("emar: no RRG^O16")

// AdminResult is the outcome of one PCD-03 exchange.
type AdminResult struct {
	OrderID   string // ORC-2.1
	ControlID string // MSH-10 of our RGV^O15
	Action    string // ORC-1: RE or XO
	PumpID    string
	Channel   string
	// Accepted is true when the IOC answered RRG^O16 with MSA-1 AA.
	Accepted bool
	// AckCode is the final MSA-1: of the RRG^O16 (AA, AR, AE), or of the
	// ACK^O15 when that was not CA/AA (CE, CR, AE, AR); "" without answer.
	AckCode string
	// AcceptCode is MSA-1 of the ACK^O15 (CA normally).
	AcceptCode string
	// ErrCode is ERR-5.1 (e.g. LIB-HARDMAX), else the ERR-3.1 table 0357 code.
	ErrCode string
	ErrText string
	// Lab times: RGV sent, ACK^O15 received, RRG^O16 received.
	SentAt, AckAt, ResultAt time.Time
}

// Administration is the eMAR's record of one PCD-03 sent to the IOC.
type Administration struct {
	AdminResult
	MRN      string
	Nurse    string
	DrugCode string
	DoseRate float64 // RXG-15
	DoseUnit string  // RXG-16
	// Late is set when the RRG^O16 arrived after the Scan stopped waiting.
	Late bool
	// Message is the PCD-03 as sent (the BCMA workstation's message log).
	Message []byte
	// Documented is true when the EHR acknowledged the RAS^O17; DocError
	// says why not otherwise (empty when no EHR is configured).
	Documented bool
	DocError   string
}

// Administrations returns a copy of every PCD-03 exchange, in send order.
func (e *EMAR) Administrations() []Administration {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Administration, len(e.admins))
	for i, a := range e.admins {
		out[i] = *a
	}
	return out
}

// Scan runs the BCMA workflow for a new bag (ORC-1 RE): five-rights checks
// (a *CheckError, nothing sent, when one fails), PCD-03 RGV^O15 to the IOC,
// ACK^O15 on the same connection, then the RRG^O16 on the eMAR's listener.
// A program refused by the IOC or the pump is a result (Accepted false,
// AckCode, ErrCode), not an error; errors are transport failures, ctx, and
// ErrNoResult after RRGTimeout. An accepted program moves the order to
// administered and is documented to the EHR with RAS^O17.
func (e *EMAR) Scan(ctx context.Context, s Scan) (AdminResult, error) {
	e.mu.Lock()
	e.stats.Scans++
	o, p, err := e.checkScanLocked(s)
	if err != nil {
		e.stats.Refused++
		e.mu.Unlock()
		e.log.Info("emar: scan refused", "check", FailedCheck(err), "err", err, "nurse", s.Nurse, "mrn", s.WristbandMRN)
		return AdminResult{OrderID: s.OrderID}, err
	}
	e.mu.Unlock()
	ch := s.Channel
	if ch == "" {
		ch = "A"
	}
	r := e.rgv(o, p, s.Nurse, hl7.OrderNew, s.PumpID)
	rate, unit := r.DoseRate, r.DoseRateUnit
	r.VTBI = o.VTBI
	if r.VTBI == 0 && o.Device != ehr.DevicePCA {
		r.VTBI = o.DiluentML
	}
	return e.program(ctx, o, p, s.Nurse, s.PumpID, ch, r, rate, unit)
}

// RateChange is a titration of a running infusion (CTL-02).
type RateChange struct {
	Nurse        string
	WristbandMRN string // optional: checked against the order when set
	OrderID      string
	// DoseRate is the new RXG-15 in DoseUnit (default: the order's unit).
	DoseRate float64
	DoseUnit string
}

// ChangeRate sends a PCD-03 with ORC-1 XO (RXG-5/7 empty, RXG-15 the new
// rate) to the pump and channel of the order's last accepted program. The
// order must be administered and not PCA. Results and errors as for Scan.
func (e *EMAR) ChangeRate(ctx context.Context, c RateChange) (AdminResult, error) {
	e.mu.Lock()
	e.stats.Scans++
	o, p, err := e.checkChangeLocked(c)
	if err != nil {
		e.stats.Refused++
		e.mu.Unlock()
		e.log.Info("emar: rate change refused", "check", FailedCheck(err), "err", err)
		return AdminResult{OrderID: c.OrderID, Action: hl7.OrderChange}, err
	}
	e.mu.Unlock()
	unit := c.DoseUnit
	if unit == "" {
		unit = o.CurrentDoseUnit
	}
	r := e.rgv(o, p, c.Nurse, hl7.OrderChange, o.PumpID)
	r.DoseRate, r.DoseRateUnit = c.DoseRate, unit
	r.VTBI, r.VTBIUnit = 0, ""
	return e.program(ctx, o, p, c.Nurse, o.PumpID, o.Channel, r, c.DoseRate, unit)
}

func refuse(c Check, format string, args ...any) error {
	return &CheckError{Check: c, Reason: fmt.Sprintf(format, args...)}
}

func (e *EMAR) checkPatientLocked(mrn string) (*Patient, error) {
	if mrn == "" {
		return nil, refuse(CheckPatient, "no wristband scanned")
	}
	p, ok := e.patients[mrn]
	if !ok {
		return nil, refuse(CheckPatient, "wristband %s: patient not admitted (no ADT)", mrn)
	}
	if p.Discharged {
		return nil, refuse(CheckPatient, "wristband %s: patient discharged", mrn)
	}
	return p, nil
}

func (e *EMAR) checkScanLocked(s Scan) (Order, Patient, error) {
	if s.Nurse == "" {
		return Order{}, Patient{}, refuse(CheckNurse, "no nurse badge scanned")
	}
	p, err := e.checkPatientLocked(s.WristbandMRN)
	if err != nil {
		return Order{}, Patient{}, err
	}
	var o *Order
	if s.OrderID != "" {
		var ok bool
		if o, ok = e.orders[s.OrderID]; !ok {
			return Order{}, Patient{}, refuse(CheckOrder, "order %s not verified by pharmacy (unknown to the eMAR)", s.OrderID)
		}
		if !o.State.Active() {
			return Order{}, Patient{}, refuse(CheckOrder, "order %s is %s", s.OrderID, o.State)
		}
		if o.MRN != p.MRN {
			return Order{}, Patient{}, refuse(CheckPatient, "wristband %s does not match order %s patient %s", p.MRN, o.PlacerID, o.MRN)
		}
		if !strings.EqualFold(o.DrugCode, s.DrugBarcode) {
			return Order{}, Patient{}, refuse(CheckDrug, "bag %q does not match order %s drug %s", s.DrugBarcode, o.PlacerID, o.DrugCode)
		}
	} else {
		var active, match []*Order
		for _, x := range e.orders {
			if x.MRN != p.MRN || !x.State.Active() {
				continue
			}
			active = append(active, x)
			if strings.EqualFold(x.DrugCode, s.DrugBarcode) {
				match = append(match, x)
			}
		}
		if len(active) == 0 {
			return Order{}, Patient{}, refuse(CheckOrder, "no active verified order for patient %s", p.MRN)
		}
		if len(match) == 0 {
			return Order{}, Patient{}, refuse(CheckDrug, "bag %q matches no active order of patient %s", s.DrugBarcode, p.MRN)
		}
		sort.Slice(match, func(i, j int) bool {
			a, b := match[i], match[j]
			if (a.State == StateVerified) != (b.State == StateVerified) {
				return a.State == StateVerified
			}
			if !a.ReceivedAt.Equal(b.ReceivedAt) {
				return a.ReceivedAt.Before(b.ReceivedAt)
			}
			return a.PlacerID < b.PlacerID
		})
		o = match[0]
	}
	if s.PumpID == "" {
		return Order{}, Patient{}, refuse(CheckPump, "no pump scanned")
	}
	if o.WeightBased() && weightOf(o, p) <= 0 {
		return Order{}, Patient{}, refuse(CheckWeight, "order %s dose %s needs a weight; none known for patient %s", o.PlacerID, o.DoseUnit, p.MRN)
	}
	return copyOrder(o), *p, nil
}

func (e *EMAR) checkChangeLocked(c RateChange) (Order, Patient, error) {
	if c.Nurse == "" {
		return Order{}, Patient{}, refuse(CheckNurse, "no nurse badge scanned")
	}
	o, ok := e.orders[c.OrderID]
	if !ok {
		return Order{}, Patient{}, refuse(CheckOrder, "order %s not verified by pharmacy (unknown to the eMAR)", c.OrderID)
	}
	if o.State != StateAdministered {
		return Order{}, Patient{}, refuse(CheckOrder, "order %s is %s, not running", c.OrderID, o.State)
	}
	mrn := c.WristbandMRN
	if mrn == "" {
		mrn = o.MRN
	}
	p, err := e.checkPatientLocked(mrn)
	if err != nil {
		return Order{}, Patient{}, err
	}
	if o.MRN != p.MRN {
		return Order{}, Patient{}, refuse(CheckPatient, "wristband %s does not match order %s patient %s", p.MRN, o.PlacerID, o.MRN)
	}
	if o.Device == ehr.DevicePCA || o.PCA != nil {
		return Order{}, Patient{}, refuse(CheckRate, "order %s is PCA: XO not valid", o.PlacerID)
	}
	if c.DoseRate <= 0 {
		return Order{}, Patient{}, refuse(CheckRate, "new rate %v not positive", c.DoseRate)
	}
	if o.WeightBased() && weightOf(o, p) <= 0 {
		return Order{}, Patient{}, refuse(CheckWeight, "order %s needs a weight", o.PlacerID)
	}
	return copyOrder(o), *p, nil
}

// weightOf is the patient's ADT weight, else the weight on the order.
func weightOf(o *Order, p *Patient) float64 {
	if p.WeightKg > 0 {
		return p.WeightKg
	}
	return o.WeightKg
}

// rgv builds the PCD-03 content of an order (header and OBX-4 are set by
// program).
func (e *EMAR) rgv(o Order, p Patient, nurse, control, pumpID string) hl7.RGV {
	rate, unit := o.DoseRate, o.DoseUnit
	if rate <= 0 {
		rate, unit = o.RateMLH, "mL/h"
	}
	if unit == "" {
		unit = "mL/h"
	}
	weight := p.WeightKg
	if weight <= 0 {
		weight = o.WeightKg
	}
	sys := o.GiveSystem
	if sys == "" {
		sys = ehr.DefaultGiveSystem
	}
	dev := o.Device
	if dev == "" {
		dev = ehr.DeviceLVP
	}
	route := o.Route
	if route == "" {
		route = "IV"
	}
	r := hl7.RGV{
		Patient: hl7.Patient{MRN: p.MRN, Authority: e.cfg.Authority, Family: p.Family, Given: p.Given,
			DOB: p.DOB, Sex: p.Sex, Class: "I", Location: p.Location},
		OrderControl:   control,
		PlacerOrder:    o.PlacerID,
		PlacerApp:      o.PlacerApp,
		Nurse:          hl7.Person{ID: nurse},
		GiveCode:       o.DrugCode,
		GiveText:       o.DrugText,
		GiveSystem:     sys,
		DoseRate:       rate,
		DoseRateUnit:   unit,
		DrugAmount:     o.DrugAmount,
		DrugAmountUnit: o.DrugUnit,
		DiluentVolume:  o.DiluentML,
		Route:          route,
		Device:         dev,
		Method:         "IV",
		PumpID:         pumpID,
		PumpAuthority:  e.cfg.Authority,
		WeightKg:       weight,
		HeightCm:       p.HeightCm,
	}
	if o.PCA != nil {
		r.PCA = &hl7.PCAParams{
			DoseLimit:       o.PCA.DoseLimit,
			DoseLimitUnit:   o.PCA.DemandUnit,
			LimitPeriodMin:  o.PCA.LimitPeriodMin,
			MaxDosesPerHour: o.PCA.MaxDosesPerHour,
			LockoutMin:      o.PCA.LockoutMin,
		}
		if r.PCA.LimitPeriodMin == 0 && r.PCA.DoseLimit != 0 {
			r.PCA.LimitPeriodMin = 60
		}
	}
	return r
}

// BuildPCD03 encodes r as RGV^O15 and adds what hl7.BuildRGV does not
// write: the pump channel in OBX-4 of the pump-ID row (ehr.ChannelSubID:
// A -> 1.1.0.0) and, for PCA orders, the per-demand dose row
// (0^MDC_DOSE_PCA_PATIENT^MDC).
func BuildPCD03(r hl7.RGV, channel string, pca *ehr.PCA) *hl7.Message {
	m := hl7.BuildRGV(r)
	obx := m.Segments("OBX")
	for _, s := range obx {
		if hl7.MDCPumpVMD.Matches(s.Field(3)) {
			s.SetField(4, hl7.F(ehr.ChannelSubID(channel)))
			break
		}
	}
	if pca != nil && pca.DemandDose > 0 {
		m.Add(hl7.NewSegment("OBX", hl7.F(fmt.Sprint(len(obx)+1)), hl7.F("NM"), ehr.MDCPCAPatientDose.Field(), nil,
			hl7.F(fmt.Sprint(pca.DemandDose)), hl7.UnitField(pca.DemandUnit)))
	}
	return m
}

// PumpChannel reads the pump ID (OBX-18) and channel (OBX-4) of a PCD-03
// message's pump-ID row; the channel is "A" when OBX-4 is empty.
func PumpChannel(m *hl7.Message) (pumpID, channel string) {
	for _, s := range m.Segments("OBX") {
		if hl7.MDCPumpVMD.Matches(s.Field(3)) {
			eq := s.Field(18)
			pumpID = eq.Comp(1)
			if pumpID == "" {
				pumpID = eq.Comp(3)
			}
			return pumpID, ehr.ChannelFromSubID(s.Value(4))
		}
	}
	return "", ""
}

// program sends r, waits for the outcome, records it and documents it.
func (e *EMAR) program(ctx context.Context, o Order, p Patient, nurse, pumpID, channel string, r hl7.RGV, rate float64, unit string) (AdminResult, error) {
	res := AdminResult{OrderID: o.PlacerID, Action: r.OrderControl, PumpID: pumpID, Channel: channel}
	iocAddr, _ := e.peers()
	if iocAddr == "" {
		return res, fmt.Errorf("emar: %s %s: no IOC address configured", r.OrderControl, o.PlacerID)
	}
	id := e.nextID()
	now := e.clk.Now()
	r.Header = hl7.Header{
		SendingApp: hl7.ParseHD(e.cfg.App), SendingFacility: hl7.ParseHD(e.cfg.Facility),
		ReceivingApp: hl7.ParseHD(e.cfg.IOCApp), ReceivingFacility: hl7.ParseHD(e.cfg.IOCFacility),
		Time: now, ControlID: id, AcceptAck: "AL", AppAck: "AL",
	}
	r.TxnTime = now
	m := BuildPCD03(r, channel, o.PCA)
	res.ControlID, res.SentAt = id, now

	admin := &Administration{AdminResult: res, MRN: p.MRN, Nurse: nurse, DrugCode: o.DrugCode, DoseRate: rate, DoseUnit: unit,
		Message: m.Bytes()}
	pend := &pending{ch: make(chan hl7.Ack, 1), admin: admin}
	e.mu.Lock()
	e.sent[id] = pend
	e.admins = append(e.admins, admin)
	e.stats.Sent++
	e.mu.Unlock()

	finish := func(res AdminResult, err error) (AdminResult, error) {
		e.mu.Lock()
		ch := pend.ch
		pend.ch = nil
		admin.AdminResult = res
		if err != nil && ch != nil {
			// An RRG^O16 that arrived as the wait ended is kept as a late
			// result.
			select {
			case ack := <-ch:
				applyAck(&admin.AdminResult, ack, e.clk.Now())
				admin.Late = true
			default:
			}
		}
		switch {
		case res.Accepted:
			e.stats.Accepted++
		case errors.Is(err, ErrNoResult):
			e.stats.TimedOut++
		case res.AckCode != "":
			e.stats.Rejected++
		}
		e.mu.Unlock()
		return res, err
	}

	sctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
	reply, err := hl7.SendOnce(sctx, iocAddr, e.cfg.ClientTLS, m)
	cancel()
	if err != nil {
		return finish(res, fmt.Errorf("emar: %s %s: send PCD-03 %s to IOC: %w", r.OrderControl, o.PlacerID, id, err))
	}
	res.AckAt = e.clk.Now()
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		return finish(res, fmt.Errorf("emar: %s %s: ACK^O15 for %s: %w", r.OrderControl, o.PlacerID, id, err))
	}
	if ack.AckedID != id && ack.AckedID != "" {
		return finish(res, fmt.Errorf("emar: %s %s: ACK^O15 acknowledges %q, sent %s", r.OrderControl, o.PlacerID, ack.AckedID, id))
	}
	res.AcceptCode = ack.Code
	if ack.Code != hl7.AckCA && ack.Code != hl7.AckAA {
		res.AckCode = ack.Code
		if len(ack.Errors) > 0 {
			res.ErrCode, res.ErrText = errInfo(ack.Errors[0])
		}
		res.ResultAt = res.AckAt
		e.log.Info("emar: PCD-03 not accepted", "order", o.PlacerID, "id", id, "code", ack.Code, "err", res.ErrCode)
		return finish(res, nil)
	}

	timeout := make(chan struct{})
	t := e.clk.AfterFunc(e.cfg.RRGTimeout, func() { close(timeout) })
	defer t.Stop()
	select {
	case rrg := <-pend.ch:
		applyAck(&res, rrg, e.clk.Now())
	case <-timeout:
		return finish(res, fmt.Errorf("emar: %s %s: %w for %s within %v lab time", r.OrderControl, o.PlacerID, ErrNoResult, id, e.cfg.RRGTimeout))
	case <-ctx.Done():
		return finish(res, fmt.Errorf("emar: %s %s: waiting for RRG^O16 for %s: %w", r.OrderControl, o.PlacerID, id, ctx.Err()))
	case <-e.done:
		return finish(res, fmt.Errorf("emar: %s %s: waiting for RRG^O16 for %s: %w", r.OrderControl, o.PlacerID, id, ErrClosed))
	}
	if !res.Accepted {
		e.log.Info("emar: PCD-03 rejected", "order", o.PlacerID, "id", id, "code", res.AckCode, "err", res.ErrCode)
		return finish(res, nil)
	}
	e.mu.Lock()
	if cur, ok := e.orders[o.PlacerID]; ok {
		if cur.State == StateVerified {
			cur.State = StateAdministered
		}
		cur.PumpID, cur.Channel = pumpID, channel
		cur.CurrentDoseRate, cur.CurrentDoseUnit = rate, unit
		cur.LastControlID = id
	}
	e.mu.Unlock()
	res, err = finish(res, nil)
	e.document(ctx, o, p, nurse, r, admin)
	e.log.Info("emar: PCD-03 accepted", "order", o.PlacerID, "id", id, "pump", pumpID, "channel", channel)
	return res, err
}

// document sends RAS^O17 for an accepted program.
func (e *EMAR) document(ctx context.Context, o Order, p Patient, nurse string, r hl7.RGV, admin *Administration) {
	_, ehrAddr := e.peers()
	if ehrAddr == "" {
		return
	}
	id := e.nextID()
	rate := 0.0
	if r.DoseRateUnit == "mL/h" {
		rate = r.DoseRate
	} else if o.RateMLH > 0 && r.OrderControl == hl7.OrderNew {
		rate = o.RateMLH
	}
	h := hl7.Header{
		SendingApp: hl7.ParseHD(e.cfg.App), SendingFacility: hl7.ParseHD(e.cfg.Facility),
		ReceivingApp: hl7.ParseHD(e.cfg.EHRApp), ReceivingFacility: hl7.ParseHD(e.cfg.EHRFacility),
		Time: e.clk.Now(), ControlID: id, AcceptAck: "AL", AppAck: "NE",
	}
	m := hl7.BuildAdministration(hl7.Administration{
		Header:      h,
		Patient:     r.Patient,
		PlacerOrder: o.PlacerID, PlacerApp: o.PlacerApp, FillerOrder: o.FillerID,
		Start:    admin.ResultAt,
		GiveCode: o.DrugCode, GiveText: o.DrugText, GiveSystem: r.GiveSystem,
		Amount: r.VTBI, AmountUnit: "mL",
		Nurse:            hl7.Person{ID: nurse},
		CompletionStatus: "CP",
		Route:            r.Route,
		PumpID:           r.PumpID,
		RateMLH:          rate,
	})
	if r.OrderControl == hl7.OrderChange {
		if orc := m.Segment("ORC"); orc != nil {
			orc.SetField(1, hl7.F(hl7.OrderChange))
		}
	}
	err := e.sendEHR(ctx, ehrAddr, m)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		admin.DocError = err.Error()
		e.log.Warn("emar: administration not documented", "order", o.PlacerID, "err", err)
		return
	}
	admin.Documented = true
	e.stats.Documented++
}

func (e *EMAR) sendEHR(ctx context.Context, addr string, m *hl7.Message) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
	defer cancel()
	reply, err := hl7.SendOnce(ctx, addr, e.cfg.ClientTLS, m)
	if err != nil {
		return fmt.Errorf("emar: send RAS^O17 %s to EHR: %w", m.ControlID(), err)
	}
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		return fmt.Errorf("emar: send RAS^O17 %s to EHR: bad acknowledgement: %w", m.ControlID(), err)
	}
	if err := ack.Err(); err != nil {
		return fmt.Errorf("emar: send RAS^O17 %s to EHR: %s: %w", m.ControlID(), ack.Code, err)
	}
	return nil
}
