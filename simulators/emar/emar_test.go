package emar

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/ehr"
	"github.com/pumplab/pumplab/simulators/hl7"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fakeIOC is a pump server stand-in: it accepts every RGV^O15 (default
// ACK^O15 CA on the same connection), then dials the eMAR back with an
// RRG^O16 chosen by decide. It records the orders and the ACK^O16 replies.
type fakeIOC struct {
	t      *testing.T
	srv    *hl7.Server
	emar   func() string // eMAR listener address
	decide func(hl7.RGV) *hl7.AckError
	// accept, when set, is the handler's error for the ACK^O15 (e.g. CR).
	accept error
	// silent: never send RRG^O16.
	silent bool

	mu     sync.Mutex
	orders []*hl7.Message
	acks   []hl7.Ack // ACK^O16 from the eMAR
	wg     sync.WaitGroup
	got    chan struct{}
}

func startIOC(t *testing.T, f *fakeIOC) *fakeIOC {
	t.Helper()
	f.t = t
	f.got = make(chan struct{}, 16)
	f.srv = hl7.New(hl7.Config{App: "PUMPSRV_SIM", Handler: f.handle})
	if err := f.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.wg.Wait() // RRG^O16 exchanges still running (the eMAR is closed after this)
		f.srv.Close()
	})
	return f
}

func (f *fakeIOC) handle(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
	f.mu.Lock()
	f.orders = append(f.orders, m)
	f.mu.Unlock()
	f.got <- struct{}{}
	if f.accept != nil {
		return nil, f.accept
	}
	r, err := hl7.ParseRGV(m)
	if err != nil {
		return nil, err
	}
	if f.silent {
		return nil, nil
	}
	var ae *hl7.AckError
	if f.decide != nil {
		ae = f.decide(r)
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		f.sendRRG(ctx, r.Header.ControlID, ae)
	}()
	return nil, nil
}

func (f *fakeIOC) sendRRG(ctx context.Context, ackedID string, ae *hl7.AckError) {
	a := hl7.Ack{Header: hl7.Header{SendingApp: hl7.HD{Namespace: "PUMPSRV_SIM"}, ReceivingApp: hl7.HD{Namespace: "BCMA_SIM"},
		Time: time.Date(2026, 1, 1, 8, 0, 1, 0, time.UTC), ControlID: "PS-" + ackedID, AcceptAck: "AL", AppAck: "NE"},
		Code: hl7.AckAA, AckedID: ackedID}
	if ae != nil {
		a.Code = hl7.AckAR
		a.Errors = []hl7.AckError{*ae}
	}
	reply, err := hl7.SendOnce(ctx, f.emar(), nil, hl7.BuildRRG(a))
	if err != nil {
		f.t.Errorf("fake IOC: send RRG^O16: %v", err)
		return
	}
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		f.t.Errorf("fake IOC: ACK^O16: %v", err)
		return
	}
	f.mu.Lock()
	f.acks = append(f.acks, ack)
	f.mu.Unlock()
}

func (f *fakeIOC) received() []*hl7.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*hl7.Message(nil), f.orders...)
}

func (f *fakeIOC) ackO16() []hl7.Ack {
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hl7.Ack(nil), f.acks...)
}

var hardMax = func(r hl7.RGV) *hl7.AckError {
	if r.DoseRate > 3 && r.DoseRateUnit == "mcg/kg/min" {
		return &hl7.AckError{Code: hl7.ErrCodeInternal, AppCode: "LIB-HARDMAX", AppText: "Dose exceeds drug library hard limit"}
	}
	return nil
}

type lab struct {
	ehr  *ehr.EHR
	emar *EMAR
	ioc  *fakeIOC
	clk  *clock.Fake
}

// startLab starts an eMAR, an EHR and a fake IOC wired together (the eMAR
// first: the others need its address).
func startLab(t *testing.T, ioc *fakeIOC, mod func(*Config)) *lab {
	t.Helper()
	l := &lab{clk: clock.NewFake(time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC))}
	cfg := Config{Clock: l.clk}
	if mod != nil {
		mod(&cfg)
	}
	l.emar = New(cfg)
	if err := l.emar.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.emar.Close(); err != nil {
			t.Error(err)
		}
	})
	l.ehr = ehr.New(ehr.Config{Clock: l.clk, EMARAddr: l.emar.MLLPAddr()})
	if err := l.ehr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.ehr.Close() })
	ioc.emar = l.emar.MLLPAddr
	l.ioc = startIOC(t, ioc)
	l.emar.SetIOCAddr(l.ioc.srv.Addr())
	l.emar.SetEHRAddr(l.ehr.MLLPAddr())
	return l
}

var alex = ehr.Patient{MRN: "MRN4455", Family: "Testpatient", Given: "Alex", DOB: "19700101", Sex: "F",
	Location: hl7.Location{Unit: "4W ICU", Room: "12", Bed: "A"}, WeightKg: 70, HeightCm: 172}

var norepi = ehr.Order{MRN: "MRN4455", DrugCode: "NOREPI-4-250", DrugText: "Norepinephrine 4 mg/250 mL",
	DoseRate: 0.05, DoseUnit: "mcg/kg/min", RateMLH: 13.125, DrugAmount: 4, DrugUnit: "mg", DiluentML: 250,
	VTBI: 250, Prescriber: "MD0007"}

// verifiedOrder admits (once) and orders/verifies o through the EHR.
func (l *lab) verifiedOrder(t *testing.T, ctx context.Context, p ehr.Patient, o ehr.Order) ehr.Order {
	t.Helper()
	if _, ok := l.ehr.Patient(p.MRN); !ok {
		if err := l.ehr.Admit(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	o.MRN = p.MRN
	o, err := l.ehr.Order(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	v, err := l.ehr.Verify(ctx, o.PlacerID, "PH0003")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestClosedLoopAccepted(t *testing.T) {
	ctx := testCtx(t)
	l := startLab(t, &fakeIOC{decide: hardMax}, nil)
	o := l.verifiedOrder(t, ctx, alex, norepi)
	if got, ok := l.emar.Order(o.PlacerID); !ok || got.State != StateVerified || got.FillerID != "RX-000001" {
		t.Fatalf("eMAR order %+v (found %v), want verified with filler RX-000001", got, ok)
	}

	res, err := l.emar.Scan(ctx, Scan{Nurse: "RN0042", WristbandMRN: "MRN4455", DrugBarcode: "NOREPI-4-250",
		PumpID: "PUMP-0007", Channel: "B"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Accepted || res.AckCode != "AA" || res.AcceptCode != "CA" || res.OrderID != o.PlacerID ||
		res.ControlID != "BCMA000001" || res.PumpID != "PUMP-0007" || res.Channel != "B" || res.Action != "RE" {
		t.Fatalf("result %+v", res)
	}
	if res.SentAt.IsZero() || res.AckAt.Before(res.SentAt) || res.ResultAt.Before(res.AckAt) {
		t.Errorf("times sent %v ack %v result %v", res.SentAt, res.AckAt, res.ResultAt)
	}

	msgs := l.ioc.received()
	if len(msgs) != 1 {
		t.Fatalf("IOC received %d messages", len(msgs))
	}
	m := msgs[0]
	r, err := hl7.ParseRGV(m)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"MSH-9":   {m.Get("MSH-9"), "RGV^O15^RGV_O15"},
		"MSH-15":  {m.Get("MSH-15"), "AL"},
		"MSH-16":  {m.Get("MSH-16"), "AL"},
		"MSH-21":  {m.Get("MSH-21.3"), "1.3.6.1.4.1.19376.1.6.1.3.1"},
		"ORC-1":   {m.Get("ORC-1"), "RE"},
		"ORC-2":   {m.Get("ORC-2.1"), o.PlacerID},
		"ORC-19":  {m.Get("ORC-19.1"), "RN0042"},
		"PID-3":   {m.Get("PID-3.1"), "MRN4455"},
		"PV1-3":   {m.Get("PV1-3.1"), "4W ICU"},
		"RXG-4":   {m.Get("RXG-4.1"), "NOREPI-4-250"},
		"RXG-5":   {m.Get("RXG-5"), "250"},
		"RXG-15":  {m.Get("RXG-15"), "0.05"},
		"RXG-16":  {m.Get("RXG-16.1"), "265619"},
		"RXG-17":  {m.Get("RXG-17"), "4"},
		"RXG-23":  {m.Get("RXG-23"), "250"},
		"RXR-3":   {m.Get("RXR-3.2"), "IVP"},
		"OBX-18":  {m.Get("OBX-18.3"), "PUMP-0007"},
		"OBX-4":   {m.Get("OBX-4"), "1.2.0.0"},
		"weight":  {strconv.FormatFloat(r.WeightKg, 'f', -1, 64), "70"},
		"channel": {pumpChannel(m), "PUMP-0007/B"},
	}
	for k, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", k, v[0], v[1])
		}
	}

	if got, _ := l.emar.Order(o.PlacerID); got.State != StateAdministered || got.PumpID != "PUMP-0007" || got.Channel != "B" {
		t.Errorf("order after accept %+v", got)
	}
	admins := l.emar.Administrations()
	if len(admins) != 1 || !admins[0].Documented || admins[0].Nurse != "RN0042" || admins[0].MRN != "MRN4455" {
		t.Fatalf("administrations %+v", admins)
	}
	d := l.ehr.Documented(o.PlacerID)
	if len(d.Administrations) != 1 || d.Administrations[0].PumpID != "PUMP-0007" || d.Administrations[0].Nurse != "RN0042" ||
		d.Administrations[0].FillerID != "RX-000001" || d.Administrations[0].RateMLH != 13.125 {
		t.Errorf("EHR documentation %+v", d.Administrations)
	}
	acks := l.ioc.ackO16()
	if len(acks) != 1 || !acks[0].OK() || acks[0].AckedID != "PS-BCMA000001" || acks[0].Header.Type.String() != "ACK^O16" {
		t.Errorf("ACK^O16 from eMAR: %+v", acks)
	}
	if s := l.emar.Stats(); s.Sent != 1 || s.Accepted != 1 || s.RRG != 1 || s.Documented != 1 {
		t.Errorf("stats %+v", s)
	}
}

func pumpChannel(m *hl7.Message) string {
	p, c := PumpChannel(m)
	return p + "/" + c
}

func TestHardLimitRejected(t *testing.T) {
	ctx := testCtx(t)
	l := startLab(t, &fakeIOC{decide: hardMax}, nil)
	over := norepi
	over.DoseRate = 5
	o := l.verifiedOrder(t, ctx, alex, over)
	res, err := l.emar.Scan(ctx, Scan{Nurse: "RN0042", WristbandMRN: "MRN4455", DrugBarcode: "NOREPI-4-250",
		PumpID: "PUMP-0007", OrderID: o.PlacerID})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted || res.AckCode != "AR" || res.ErrCode != "LIB-HARDMAX" || !strings.Contains(res.ErrText, "hard limit") {
		t.Fatalf("result %+v, want AR LIB-HARDMAX", res)
	}
	if got, _ := l.emar.Order(o.PlacerID); got.State != StateVerified {
		t.Errorf("order state %s after reject, want verified", got.State)
	}
	if d := l.ehr.Documented(o.PlacerID); len(d.Administrations) != 0 {
		t.Errorf("rejected program documented: %+v", d.Administrations)
	}
	if a := l.emar.Administrations(); len(a) != 1 || a[0].Accepted || a[0].Documented || a[0].ErrCode != "LIB-HARDMAX" {
		t.Errorf("administrations %+v", a)
	}
	if s := l.emar.Stats(); s.Rejected != 1 || s.Accepted != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestAcceptAckRejected(t *testing.T) {
	ctx := testCtx(t)
	l := startLab(t, &fakeIOC{accept: &hl7.AckError{Code: hl7.ErrCodeUnsupportedProc, AckCode: hl7.AckCR, Message: "IOC busy"}}, nil)
	o := l.verifiedOrder(t, ctx, alex, norepi)
	res, err := l.emar.Scan(ctx, Scan{Nurse: "RN0042", WristbandMRN: "MRN4455", DrugBarcode: "NOREPI-4-250", PumpID: "PUMP-0007"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted || res.AckCode != "CR" || res.AcceptCode != "CR" || res.ErrCode != "202" || !strings.Contains(res.ErrText, "IOC busy") {
		t.Fatalf("result %+v", res)
	}
	if got, _ := l.emar.Order(o.PlacerID); got.State != StateVerified {
		t.Errorf("state %s", got.State)
	}
}

func TestFiveRightsFailuresSendNothing(t *testing.T) {
	ctx := testCtx(t)
	l := startLab(t, &fakeIOC{}, nil)
	o := l.verifiedOrder(t, ctx, alex, norepi)
	bob := ehr.Patient{MRN: "MRN7788", Family: "Other", Given: "Bob", Location: hl7.Location{Unit: "4W ICU", Room: "14"}}
	if err := l.ehr.Admit(ctx, bob); err != nil { // admitted, no weight
		t.Fatal(err)
	}
	unverified, err := l.ehr.Order(ctx, norepi)
	if err != nil {
		t.Fatal(err)
	}
	bobOrder := l.verifiedOrder(t, ctx, bob, norepi) // weight-based, Bob has no weight
	dcOrder := l.verifiedOrder(t, ctx, alex, ehr.Order{DrugCode: "NS-1000", DrugText: "Sodium chloride 0.9% 1000 mL",
		RateMLH: 125, DoseUnit: "mL/h", DoseRate: 125, VTBI: 1000, DiluentML: 1000})
	if err := l.ehr.Discontinue(ctx, dcOrder.PlacerID); err != nil {
		t.Fatal(err)
	}

	ok := Scan{Nurse: "RN0042", WristbandMRN: "MRN4455", DrugBarcode: "NOREPI-4-250", PumpID: "PUMP-0007", OrderID: o.PlacerID}
	cases := []struct {
		name string
		mod  func(*Scan)
		want Check
	}{
		{"no nurse", func(s *Scan) { s.Nurse = "" }, CheckNurse},
		{"unknown wristband", func(s *Scan) { s.WristbandMRN = "MRN0000" }, CheckPatient},
		{"wrong patient", func(s *Scan) { s.WristbandMRN = "MRN7788" }, CheckPatient},
		{"unverified order", func(s *Scan) { s.OrderID = unverified.PlacerID }, CheckOrder},
		{"discontinued order", func(s *Scan) { s.OrderID, s.DrugBarcode = dcOrder.PlacerID, "NS-1000" }, CheckOrder},
		{"wrong drug", func(s *Scan) { s.DrugBarcode = "HEP-25000-250" }, CheckDrug},
		{"wrong drug, no order id", func(s *Scan) { s.OrderID, s.DrugBarcode = "", "HEP-25000-250" }, CheckDrug},
		{"no pump", func(s *Scan) { s.PumpID = "" }, CheckPump},
		{"no weight", func(s *Scan) { s.WristbandMRN, s.OrderID = "MRN7788", bobOrder.PlacerID }, CheckWeight},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			c.mod(&s)
			_, err := l.emar.Scan(ctx, s)
			if got := FailedCheck(err); got != c.want {
				t.Fatalf("Scan error %v (check %q), want check %q", err, got, c.want)
			}
		})
	}
	if n := len(l.ioc.received()); n != 0 {
		t.Errorf("IOC received %d messages for refused scans", n)
	}
	if s := l.emar.Stats(); s.Sent != 0 || s.Refused != int64(len(cases)) {
		t.Errorf("stats %+v", s)
	}
	if len(l.emar.Administrations()) != 0 {
		t.Error("refused scans recorded as administrations")
	}
	// The control: the same scan without a fault goes through.
	if res, err := l.emar.Scan(ctx, ok); err != nil || !res.Accepted {
		t.Fatalf("valid scan: %+v, %v", res, err)
	}
}

func TestScanPicksOrder(t *testing.T) {
	ctx := testCtx(t)
	l := startLab(t, &fakeIOC{}, nil)
	first := l.verifiedOrder(t, ctx, alex, norepi)
	second := l.verifiedOrder(t, ctx, alex, norepi)
	s := Scan{Nurse: "RN0042", WristbandMRN: "MRN4455", DrugBarcode: "norepi-4-250", PumpID: "PUMP-0007"}
	r1, err := l.emar.Scan(ctx, s)
	if err != nil || r1.OrderID != first.PlacerID {
		t.Fatalf("first scan picked %q (%v), want %s", r1.OrderID, err, first.PlacerID)
	}
	r2, err := l.emar.Scan(ctx, s)
	if err != nil || r2.OrderID != second.PlacerID {
		t.Fatalf("second scan picked %q (%v), want the not-yet-given %s", r2.OrderID, err, second.PlacerID)
	}
}

func TestChangeRate(t *testing.T) {
	ctx := testCtx(t)
	l := startLab(t, &fakeIOC{decide: hardMax}, nil)
	o := l.verifiedOrder(t, ctx, alex, norepi)
	if _, err := l.emar.ChangeRate(ctx, RateChange{Nurse: "RN0042", OrderID: o.PlacerID, DoseRate: 0.08}); FailedCheck(err) != CheckOrder {
		t.Fatalf("XO before the order runs: %v, want check order", err)
	}
	if _, err := l.emar.Scan(ctx, Scan{Nurse: "RN0042", WristbandMRN: "MRN4455", DrugBarcode: "NOREPI-4-250", PumpID: "PUMP-0007", Channel: "A"}); err != nil {
		t.Fatal(err)
	}
	res, err := l.emar.ChangeRate(ctx, RateChange{Nurse: "RN0042", OrderID: o.PlacerID, DoseRate: 0.08})
	if err != nil || !res.Accepted || res.Action != "XO" || res.PumpID != "PUMP-0007" {
		t.Fatalf("ChangeRate = %+v, %v", res, err)
	}
	msgs := l.ioc.received()
	xo := msgs[len(msgs)-1]
	if xo.Get("ORC-1") != "XO" || xo.Get("RXG-5") != "" || xo.Get("RXG-7") != "" || xo.Get("RXG-15") != "0.08" || xo.Get("OBX-18.3") != "PUMP-0007" {
		t.Errorf("XO message:\n%s", xo)
	}
	if got, _ := l.emar.Order(o.PlacerID); got.CurrentDoseRate != 0.08 {
		t.Errorf("current dose rate %v", got.CurrentDoseRate)
	}
	res, err = l.emar.ChangeRate(ctx, RateChange{Nurse: "RN0042", OrderID: o.PlacerID, DoseRate: 9})
	if err != nil || res.Accepted || res.ErrCode != "LIB-HARDMAX" {
		t.Fatalf("over-limit XO = %+v, %v", res, err)
	}
	if got, _ := l.emar.Order(o.PlacerID); got.CurrentDoseRate != 0.08 {
		t.Errorf("rejected XO changed the current rate to %v", got.CurrentDoseRate)
	}
	if _, err := l.emar.ChangeRate(ctx, RateChange{Nurse: "RN0042", OrderID: o.PlacerID, DoseRate: 0}); FailedCheck(err) != CheckRate {
		t.Errorf("zero rate: %v", err)
	}
	if err := l.emar.Complete(o.PlacerID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.emar.ChangeRate(ctx, RateChange{Nurse: "RN0042", OrderID: o.PlacerID, DoseRate: 0.1}); FailedCheck(err) != CheckOrder {
		t.Errorf("XO on completed order: %v", err)
	}
	d := l.ehr.Documented(o.PlacerID)
	if len(d.Administrations) != 2 {
		t.Errorf("EHR documented %d administrations, want RE and accepted XO", len(d.Administrations))
	}
}

func TestPCAOrderCarriesParameters(t *testing.T) {
	ctx := testCtx(t)
	l := startLab(t, &fakeIOC{}, nil)
	pca := ehr.Order{DrugCode: "MORPH-1-30", DrugText: "Morphine 1 mg/mL PCA", DoseRate: 0.5, DoseUnit: "mg/h",
		DrugAmount: 30, DrugUnit: "mg", DiluentML: 30, VTBI: 30, Device: ehr.DevicePCA,
		PCA: &ehr.PCA{DemandDose: 1, DemandUnit: "mg", LockoutMin: 10, MaxDosesPerHour: 6, DoseLimit: 8}}
	o := l.verifiedOrder(t, ctx, alex, pca)
	res, err := l.emar.Scan(ctx, Scan{Nurse: "RN0042", WristbandMRN: "MRN4455", DrugBarcode: "MORPH-1-30", PumpID: "PUMP-0009"})
	if err != nil || !res.Accepted {
		t.Fatalf("PCA scan %+v %v", res, err)
	}
	m := l.ioc.received()[0]
	r, err := hl7.ParseRGV(m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Device != "PCA" || r.PCA == nil || r.PCA.LockoutMin != 10 || r.PCA.MaxDosesPerHour != 6 || r.PCA.DoseLimit != 8 || r.PCA.LimitPeriodMin != 60 {
		t.Errorf("PCD-03 PCA = %+v device %s", r.PCA, r.Device)
	}
	found := false
	for _, s := range m.Segments("OBX") {
		if ehr.MDCPCAPatientDose.Matches(s.Field(3)) && s.Value(5) == "1" {
			found = true
		}
	}
	if !found {
		t.Errorf("no per-demand dose row:\n%s", m)
	}
	if _, err := l.emar.ChangeRate(ctx, RateChange{Nurse: "RN0042", OrderID: o.PlacerID, DoseRate: 1}); FailedCheck(err) != CheckRate {
		t.Errorf("XO on PCA: %v, want check rate", err)
	}
}

func TestRRGTimeoutAndLateResult(t *testing.T) {
	ctx := testCtx(t)
	ioc := &fakeIOC{silent: true}
	l := startLab(t, ioc, func(c *Config) { c.RRGTimeout = 30 * time.Second })
	o := l.verifiedOrder(t, ctx, alex, norepi)
	type result struct {
		res AdminResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := l.emar.Scan(ctx, Scan{Nurse: "RN0042", WristbandMRN: "MRN4455", DrugBarcode: "NOREPI-4-250", PumpID: "PUMP-0007"})
		done <- result{res, err}
	}()
	<-ioc.got
	// The Scan arms its lab timer after reading the ACK^O15; wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for l.clk.Pending() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Scan never armed its RRG timer")
		}
		time.Sleep(time.Millisecond)
	}
	l.clk.Advance(29 * time.Second)
	select {
	case r := <-done:
		t.Fatalf("Scan returned before RRGTimeout: %+v %v", r.res, r.err)
	default:
	}
	l.clk.Advance(time.Second)
	r := <-done
	if !errors.Is(r.err, ErrNoResult) || r.res.AckCode != "" || r.res.AcceptCode != "CA" {
		t.Fatalf("Scan = %+v, %v; want ErrNoResult after CA", r.res, r.err)
	}
	if s := l.emar.Stats(); s.TimedOut != 1 {
		t.Errorf("stats %+v", s)
	}
	// The IOC answers late: recorded, acknowledged, order unchanged.
	ioc.sendRRG(ctx, r.res.ControlID, nil)
	a := l.emar.Administrations()
	if len(a) != 1 || !a[0].Late || !a[0].Accepted || a[0].AckCode != "AA" {
		t.Errorf("late administration %+v", a)
	}
	if acks := ioc.ackO16(); len(acks) != 1 || !acks[0].OK() {
		t.Errorf("ACK^O16 for late RRG: %+v", acks)
	}
	if got, _ := l.emar.Order(o.PlacerID); got.State != StateVerified {
		t.Errorf("order state %s after a timed-out program", got.State)
	}
}

func TestScanBoundedByContext(t *testing.T) {
	ctx := testCtx(t)
	ioc := &fakeIOC{silent: true}
	l := startLab(t, ioc, nil)
	l.verifiedOrder(t, ctx, alex, norepi)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err := l.emar.Scan(short, Scan{Nurse: "RN0042", WristbandMRN: "MRN4455", DrugBarcode: "NOREPI-4-250", PumpID: "PUMP-0007"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Scan with a short ctx: %v", err)
	}
}

func TestEHRPathReachesEMAR(t *testing.T) {
	ctx := testCtx(t)
	l := startLab(t, &fakeIOC{}, nil)
	if err := l.ehr.Admit(ctx, alex); err != nil {
		t.Fatal(err)
	}
	p, ok := l.emar.Patient("MRN4455")
	if !ok || p.WeightKg != 70 || p.HeightCm != 172 || p.Location.Unit != "4W ICU" || p.Family != "Testpatient" {
		t.Fatalf("eMAR patient %+v (found %v)", p, ok)
	}
	if err := l.ehr.Transfer(ctx, "MRN4455", hl7.Location{Unit: "5E STEP", Room: "3"}); err != nil {
		t.Fatal(err)
	}
	if err := l.ehr.UpdateWeight(ctx, "MRN4455", 68); err != nil {
		t.Fatal(err)
	}
	p, _ = l.emar.Patient("MRN4455")
	if p.Location.Unit != "5E STEP" || p.WeightKg != 68 {
		t.Errorf("after A02/A08: %+v", p)
	}
	o, err := l.ehr.Order(ctx, norepi)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.emar.Order(o.PlacerID); ok {
		t.Fatal("eMAR knows an order the pharmacy has not verified")
	}
	if _, err := l.ehr.Verify(ctx, o.PlacerID, "PH0003"); err != nil {
		t.Fatal(err)
	}
	got, ok := l.emar.Order(o.PlacerID)
	if !ok || got.State != StateVerified || got.Verifier != "PH0003" || got.RateMLH != 13.125 || got.WeightKg != 68 {
		t.Fatalf("eMAR order %+v", got)
	}
	if err := l.ehr.Discontinue(ctx, o.PlacerID); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.emar.Order(o.PlacerID); got.State != StateDiscontinued {
		t.Errorf("state after DC: %s", got.State)
	}
	if err := l.ehr.Discharge(ctx, "MRN4455"); err != nil {
		t.Fatal(err)
	}
	if p, _ := l.emar.Patient("MRN4455"); !p.Discharged {
		t.Error("A03 did not discharge")
	}
	if s := l.emar.Stats(); s.ADT != 4 || s.Orders != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestListenerCases(t *testing.T) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			ctx := testCtx(t)
			e := New(Config{Clock: clock.NewFake(time.Time{})})
			if err := e.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			cl, err := hl7.Dial(ctx, e.MLLPAddr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			raw, err := cl.SendRaw(ctx, []byte(c.Raw))
			if err != nil {
				t.Fatal(err)
			}
			m, err := hl7.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			ack, err := hl7.ParseAck(m)
			if err != nil {
				t.Fatal(err)
			}
			if ack.Code != c.Ack {
				t.Fatalf("MSA-1 %s (%+v), want %s", ack.Code, ack.Errors, c.Ack)
			}
			if c.ErrCode != 0 && (len(ack.Errors) == 0 || ack.Errors[0].Code != c.ErrCode) {
				t.Fatalf("ERR %+v, want code %d", ack.Errors, c.ErrCode)
			}
			if c.ErrCode == 0 && len(ack.Errors) != 0 {
				t.Fatalf("unexpected ERR %+v", ack.Errors)
			}
		})
	}
}
