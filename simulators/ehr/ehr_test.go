package ehr

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func parseRaw(t testing.TB, raw string) *hl7.Message {
	t.Helper()
	m, err := hl7.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse fixture: %v", err)
	}
	return m
}

func TestOrderCases(t *testing.T) {
	for _, c := range OrderCases {
		t.Run(c.Name, func(t *testing.T) {
			m := parseRaw(t, c.Raw)
			o, pat, err := ParseOrder(m)
			if c.WantErr != "" {
				var pe *hl7.ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("ParseOrder error = %v, want *hl7.ParseError at %s", err, c.WantErr)
				}
				if pe.Location() != c.WantErr {
					t.Fatalf("error at %s (%v), want %s", pe.Location(), err, c.WantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOrder: %v", err)
			}
			if !o.OrderedAt.Equal(c.Want.OrderedAt) {
				t.Errorf("OrderedAt = %v, want %v", o.OrderedAt, c.Want.OrderedAt)
			}
			got, want := o, c.Want
			got.OrderedAt, want.OrderedAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseOrder =\n%+v\nwant\n%+v", got, want)
				if got.PCA != nil && want.PCA != nil {
					t.Errorf("PCA = %+v, want %+v", *got.PCA, *want.PCA)
				}
			}
			if pat.MRN != c.Want.MRN {
				t.Errorf("patient MRN = %q, want %q", pat.MRN, c.Want.MRN)
			}
			if !c.Golden {
				return
			}
			h, err := hl7.ParseHeader(m)
			if err != nil {
				t.Fatal(err)
			}
			var out *hl7.Message
			if m.Type().Code == "OMP" {
				out = BuildOMP(h, pat, o)
			} else {
				out = BuildRDE(h, pat, o)
			}
			if string(out.Bytes()) != c.Raw {
				t.Errorf("build differs from golden:\n got %s\nwant %s", out, strings.ReplaceAll(c.Raw, "\r", "\n"))
			}
		})
	}
}

// fakeEMAR is an MLLP server recording what the EHR sends.
type fakeEMAR struct {
	srv *hl7.Server
	mu  sync.Mutex
	got []*hl7.Message
}

func startFakeEMAR(t *testing.T) *fakeEMAR {
	t.Helper()
	f := &fakeEMAR{}
	f.srv = hl7.New(hl7.Config{Handler: func(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.got = append(f.got, m)
		return nil, nil
	}})
	if err := f.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *fakeEMAR) messages() []*hl7.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*hl7.Message(nil), f.got...)
}

func startEHR(t *testing.T, cfg Config) *EHR {
	t.Helper()
	e := New(cfg)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

var alex = Patient{MRN: "MRN4455", Family: "Testpatient", Given: "Alex", DOB: "19700101", Sex: "F",
	Location: hl7.Location{Unit: "4W ICU", Room: "12", Bed: "A"}, WeightKg: 70, HeightCm: 172}

var norepi = Order{MRN: "MRN4455", DrugCode: "NOREPI-4-250", DrugText: "Norepinephrine 4 mg/250 mL",
	DoseRate: 0.05, DoseUnit: "mcg/kg/min", RateMLH: 13.125, DrugAmount: 4, DrugUnit: "mg", DiluentML: 250,
	VTBI: 250, Prescriber: "MD0007"}

func TestADTCPOEVerifyReachEMAR(t *testing.T) {
	ctx := testCtx(t)
	emar := startFakeEMAR(t)
	clk := clock.NewFake(time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC))
	e := startEHR(t, Config{Clock: clk, EMARAddr: emar.srv.Addr()})

	if err := e.Admit(ctx, alex); err != nil {
		t.Fatal(err)
	}
	o, err := e.Order(ctx, norepi)
	if err != nil {
		t.Fatal(err)
	}
	if o.PlacerID != "ORD-000001" {
		t.Errorf("placer ID = %q, want ORD-000001", o.PlacerID)
	}
	rec, ok := e.Lookup(o.PlacerID)
	if !ok || rec.Status != OrderPending || !rec.FromCPOE {
		t.Fatalf("after Order: %+v (found %v), want pending from CPOE", rec.Status, ok)
	}
	if rec.ReceivedAt.IsZero() || rec.WeightKg != 70 {
		t.Errorf("pharmacy copy: received %v weight %v", rec.ReceivedAt, rec.WeightKg)
	}
	if s := e.Stats(); s.PharmacyOrders != 1 {
		t.Errorf("PharmacyOrders = %d, want 1 (OMP must cross the socket)", s.PharmacyOrders)
	}
	o2, err := e.Order(ctx, norepi)
	if err != nil || o2.PlacerID != "ORD-000002" {
		t.Fatalf("second order: %q, %v", o2.PlacerID, err)
	}

	clk.Advance(5 * time.Minute)
	v, err := e.Verify(ctx, o.PlacerID, "PH0003")
	if err != nil {
		t.Fatal(err)
	}
	if v.FillerID != "RX-000001" || v.Verifier != "PH0003" {
		t.Errorf("verified order filler %q verifier %q", v.FillerID, v.Verifier)
	}
	if _, err := e.Verify(ctx, o.PlacerID, "PH0003"); err == nil {
		t.Error("second Verify of the same order succeeded")
	}
	if err := e.Reject(o2.PlacerID, "PH0003", "duplicate therapy"); err != nil {
		t.Fatal(err)
	}
	if rec, _ := e.Lookup(o2.PlacerID); rec.Status != OrderRejected {
		t.Errorf("rejected order status %s", rec.Status)
	}
	if err := e.Transfer(ctx, alex.MRN, hl7.Location{Unit: "5E STEP", Room: "3", Bed: "B"}); err != nil {
		t.Fatal(err)
	}
	if err := e.UpdateWeight(ctx, alex.MRN, 72.5); err != nil {
		t.Fatal(err)
	}
	if err := e.Discontinue(ctx, o.PlacerID); err != nil {
		t.Fatal(err)
	}

	msgs := emar.messages()
	var types []string
	for _, m := range msgs {
		types = append(types, m.Type().String())
	}
	want := []string{"ADT^A01", "RDE^O11", "ADT^A02", "ADT^A08", "RDE^O11"}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("eMAR received %v, want %v", types, want)
	}
	a01, err := hl7.ParseADT(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if a01.Patient.MRN != "MRN4455" || a01.WeightKg != 70 || a01.HeightCm != 172 || a01.Patient.Location.Unit != "4W ICU" {
		t.Errorf("A01 = %+v", a01)
	}
	rde, _, err := ParseOrder(msgs[1])
	if err != nil {
		t.Fatal(err)
	}
	if rde.PlacerID != "ORD-000001" || rde.FillerID != "RX-000001" || rde.Verifier != "PH0003" ||
		rde.RateMLH != 13.125 || rde.VTBI != 250 || rde.WeightKg != 70 || rde.Control != ControlNew {
		t.Errorf("RDE order = %+v", rde)
	}
	if got := msgs[1].Get("MSH-3"); got != PharmacyApp {
		t.Errorf("RDE MSH-3 = %q, want %s", got, PharmacyApp)
	}
	a02, _ := hl7.ParseADT(msgs[2])
	if a02.PriorLocation.Unit != "4W ICU" || a02.Patient.Location.Unit != "5E STEP" {
		t.Errorf("A02 prior %v new %v", a02.PriorLocation, a02.Patient.Location)
	}
	a08, _ := hl7.ParseADT(msgs[3])
	if a08.WeightKg != 72.5 {
		t.Errorf("A08 weight %v", a08.WeightKg)
	}
	dc, _, _ := ParseOrder(msgs[4])
	if dc.Control != ControlDiscontinue || dc.PlacerID != o.PlacerID {
		t.Errorf("discontinue RDE = %+v", dc)
	}
	if ids := map[string]bool{}; true {
		for _, m := range msgs {
			if ids[m.ControlID()] {
				t.Errorf("MSH-10 %s reused", m.ControlID())
			}
			ids[m.ControlID()] = true
		}
	}
}

func TestOrderChecks(t *testing.T) {
	ctx := testCtx(t)
	e := startEHR(t, Config{})
	if _, err := e.Order(ctx, norepi); err == nil || !strings.Contains(err.Error(), "not admitted") {
		t.Errorf("order for unknown patient: %v", err)
	}
	if err := e.Admit(ctx, alex); err != nil {
		t.Fatal(err)
	}
	bad := norepi
	bad.DoseRate, bad.RateMLH = 0, 0
	if _, err := e.Order(ctx, bad); err == nil {
		t.Error("order without rate accepted")
	}
	bad = norepi
	bad.DrugCode = ""
	if _, err := e.Order(ctx, bad); err == nil {
		t.Error("order without drug accepted")
	}
	if _, err := e.Verify(ctx, "ORD-404", "PH1"); err == nil {
		t.Error("verify of unknown order succeeded")
	}
	o := norepi
	o.PlacerID = "MY-1"
	if _, err := e.Order(ctx, o); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Order(ctx, o); err == nil {
		t.Error("duplicate placer ID accepted")
	}
}

// send writes raw to the EHR listener and returns the parsed acknowledgement.
func send(t *testing.T, ctx context.Context, addr, raw string) hl7.Ack {
	t.Helper()
	c, err := hl7.Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reply, err := c.SendRaw(ctx, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	m, err := hl7.Parse(reply)
	if err != nil {
		t.Fatalf("parse ack: %v", err)
	}
	ack, err := hl7.ParseAck(m)
	if err != nil {
		t.Fatalf("ack: %v", err)
	}
	return ack
}

func TestDocCases(t *testing.T) {
	for _, c := range DocCases {
		t.Run(c.Name, func(t *testing.T) {
			ctx := testCtx(t)
			e := startEHR(t, Config{Clock: clock.NewFake(time.Time{})})
			ack := send(t, ctx, e.MLLPAddr(), c.Raw)
			if ack.Code != c.Ack {
				t.Fatalf("MSA-1 = %s (%v), want %s", ack.Code, ack.Errors, c.Ack)
			}
			if c.ErrCode != 0 {
				if len(ack.Errors) == 0 || ack.Errors[0].Code != c.ErrCode {
					t.Fatalf("ERR = %+v, want code %d", ack.Errors, c.ErrCode)
				}
				if len(e.Records()) != 0 {
					t.Errorf("rejected message documented: %+v", e.Records())
				}
				if e.Stats().Rejected != 1 {
					t.Errorf("Rejected = %d, want 1", e.Stats().Rejected)
				}
				return
			}
			if c.Key == (DocKey{}) {
				return
			}
			d := e.Documented(c.Key.OrderID)
			if d.Empty() {
				t.Fatalf("nothing documented for %s", c.Key.OrderID)
			}
			if c.Key.PumpID == "" { // administration
				if len(d.Administrations) != 1 || d.Administrations[0].Nurse != "RN0042" ||
					d.Administrations[0].PumpID != "PUMP-0007" || d.Administrations[0].Amount != 250 {
					t.Errorf("administrations = %+v", d.Administrations)
				}
				return
			}
			recs := e.Records()
			if len(recs) != 1 || recs[0].DocKey != c.Key {
				t.Fatalf("records = %+v, want key %+v", recs, c.Key)
			}
			if d.RateMLH != c.RateMLH || d.VolumeML != c.VolumeML || d.Status != c.Status {
				t.Errorf("documented rate %v volume %v status %q, want %v %v %q", d.RateMLH, d.VolumeML, d.Status, c.RateMLH, c.VolumeML, c.Status)
			}
			if c.Event != "" {
				if len(d.Events) != 1 || d.Events[0].Type != c.Event {
					t.Fatalf("events = %+v, want one %s", d.Events, c.Event)
				}
				ev := d.Events[0]
				if want := time.Date(2025, 3, 1, 15, 16, 18, 0, time.UTC); !ev.Time.Equal(want) {
					t.Errorf("event time %v, want OBR-7 %v", ev.Time, want)
				}
				if ev.Params["MDC_DRUG_NAME_LABEL"] != "Norepinephrine" || ev.Params["MDC_PUMP_INFUSING_STATUS"] != "pump-status-infusing" ||
					ev.Params["MDC_ATTR_EVT_COND"] != "MDC_EVT_PUMP_DELIV_START" || ev.Params["MDC_VOL_FLUID_TBI"] != "250" {
					t.Errorf("event params = %v", ev.Params)
				}
			} else if d.Observations != 1 {
				t.Errorf("observations %d, want 1", d.Observations)
			}
		})
	}
}

func docRaw(name string) string {
	for _, c := range DocCases {
		if c.Name == name {
			return c.Raw
		}
	}
	panic("no case " + name)
}

func TestDedupeRetransmission(t *testing.T) {
	ctx := testCtx(t)
	e := startEHR(t, Config{})
	raw := docRaw("pcd01-infusing")
	for i := 0; i < 3; i++ {
		if ack := send(t, ctx, e.MLLPAddr(), raw); ack.Code != "CA" {
			t.Fatalf("retransmission %d: MSA-1 %s", i, ack.Code)
		}
	}
	ev := docRaw("pcd10-delivery-start")
	send(t, ctx, e.MLLPAddr(), ev)
	send(t, ctx, e.MLLPAddr(), ev)
	d := e.Documented("ORD-000001")
	if d.Observations != 1 || len(d.Events) != 1 {
		t.Fatalf("observations %d events %d, want 1 and 1", d.Observations, len(d.Events))
	}
	if s := e.Stats(); s.Duplicates != 3 || s.Observations != 1 || s.Events != 1 {
		t.Errorf("stats %+v", s)
	}
	// Same MSH-10 from another sender is another message.
	other := strings.Replace(raw, "PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64", "PUMPSRV_2", 1)
	send(t, ctx, e.MLLPAddr(), other)
	if d := e.Documented("ORD-000001"); d.Observations != 2 {
		t.Errorf("observations after other sender = %d, want 2", d.Observations)
	}
}

func pumpStatus(id, order, pump string, at time.Time, rate, vol float64) *hl7.Message {
	return hl7.BuildPumpStatus(hl7.PumpStatus{
		Header:  hl7.Header{SendingApp: hl7.HD{Namespace: "PUMPSRV_SIM"}, Time: at, ControlID: id},
		Patient: hl7.Patient{MRN: "MRN4455"}, OrderID: order, DrugCode: "NOREPI-4-250", ObsTime: at,
		PumpID: pump, RateMLH: rate, DeliveredML: vol, Status: hl7.StatusInfusing,
	})
}

func TestLateEventKeepsNewerVolume(t *testing.T) {
	ctx := testCtx(t)
	e := startEHR(t, Config{})
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	if _, err := hl7.SendOnce(ctx, e.MLLPAddr(), nil, pumpStatus("S1", "ORD-1", "PUMP-0001", t0.Add(10*time.Minute), 13.1, 20)); err != nil {
		t.Fatal(err)
	}
	// A buffered PCD-10 from before the observation arrives later.
	late := hl7.BuildInfusionEvent(hl7.InfusionEvent{
		Header:  hl7.Header{SendingApp: hl7.HD{Namespace: "PUMPSRV_SIM"}, Time: t0.Add(11 * time.Minute), ControlID: "E1"},
		Patient: hl7.Patient{MRN: "MRN4455"}, OrderID: "ORD-1", EventID: "EV1", EventTime: t0.Add(2 * time.Minute),
		PumpID: "PUMP-0001", Event: hl7.Code{Code: 0, Ref: "MDC_EVT_PUMP_DELIV_STOP"}, RateMLH: 0, DeliveredML: 5,
	})
	if _, err := hl7.SendOnce(ctx, e.MLLPAddr(), nil, late); err != nil {
		t.Fatal(err)
	}
	d := e.Documented("ORD-1")
	if d.VolumeML != 20 || d.RateMLH != 13.1 {
		t.Errorf("volume %v rate %v, want the newer observation 20 / 13.1", d.VolumeML, d.RateMLH)
	}
	if len(d.Events) != 1 || d.Events[0].Type != "PUMP_DELIV_STOP" || !d.Events[0].Time.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("events = %+v, want the stop with its original time", d.Events)
	}
	if !d.LastObservation.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("last observation %v", d.LastObservation)
	}
}

func TestDocumentedSumsChannels(t *testing.T) {
	ctx := testCtx(t)
	e := startEHR(t, Config{})
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	// The order ran 40 mL on one pump, then moved to another (pump swap).
	for _, m := range []*hl7.Message{
		pumpStatus("S1", "ORD-1", "PUMP-0001", t0, 10, 40),
		pumpStatus("S2", "ORD-1", "PUMP-0002", t0.Add(time.Hour), 12, 7),
	} {
		if _, err := hl7.SendOnce(ctx, e.MLLPAddr(), nil, m); err != nil {
			t.Fatal(err)
		}
	}
	d := e.Documented("ORD-1")
	if d.VolumeML != 47 || d.RateMLH != 12 || len(d.Pumps) != 2 {
		t.Errorf("documented %+v, want volume 47, rate 12 from the latest, 2 pumps", d)
	}
}

func TestWaitDocumented(t *testing.T) {
	ctx := testCtx(t)
	e := startEHR(t, Config{})
	type result struct {
		d   Documentation
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := e.WaitDocumented(ctx, func(d Documentation) bool { return d.OrderID == "ORD-000001" && d.VolumeML >= 9.6 })
		done <- result{d, err}
	}()
	if ack := send(t, ctx, e.MLLPAddr(), docRaw("pcd10-delivery-start")); ack.Code != "CA" {
		t.Fatal(ack.Code)
	}
	select {
	case r := <-done:
		t.Fatalf("WaitDocumented returned before the volume was documented: %+v %v", r.d, r.err)
	default:
	}
	send(t, ctx, e.MLLPAddr(), docRaw("pcd01-infusing"))
	r := <-done
	if r.err != nil || r.d.VolumeML != 9.6 {
		t.Fatalf("WaitDocumented = %+v, %v", r.d, r.err)
	}

	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.WaitDocumented(short, func(Documentation) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
	go func() {
		_, err := e.WaitDocumented(ctx, func(Documentation) bool { return false })
		done <- result{err: err}
	}()
	e.Close()
	if r := <-done; !errors.Is(r.err, ErrClosed) {
		t.Errorf("wait after Close: %v", r.err)
	}
}

func TestInjectedOrderIsFlagged(t *testing.T) {
	ctx := testCtx(t)
	e := startEHR(t, Config{})
	if ack := send(t, ctx, e.MLLPAddr(), OrderCases[0].Raw); ack.Code != "CA" {
		t.Fatalf("MSA-1 %s", ack.Code)
	}
	rec, ok := e.Lookup("ORD-000001")
	if !ok || rec.Status != OrderPending || rec.FromCPOE {
		t.Fatalf("injected order: %+v found %v, want pending and not from CPOE", rec, ok)
	}
	// The CPOE counter skips IDs that arrived on the wire.
	if err := e.Admit(ctx, alex); err != nil {
		t.Fatal(err)
	}
	o, err := e.Order(ctx, norepi)
	if err != nil || o.PlacerID != "ORD-000002" {
		t.Fatalf("order after injection: %q %v", o.PlacerID, err)
	}
}

func TestChannelSubID(t *testing.T) {
	for _, c := range []struct{ sub, ch string }{
		{"1.1.0.0", "A"}, {"1.2.0.0", "B"}, {"1.3", "C"}, {"B", "B"}, {"", "A"}, {"1.x.0.0", "A"}, {"1.99.0.0", "A"},
	} {
		if got := ChannelFromSubID(c.sub); got != c.ch {
			t.Errorf("ChannelFromSubID(%q) = %q, want %q", c.sub, got, c.ch)
		}
	}
	for _, ch := range []string{"A", "B", "D"} {
		if got := ChannelFromSubID(ChannelSubID(ch)); got != ch {
			t.Errorf("round trip %s -> %s -> %s", ch, ChannelSubID(ch), got)
		}
	}
}
