package pumpwire

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// BufferedDialer returns a paho connection function for tcp:// and ssl://
// brokers whose reads go through a buffer. paho reads every packet's fixed
// header byte by byte from the raw connection (three or more read system
// calls per message); a receiver of many small messages, such as the pump
// server taking 10,000 status messages a second, spends most of its CPU in
// those calls. size is the read buffer (0 means 16 KiB): a pump, which
// reads little, needs far less than the server. It returns nil for other
// schemes (ws://), which keep paho's own dialler.
func BufferedDialer(brokerURL string, size int) paho.OpenConnectionFunc {
	if size <= 0 {
		size = 16 << 10
	}
	u, err := url.Parse(brokerURL)
	if err != nil {
		return nil
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "tcps":
	default:
		return nil
	}
	return func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
		timeout := o.ConnectTimeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		d := net.Dialer{Timeout: timeout}
		var c net.Conn
		var err error
		switch uri.Scheme {
		case "ssl", "tls", "mqtts", "tcps":
			cfg := o.TLSConfig
			if cfg == nil {
				cfg = &tls.Config{}
			}
			c, err = tls.DialWithDialer(&d, "tcp", uri.Host, cfg)
		default:
			c, err = d.Dial("tcp", uri.Host)
		}
		if err != nil {
			return nil, fmt.Errorf("pumpwire: dial %s: %w", uri.Redacted(), err)
		}
		return &bufConn{Conn: c, r: bufio.NewReaderSize(c, size)}, nil
	}
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// NoStore is a paho message store that keeps nothing. paho's default store
// resends stored packets from its reconnect goroutine while the outgoing
// worker may still be writing the same packet (a data race inside paho), and
// it duplicates what the lab already re-sends on its own terms (pump outbox,
// receipts). Clients of the lab use NoStore: what a reconnect loses, the
// application layer sends again.
type NoStore struct{}

// Open implements paho.Store.
func (NoStore) Open() {}

// Put implements paho.Store.
func (NoStore) Put(string, packets.ControlPacket) {}

// Get implements paho.Store.
func (NoStore) Get(string) packets.ControlPacket { return nil }

// All implements paho.Store.
func (NoStore) All() []string { return nil }

// Del implements paho.Store.
func (NoStore) Del(string) {}

// Close implements paho.Store.
func (NoStore) Close() {}

// Reset implements paho.Store.
func (NoStore) Reset() {}
