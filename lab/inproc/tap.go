package inproc

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/posture"
)

// interposePumps puts proxyAddr on the pumps' link to the broker
// (lab.LinkPumpsToBroker): every pump's agent reconnects through it (the
// pump's configuration does not change, see pump.Agent.Reroute) and the
// call returns once they are all connected again, or ctx ends. The proxy
// must relay to the returned broker address. When the pumps' sessions are
// mutual TLS (mtls-mqtt), the lab records that the control kept the
// on-path position to ciphertext ("contained"): the pumps verified the
// broker's certificate through the relay and the relay holds no key.
func (n network) interposePumps(ctx context.Context, proxyAddr string) (string, func() error, error) {
	brokerURL := n.l.Broker.URL()
	u, err := url.Parse(brokerURL)
	if err != nil || u.Host == "" {
		return "", nil, fmt.Errorf("inproc: interpose %s: broker URL %q: bad URL", lab.LinkPumpsToBroker, brokerURL)
	}
	via := u.Scheme + "://" + proxyAddr
	move := func(to string) error {
		for _, id := range n.l.pumpIDs {
			_, a, err := n.l.anyPump(id)
			if err != nil {
				return err
			}
			if err := a.Reroute(to); err != nil {
				return fmt.Errorf("inproc: interpose %s: %s: %w", lab.LinkPumpsToBroker, id, err)
			}
		}
		return nil
	}
	restore := func() error { return move(brokerURL) }
	if err := move(via); err != nil {
		_ = restore()
		return "", nil, err
	}
	for _, id := range n.l.pumpIDs {
		_, a, err := n.l.anyPump(id)
		if err != nil {
			return "", nil, err
		}
		if a.BrokerURL() != via {
			continue // closed or decommissioned: it does not move
		}
		if err := a.WaitConnected(ctx); err != nil {
			return "", restore, fmt.Errorf("inproc: interpose %s: %s did not reconnect through %s: %w", lab.LinkPumpsToBroker, id, proxyAddr, err)
		}
	}
	if n.l.ctl.on(posture.MTLSMQTT) && strings.HasPrefix(brokerURL, "ssl://") {
		n.l.ctl.recordFrom("broker", proxyAddr, lab.Evidence{Control: posture.MTLSMQTT, Time: time.Now(), LabTime: n.l.clk.Now(),
			Target: "broker", Action: "contained",
			Reason: fmt.Sprintf("%d pumps reconnected through the on-path relay %s with mutual TLS to the broker: the relay carries only TLS records",
				len(n.l.pumpIDs), proxyAddr),
			Ref: "tap:" + proxyAddr})
	}
	return u.Host, restore, nil
}
