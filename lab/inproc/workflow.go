package inproc

// The optional workflow interfaces of lab/ops_workflow.go (Bedside, Ward,
// Pharmacy, Facility) on the in-process lab: what control scenarios need
// beyond lab.Lab.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/broker"
	"github.com/pumplab/pumplab/simulators/emar"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpserver"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

var (
	_ lab.Bedside  = (*Lab)(nil)
	_ lab.Ward     = (*Lab)(nil)
	_ lab.Pharmacy = (*Lab)(nil)
	_ lab.Facility = (*Lab)(nil)
)

// replaced holds the devices ReplacePump put in place of fleet pumps (the
// fleet maps are read without a lock, so they never change after start).
type replaced struct {
	mu     sync.Mutex
	pumps  map[string]*pump.Pump
	agents map[string]*pump.Agent
}

var replacedPumps sync.Map // *Lab -> *replaced

func (l *Lab) replaced() *replaced {
	v, loaded := replacedPumps.LoadOrStore(l, &replaced{pumps: map[string]*pump.Pump{}, agents: map[string]*pump.Agent{}})
	if !loaded {
		l.onClose(func() error { replacedPumps.Delete(l); return nil })
	}
	return v.(*replaced)
}

// anyPump finds the device at a bed: a replacement, else the fleet pump.
func (l *Lab) anyPump(id string) (*pump.Pump, *pump.Agent, error) {
	if v, ok := replacedPumps.Load(l); ok {
		x := v.(*replaced)
		x.mu.Lock()
		p, a, ok := x.pumps[id], x.agents[id], x.pumps[id] != nil
		x.mu.Unlock()
		if ok {
			return p, a, nil
		}
	}
	if p, ok := l.PumpModels[id]; ok {
		return p, l.Agents[id], nil
	}
	return nil, nil, fmt.Errorf("inproc: no pump %q in the lab", id)
}

// --- lab.Bedside ---

// ReplacePump implements lab.Bedside: the fleet pump's network module is
// closed and a new pump with the given channels, on the published library
// and the lab's care area, connects under the same identity (client id,
// broker login, mTLS certificate) as the fleet pump did. The nurse model
// does not attend it: the scenario confirms at the pump.
func (l *Lab) ReplacePump(ctx context.Context, id string, channels ...string) error {
	old, ok := l.Agents[id]
	if !ok {
		return fmt.Errorf("inproc: replace pump: no fleet pump %q", id)
	}
	var types []pump.ChannelType
	for _, c := range channels {
		switch t := pump.ChannelType(c); t {
		case pump.LVP, pump.Syringe, pump.PCA:
			types = append(types, t)
		default:
			return fmt.Errorf("inproc: replace pump %s: channel type %q is not lvp, syringe or pca", id, c)
		}
	}
	if len(types) == 0 {
		return fmt.Errorf("inproc: replace pump %s: no channel types given", id)
	}
	x := l.replaced()
	x.mu.Lock()
	_, twice := x.pumps[id]
	x.mu.Unlock()
	if twice {
		return fmt.Errorf("inproc: replace pump %s: already replaced", id)
	}
	if s, err := l.PumpModels[id].Snapshot(""); err == nil && s.State != pump.ChIdle {
		return fmt.Errorf("inproc: replace pump %s: channel %s is %s, not idle", id, s.Channel, s.State)
	}
	b, ok := l.LibServer.Store().Published()
	if !ok {
		return fmt.Errorf("inproc: replace pump %s: no published drug library", id)
	}
	ac, err := l.agentConfig(id)
	if err != nil {
		return fmt.Errorf("inproc: replace pump %s: %w", id, err)
	}
	if err := old.Close(); err != nil {
		return fmt.Errorf("inproc: replace pump %s: close the old network module: %w", id, err)
	}
	swapped := l.clk.Now()
	pc := l.pumpConfig(id, b)
	pc.Channels, pc.Seed = types, uint64(l.topo.Seed)*1000003+7919
	p := pump.New(pc)
	ac.Session = "r" + strconv.FormatInt(swapped.UnixMilli(), 36)
	a := pump.NewAgent(p, ac)
	if err := a.Start(ctx); err != nil {
		return fmt.Errorf("inproc: replace pump %s: %w", id, err)
	}
	x.mu.Lock()
	x.pumps[id], x.agents[id] = p, a
	x.mu.Unlock()
	l.onClose(a.Close)
	if err := a.WaitConnected(ctx); err != nil {
		return fmt.Errorf("inproc: replace pump %s: not connected: %w", id, err)
	}
	err = l.Server.Wait(ctx, func(v pumpserver.View) bool {
		r, ok := v.Pump(id)
		return ok && r.Online && r.LastSeen.After(swapped)
	})
	if err != nil {
		return fmt.Errorf("inproc: replace pump %s: not online at the pump server: %w", id, err)
	}
	return nil
}

// ManualProgram implements lab.Bedside: the nurse keys a program in.
func (l *Lab) ManualProgram(ctx context.Context, pumpID, channel, user string, m lab.ManualProgram) (lab.ProgramResult, error) {
	p, _, err := l.anyPump(pumpID)
	if err != nil {
		return lab.ProgramResult{}, err
	}
	action := "RE"
	if m.Change {
		action = "XO"
	}
	w := pumpwire.Program{OrderID: m.OrderID, Action: action, DrugID: m.DrugID, DoseRate: m.DoseRate, DoseUnit: m.DoseUnit,
		RateMLH: m.RateMLH, DrugAmount: m.DrugAmount, DrugUnit: m.DrugUnit, DiluentML: m.DiluentML, VTBI: m.VTBI,
		WeightKg: m.WeightKg, PCADose: m.PCADose, PCALockout: m.PCALockoutMin, PCAHourLimit: m.PCAHourLimit, BasalRate: m.BasalRate}
	r, err := p.Program(pump.Local, w, channel)
	out := lab.ProgramResult{Accepted: r.Accepted, Code: r.Code, Reason: r.Reason, RateMLH: r.RateMLH, NeedsOverride: r.NeedsOverride}
	var rej *pump.Rejection
	if errors.As(err, &rej) {
		out.Accepted, out.Code, out.Reason = false, rej.Code, rej.Reason
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("inproc: program %s/%s: %w", pumpID, channel, err)
	}
	return out, nil
}

// Override implements lab.Bedside.
func (l *Lab) Override(ctx context.Context, pumpID, channel, reason, user string) error {
	p, _, err := l.anyPump(pumpID)
	if err != nil {
		return err
	}
	return p.Override(channel, reason, user)
}

// Start implements lab.Bedside.
func (l *Lab) Start(ctx context.Context, pumpID, channel, user string) error {
	p, _, err := l.anyPump(pumpID)
	if err != nil {
		return err
	}
	return p.Start(channel, user)
}

// ClearAlarm implements lab.Bedside.
func (l *Lab) ClearAlarm(ctx context.Context, pumpID, alarmID, user string) error {
	p, _, err := l.anyPump(pumpID)
	if err != nil {
		return err
	}
	return p.ClearAlarm(alarmID, user)
}

// PCADemand implements lab.Bedside.
func (l *Lab) PCADemand(ctx context.Context, pumpID, channel string) (bool, error) {
	p, _, err := l.anyPump(pumpID)
	if err != nil {
		return false, err
	}
	return p.PCADemand(channel)
}

// PCAStats implements lab.Bedside.
func (l *Lab) PCAStats(ctx context.Context, pumpID, channel string) (lab.PCAStats, error) {
	p, _, err := l.anyPump(pumpID)
	if err != nil {
		return lab.PCAStats{}, err
	}
	s, err := p.Snapshot(channel)
	if err != nil {
		return lab.PCAStats{}, err
	}
	return lab.PCAStats{Demands: s.PCA.Demands, Delivered: s.PCA.Delivered, Rejected: s.PCA.Rejected,
		RejectedLockout: s.PCA.RejectedLockout, RejectedLimit: s.PCA.RejectedLimit, Limited: s.PCA.Limited,
		DeliveredML: s.VolumeML, State: string(s.State)}, nil
}

// SetCareArea implements lab.Bedside.
func (l *Lab) SetCareArea(ctx context.Context, pumpID, area, user string) error {
	p, _, err := l.anyPump(pumpID)
	if err != nil {
		return err
	}
	return p.SetCareArea(area, user)
}

// CareArea implements lab.Bedside: the care area the pump reports.
func (l *Lab) CareArea(ctx context.Context, pumpID string) (string, error) {
	p, _, err := l.anyPump(pumpID)
	if err != nil {
		return "", err
	}
	return p.Status().CareArea, nil
}

// PumpLog implements lab.Bedside.
func (l *Lab) PumpLog(ctx context.Context, pumpID string) ([]lab.PumpLogEntry, error) {
	p, _, err := l.anyPump(pumpID)
	if err != nil {
		return nil, err
	}
	var out []lab.PumpLogEntry
	for _, e := range p.Log() {
		out = append(out, lab.PumpLogEntry{At: e.At, Kind: e.Kind, Source: e.Source, User: e.User, Channel: e.Channel,
			Action: e.Action, Code: e.Code, Detail: e.Detail})
	}
	return out, nil
}

// Connected implements lab.Bedside.
func (l *Lab) Connected(ctx context.Context, pumpID string) (bool, error) {
	_, a, err := l.anyPump(pumpID)
	if err != nil {
		return false, err
	}
	return a != nil && a.Connected(), nil
}

// --- lab.Ward ---

// Transfer implements lab.Ward (ADT^A02 from the EHR).
func (l *Lab) Transfer(ctx context.Context, mrn string, to lab.Location) error {
	return l.clinical.EHR.Transfer(ctx, mrn, hl7.Location{Unit: to.Unit, Room: to.Room, Bed: to.Bed})
}

// Location implements lab.Ward.
func (l *Lab) Location(ctx context.Context, mrn string) (lab.Location, error) {
	p, ok := l.clinical.EHR.Patient(mrn)
	if !ok {
		return lab.Location{}, fmt.Errorf("inproc: no patient %q in the EHR", mrn)
	}
	return lab.Location{Unit: p.Location.Unit, Room: p.Location.Room, Bed: p.Location.Bed}, nil
}

// Titrate implements lab.Ward: the eMAR's XO PCD-03; the ordered truth
// layer takes the new dose as the scan goes out.
func (l *Lab) Titrate(ctx context.Context, t lab.Titration) (lab.AdminResult, error) {
	o, ok := l.clinical.EMAR.Order(t.OrderID)
	if !ok {
		return lab.AdminResult{}, fmt.Errorf("inproc: titrate: the eMAR has no order %q", t.OrderID)
	}
	if p, ok := l.PumpModels[o.PumpID]; ok && o.Channel != "" {
		if tr, err := p.Truth(o.Channel); err == nil && !tr.Ordered.IsZero() {
			s := tr.Ordered
			s.At, s.RateMLH, s.DoseRate = time.Time{}, 0, t.DoseRate
			if t.DoseUnit != "" {
				s.DoseUnit = t.DoseUnit
			}
			_ = p.SetOrdered(o.Channel, s)
		}
	}
	r, err := l.clinical.EMAR.ChangeRate(ctx, emar.RateChange{Nurse: t.Nurse, WristbandMRN: t.MRN, OrderID: t.OrderID,
		DoseRate: t.DoseRate, DoseUnit: t.DoseUnit})
	if err != nil {
		return lab.AdminResult{}, err
	}
	return lab.AdminResult{OrderID: r.OrderID, ControlID: r.ControlID, Accepted: r.Accepted, AckCode: r.AckCode,
		ErrCode: r.ErrCode, ErrText: r.ErrText, SentAt: r.SentAt, ResultAt: r.ResultAt}, nil
}

// DocumentedCareArea implements lab.Ward: the care area of the order's most
// recent documented pump data.
func (l *Lab) DocumentedCareArea(ctx context.Context, orderID string) (string, error) {
	var latest time.Time
	area := ""
	for _, r := range l.clinical.EHR.Records() {
		if r.OrderID == orderID && !r.ObservedAt.Before(latest) && r.CareArea != "" {
			latest, area = r.ObservedAt, r.CareArea
		}
	}
	return area, nil
}

// --- lab.Pharmacy ---

// PushLibrary implements lab.Pharmacy through the pump server's library
// command (the library URL of the drug-library server and its hash).
func (l *Lab) PushLibrary(ctx context.Context, version string, pumpIDs ...string) (map[string]lab.LibraryPush, error) {
	b, err := l.LibServer.Store().Bundle(version)
	if err != nil {
		return nil, fmt.Errorf("inproc: push library %s: %w", version, err)
	}
	acks, err := l.Server.PushLibrary(ctx, version, l.LibServer.VersionURL(version), b.Hash, pumpIDs...)
	out := make(map[string]lab.LibraryPush, len(acks))
	for id, a := range acks {
		out[id] = lab.LibraryPush{Result: a.Result, Code: a.Code, Reason: a.Reason}
	}
	if err != nil {
		return out, fmt.Errorf("inproc: push library %s: %w", version, err)
	}
	return out, nil
}

// --- lab.Facility ---

func (l *Lab) restarter() (broker.Restarter, error) {
	rb, ok := l.Broker.(broker.Restarter)
	if !ok {
		return nil, fmt.Errorf("inproc: broker %T cannot be stopped and restarted by the lab", l.Broker)
	}
	return rb, nil
}

// StopBroker implements lab.Facility for brokers the lab runs.
func (l *Lab) StopBroker(ctx context.Context) error {
	rb, err := l.restarter()
	if err != nil {
		return err
	}
	if err := rb.Stop(); err != nil {
		return fmt.Errorf("inproc: stop broker: %w", err)
	}
	return nil
}

// StartBroker implements lab.Facility.
func (l *Lab) StartBroker(ctx context.Context) error {
	rb, err := l.restarter()
	if err != nil {
		return err
	}
	if err := rb.Start(ctx); err != nil {
		return fmt.Errorf("inproc: restart broker: %w", err)
	}
	return nil
}

// StopPumpServer implements lab.Facility. The same server object closes and
// later starts again: its configuration (the posture's controls), registry
// and deduplication memory survive, as a restarted service with persistent
// state would.
func (l *Lab) StopPumpServer(ctx context.Context) error {
	if err := l.Server.Close(); err != nil {
		return fmt.Errorf("inproc: stop pump server: %w", err)
	}
	return nil
}

// StartPumpServer implements lab.Facility.
func (l *Lab) StartPumpServer(ctx context.Context) error {
	if err := l.Server.Start(ctx); err != nil {
		return fmt.Errorf("inproc: restart pump server: %w", err)
	}
	return nil
}

// Mains implements lab.Facility.
func (l *Lab) Mains(ctx context.Context, on bool, pumpIDs ...string) error {
	if len(pumpIDs) == 0 {
		pumpIDs = l.Pumps()
	}
	ids := append([]string(nil), pumpIDs...)
	sort.Strings(ids)
	for _, id := range ids {
		p, _, err := l.anyPump(id)
		if err != nil {
			return err
		}
		p.SetMains(on)
	}
	return nil
}
