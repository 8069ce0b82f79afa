package inproc

import (
	"context"
	"fmt"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/pumpserver"
)

type network struct{ l *Lab }

// Network implements lab.Lab.
func (l *Lab) Network() lab.Network { return network{l} }

// Interpose re-points the sending system of a link at proxyAddr. In process
// there is no wire to tap, so this stands in for an attacker who gained an
// on-path position (ARP or DNS spoofing, a compromised switch); the container
// provider does it on the network.
func (n network) Interpose(ctx context.Context, link lab.Link, proxyAddr string) (string, func() error, error) {
	if err := checkLabURL("tcp://" + proxyAddr); err != nil {
		return "", nil, fmt.Errorf("inproc: interpose %s: %w", link, err)
	}
	route := map[lab.Link]pumpserver.Route{
		lab.LinkPumpServerToBCMA:   pumpserver.RouteIOP,
		lab.LinkPumpServerToEHR:    pumpserver.RouteDOC,
		lab.LinkPumpServerToAlarms: pumpserver.RouteAM,
	}
	if r, ok := route[link]; ok {
		old, err := n.l.Server.Reroute(r, proxyAddr)
		if err != nil {
			return "", nil, fmt.Errorf("inproc: interpose %s: %w", link, err)
		}
		return old, func() error { _, err := n.l.Server.Reroute(r, old); return err }, nil
	}
	if link == lab.LinkBCMAToPumpServer {
		old := n.l.clinical.iocAddr
		n.l.clinical.EMAR.SetIOCAddr(proxyAddr)
		return old, func() error { n.l.clinical.EMAR.SetIOCAddr(old); return nil }, nil
	}
	if link == lab.LinkPumpsToBroker {
		return n.interposePumps(ctx, proxyAddr)
	}
	return "", nil, fmt.Errorf("inproc: interpose: unknown link %q", link)
}
