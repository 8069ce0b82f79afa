package inproc

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/pump"
)

type devices struct{ l *Lab }

func (d devices) pump(id string) (*pump.Pump, error) {
	p, ok := d.l.PumpModels[id]
	if !ok {
		return nil, fmt.Errorf("inproc: no pump %q in the lab", id)
	}
	return p, nil
}

func layer(s pump.Setting) lab.Layer {
	return lab.Layer{At: s.At, OrderID: s.OrderID, DrugID: s.DrugID, RateMLH: s.RateMLH, DoseRate: s.DoseRate,
		DoseUnit: s.DoseUnit, VolumeML: s.VolumeML, Drug: s.Drug, State: s.State, Conc: s.Concentration}
}

func (d devices) Truth(ctx context.Context, pumpID, channel string) (lab.Truth, error) {
	p, err := d.pump(pumpID)
	if err != nil {
		return lab.Truth{}, err
	}
	t, err := p.Truth(channel)
	if err != nil {
		return lab.Truth{}, fmt.Errorf("inproc: truth of %s/%s: %w", pumpID, channel, err)
	}
	return lab.Truth{PumpID: pumpID, Channel: t.Channel, Ordered: layer(t.Ordered), Programmed: layer(t.Programmed),
		Displayed: layer(t.Displayed), Delivered: layer(t.Delivered), Reported: layer(t.Reported), Documented: layer(t.Documented)}, nil
}

func (d devices) Segments(ctx context.Context, pumpID, channel string) ([]lab.Segment, error) {
	p, err := d.pump(pumpID)
	if err != nil {
		return nil, err
	}
	segs, err := p.Segments(channel)
	if err != nil {
		return nil, fmt.Errorf("inproc: segments of %s/%s: %w", pumpID, channel, err)
	}
	out := make([]lab.Segment, len(segs))
	for i, s := range segs {
		out[i] = lab.Segment{Start: s.Start, RateMLH: s.RateMLH, NominalMLH: s.NominalMLH, Conc: s.Conc}
	}
	return out, nil
}

func (d devices) ActiveAlarms(ctx context.Context, pumpID string) ([]lab.PumpAlarm, error) {
	p, err := d.pump(pumpID)
	if err != nil {
		return nil, err
	}
	var out []lab.PumpAlarm
	for _, a := range p.Alarms() {
		out = append(out, lab.PumpAlarm{ID: a.AlarmID, Code: string(a.Def.Code), Priority: a.Def.Priority, Channel: a.Channel, Onset: a.Start})
	}
	return out, nil
}

func (d devices) DDR(ctx context.Context, pumpID, channel string, from, to time.Time) (float64, error) {
	p, err := d.pump(pumpID)
	if err != nil {
		return 0, err
	}
	return p.DDR(channel, from, to)
}

// WaitState waits for a channel state, woken by the pump's own outputs and a
// coarse wall-time re-check (states also change on timers).
func (d devices) WaitState(ctx context.Context, pumpID, channel string, states ...string) error {
	p, err := d.pump(pumpID)
	if err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	cancel := p.Listen(func(pump.Output) {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := p.Snapshot(channel)
		if err != nil {
			return err
		}
		if slices.Contains(states, string(s.State)) {
			return nil
		}
		select {
		case <-wake:
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("inproc: %s/%s still %s, waiting for %v: %w", pumpID, channel, s.State, states, ctx.Err())
		}
	}
}

func (d devices) InjectFault(ctx context.Context, pumpID, channel, fault string) error {
	p, err := d.pump(pumpID)
	if err != nil {
		return err
	}
	return p.InjectFault(channel, pump.Fault(fault))
}

func (d devices) Stop(ctx context.Context, pumpID, channel, user string) error {
	p, err := d.pump(pumpID)
	if err != nil {
		return err
	}
	return p.Stop(channel, user)
}
