package inproc

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/alarms"
	"github.com/pumplab/pumplab/simulators/ehr"
	"github.com/pumplab/pumplab/simulators/emar"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pump"
)

// clinical holds the clinical systems: EHR (with CPOE and pharmacy), eMAR
// with BCMA, the alarm manager and the nurses' phones.
type clinical struct {
	l       *Lab
	EHR     *ehr.EHR
	EMAR    *emar.EMAR
	AM      *alarms.Manager
	Phones  []*alarms.Communicator
	iocAddr string // reserved for the pump server's MLLP listener
}

// reservePorts returns n free loopback addresses. The clinical systems point
// at each other in a cycle (EHR -> eMAR -> pump server -> EHR), so some
// addresses must be known before their listeners start; every sender retries,
// so start order does not matter after that.
func reservePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]string, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve loopback port: %w", err)
		}
		lns = append(lns, ln)
		out[i] = ln.Addr().String()
	}
	return out, nil
}

func (l *Lab) startClinical(ctx context.Context) error {
	c := &l.clinical
	c.l = l
	ports, err := reservePorts(3)
	if err != nil {
		return err
	}
	ehrAddr, emarAddr := ports[0], ports[1]
	c.iocAddr = ports[2]
	ehrTLS, err := l.mllpServerTLS(idEHR, idEHR)
	if err != nil {
		return err
	}
	ehrClient, err := l.mllpClientTLS(idEHR, idEMAR, idEHR)
	if err != nil {
		return err
	}
	c.EHR = ehr.New(ehr.Config{Addr: ehrAddr, EMARAddr: emarAddr, Clock: l.clk, Logger: l.log.With("component", "ehr"),
		TLS: ehrTLS, ClientTLS: ehrClient})
	if err := c.EHR.Start(ctx); err != nil {
		return err
	}
	l.onClose(c.EHR.Close)
	// The wait for RRG^O16 is a network wait: at a high clock speed 30 lab
	// seconds are a few wall milliseconds, less than a loaded machine needs
	// for the PCD-03 round trip through broker and pump. Give it at least
	// 10 s of wall time.
	rrg := max(30*time.Second, time.Duration(float64(10*time.Second)*l.topo.Speed))
	emarTLS, err := l.mllpServerTLS(idEMAR, idEMAR)
	if err != nil {
		return err
	}
	emarClient, err := l.mllpClientTLS(idEMAR, idPumpServer, idEHR)
	if err != nil {
		return err
	}
	c.EMAR = emar.New(emar.Config{Addr: emarAddr, IOCAddr: c.iocAddr, EHRAddr: ehrAddr, Clock: l.clk,
		Logger: l.log.With("component", "emar"), RRGTimeout: rrg, TLS: emarTLS, ClientTLS: emarClient})
	if err := c.EMAR.Start(ctx); err != nil {
		return err
	}
	l.onClose(c.EMAR.Close)
	amTLS, err := l.mllpServerTLS(idAM, idAM)
	if err != nil {
		return err
	}
	amClient, err := l.mllpClientTLS(idAM, idPumpServer)
	if err != nil {
		return err
	}
	amCfg := alarms.Config{Clock: l.clk, ReporterAddr: c.iocAddr, Logger: l.log.With("component", "alarms"),
		MLLPTLS: amTLS, ReporterTLS: amClient}
	l.alarmControls(&amCfg)
	c.AM = alarms.New(amCfg)
	if err := c.AM.Start(ctx); err != nil {
		return err
	}
	l.onClose(c.AM.Close)
	var levels [][]string
	for i := 1; i <= l.topo.Nurses; i++ {
		id := fmt.Sprintf("PHONE-%d", i)
		user := fmt.Sprintf("RN%04d", 41+i)
		var ph *alarms.Communicator
		ph = alarms.NewCommunicator(alarms.CommunicatorConfig{ID: id, Clock: l.clk, Logger: l.log.With("phone", id),
			OnMessage: func(m alarms.Message) { l.nurseOnAlarm(ph, user, m) }})
		if err := ph.Start(ctx); err != nil {
			return err
		}
		l.onClose(ph.Close)
		if err := c.AM.RegisterCommunicator(id, ph.URL()); err != nil {
			return err
		}
		c.Phones = append(c.Phones, ph)
		levels = append(levels, []string{id})
	}
	c.AM.SetLevels(levels)
	return nil
}

func (l *Lab) emarAddr() string { return l.clinical.EMAR.MLLPAddr() }
func (l *Lab) ehrAddr() string  { return l.clinical.EHR.MLLPAddr() }
func (l *Lab) amAddr() string   { return l.clinical.AM.MLLPAddr() }
func (l *Lab) iocAddr() string  { return l.clinical.iocAddr }

func (l *Lab) clinicalEndpoints() []lab.Endpoint {
	c := &l.clinical
	eps := []lab.Endpoint{
		{Name: "ehr", Protocol: "mllp", Address: c.EHR.MLLPAddr(), Purpose: "DOC: PCD-01 ORU^R01, PCD-10 ORU^R42, RAS^O17 in; pharmacy inbox OMP^O09"},
		{Name: "emar-bcma", Protocol: "mllp", Address: c.EMAR.MLLPAddr(), Purpose: "ADT, RDE^O11 and RRG^O16 in (IOP)"},
		{Name: "alarm-manager", Protocol: "mllp", Address: c.AM.MLLPAddr(), Purpose: "PCD-04 ORU^R40 in (AM)"},
		{Name: "alarm-manager-http", Protocol: "http", Address: c.AM.HTTPURL(), Purpose: "communicator answers POST /v1/responses"},
	}
	for _, ph := range c.Phones {
		eps = append(eps, lab.Endpoint{Name: "communicator-" + ph.ID(), Protocol: "http", Address: ph.URL(), Purpose: "nurse phone: POST /v1/messages"})
	}
	return eps
}

// nurseOnAlarm is the nurse model's answer to a dispatch: read it (in the
// order messages arrived on the phone, AlertReadTime each), accept after a
// log-normal latency, then walk to the pump, clear the alarm and resume.
func (l *Lab) nurseOnAlarm(ph *alarms.Communicator, user string, m alarms.Message) {
	if l.topo.Nurse.Disabled {
		return
	}
	read := l.nurse.attn.readDelay(ph.ID(), l.clk.Now())
	l.nurse.atAfter(read, l.topo.Nurse.AlarmAcceptMedian, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ph.Accept(ctx, m.AlertID, user); err != nil {
			l.log.Warn("nurse: accept failed", "alert", m.AlertID, "err", err)
			return
		}
		p, ok := l.PumpModels[m.Pump]
		if !ok {
			if strings.HasPrefix(m.AlertID, "AM-SILENT") {
				// The alarm path itself is down (alarm-heartbeat): the nurse
				// walks the unit and answers every pump alarming at the bedside.
				l.nurseRounds(m.AlertID, user)
			}
			return
		}
		for _, a := range p.Alarms() {
			if a.AlarmID == m.AlertID {
				if err := p.ClearAlarm(a.AlarmID, user); err != nil {
					l.log.Info("nurse: alarm not cleared", "alert", m.AlertID, "err", err)
					return
				}
				if a.Channel != "" {
					if s, err := p.Snapshot(a.Channel); err == nil && s.State == pump.ChPaused {
						_ = p.Resume(a.Channel, user)
					}
				}
			}
		}
	})
}

// nurseRounds answers every high-priority alarm sounding on any pump, as a nurse walking
// the unit does when told the alarm system cannot be trusted, and walks
// again every half lab minute until the alert that sent her (the alarm
// manager's reporter-silent alert) ends.
func (l *Lab) nurseRounds(alertID, user string) {
	defer l.nurse.at(30*time.Second, func() {
		if r, ok := l.clinical.AM.Alert(alertID); ok && r.Ended.IsZero() {
			l.nurseRounds(alertID, user)
		}
	})
	for _, id := range l.pumpIDs {
		p := l.PumpModels[id]
		for _, a := range p.Alarms() {
			if a.Def.Priority != "PH" {
				continue // rounds are for what stops therapy; advisories wait
			}
			if err := p.ClearAlarm(a.AlarmID, user); err != nil {
				continue
			}
			if a.Channel != "" {
				if s, err := p.Snapshot(a.Channel); err == nil && s.State == pump.ChPaused {
					_ = p.Resume(a.Channel, user)
				}
			}
		}
	}
}

// --- lab.Clinical ---

func (c *clinical) Admit(ctx context.Context, p lab.Patient) error {
	return c.EHR.Admit(ctx, ehr.Patient{MRN: p.MRN, Family: p.Family, Given: p.Given, DOB: p.DOB, Sex: p.Sex,
		Location: hl7.Location{Unit: p.Unit, Room: p.Room, Bed: p.Bed}, WeightKg: p.WeightKg, HeightCm: p.HeightCm})
}

func (c *clinical) Order(ctx context.Context, o lab.Order) (string, error) {
	eo := ehr.Order{PlacerID: o.PlacerID, MRN: o.MRN, DrugCode: o.DrugCode, DrugText: o.DrugText, DoseRate: o.DoseRate,
		DoseUnit: o.DoseUnit, RateMLH: o.RateMLH, DrugAmount: o.DrugAmount, DrugUnit: o.DrugUnit, DiluentML: o.DiluentML,
		VTBI: o.VTBI, Device: o.Device, Prescriber: o.Prescriber}
	if p, ok := c.EHR.Patient(o.MRN); ok {
		eo.WeightKg = p.WeightKg
	}
	if o.Device == "PCA" {
		eo.PCA = &ehr.PCA{DemandDose: o.DoseRate, DemandUnit: o.DrugUnit, LockoutMin: o.PCALockoutMin, DoseLimit: o.PCAHourLimit,
			LimitPeriodMin: 60, MaxDosesPerHour: o.PCAMaxPerHour}
	}
	got, err := c.EHR.Order(ctx, eo)
	if err != nil {
		return "", err
	}
	return got.PlacerID, nil
}

func (c *clinical) Verify(ctx context.Context, placerID, pharmacist string) error {
	_, err := c.EHR.Verify(ctx, placerID, pharmacist)
	return err
}

func (c *clinical) Administer(ctx context.Context, s lab.Scan) (lab.AdminResult, error) {
	if s.Channel == "" {
		s.Channel = "A"
	}
	p, ok := c.l.PumpModels[s.PumpID]
	if ok {
		// The ordered truth layer: what CPOE ordered, tied to the channel
		// the nurse scanned.
		if o, found := c.orderFor(s); found {
			_ = p.SetOrdered(s.Channel, pump.Setting{OrderID: o.PlacerID, DrugID: o.DrugCode, DrugName: o.DrugText,
				DoseRate: o.DoseRate, DoseUnit: o.DoseUnit, RateMLH: o.RateMLH, Concentration: o.Concentration(),
				AmountUnit: o.DrugUnit, VTBI: o.VTBI, WeightKg: o.WeightKg})
		}
	}
	r, err := c.EMAR.Scan(ctx, emar.Scan{Nurse: s.Nurse, WristbandMRN: s.MRN, DrugBarcode: s.Drug, PumpID: s.PumpID,
		Channel: s.Channel, OrderID: s.OrderID})
	if err != nil {
		return lab.AdminResult{}, err
	}
	return lab.AdminResult{OrderID: r.OrderID, ControlID: r.ControlID, Accepted: r.Accepted, AckCode: r.AckCode,
		ErrCode: r.ErrCode, ErrText: r.ErrText, SentAt: r.SentAt, ResultAt: r.ResultAt}, nil
}

// orderFor finds the CPOE order a scan refers to.
func (c *clinical) orderFor(s lab.Scan) (ehr.Order, bool) {
	if s.OrderID != "" {
		if r, ok := c.EHR.Lookup(s.OrderID); ok {
			return r.Order, true
		}
		return ehr.Order{}, false
	}
	for _, r := range c.EHR.Orders() {
		if r.Order.MRN == s.MRN && r.Order.DrugCode == s.Drug && r.Status == ehr.OrderVerified {
			return r.Order, true
		}
	}
	return ehr.Order{}, false
}

func documentation(d ehr.Documentation) lab.Documentation {
	out := lab.Documentation{OrderID: d.OrderID, VolumeML: d.VolumeML, RateMLH: d.RateMLH, Status: d.Status,
		LastObs: d.LastObservation, Observations: d.Observations}
	if len(d.Pumps) > 0 {
		out.PumpID = d.Pumps[0].PumpID
	}
	for _, e := range d.Events {
		out.Events = append(out.Events, lab.DocEvent{Type: "MDC_EVT_" + e.Type, At: e.Time, VolumeML: e.DeliveredML, RateMLH: e.RateMLH})
	}
	return out
}

func (c *clinical) Documented(ctx context.Context, orderID string) (lab.Documentation, error) {
	return documentation(c.EHR.Documented(orderID)), nil
}

func (c *clinical) WaitDocumented(ctx context.Context, orderID string, cond func(lab.Documentation) bool) (lab.Documentation, error) {
	d, err := c.EHR.WaitDocumented(ctx, func(d ehr.Documentation) bool {
		return d.OrderID == orderID && cond(documentation(d))
	})
	if err != nil {
		return documentation(c.EHR.Documented(orderID)), fmt.Errorf("inproc: documentation of %s: %w", orderID, err)
	}
	return documentation(d), nil
}

// --- lab.Alarms ---

type alarmsView struct{ l *Lab }

func alarmRecord(a alarms.AlertRecord) lab.AlarmRecord {
	return lab.AlarmRecord{AlertID: a.ID, PumpID: a.Pump, Code: a.Code, Priority: a.Priority, Onset: a.Onset,
		Received: a.Received, Delivered: a.Delivered, Accepted: a.Accepted, AcceptedBy: a.AcceptedBy, Ended: a.Ended,
		Level: a.Level, Status: a.Status}
}

func (v alarmsView) Records(ctx context.Context) ([]lab.AlarmRecord, error) {
	var out []lab.AlarmRecord
	for _, a := range v.l.clinical.AM.Alerts() {
		out = append(out, alarmRecord(a))
	}
	return out, nil
}

func (v alarmsView) WaitAlarm(ctx context.Context, cond func(lab.AlarmRecord) bool) (lab.AlarmRecord, error) {
	a, err := v.l.clinical.AM.WaitAlert(ctx, func(a alarms.AlertRecord) bool { return cond(alarmRecord(a)) })
	if err != nil {
		return lab.AlarmRecord{}, fmt.Errorf("inproc: wait for alarm: %w", err)
	}
	return alarmRecord(a), nil
}
