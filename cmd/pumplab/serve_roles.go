package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/broker"
	"github.com/pumplab/pumplab/lab/labapi"
	"github.com/pumplab/pumplab/simulators/alarms"
	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/ehr"
	"github.com/pumplab/pumplab/simulators/emar"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pumpserver"
)

func init() {
	roles["broker"] = serveBroker
	roles["druglib"] = serveDruglib
	roles["ehr"] = serveEHR
	roles["emar"] = serveEMAR
	roles["pumpserver"] = servePumpServer
	roles["alarms"] = serveAlarms
}

func serveBroker(ctx context.Context, rf *roleFlags, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve broker", stderr)
	listen := fs.String("listen", "127.0.0.1:1883", "MQTT listen address")
	rf.add(fs, 1)
	if err := parse(fs, args); err != nil {
		return err
	}
	log := rf.logger(stderr)
	b := &broker.Embedded{Addr: *listen, Logger: log}
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer b.Close()
	stop, err := rf.serveControl(map[string]labapi.Handler{}, log)
	if err != nil {
		return err
	}
	defer stop()
	ready(ctx, stdout, "broker: MQTT on %s", b.URL())
	return nil
}

func serveDruglib(ctx context.Context, rf *roleFlags, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve druglib", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP listen address")
	rf.add(fs, 1)
	if err := parse(fs, args); err != nil {
		return err
	}
	log := rf.logger(stderr)
	clk, err := rf.clock()
	if err != nil {
		return err
	}
	store := druglib.NewStore(druglib.StoreConfig{Clock: clk, Logger: log})
	if _, err := store.Release(druglib.Default(), "pharmacist.alice", "pharmacist.bob"); err != nil {
		return fmt.Errorf("release default drug library: %w", err)
	}
	srv := druglib.NewServer(druglib.ServerConfig{Addr: *listen, Store: store, Logger: log})
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()
	stop, err := rf.serveControl(map[string]labapi.Handler{}, log)
	if err != nil {
		return err
	}
	defer stop()
	ready(ctx, stdout, "druglib: %s", srv.URL())
	return nil
}

func serveEHR(ctx context.Context, rf *roleFlags, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve ehr", stderr)
	listen := fs.String("listen", "127.0.0.1:2575", "MLLP listen address (pharmacy and documentation inbox)")
	emarAddr := fs.String("emar", "", "eMAR MLLP address for ADT and RDE^O11")
	rf.add(fs, 1)
	if err := parse(fs, args); err != nil {
		return err
	}
	log := rf.logger(stderr)
	clk, err := rf.clock()
	if err != nil {
		return err
	}
	e := ehr.New(ehr.Config{Addr: *listen, EMARAddr: *emarAddr, Clock: clk, Logger: log})
	if err := e.Start(ctx); err != nil {
		return err
	}
	defer e.Close()
	stop, err := rf.serveControl(ehrMethods(e), log)
	if err != nil {
		return err
	}
	defer stop()
	ready(ctx, stdout, "ehr: MLLP on %s", e.MLLPAddr())
	return nil
}

func ehrMethods(e *ehr.EHR) map[string]labapi.Handler {
	return map[string]labapi.Handler{
		"admit": func(ctx context.Context, in json.RawMessage) (any, error) {
			var p lab.Patient
			if err := labapi.Decode(in, &p); err != nil {
				return nil, err
			}
			return struct{}{}, e.Admit(ctx, ehr.Patient{MRN: p.MRN, Family: p.Family, Given: p.Given, DOB: p.DOB, Sex: p.Sex,
				Location: hl7.Location{Unit: p.Unit, Room: p.Room, Bed: p.Bed}, WeightKg: p.WeightKg, HeightCm: p.HeightCm})
		},
		"order": func(ctx context.Context, in json.RawMessage) (any, error) {
			var o lab.Order
			if err := labapi.Decode(in, &o); err != nil {
				return nil, err
			}
			eo := ehr.Order{PlacerID: o.PlacerID, MRN: o.MRN, DrugCode: o.DrugCode, DrugText: o.DrugText, DoseRate: o.DoseRate,
				DoseUnit: o.DoseUnit, RateMLH: o.RateMLH, DrugAmount: o.DrugAmount, DrugUnit: o.DrugUnit, DiluentML: o.DiluentML,
				VTBI: o.VTBI, Device: o.Device, Prescriber: o.Prescriber}
			if p, ok := e.Patient(o.MRN); ok {
				eo.WeightKg = p.WeightKg
			}
			if o.Device == "PCA" {
				eo.PCA = &ehr.PCA{DemandDose: o.DoseRate, DemandUnit: o.DrugUnit, LockoutMin: o.PCALockoutMin, DoseLimit: o.PCAHourLimit,
					LimitPeriodMin: 60, MaxDosesPerHour: o.PCAMaxPerHour}
			}
			got, err := e.Order(ctx, eo)
			if err != nil {
				return nil, err
			}
			return labapi.OrderID{OrderID: got.PlacerID}, nil
		},
		"verify": func(ctx context.Context, in json.RawMessage) (any, error) {
			var r labapi.OrderID
			if err := labapi.Decode(in, &r); err != nil {
				return nil, err
			}
			_, err := e.Verify(ctx, r.OrderID, r.Pharmacist)
			return struct{}{}, err
		},
		"order-for": func(ctx context.Context, in json.RawMessage) (any, error) {
			var r labapi.OrderFor
			if err := labapi.Decode(in, &r); err != nil {
				return nil, err
			}
			o, ok := ehrOrderFor(e, r.Scan)
			if !ok {
				return labapi.OrderForResult{}, nil
			}
			return labapi.OrderForResult{Found: true, Ordered: labapi.Ordered{OrderID: o.PlacerID, DrugID: o.DrugCode, DrugName: o.DrugText,
				DoseRate: o.DoseRate, DoseUnit: o.DoseUnit, RateMLH: o.RateMLH, Concentration: o.Concentration(),
				AmountUnit: o.DrugUnit, VTBI: o.VTBI, WeightKg: o.WeightKg}}, nil
		},
		"documented": func(ctx context.Context, in json.RawMessage) (any, error) {
			var r labapi.OrderID
			if err := labapi.Decode(in, &r); err != nil {
				return nil, err
			}
			return ehrDocumentation(e.Documented(r.OrderID)), nil
		},
	}
}

// ehrOrderFor finds the CPOE order a scan refers to (as the in-process lab
// does).
func ehrOrderFor(e *ehr.EHR, s lab.Scan) (ehr.Order, bool) {
	if s.OrderID != "" {
		if r, ok := e.Lookup(s.OrderID); ok {
			return r.Order, true
		}
		return ehr.Order{}, false
	}
	for _, r := range e.Orders() {
		if r.Order.MRN == s.MRN && r.Order.DrugCode == s.Drug && r.Status == ehr.OrderVerified {
			return r.Order, true
		}
	}
	return ehr.Order{}, false
}

func ehrDocumentation(d ehr.Documentation) lab.Documentation {
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

func serveEMAR(ctx context.Context, rf *roleFlags, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve emar", stderr)
	listen := fs.String("listen", "127.0.0.1:2576", "MLLP listen address (ADT, RDE^O11, RRG^O16)")
	ioc := fs.String("ioc", "", "pump server PCD-03 MLLP address")
	ehrAddr := fs.String("ehr", "", "EHR MLLP address for RAS^O17")
	rrg := fs.Duration("rrg-timeout", 0, "wait for RRG^O16 (lab time); 0: 10 s of wall time at the clock speed, at least 30 s")
	rf.add(fs, 1)
	if err := parse(fs, args); err != nil {
		return err
	}
	log := rf.logger(stderr)
	clk, err := rf.clock()
	if err != nil {
		return err
	}
	if *rrg <= 0 {
		*rrg = max(30*time.Second, time.Duration(float64(10*time.Second)*rf.speed))
	}
	m := emar.New(emar.Config{Addr: *listen, IOCAddr: *ioc, EHRAddr: *ehrAddr, Clock: clk, Logger: log, RRGTimeout: *rrg})
	if err := m.Start(ctx); err != nil {
		return err
	}
	defer m.Close()
	stop, err := rf.serveControl(map[string]labapi.Handler{
		"scan": func(ctx context.Context, in json.RawMessage) (any, error) {
			var s lab.Scan
			if err := labapi.Decode(in, &s); err != nil {
				return nil, err
			}
			r, err := m.Scan(ctx, emar.Scan{Nurse: s.Nurse, WristbandMRN: s.MRN, DrugBarcode: s.Drug, PumpID: s.PumpID,
				Channel: s.Channel, OrderID: s.OrderID})
			if err != nil {
				return nil, err
			}
			return lab.AdminResult{OrderID: r.OrderID, ControlID: r.ControlID, Accepted: r.Accepted, AckCode: r.AckCode,
				ErrCode: r.ErrCode, ErrText: r.ErrText, SentAt: r.SentAt, ResultAt: r.ResultAt}, nil
		},
		"set-ioc": func(ctx context.Context, in json.RawMessage) (any, error) {
			var a labapi.Addr
			if err := labapi.Decode(in, &a); err != nil {
				return nil, err
			}
			if a.Addr == "" {
				return nil, fmt.Errorf("set-ioc: empty address")
			}
			m.SetIOCAddr(a.Addr)
			return struct{}{}, nil
		},
	}, log)
	if err != nil {
		return err
	}
	defer stop()
	ready(ctx, stdout, "emar: MLLP on %s", m.MLLPAddr())
	return nil
}

func servePumpServer(ctx context.Context, rf *roleFlags, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve pumpserver", stderr)
	listen := fs.String("listen", "127.0.0.1:2577", "IOC MLLP listen address (PCD-03, PCD-05 in)")
	brokerURL := fs.String("broker", "", "MQTT broker URL (required)")
	iop := fs.String("iop", "", "BCMA address for RRG^O16")
	doc := fs.String("doc", "", "EHR address for PCD-01 and PCD-10")
	am := fs.String("am", "", "alarm manager address for PCD-04")
	pcd01 := fs.Duration("pcd01-interval", 60*time.Second, "PCD-01 period (lab time)")
	rf.add(fs, 1)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *brokerURL == "" {
		fmt.Fprintln(stderr, "pumplab serve pumpserver: --broker is required")
		return errUsage
	}
	log := rf.logger(stderr)
	clk, err := rf.clock()
	if err != nil {
		return err
	}
	s := pumpserver.New(pumpserver.Config{BrokerURL: *brokerURL, Clock: clk, Logger: log, PCD01Interval: *pcd01,
		MLLPAddr: *listen, IOPAddr: *iop, DOCAddr: *doc, AMAddr: *am})
	if err := s.Start(ctx); err != nil {
		return err
	}
	defer s.Close()
	stop, err := rf.serveControl(map[string]labapi.Handler{
		"pumps": func(ctx context.Context, in json.RawMessage) (any, error) {
			out := []lab.PumpInfo{}
			for _, p := range s.Pumps() {
				out = append(out, lab.PumpInfo{ID: p.ID, Firmware: p.Firmware, LibraryVersion: p.LibraryVersion, Online: p.Online, LastSeen: p.LastSeen})
			}
			return out, nil
		},
		"presence": func(ctx context.Context, in json.RawMessage) (any, error) {
			out := []lab.Presence{}
			for _, p := range s.PresenceHistory() {
				out = append(out, lab.Presence{PumpID: p.PumpID, Online: p.Online, At: p.At})
			}
			return out, nil
		},
	}, log)
	if err != nil {
		return err
	}
	defer stop()
	ready(ctx, stdout, "pumpserver: IOC MLLP on %s, broker %s", s.MLLPAddr(), *brokerURL)
	return nil
}

func serveAlarms(ctx context.Context, rf *roleFlags, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve alarms", stderr)
	listen := fs.String("listen", "127.0.0.1:2578", "PCD-04 MLLP listen address")
	reporter := fs.String("reporter", "", "pump server address for PCD-05")
	nurses := fs.Int("nurses", 2, "nurse phones (communicators), one escalation level each")
	nurse := fs.Bool("nurse", false, "run the nurse model on the phones: accept dispatches")
	accept := fs.Duration("nurse-accept", 45*time.Second, "nurse: median time to accept a dispatch (lab time)")
	sigma := fs.Float64("nurse-sigma", 0.4, "nurse: log-normal spread")
	rf.add(fs, 1)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *nurses < 1 || *nurses > 50 {
		return fmt.Errorf("--nurses %d: want 1..50", *nurses)
	}
	log := rf.logger(stderr)
	clk, err := rf.clock()
	if err != nil {
		return err
	}
	m := alarms.New(alarms.Config{MLLPAddr: *listen, Clock: clk, ReporterAddr: *reporter, Logger: log})
	if err := m.Start(ctx); err != nil {
		return err
	}
	defer m.Close()
	lat := newLognormal(rf.seed, 0x70686f6e65)
	var levels [][]string
	for i := 1; i <= *nurses; i++ {
		id := fmt.Sprintf("PHONE-%d", i)
		user := fmt.Sprintf("RN%04d", 41+i)
		var ph *alarms.Communicator
		ph = alarms.NewCommunicator(alarms.CommunicatorConfig{ID: id, Clock: clk, Logger: log,
			OnMessage: func(msg alarms.Message) {
				if !*nurse {
					return
				}
				clk.AfterFunc(lat.draw(*accept, *sigma), func() {
					actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if err := ph.Accept(actx, msg.AlertID, user); err != nil {
						log.Warn("nurse: accept failed", "alert", msg.AlertID, "err", err)
					}
				})
			}})
		if err := ph.Start(ctx); err != nil {
			return err
		}
		defer ph.Close()
		if err := m.RegisterCommunicator(id, ph.URL()); err != nil {
			return err
		}
		levels = append(levels, []string{id})
	}
	m.SetLevels(levels)
	stop, err := rf.serveControl(map[string]labapi.Handler{
		"records": func(ctx context.Context, in json.RawMessage) (any, error) {
			out := []lab.AlarmRecord{}
			for _, a := range m.Alerts() {
				out = append(out, lab.AlarmRecord{AlertID: a.ID, PumpID: a.Pump, Code: a.Code, Priority: a.Priority, Onset: a.Onset,
					Received: a.Received, Delivered: a.Delivered, Accepted: a.Accepted, AcceptedBy: a.AcceptedBy, Ended: a.Ended,
					Level: a.Level, Status: a.Status})
			}
			return out, nil
		},
	}, log)
	if err != nil {
		return err
	}
	defer stop()
	ready(ctx, stdout, "alarms: PCD-04 MLLP on %s, %d phones", m.MLLPAddr(), *nurses)
	return nil
}
