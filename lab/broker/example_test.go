package broker_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/pumplab/pumplab/lab/broker"
	"github.com/pumplab/pumplab/lab/pki"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

func Example() {
	// The lab PKI: the broker's certificate and a pump's.
	lab, _ := pki.New(pki.Options{})
	lab.Issue("broker", pki.Service, nil)
	lab.Issue("PUMP-0001", pki.Device, nil)
	serverTLS, _ := lab.ServerTLS("broker")

	var mu sync.Mutex
	var seen []broker.Decision
	b := &broker.Embedded{
		TLS: serverTLS, IdentityFromCert: true, // mtls-mqtt
		ACL:        &broker.ACL{Monitor: "monitor", LogDenials: true}, // broker-acl
		RateLimit:  &broker.RateLimit{PerSecond: 50, Burst: 100},      // rate-limit
		OnDecision: func(d broker.Decision) { mu.Lock(); seen = append(seen, d); mu.Unlock() },
	}
	if err := b.Start(context.Background()); err != nil {
		panic(err)
	}
	defer b.Close()

	// A pump connects with its certificate; its identity is the CN.
	clientTLS, _ := lab.ClientTLS("PUMP-0001")
	opts := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("PUMP-0001").SetTLSConfig(clientTLS)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		panic(tok.Error())
	}
	defer c.Disconnect(0)
	c.Publish(pumpwire.Topic("PUMP-0001", pumpwire.KindStatus), 1, false, "{}").Wait() // its own topic
	c.Publish(pumpwire.Topic("PUMP-0002", pumpwire.KindStatus), 1, false, "{}").Wait() // another pump's
	tok := c.Subscribe(pumpwire.Topic("PUMP-0002", pumpwire.KindCmd), 1, nil)
	tok.Wait()
	fmt.Printf("SUBACK 0x%02x\n", tok.(*paho.SubscribeToken).Result()[pumpwire.Topic("PUMP-0002", pumpwire.KindCmd)])

	mu.Lock()
	defer mu.Unlock()
	for _, d := range seen {
		fmt.Printf("%s %s target=%s source=%s ref=%s\n  %s\n", d.Control, d.Action, d.Target, d.Source, d.Ref, d.Reason)
	}
	// Output:
	// SUBACK 0x80
	// broker-acl blocked target=PUMP-0002 source=PUMP-0001 ref=pumplab/v1/pumps/PUMP-0002/status
	//   publish denied: pump PUMP-0001 publishes only its own status, events, alarms, online and cmd/ack
	// broker-acl blocked target=PUMP-0002 source=PUMP-0001 ref=pumplab/v1/pumps/PUMP-0002/cmd
	//   subscribe denied: pump PUMP-0001 subscribes only to its own cmd and receipt and to the server presence
}
