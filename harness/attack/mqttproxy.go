package attack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// MQTTProxyConfig configures an MQTT man in the middle. With only Upstream
// set it passes everything through byte for byte on 127.0.0.1:0.
type MQTTProxyConfig struct {
	// Upstream is the broker's host:port (a lab target).
	Upstream string
	// Listen is the proxy's own address, default 127.0.0.1:0.
	Listen string
	// Targets is the safety rail; nil means loopback only.
	Targets *Targets
	// Tamper, when set, sees every PUBLISH in either direction (a copy it
	// may edit) and returns the packet to forward (nil = the original
	// bytes) or drop = true to swallow it. Every other packet passes
	// through byte for byte.
	Tamper func(dir Direction, pub *Publish) (out *Publish, drop bool)
	// Logger receives one line per changed or dropped publish; nil
	// discards.
	Logger *slog.Logger
}

// MQTTProxy is a TCP proxy for MQTT 3.1.1 that parses PUBLISH packets to
// rewrite or drop them by topic. A dropped QoS 1 publish is answered with a
// forged PUBACK (QoS 2: PUBREC, then PUBCOMP for its PUBREL) so that the
// sender believes it delivered.
type MQTTProxy struct {
	cfg MQTTProxyConfig
	log *slog.Logger
	proxyRun
}

// NewMQTTProxy returns a proxy; Start makes it listen.
func NewMQTTProxy(cfg MQTTProxyConfig) *MQTTProxy {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &MQTTProxy{cfg: cfg, log: log, proxyRun: proxyRun{conns: map[net.Conn]struct{}{}}}
}

// Start checks the upstream and listen addresses and starts accepting.
func (p *MQTTProxy) Start(ctx context.Context) error {
	return p.start(ctx, p.cfg.Targets, "mqtt", p.cfg.Upstream, p.cfg.Listen, p.serve)
}

// Addr is the listen address (host:port) after Start.
func (p *MQTTProxy) Addr() string { return p.ln.Addr().String() }

// URL is the broker URL of the proxy, tcp://Addr().
func (p *MQTTProxy) URL() string { return "tcp://" + p.Addr() }

// Stats returns the counters (Forwarded, Changed and Dropped count
// PUBLISH packets).
func (p *MQTTProxy) Stats() ProxyStats { return p.cnt.stats() }

// Close stops accepting, closes every proxied connection and waits for the
// connection goroutines.
func (p *MQTTProxy) Close() error {
	return p.close()
}

// mqttLink is one proxied connection; writes to a side are serialised.
type mqttLink struct {
	id               uint64
	client, upstream net.Conn
	cmu, umu         sync.Mutex
	// swallowed are packet ids of dropped QoS 2 publishes per direction,
	// whose PUBREL the proxy answers itself.
	smu       sync.Mutex
	swallowed map[Direction]map[uint16]bool
}

func (l *mqttLink) write(dir Direction, b []byte) error {
	c, mu := l.upstream, &l.umu
	if dir == ToClient {
		c, mu = l.client, &l.cmu
	}
	mu.Lock()
	defer mu.Unlock()
	_, err := c.Write(b)
	return err
}

func (p *MQTTProxy) serve(client net.Conn, id uint64) {
	defer p.wg.Done()
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	up, err := p.cfg.Targets.Dial(ctx, "tcp", p.cfg.Upstream)
	cancel()
	if err != nil {
		p.log.Warn("mqtt proxy: upstream", "conn", id, "err", err)
		return
	}
	if !p.track(up) {
		return
	}
	defer up.Close()
	l := &mqttLink{id: id, client: client, upstream: up,
		swallowed: map[Direction]map[uint16]bool{ToServer: {}, ToClient: {}}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pipe(l, ToClient, up)
		_ = client.Close()
	}()
	p.pipe(l, ToServer, client)
	_ = up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, up)
	p.mu.Unlock()
}

func back(d Direction) Direction {
	if d == ToServer {
		return ToClient
	}
	return ToServer
}

// pipe forwards packets read from src travelling in dir. A stream that
// stops parsing ends the connection (a broker would close it too).
func (p *MQTTProxy) pipe(l *mqttLink, dir Direction, src net.Conn) {
	br := bufio.NewReader(src)
	for {
		pk, err := ReadMQTTPacket(br, MaxMQTTPacket)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.log.Debug("mqtt proxy: read", "conn", l.id, "dir", dir, "err", err)
			}
			return
		}
		out := pk.Raw
		switch {
		case pk.Type == MQTTPubrel:
			l.smu.Lock()
			mine := l.swallowed[dir][pk.PacketID]
			delete(l.swallowed[dir], pk.PacketID)
			l.smu.Unlock()
			if mine { // the release of a publish we dropped: complete it ourselves
				if err := l.write(back(dir), mqttAck(MQTTPubcomp, pk.PacketID)); err != nil {
					return
				}
				continue
			}
		case pk.Type == MQTTPublish && p.cfg.Tamper != nil:
			cp := *pk.Publish
			cp.Payload = bytes.Clone(pk.Publish.Payload)
			res, drop := p.cfg.Tamper(dir, &cp)
			if drop {
				p.cnt.dropped.Add(1)
				p.log.Info("mqtt proxy: dropped publish", "conn", l.id, "dir", dir, "topic", pk.Publish.Topic)
				var ack []byte
				switch pk.Publish.QoS {
				case 1:
					ack = mqttAck(MQTTPuback, pk.PacketID)
				case 2:
					ack = mqttAck(MQTTPubrec, pk.PacketID)
					l.smu.Lock()
					l.swallowed[dir][pk.PacketID] = true
					l.smu.Unlock()
				}
				if ack != nil {
					p.cnt.forged.Add(1) // counted before the write: a peer that saw it sees it counted
					if err := l.write(back(dir), ack); err != nil {
						p.cnt.forged.Add(-1)
						return
					}
				}
				continue
			}
			if res != nil {
				if enc := res.Encode(); !bytes.Equal(enc, pk.Publish.Encode()) {
					out = enc
					p.cnt.changed.Add(1)
					p.log.Info("mqtt proxy: changed publish", "conn", l.id, "dir", dir, "topic", pk.Publish.Topic)
				}
			}
		}
		if pk.Type == MQTTPublish {
			p.cnt.fwd.Add(1)
		}
		if err := l.write(dir, out); err != nil {
			if pk.Type == MQTTPublish {
				p.cnt.fwd.Add(-1)
			}
			return
		}
	}
}
