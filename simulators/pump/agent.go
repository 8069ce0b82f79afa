package pump

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// LibraryFetcher downloads the library bundle at url and checks it against
// hash (the caller's HTTP client lives behind it). It returns the bare
// library: the pump cannot check a signature. Prefer BundleFetcher.
type LibraryFetcher func(ctx context.Context, url, hash string) (*druglib.Library, error)

// BundleFetcher downloads the library bundle at url (hash is the one the
// command names, for the fetcher's own transport check) and returns it whole
// — library, hash, approval record, signature and key id — so that the pump
// checks it against its LibraryPolicy.
type BundleFetcher func(ctx context.Context, url, hash string) (*druglib.Bundle, error)

// AgentConfig configures an Agent. The zero value connects to
// tcp://127.0.0.1:1883 as the pump id and publishes status every 10 lab
// seconds. Lab durations run on Clock; network timeouts are wall time.
type AgentConfig struct {
	BrokerURL string // tcp://, ssl://, ws://, wss://; default tcp://127.0.0.1:1883
	ClientID  string // default the pump id
	Username  string
	Password  string
	TLS       *tls.Config // for ssl:// and wss://
	// StatusInterval is the lab period of status messages; default 10 s.
	StatusInterval time.Duration
	Clock          clock.Clock // default the pump's clock
	Logger         *slog.Logger
	KeepAlive      time.Duration // wall; default 30 s
	ConnectTimeout time.Duration // wall; default 5 s
	// ReconnectMax caps paho's reconnect back-off (wall); default 2 s.
	ReconnectMax time.Duration
	// PublishTimeout is how long (wall) to wait for a QoS 1 acknowledgement
	// on an open connection before publishing the same message again
	// (receivers deduplicate on the envelope id); default 30 s.
	PublishTimeout time.Duration
	// OfflineBuffer bounds the outbox of events and acks; default 10000.
	// Alarms are never dropped (they may exceed the bound); when full, the
	// oldest event or ack is dropped and counted.
	OfflineBuffer int
	// CloseFlush is how long Close waits (wall) for the outbox to drain on a
	// live connection; default 2 s.
	CloseFlush time.Duration
	// BundleFetcher serves OpActivateLib; the pump checks the bundle against
	// its LibraryPolicy (pump.Config). It takes precedence over
	// LibraryFetcher.
	BundleFetcher BundleFetcher
	// LibraryFetcher is the older form of BundleFetcher (the bare library,
	// wrapped in an unsigned bundle with the command's hash, which a
	// LibraryPolicy requiring signatures refuses). Both nil rejects library
	// commands.
	LibraryFetcher LibraryFetcher
	// CommandVerifier is the signed-commands control: every command must
	// pass Verify (signature, key, nonce, counter window, time skew) or is
	// acked rejected with the verifier's code (AUTH-SIG, AUTH-REPLAY, ...)
	// and reported as ControlEvent{signed-commands, blocked}. nil = legacy:
	// unsigned commands from anyone who can publish on the cmd topic run.
	CommandVerifier *pumpwire.Verifier
	// ReportSigner, when set, signs every message the agent publishes
	// (status, events, alarms, acks, online and the last will) for a pump
	// server with a ReportVerifier (signed-commands' sign_reports). A
	// message is signed once, when it is created: a retransmission is
	// byte-identical.
	ReportSigner *pumpwire.Signer
	// AwaitServer makes the agent deliver events and alarms end to end to a
	// pump server: it flushes its outbox only while the server reads online
	// on pumpwire.ServerOnlineTopic (nothing is published into a broker
	// where no server subscribed yet, e.g. after a broker restart), and it
	// keeps every event and alarm until the server's receipt
	// (pumpwire.KindReceipt) arrives, publishing it again after a reconnect
	// or ReceiptTimeout otherwise (a broker that dies after acknowledging a
	// message loses it). Status messages are not held back.
	AwaitServer bool
	// ReceiptTimeout is how long (wall) a published event or alarm may wait
	// for its receipt on a live connection before it is sent again; default
	// 10 s.
	ReceiptTimeout time.Duration
	// Session tags this agent's message ids (<pump>-<session>-m<seq>) so that
	// a restarted agent never reuses an id; default the lab time at NewAgent
	// (base 36 milliseconds) and a process-wide agent counter.
	Session string
}

// AgentCounters are the agent's running totals.
type AgentCounters struct {
	Published      uint64 // events, alarms and acks acknowledged by the broker
	Status         uint64 // status messages sent
	Retries        uint64 // publishes repeated after a failure or timeout (possible duplicates)
	Dropped        uint64 // events/acks dropped because the outbox was full
	EncodeErrors   uint64
	Commands       uint64 // commands received
	BadCommands    uint64 // commands that failed to decode
	DupCommands    uint64 // commands answered from the recent-command cache
	BusyCommands   uint64 // commands refused because the queue was full
	Connects       uint64
	ConnectionLost uint64
	AuthRefused    uint64 // commands refused by the CommandVerifier
	Moves          uint64 // broker changes by the server_address setting
	Receipts       uint64 // events and alarms confirmed by the pump server (AwaitServer)
	Resent         uint64 // events and alarms queued again for want of a receipt
}

// Agent is the pump's MQTT network module.
type Agent struct {
	p   *Pump
	cfg AgentConfig
	clk clock.Clock
	log *slog.Logger
	id  string

	mu        sync.Mutex
	seq       uint64
	outbox    []*outMsg
	inflight  bool // outbox[0] is being published
	connected bool
	serverUp  bool          // pump server reads online (AwaitServer)
	gen       uint64        // connection generation, bumped on every loss
	unacked   []*outMsg     // published end-to-end messages awaiting the server's receipt
	requeue   bool          // move unacked back to the outbox head (after a loss)
	connCh    chan struct{} // closed while connected
	lostCh    chan struct{} // closed when the current connection is lost
	counters  AgentCounters
	recent    map[string]pumpwire.CommandAck
	recentQ   []string
	client    mqtt.Client
	started   bool
	closed    bool

	wake       chan struct{}
	cmds       chan mqtt.Message
	stopListen func()
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

type outMsg struct {
	id      string // envelope id
	e2e     bool   // event or alarm delivered end to end (AwaitServer)
	sentAt  time.Time
	topic   string
	payload []byte
	alarm   bool
	report  *pumpwire.ChannelStatus // recorded as reported truth once published
	ts      time.Time
}

var agentN atomic.Int64 // distinguishes agents created at the same lab millisecond

// NewAgent returns an agent for p; call Start.
func NewAgent(p *Pump, cfg AgentConfig) *Agent {
	if cfg.BrokerURL == "" {
		cfg.BrokerURL = "tcp://127.0.0.1:1883"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = p.ID()
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = p.Clock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = 2 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 30 * time.Second
	}
	if cfg.ReceiptTimeout <= 0 {
		cfg.ReceiptTimeout = 10 * time.Second
	}
	if cfg.OfflineBuffer <= 0 {
		cfg.OfflineBuffer = 10000
	}
	if cfg.CloseFlush <= 0 {
		cfg.CloseFlush = 2 * time.Second
	}
	if cfg.Session == "" {
		cfg.Session = strconv.FormatInt(cfg.Clock.Now().UnixMilli(), 36) + strconv.FormatInt(agentN.Add(1), 36)
	}
	p.initServerAddress(cfg.BrokerURL)
	return &Agent{
		p: p, cfg: cfg, clk: cfg.Clock, id: p.ID(),
		log:    cfg.Logger.With("agent", p.ID()),
		connCh: make(chan struct{}),
		lostCh: make(chan struct{}),
		recent: map[string]pumpwire.CommandAck{},
		wake:   make(chan struct{}, 1),
		cmds:   make(chan mqtt.Message, 64),
	}
}

// Start registers the agent on the pump (events and alarms are buffered
// from now on) and connects in the background: Start does not wait for the
// broker, so a pump starts and infuses with the network down. The agent runs
// until Close; ctx only bounds Start itself.
func (a *Agent) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u, err := url.Parse(a.cfg.BrokerURL)
	if err != nil {
		return fmt.Errorf("pump agent %s: broker url: %w", a.id, err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return fmt.Errorf("pump agent %s: broker url %q: scheme must be tcp, ssl, ws or wss", a.id, a.cfg.BrokerURL)
	}
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return fmt.Errorf("pump agent %s: already started", a.id)
	}
	a.started = true
	a.mu.Unlock()

	opts := a.options(a.cfg.BrokerURL)

	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	client := mqtt.NewClient(opts)
	a.mu.Lock()
	a.cancel = cancel
	a.client = client
	a.stopListen = a.p.Listen(a.onOutput)
	a.mu.Unlock()
	client.Connect() // with ConnectRetry the token completes only once connected; onConnect does the work

	a.wg.Add(3)
	go func() { defer a.wg.Done(); a.sendLoop(run) }()
	go func() { defer a.wg.Done(); a.statusLoop(run) }()
	go func() { defer a.wg.Done(); a.cmdLoop(run) }()
	a.log.Info("agent started", "broker", a.cfg.BrokerURL)
	return nil
}

// options returns the paho options of a connection to brokerURL.
func (a *Agent) options(brokerURL string) *mqtt.ClientOptions {
	opts := mqtt.NewClientOptions().
		AddBroker(brokerURL).
		SetClientID(a.cfg.ClientID).
		SetUsername(a.cfg.Username).
		SetPassword(a.cfg.Password).
		SetKeepAlive(a.cfg.KeepAlive).
		SetPingTimeout(a.cfg.ConnectTimeout).
		SetConnectTimeout(a.cfg.ConnectTimeout).
		SetWriteTimeout(a.cfg.PublishTimeout).
		SetCleanSession(true).
		SetStore(noStore{}).
		SetCustomOpenConnectionFn(pumpwire.BufferedDialer(brokerURL, 1<<10)).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(a.cfg.ReconnectMax).
		SetMaxReconnectInterval(a.cfg.ReconnectMax).
		SetOnConnectHandler(a.onConnect).
		SetConnectionLostHandler(a.onLost).
		SetReconnectingHandler(func(_ mqtt.Client, o *mqtt.ClientOptions) { a.setWill(o) })
	if a.cfg.TLS != nil {
		opts.SetTLSConfig(a.cfg.TLS)
	}
	a.setWill(opts)
	return opts
}

// BrokerURL returns the broker the agent uses now (it changes when the
// pump's server_address setting does).
func (a *Agent) BrokerURL() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg.BrokerURL
}

// move drops the current broker connection and connects to u instead: the
// pump's server_address setting changed (by a biomed, or by an attacker on
// the config channel: ATK-33). Buffered and unconfirmed messages go to the
// new broker.
func (a *Agent) move(u string) {
	if CheckServerAddress(u) != nil {
		return
	}
	client := mqtt.NewClient(a.options(u)) // options takes a.mu (the will's sequence number)
	a.mu.Lock()
	if !a.started || a.closed || a.client == nil || u == a.cfg.BrokerURL {
		a.mu.Unlock()
		return
	}
	old := a.client
	prev := a.cfg.BrokerURL
	a.cfg.BrokerURL = u
	a.gen++
	a.serverUp = false
	a.requeue = len(a.unacked) > 0
	a.setConnected(false)
	a.counters.Moves++
	a.client = client
	a.mu.Unlock()
	a.log.Warn("server address changed: moving to another broker", "from", prev, "to", u)
	// Leave as Close does: the old broker's subscribers (the pump server)
	// see the pump go offline rather than fall silent while "online".
	if old.IsConnectionOpen() {
		a.mu.Lock()
		a.seq++
		seq := a.seq
		a.mu.Unlock()
		if b, err := pumpwire.EncodeSigned(a.cfg.ReportSigner, a.msgID(seq), a.id, a.clk.Now(), seq, pumpwire.Online{Online: false, Model: a.p.Model(), Firmware: a.p.Firmware()}); err == nil {
			old.Publish(pumpwire.Topic(a.id, pumpwire.KindOnline), 1, true, b).WaitTimeout(a.cfg.CloseFlush)
		}
	}
	old.Disconnect(50)
	a.p.SetComm(false)
	client.Connect()
}

// setWill gives each connection attempt a last will with a fresh message id
// (a will published by the broker for an earlier outage must not make the
// server discard the next one as a duplicate).
func (a *Agent) setWill(o *mqtt.ClientOptions) {
	a.mu.Lock()
	a.seq++
	seq := a.seq
	a.mu.Unlock()
	b, err := pumpwire.EncodeSigned(a.cfg.ReportSigner, a.msgID(seq), a.id, a.clk.Now(), seq, pumpwire.Online{Online: false, Model: a.p.Model(), Firmware: a.p.Firmware()})
	if err != nil {
		a.log.Error("encode last will", "err", err)
		return
	}
	o.SetBinaryWill(pumpwire.Topic(a.id, pumpwire.KindOnline), b, 1, true)
}

func (a *Agent) msgID(seq uint64) string { return fmt.Sprintf("%s-%s-m%d", a.id, a.cfg.Session, seq) }

// Close waits up to CloseFlush for the outbox to drain on a live connection,
// publishes online=false, disconnects and waits for the agent's goroutines
// (sender, status ticker, command worker) to end. Undelivered messages stay
// counted in Outbox.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		client, started, cancel, stopListen := a.client, a.started, a.cancel, a.stopListen
		a.mu.Unlock()
		if !started || client == nil {
			return
		}
		stopListen()
		flush := time.NewTimer(a.cfg.CloseFlush)
	drain:
		for a.Connected() && a.Outbox() > 0 {
			select {
			case <-flush.C:
				break drain
			case <-time.After(10 * time.Millisecond):
			}
		}
		flush.Stop()
		if a.Connected() {
			a.mu.Lock()
			a.seq++
			seq := a.seq
			a.mu.Unlock()
			if b, err := pumpwire.EncodeSigned(a.cfg.ReportSigner, a.msgID(seq), a.id, a.clk.Now(), seq, pumpwire.Online{Online: false, Model: a.p.Model(), Firmware: a.p.Firmware()}); err == nil {
				client.Publish(pumpwire.Topic(a.id, pumpwire.KindOnline), 1, true, b).WaitTimeout(a.cfg.CloseFlush)
			}
		}
		cancel()
		client.Disconnect(250)
		a.wg.Wait()
		a.mu.Lock()
		a.setConnected(false)
		a.mu.Unlock()
		a.log.Info("agent closed", "outbox", a.Outbox())
	})
	return nil
}

// Connected reports whether the agent has a live, subscribed session.
func (a *Agent) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.connected
}

// WaitConnected blocks until the agent is connected or ctx is done.
func (a *Agent) WaitConnected(ctx context.Context) error {
	a.mu.Lock()
	ch := a.connCh
	a.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pump agent %s: wait connected: %w", a.id, ctx.Err())
	}
}

// Outbox returns the number of events, alarms and acks not yet acknowledged
// by the broker.
func (a *Agent) Outbox() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.outbox) + len(a.unacked)
}

// Counters returns a copy of the agent's counters.
func (a *Agent) Counters() AgentCounters {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.counters
}

// setConnected flips the connection state. Caller holds a.mu.
func (a *Agent) setConnected(on bool) {
	if on == a.connected {
		return
	}
	a.connected = on
	if on {
		close(a.connCh)
		a.lostCh = make(chan struct{})
	} else {
		a.connCh = make(chan struct{})
		close(a.lostCh)
	}
}

// noStore is a paho Store that keeps nothing. The agent's outbox is the only
// place an unacknowledged message lives: paho's own store would resend
// in-flight packets after a reconnect concurrently with the agent's flush
// (duplicates, and a data race inside paho), so it is disabled.
type noStore struct{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}

func (a *Agent) kick() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// onConnect runs (in its own goroutine) after every successful connection:
// subscribe to the command topic, announce online, then let the sender
// flush the outbox in order.
func (a *Agent) onConnect(c mqtt.Client) {
	a.mu.Lock()
	gen := a.gen
	a.mu.Unlock()
	topic := pumpwire.Topic(a.id, pumpwire.KindCmd)
	var err error
	for try := 0; try < 3; try++ {
		tok := c.Subscribe(topic, 1, a.onMessage)
		if !tok.WaitTimeout(a.cfg.PublishTimeout) {
			err = errors.New("subscribe timed out")
		} else if err = tok.Error(); err == nil {
			break
		}
	}
	if err != nil {
		a.log.Error("subscribe to commands failed", "topic", topic, "err", err)
	}
	a.mu.Lock()
	a.seq++
	seq := a.seq
	a.mu.Unlock()
	if b, err := pumpwire.EncodeSigned(a.cfg.ReportSigner, a.msgID(seq), a.id, a.clk.Now(), seq, pumpwire.Online{Online: true, Model: a.p.Model(), Firmware: a.p.Firmware()}); err == nil {
		c.Publish(pumpwire.Topic(a.id, pumpwire.KindOnline), 1, true, b).WaitTimeout(a.cfg.PublishTimeout)
	}
	if !c.IsConnectionOpen() {
		return
	}
	if a.cfg.AwaitServer {
		if tok := c.Subscribe(pumpwire.Topic(a.id, pumpwire.KindReceipt), 1, a.onReceipt); !tok.WaitTimeout(a.cfg.PublishTimeout) || tok.Error() != nil {
			a.log.Error("subscribe to receipts failed", "err", tok.Error())
		}
		tok := c.Subscribe(pumpwire.ServerOnlineTopic, 1, a.onServerOnline)
		if !tok.WaitTimeout(a.cfg.PublishTimeout) || tok.Error() != nil {
			a.log.Error("subscribe to server presence failed", "err", tok.Error())
		}
	}
	a.mu.Lock()
	if a.gen != gen || !c.IsConnectionOpen() {
		// The connection this handler set up was lost meanwhile (onLost
		// already ran); the next onConnect takes over.
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	a.p.SetComm(true) // queued before the flush starts
	a.mu.Lock()
	if a.gen != gen {
		a.mu.Unlock()
		return
	}
	a.setConnected(true)
	a.counters.Connects++
	a.mu.Unlock()
	a.log.Info("connected", "broker", a.cfg.BrokerURL)
	a.kick()
	a.publishStatus()
}

// onServerOnline tracks the pump server's presence (AwaitServer).
func (a *Agent) onServerOnline(_ mqtt.Client, m mqtt.Message) {
	_, o, err := pumpwire.DecodeServerOnline(m.Payload())
	if err != nil {
		a.log.Warn("refused server presence message", "err", err)
		return
	}
	a.mu.Lock()
	a.serverUp = o.Online
	a.mu.Unlock()
	a.log.Info("pump server presence", "online", o.Online)
	a.kick()
}

// onLost runs when the connection drops; paho reconnects by itself.
func (a *Agent) onLost(_ mqtt.Client, err error) {
	a.mu.Lock()
	a.gen++
	a.serverUp = false
	a.requeue = len(a.unacked) > 0
	a.setConnected(false)
	a.counters.ConnectionLost++
	a.mu.Unlock()
	a.log.Warn("connection lost; buffering", "err", err)
	a.p.SetComm(false)
}

// onOutput is the pump listener: every event and alarm goes to the outbox
// with its original lab time.
func (a *Agent) onOutput(o Output) {
	switch {
	case o.Alarm != nil:
		a.enqueue(pumpwire.KindAlarm, o.Time, o.Alarm, true, nil)
	case o.Event != nil:
		a.enqueue(pumpwire.KindEvent, o.Time, o.Event, false, o.Event.Snapshot)
		if o.Event.Type == EvConfigChanged && o.Event.Params["setting"] == pumpwire.SetServerAddress {
			go a.move(o.Event.Params["value"])
		}
	}
}

// enqueue encodes body now (seq and id fixed at creation, so a
// retransmission is byte-identical) and appends it to the outbox.
func (a *Agent) enqueue(k pumpwire.Kind, ts time.Time, body any, alarm bool, report *pumpwire.ChannelStatus) {
	a.mu.Lock()
	a.seq++
	seq := a.seq
	b, err := pumpwire.EncodeSigned(a.cfg.ReportSigner, a.msgID(seq), a.id, ts, seq, body)
	if err != nil {
		a.counters.EncodeErrors++
		a.mu.Unlock()
		a.log.Error("encode", "kind", k, "err", err)
		return
	}
	m := &outMsg{id: a.msgID(seq), e2e: a.cfg.AwaitServer && (k == pumpwire.KindEvent || k == pumpwire.KindAlarm),
		topic: pumpwire.Topic(a.id, k), payload: b, alarm: alarm, report: report, ts: ts}
	a.outbox = append(a.outbox, m)
	if len(a.outbox) > a.cfg.OfflineBuffer {
		// Drop the oldest event/ack that is not in flight; alarms never go.
		start := 0
		if a.inflight {
			start = 1
		}
		for i := start; i < len(a.outbox); i++ {
			if !a.outbox[i].alarm {
				a.outbox = append(a.outbox[:i], a.outbox[i+1:]...)
				a.counters.Dropped++
				break
			}
		}
	}
	a.mu.Unlock()
	a.kick()
}

// sendLoop publishes the outbox head, one message at a time, in order, and
// removes it only once its QoS 1 token completed without error.
func (a *Agent) sendLoop(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		a.mu.Lock()
		a.requeueLocked()
		var m *outMsg
		if a.connected && (a.serverUp || !a.cfg.AwaitServer) && len(a.outbox) > 0 {
			m = a.outbox[0]
			a.inflight = true
		}
		client, lost := a.client, a.lostCh
		a.mu.Unlock()
		if m == nil {
			var check <-chan time.Time
			var t *time.Timer
			if a.unackedCount() > 0 {
				t = time.NewTimer(a.cfg.ReceiptTimeout / 2)
				check = t.C
			}
			select {
			case <-ctx.Done():
				return
			case <-a.wake:
			case <-check:
			}
			if t != nil {
				t.Stop()
			}
			continue
		}
		ok := a.publishWait(ctx, client, lost, m)
		a.mu.Lock()
		a.inflight = false
		if ok {
			a.outbox[0] = nil
			a.outbox = a.outbox[1:]
			a.counters.Published++
			if m.e2e {
				m.sentAt = time.Now()
				a.unacked = append(a.unacked, m)
			}
		} else {
			a.counters.Retries++
		}
		a.mu.Unlock()
		if ok {
			backoff = 50 * time.Millisecond
			if m.report != nil && !m.e2e {
				a.p.RecordReported(*m.report, m.ts)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (a *Agent) unackedCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.unacked)
}

// requeueLocked puts end-to-end messages without a receipt back at the head
// of the outbox, in their original order: all of them after a connection
// loss, and those older than ReceiptTimeout on a live connection. Only the
// send loop calls it (it owns the outbox head). Caller holds a.mu.
func (a *Agent) requeueLocked() {
	if len(a.unacked) == 0 || a.inflight {
		return
	}
	var back, keep []*outMsg
	if a.requeue {
		back = a.unacked
	} else if a.connected && a.serverUp {
		now := time.Now()
		for _, m := range a.unacked {
			if now.Sub(m.sentAt) >= a.cfg.ReceiptTimeout {
				back = append(back, m)
			} else {
				keep = append(keep, m)
			}
		}
	}
	a.requeue = false
	if len(back) == 0 {
		return
	}
	a.unacked = keep
	a.counters.Resent += uint64(len(back))
	a.outbox = append(back, a.outbox...)
}

// onReceipt drops the confirmed messages from the unacked list (and from the
// outbox, when they were queued again meanwhile) and records what was
// reported.
func (a *Agent) onReceipt(_ mqtt.Client, msg mqtt.Message) {
	_, _, body, err := pumpwire.Decode(msg.Topic(), msg.Payload())
	r, ok := body.(*pumpwire.Receipt)
	if err != nil || !ok {
		a.log.Warn("refused receipt", "topic", msg.Topic(), "err", err)
		return
	}
	ids := make(map[string]bool, len(r.IDs))
	for _, id := range r.IDs {
		ids[id] = true
	}
	var done []*outMsg
	a.mu.Lock()
	keep := a.unacked[:0]
	for _, m := range a.unacked {
		if ids[m.id] {
			done = append(done, m)
		} else {
			keep = append(keep, m)
		}
	}
	clear(a.unacked[len(keep):])
	a.unacked = keep
	start := 0
	if a.inflight {
		start = 1 // the send loop owns the head
	}
	for i := len(a.outbox) - 1; i >= start; i-- {
		if m := a.outbox[i]; m.e2e && ids[m.id] {
			done = append(done, m)
			a.outbox = append(a.outbox[:i], a.outbox[i+1:]...)
		}
	}
	a.counters.Receipts += uint64(len(done))
	a.mu.Unlock()
	for _, m := range done {
		if m.report != nil {
			a.p.RecordReported(*m.report, m.ts)
		}
	}
}

// publishWait publishes m at QoS 1 and waits for the broker's PUBACK. It
// gives up (the caller publishes m again once connected) when the connection
// is lost or after PublishTimeout: the broker may then have the message
// twice, which receivers absorb by deduplicating on the envelope id.
func (a *Agent) publishWait(ctx context.Context, c mqtt.Client, lost <-chan struct{}, m *outMsg) bool {
	tok := c.Publish(m.topic, 1, false, m.payload)
	t := time.NewTimer(a.cfg.PublishTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-lost:
		a.log.Debug("connection lost during publish; will resend", "topic", m.topic)
		return false
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			a.log.Debug("publish failed", "topic", m.topic, "err", err)
			return false
		}
		return true
	case <-t.C:
		a.log.Warn("publish not acknowledged; will resend", "topic", m.topic)
		return false
	}
}

// statusLoop publishes the status every StatusInterval of lab time.
func (a *Agent) statusLoop(ctx context.Context) {
	tk := a.clk.NewTicker(a.cfg.StatusInterval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C():
			a.publishStatus()
		}
	}
}

// publishStatus sends one status (QoS 0) if connected and records what it
// reported. Statuses are not buffered: a stale status is worth nothing.
func (a *Agent) publishStatus() {
	a.mu.Lock()
	client, ok := a.client, a.connected
	pending := len(a.outbox)
	a.mu.Unlock()
	if !ok || client == nil {
		return
	}
	st := a.p.Status()
	st.BufferedPending = pending
	ts := a.clk.Now()
	a.mu.Lock()
	a.seq++
	seq := a.seq
	a.mu.Unlock()
	b, err := pumpwire.EncodeSigned(a.cfg.ReportSigner, a.msgID(seq), a.id, ts, seq, st)
	if err != nil {
		a.mu.Lock()
		a.counters.EncodeErrors++
		a.mu.Unlock()
		return
	}
	tok := client.Publish(pumpwire.Topic(a.id, pumpwire.KindStatus), 0, false, b)
	if !tok.WaitTimeout(a.cfg.PublishTimeout) || tok.Error() != nil {
		return
	}
	a.mu.Lock()
	a.counters.Status++
	a.mu.Unlock()
	for _, cs := range st.Channels {
		a.p.RecordReported(cs, ts)
	}
}

// onMessage is paho's handler for the cmd topic: it must not block, so
// commands are queued for the command worker.
func (a *Agent) onMessage(_ mqtt.Client, m mqtt.Message) {
	select {
	case a.cmds <- m:
	default:
		a.mu.Lock()
		a.counters.BusyCommands++
		a.mu.Unlock()
		if id := lenientCmdID(m.Payload()); id != "" {
			a.sendAck(pumpwire.CommandAck{CmdID: id, Result: pumpwire.ResultRejected, Code: "BUSY", Reason: "command queue full"})
		}
	}
}

func (a *Agent) cmdLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-a.cmds:
			if ack, ok := a.HandleCommand(ctx, m.Topic(), m.Payload()); ok {
				a.sendAck(ack)
			}
		}
	}
}

func (a *Agent) sendAck(ack pumpwire.CommandAck) {
	a.enqueue(pumpwire.KindAck, a.clk.Now(), ack, false, nil)
}

// lenientCmdID digs a usable cmd_id out of a payload that failed to decode,
// so the sender learns why it was refused.
func lenientCmdID(payload []byte) string {
	var v struct {
		Body struct {
			CmdID string `json:"cmd_id"`
		} `json:"body"`
	}
	if len(payload) > pumpwire.MaxPayload || json.Unmarshal(payload, &v) != nil {
		return ""
	}
	id := v.Body.CmdID
	if id == "" || len(id) > 128 {
		return ""
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return ""
		}
	}
	return id
}

// HandleCommand decodes and executes one command payload received on topic
// and returns the ack to send (ok false when the payload is too broken to
// name a cmd_id). It never panics on any input; a repeated cmd_id is
// answered from a cache of recent commands without executing it again.
func (a *Agent) HandleCommand(ctx context.Context, topic string, payload []byte) (ack pumpwire.CommandAck, ok bool) {
	a.mu.Lock()
	a.counters.Commands++
	a.mu.Unlock()
	id, env, body, err := pumpwire.Decode(topic, payload)
	if err == nil && id != a.id {
		err = fmt.Errorf("pumpwire: topic %q is not this pump's", topic)
	}
	var cmd *pumpwire.Command
	if err == nil {
		var isCmd bool
		if cmd, isCmd = body.(*pumpwire.Command); !isCmd {
			err = fmt.Errorf("pumpwire: topic %q does not carry commands", topic)
		}
	}
	if err != nil {
		a.mu.Lock()
		a.counters.BadCommands++
		a.mu.Unlock()
		a.log.Warn("bad command refused", "topic", topic, "err", err)
		cid := lenientCmdID(payload)
		if cid == "" {
			return ack, false
		}
		reason := err.Error()
		if len(reason) > 200 {
			reason = reason[:200]
		}
		return pumpwire.CommandAck{CmdID: cid, Result: pumpwire.ResultRejected, Code: "BAD-CMD", Reason: reason}, true
	}
	if v := a.cfg.CommandVerifier; v != nil {
		if err := v.Verify(env); err != nil {
			code := pumpwire.AuthCode(err)
			if code == "" {
				code = "AUTH"
			}
			a.mu.Lock()
			a.counters.AuthRefused++
			a.mu.Unlock()
			a.log.Warn("unauthenticated command refused", "cmd_id", cmd.CmdID, "op", cmd.Op, "from", env.From, "code", code, "err", err)
			a.p.refusedCommand(cmd, env, code, err.Error())
			a.p.ReportControl(ControlEvent{Control: CtlSignedCommands, Action: ActionBlocked, Ref: cmd.CmdID,
				Reason: fmt.Sprintf("op %s from %q refused: %v", cmd.Op, env.From, err)})
			return pumpwire.CommandAck{CmdID: cmd.CmdID, Channel: cmd.Channel, Result: pumpwire.ResultRejected, Code: code, Reason: err.Error()}, true
		}
		a.p.ReportControl(ControlEvent{Control: CtlSignedCommands, Action: ActionAllowed, Ref: cmd.CmdID,
			Reason: fmt.Sprintf("op %s from %q signed by key %q", cmd.Op, env.From, env.Auth.KeyID)})
	}
	a.mu.Lock()
	if prev, dup := a.recent[cmd.CmdID]; dup {
		a.counters.DupCommands++
		a.mu.Unlock()
		return prev, true
	}
	a.mu.Unlock()
	ack = a.exec(ctx, env, cmd)
	a.mu.Lock()
	a.recent[cmd.CmdID] = ack
	a.recentQ = append(a.recentQ, cmd.CmdID)
	if len(a.recentQ) > 256 {
		delete(a.recent, a.recentQ[0])
		a.recentQ = a.recentQ[1:]
	}
	a.mu.Unlock()
	return ack, true
}

// exec runs a valid command on the pump.
func (a *Agent) exec(ctx context.Context, env pumpwire.Envelope, cmd *pumpwire.Command) pumpwire.CommandAck {
	by := "server:" + env.From
	ack := pumpwire.CommandAck{CmdID: cmd.CmdID, Channel: cmd.Channel, Result: pumpwire.ResultAccepted}
	a.log.Info("command", "cmd_id", cmd.CmdID, "op", cmd.Op, "channel", cmd.Channel, "from", env.From)
	var err error
	switch cmd.Op {
	case pumpwire.OpProgram:
		var res Result
		res, err = a.p.Program(Remote, *cmd.Program, cmd.Channel)
		ack.OrderID, ack.Channel = cmd.Program.OrderID, res.Channel
		if err == nil {
			ack.Code = res.Code
			switch {
			case res.Applied:
				ack.Reason = fmt.Sprintf("applied: %.4g mL/h", res.RateMLH)
			case res.NeedsOverride:
				ack.Reason = fmt.Sprintf("loaded; soft limit (%s): override and confirm at the pump", res.Reason)
			default:
				ack.Reason = fmt.Sprintf("loaded: %.4g mL/h; confirm at the pump", res.RateMLH)
			}
		}
	case pumpwire.OpStart:
		err = a.p.RemoteStart(cmd.Channel, by)
	case pumpwire.OpPause:
		err = a.p.RemotePause(cmd.Channel, by)
	case pumpwire.OpStop:
		err = a.p.RemoteStop(cmd.Channel, by)
	case pumpwire.OpClearAlarm:
		err = a.p.RemoteClearAlarm(cmd.AlarmID, by)
	case pumpwire.OpFirmware:
		var applied bool
		applied, err = a.p.StageFirmwareImage(cmd.Firmware, cmd.Image, cmd.CmdID)
		if err == nil && !applied {
			ack.Result, ack.Reason = pumpwire.ResultDeferred, "applied when no channel is active"
		}
	case pumpwire.OpActivateLib:
		return a.execLibrary(ctx, cmd, ack)
	case pumpwire.OpStatusRequest:
		a.publishStatus()
	case pumpwire.OpSetRate:
		err = a.p.SetRate(cmd.Channel, cmd.RateMLH, by)
		if err == nil {
			ack.Reason = fmt.Sprintf("rate now %.4g mL/h", cmd.RateMLH)
		}
	case pumpwire.OpConfig:
		err = a.p.ApplySettings(Remote, by, cmd.Settings)
		if err == nil {
			ack.Reason = fmt.Sprintf("%d setting(s) applied", len(cmd.Settings))
		}
	default:
		err = reject("BAD-CMD", "unknown op %q", cmd.Op)
	}
	if err != nil {
		ack.Result = pumpwire.ResultRejected
		var r *Rejection
		if errors.As(err, &r) {
			ack.Code, ack.Reason = r.Code, r.Reason
		} else {
			ack.Code, ack.Reason = "ERROR", err.Error()
		}
	}
	return ack
}

func (a *Agent) execLibrary(ctx context.Context, cmd *pumpwire.Command, ack pumpwire.CommandAck) pumpwire.CommandAck {
	fail := func(code, reason string) pumpwire.CommandAck {
		ack.Result, ack.Code, ack.Reason = pumpwire.ResultRejected, code, reason
		a.log.Warn("library command refused", "cmd_id", cmd.CmdID, "code", code, "reason", reason)
		return ack
	}
	if a.cfg.LibraryFetcher == nil && a.cfg.BundleFetcher == nil {
		return fail("LIB-NOFETCH", "this pump has no library fetcher")
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var b *druglib.Bundle
	var err error
	if a.cfg.BundleFetcher != nil {
		b, err = a.cfg.BundleFetcher(fctx, cmd.LibraryURL, cmd.LibraryHash)
	} else {
		var lib *druglib.Library
		lib, err = a.cfg.LibraryFetcher(fctx, cmd.LibraryURL, cmd.LibraryHash)
		if lib != nil {
			b = &druglib.Bundle{Library: lib, Hash: cmd.LibraryHash}
		}
	}
	if err != nil {
		return fail("LIB-FETCH", err.Error())
	}
	if b == nil || b.Library == nil {
		return fail("LIB-FETCH", "fetcher returned no library")
	}
	if b.Library.Version != cmd.LibraryVersion {
		return fail("LIB-VERSION", fmt.Sprintf("fetched version %q, command names %q", b.Library.Version, cmd.LibraryVersion))
	}
	activated, err := a.p.StageBundle(b, cmd.CmdID)
	if err != nil {
		var r *Rejection
		if errors.As(err, &r) {
			return fail(r.Code, r.Reason)
		}
		return fail("ERROR", err.Error())
	}
	if !activated {
		ack.Result, ack.Reason = pumpwire.ResultDeferred, "activated when no channel is active"
	}
	return ack
}
