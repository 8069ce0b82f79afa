package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/labapi"
	"github.com/pumplab/pumplab/simulators/pump"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// methods is the fleet's control API: the bedside truth of every pump.
func (f *fleet) methods() map[string]labapi.Handler {
	ch := func(in json.RawMessage) (*pump.Pump, labapi.ChannelReq, error) {
		var r labapi.ChannelReq
		if err := labapi.Decode(in, &r); err != nil {
			return nil, r, err
		}
		p, ok := f.pumps[r.PumpID]
		if !ok {
			return nil, r, fmt.Errorf("no pump %q in this fleet", r.PumpID)
		}
		if r.Channel == "" {
			r.Channel = "A"
		}
		return p, r, nil
	}
	return map[string]labapi.Handler{
		"pumps": func(ctx context.Context, in json.RawMessage) (any, error) { return f.ids, nil },
		"truth": func(ctx context.Context, in json.RawMessage) (any, error) {
			p, r, err := ch(in)
			if err != nil {
				return nil, err
			}
			t, err := p.Truth(r.Channel)
			if err != nil {
				return nil, err
			}
			return lab.Truth{PumpID: r.PumpID, Channel: t.Channel, Ordered: layer(t.Ordered), Programmed: layer(t.Programmed),
				Displayed: layer(t.Displayed), Delivered: layer(t.Delivered), Reported: layer(t.Reported), Documented: layer(t.Documented)}, nil
		},
		"segments": func(ctx context.Context, in json.RawMessage) (any, error) {
			p, r, err := ch(in)
			if err != nil {
				return nil, err
			}
			segs, err := p.Segments(r.Channel)
			if err != nil {
				return nil, err
			}
			out := make([]lab.Segment, len(segs))
			for i, s := range segs {
				out[i] = lab.Segment{Start: s.Start, RateMLH: s.RateMLH, NominalMLH: s.NominalMLH, Conc: s.Conc}
			}
			return out, nil
		},
		"ddr": func(ctx context.Context, in json.RawMessage) (any, error) {
			p, r, err := ch(in)
			if err != nil {
				return nil, err
			}
			v, err := p.DDR(r.Channel, r.From, r.To)
			return labapi.Value{Value: v}, err
		},
		"alarms": func(ctx context.Context, in json.RawMessage) (any, error) {
			p, _, err := ch(in)
			if err != nil {
				return nil, err
			}
			out := []lab.PumpAlarm{}
			for _, a := range p.Alarms() {
				out = append(out, lab.PumpAlarm{ID: a.AlarmID, Code: string(a.Def.Code), Priority: a.Def.Priority, Channel: a.Channel, Onset: a.Start})
			}
			return out, nil
		},
		"state": func(ctx context.Context, in json.RawMessage) (any, error) {
			p, r, err := ch(in)
			if err != nil {
				return nil, err
			}
			s, err := p.Snapshot(r.Channel)
			return labapi.State{State: string(s.State)}, err
		},
		"inject-fault": func(ctx context.Context, in json.RawMessage) (any, error) {
			p, r, err := ch(in)
			if err != nil {
				return nil, err
			}
			return struct{}{}, p.InjectFault(r.Channel, pump.Fault(r.Fault))
		},
		"stop": func(ctx context.Context, in json.RawMessage) (any, error) {
			p, r, err := ch(in)
			if err != nil {
				return nil, err
			}
			return struct{}{}, p.Stop(r.Channel, r.User)
		},
		"clear-alarm": func(ctx context.Context, in json.RawMessage) (any, error) {
			p, r, err := ch(in)
			if err != nil {
				return nil, err
			}
			if r.AlarmID == "" || r.User == "" {
				return nil, fmt.Errorf("clear-alarm: alarm_id and user are required")
			}
			var onCh string
			for _, a := range p.Alarms() {
				if a.AlarmID == r.AlarmID {
					onCh = a.Channel
				}
			}
			if err := p.ClearAlarm(r.AlarmID, r.User); err != nil {
				return nil, err
			}
			if onCh != "" {
				if s, err := p.Snapshot(onCh); err == nil && s.State == pump.ChPaused {
					if err := p.Resume(onCh, r.User); err != nil {
						return nil, fmt.Errorf("alarm cleared, resume refused: %w", err)
					}
				}
			}
			return struct{}{}, nil
		},
		"set-ordered": func(ctx context.Context, in json.RawMessage) (any, error) {
			p, r, err := ch(in)
			if err != nil {
				return nil, err
			}
			if r.Ordered == nil {
				return nil, fmt.Errorf("set-ordered: no ordered layer in the request")
			}
			o := r.Ordered
			return struct{}{}, p.SetOrdered(r.Channel, pump.Setting{OrderID: o.OrderID, DrugID: o.DrugID, DrugName: o.DrugName,
				DoseRate: o.DoseRate, DoseUnit: o.DoseUnit, RateMLH: o.RateMLH, Concentration: o.Concentration,
				AmountUnit: o.AmountUnit, VTBI: o.VTBI, WeightKg: o.WeightKg})
		},
	}
}

func layer(s pump.Setting) lab.Layer {
	return lab.Layer{At: s.At, OrderID: s.OrderID, DrugID: s.DrugID, RateMLH: s.RateMLH, DoseRate: s.DoseRate,
		DoseUnit: s.DoseUnit, VolumeML: s.VolumeML, Drug: s.Drug, State: s.State}
}

// bedsideNurse is the nurse at the pumps: she confirms auto-programmed
// infusions (overriding soft limits with a reason) and, with --nurse-clear,
// clears alarms at the pump and resumes, each after a log-normal lab latency
// from the seed. In the container lab the nurse answering the phone lives
// with the alarm manager's communicators, and the host walks her to the
// pump once she accepted (clear-alarm).
type bedsideNurse struct {
	clk     clock.Clock
	lat     *lognormal
	sigma   float64
	confirm time.Duration
	clear   time.Duration
	reason  string
	log     *slog.Logger

	mu      sync.Mutex
	timers  map[uint64]clock.Timer
	next    uint64
	closed  bool
	cancels []func()
}

const bedsideUser = "RN0042"

func newBedsideNurse(f *fleet, clk clock.Clock, seed int64, confirm, clear time.Duration, sigma float64, reason string, log *slog.Logger) *bedsideNurse {
	n := &bedsideNurse{clk: clk, lat: newLognormal(seed, 0x6e75727365), sigma: sigma, confirm: confirm, clear: clear,
		reason: reason, log: log, timers: map[uint64]clock.Timer{}}
	for _, id := range f.ids {
		p := f.pumps[id]
		n.cancels = append(n.cancels, p.Listen(func(o pump.Output) { n.onPump(p, o) }))
	}
	return n
}

func (n *bedsideNurse) onPump(p *pump.Pump, o pump.Output) {
	if ev := o.Event; ev != nil && ev.Type == pumpwire.EvProgramAccepted {
		ch := ev.Channel
		n.at(n.confirm, func() {
			s, err := p.Snapshot(ch)
			if err != nil || (s.State != pump.ChProgramming && s.Pending == nil) {
				return
			}
			if s.NeedsOverride {
				if err := p.Override(ch, n.reason, bedsideUser); err != nil {
					n.log.Warn("nurse: override refused", "pump", p.ID(), "err", err)
					return
				}
			}
			if err := p.Start(ch, bedsideUser); err != nil {
				n.log.Warn("nurse: start refused", "pump", p.ID(), "err", err)
			}
		})
	}
	if a := o.Alarm; a != nil && a.Phase == "start" && n.clear > 0 {
		id, ch := a.AlarmID, a.Channel
		n.at(n.clear, func() {
			if err := p.ClearAlarm(id, bedsideUser); err != nil {
				n.log.Info("nurse: alarm not cleared", "pump", p.ID(), "alarm", id, "err", err)
				return
			}
			if ch != "" {
				if s, err := p.Snapshot(ch); err == nil && s.State == pump.ChPaused {
					_ = p.Resume(ch, bedsideUser)
				}
			}
		})
	}
}

func (n *bedsideNurse) at(median time.Duration, f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.next++
	id := n.next
	n.timers[id] = n.clk.AfterFunc(n.lat.draw(median, n.sigma), func() {
		n.mu.Lock()
		delete(n.timers, id)
		closed := n.closed
		n.mu.Unlock()
		if !closed {
			f()
		}
	})
}

func (n *bedsideNurse) close() {
	n.mu.Lock()
	n.closed = true
	ts := n.timers
	n.timers = nil
	n.mu.Unlock()
	for _, t := range ts {
		t.Stop()
	}
	for _, c := range n.cancels {
		c()
	}
}

// serveServicePorts serves the legacy comm module's telnet-style service
// port of pump i at base+i on every interface of the container (the
// pump's own protocol: pump.ServeServicePort). The container lab uses it to
// measure who can reach a pump's service port from which zone.
func (f *fleet) serveServicePorts(base int) (func(), error) {
	var sps []*pump.ServicePort
	stop := func() {
		for _, sp := range sps {
			sp.Close()
		}
	}
	for i, id := range f.ids {
		port := base + i + 1
		if port > 65535 {
			stop()
			return nil, fmt.Errorf("--service-port %d: pump %s would need port %d", base, id, port)
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			stop()
			return nil, fmt.Errorf("service port of %s: %w", id, err)
		}
		sps = append(sps, pump.ServeServicePort(f.pumps[id], ln))
	}
	return stop, nil
}
