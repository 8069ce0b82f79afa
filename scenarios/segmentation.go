package scenarios

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/lab"
)

// notZoned is the Not Applicable reason of the segmentation scenarios on a
// lab without network zones.
const notZoned = "needs segmentation: this lab has no network zones (the in-process lab runs every system on loopback); run with --lab containers"

// ErrNoZones is returned by the zone helpers on a lab without network zones
// (lab.Zoned); the scenario then reports Not Applicable with notZoned.
var ErrNoZones = errors.New(notZoned)

// zoned returns the lab's zones, or reports the spec Not Applicable (which
// skips it) when the lab has none.
func zoned(f *harness.Framework) lab.Zoned {
	z, ok := f.Lab.(lab.Zoned)
	if !ok {
		f.NotApplicable(notZoned)
	}
	return z
}

// ServicePortFrom runs "reach a pump's service port from zone Z": it places
// an attacker host in zone, connects to the comm-module service port of
// pumpID and, when send is not empty (e.g. "SHOW CONFIG\r\n"), writes it
// and reads the answer. Probe.Connected says whether the port was reached;
// Banner holds what the pump said. On a lab without zones it returns
// ErrNoZones.
func ServicePortFrom(ctx context.Context, l lab.Lab, zone lab.Zone, pumpID, send string) (lab.Probe, error) {
	z, ok := l.(lab.Zoned)
	if !ok {
		return lab.Probe{}, ErrNoZones
	}
	addr, err := z.ServicePort(ctx, pumpID)
	if err != nil {
		return lab.Probe{}, err
	}
	h, err := z.AttackFrom(ctx, zone)
	if err != nil {
		return lab.Probe{}, err
	}
	p, err := h.Dial(ctx, addr, send, 3*time.Second)
	if err != nil {
		return lab.Probe{}, fmt.Errorf("dial %s's service port %s from zone %s: %w", pumpID, addr, zone, err)
	}
	return p, nil
}
