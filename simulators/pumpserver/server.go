// Package pumpserver is the pump server of the lab: the hub between the
// infusion pumps (MQTT, simulators/pumpwire) and the clinical systems (HL7 v2
// over MLLP, simulators/hl7).
//
// In IHE PCD terms it is the Infusion Order Consumer (IOC: PCD-03 RGV^O15 in,
// ACK^O15 at once, RRG^O16 once the pump accepted or refused), the Device
// Observation Reporter (DOR: PCD-01 ORU^R01 periodically and PCD-10 ORU^R42 per
// pump event to the EHR) and the Alert Reporter (AR: PCD-04 ORU^R40 to the
// alarm manager, PCD-05 ORA^R41 back). It also registers pumps, tracks their
// drug-library and firmware versions, and distributes drug libraries.
package pumpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// Config configures a Server. The zero value needs only BrokerURL.
type Config struct {
	// Name is the MQTT client id and the envelope sender; default "pumpserver".
	Name string
	// BrokerURL of the MQTT broker (tcp://, ssl://); required.
	BrokerURL string
	// Username, Password and TLS for the broker connection.
	Username, Password string
	TLS                *tls.Config

	// MLLPAddr is the IOC listener (PCD-03 in, PCD-05 in), default 127.0.0.1:0.
	MLLPAddr string
	// MLLPTLS makes the listener MLLP over TLS.
	MLLPTLS *tls.Config
	// IOPAddr is where RRG^O16 goes (the BCMA's listener); empty = not sent.
	IOPAddr string
	// DOCAddr is the EHR's documentation listener for PCD-01 and PCD-10; empty = not sent.
	DOCAddr string
	// AMAddr is the alarm manager's PCD-04 listener; empty = not sent.
	AMAddr string
	// Heartbeat, when set, numbers every PCD-04 (MSH-13) and sends the
	// alarm manager a periodic heartbeat (alarm-heartbeat; heartbeat.go).
	Heartbeat *HeartbeatConfig
	// ClientTLS is used when dialling IOPAddr, DOCAddr and AMAddr; nil = plain MLLP.
	ClientTLS *tls.Config

	// PCD01Interval is the lab-time period of PCD-01 reports, default 60 s.
	PCD01Interval time.Duration
	// ProgramTimeout bounds (in wall time) the wait for a pump's answer to a
	// program before RRG^O16 reports an error; default 30 s.
	ProgramTimeout time.Duration
	// OrderCheck, when set, is called for every PCD-03 before the pump is
	// programmed; an error refuses the order (RRG^O16 AR with the error's text).
	// Postures hang their order cross-check control here.
	OrderCheck func(ctx context.Context, order hl7.RGV, meta hl7.ConnMeta) error

	// OnStatus, when set, is called for every status message taken in, with
	// the envelope time and the receive time (lab clock); the fleet benchmark
	// measures pump-to-server latency with it. It must not block.
	OnStatus func(pumpID string, sent, received time.Time)

	// CommandSigner, when set, signs every command the server sends
	// (signed-commands control; pumps verify with their CommandVerifier).
	CommandSigner *pumpwire.Signer
	// ReportVerifier, when set, checks every message pumps send (the
	// sign_reports parameter of signed-commands): statuses in full
	// (signature, time skew, nonce, counter), events, alarms, acks and
	// presence by signature only (they may come late, from a pump's offline
	// buffer, or again as retained messages; duplicates are dropped by
	// envelope id anyway). What fails is dropped, counted in
	// Stats.AuthRefused and reported as signed-commands blocked.
	ReportVerifier *pumpwire.Verifier
	// OnControl, if set, receives the server's control events (a command it
	// could not sign, a pump message that failed ReportVerifier: both
	// signed-commands blocked). It must not block.
	OnControl func(pumpwire.ControlEvent)

	// App and Facility are MSH-3/MSH-4 of the messages the server sends.
	App, Facility string
	Clock         clock.Clock
	Logger        *slog.Logger
}

// Stats are the server's counters.
type Stats struct {
	Pumps, Online                       int
	StatusIn, EventsIn, AlarmsIn        int64
	AcksIn, Duplicates, Malformed       int64
	AuthRefused                         int64 // pump messages refused by ReportVerifier
	OrdersIn, OrdersAccepted            int64
	OrdersRejected, OrdersErrored       int64
	PCD01Out, PCD10Out, PCD04Out        int64
	PCD05In                             int64
	OutPending                          int
	OutRetries, OutRefused, OutOverflow int64
}

// Received is one pump event or alarm as the server took it in, once.
type Received struct {
	PumpID     string
	Kind       pumpwire.Kind
	MsgID      string    // envelope id
	TS         time.Time // original lab time (envelope ts)
	ReceivedAt time.Time // lab time at the server
	Event      *pumpwire.Event
	Alarm      *pumpwire.Alarm
}

// PumpInfo is the registry view of one pump.
type PumpInfo struct {
	ID             string
	Online         bool
	Model          string
	Firmware       string
	LibraryVersion string
	PendingLibrary string
	LastSeen       time.Time
	Status         pumpwire.Status
}

type channelOrder struct {
	order   hl7.RGV
	orderAt time.Time
}

type pumpRec struct {
	info         PumpInfo
	seenPresence bool
	statusTS     time.Time                // envelope time of the last status (PCD-01 OBR-7)
	orders       map[string]*channelOrder // by channel
}

// waiter is a Command waiting for the ack of one pump.
type waiter struct {
	pump string
	ch   chan pumpwire.CommandAck
}

// seenLimit bounds the duplicate filter: the envelope ids of the last
// seenLimit events and alarms are remembered.
const seenLimit = 100000

// Server is a running pump server.
type Server struct {
	cfg Config
	clk clock.Clock
	log *slog.Logger

	mllp   *hl7.Server
	mqtt   paho.Client
	iop    *sender
	doc    *sender
	am     *sender
	hb     *reporterHeartbeat // nil unless Config.Heartbeat (heartbeat.go)
	ticker clock.Ticker

	mu       sync.Mutex
	pumps    map[string]*pumpRec
	seen     map[string]struct{} // pump id + envelope id of events/alarms taken in
	seenRing []string            // the same keys, oldest first overwritten
	seenNext int
	received []Received
	waiters  map[string]waiter            // by cmd id
	alertSt  map[string][]hl7.AlertStatus // PCD-05 by alarm id
	notify   chan struct{}                // closed and replaced on every change
	receipts chan [2]string               // (pump id, envelope id) awaiting a receipt
	presHist []Presence                   // online/offline changes

	// session tags the MSH-10 of every message this server sends: receivers
	// deduplicate on sender and MSH-10, so a restarted server must not
	// reuse the control IDs of the previous run.
	session             string
	started             bool // Start ran before: the next Start is a restart
	seq, cmdSeq, msgSeq atomic.Uint64
	st                  struct {
		statusIn, eventsIn, alarmsIn, acksIn, dups, malformed atomic.Int64
		authRefused                                           atomic.Int64
		ordersIn, ordersOK, ordersRej, ordersErr              atomic.Int64
		pcd01, pcd10, pcd04, pcd05                            atomic.Int64
	}
	wg     sync.WaitGroup
	runCtx context.Context // cancelled by Close: bounds programs in flight
	cancel context.CancelFunc
}

// serverN distinguishes servers created at the same lab millisecond.
var serverN atomic.Int64

// New returns an unstarted server.
func New(cfg Config) *Server {
	if cfg.Name == "" {
		cfg.Name = "pumpserver"
	}
	if cfg.PCD01Interval <= 0 {
		cfg.PCD01Interval = 60 * time.Second
	}
	if cfg.ProgramTimeout <= 0 {
		cfg.ProgramTimeout = 30 * time.Second
	}
	if cfg.App == "" {
		cfg.App = "PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64"
	}
	if cfg.Facility == "" {
		cfg.Facility = "HOSP_BIOMED"
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.Real()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	session := strconv.FormatInt(clk.Now().UnixMilli(), 36) + strconv.FormatInt(serverN.Add(1), 36)
	return &Server{cfg: cfg, clk: clk, log: log.With("component", "pumpserver"), runCtx: context.Background(), session: session, receipts: make(chan [2]string, 10000),
		pumps: map[string]*pumpRec{}, seen: map[string]struct{}{}, waiters: map[string]waiter{},
		alertSt: map[string][]hl7.AlertStatus{}, notify: make(chan struct{})}
}

// Start connects to the broker, subscribes to every pump topic and opens the
// MLLP listener.
func (s *Server) Start(ctx context.Context) error {
	if s.cfg.BrokerURL == "" {
		return errors.New("pumpserver: start: no broker URL")
	}
	rctx, cancel := context.WithCancel(context.Background())
	s.runCtx, s.cancel = rctx, cancel
	if s.started {
		// A restart is a new run: new control ids, a new heartbeat run id
		// (receivers reset their sequence check on it).
		s.session = strconv.FormatInt(s.clk.Now().UnixMilli(), 36) + strconv.FormatInt(serverN.Add(1), 36)
	}
	s.started = true
	for _, d := range []struct {
		p    **sender
		name string
		addr string
	}{{&s.iop, "iop", s.cfg.IOPAddr}, {&s.doc, "doc", s.cfg.DOCAddr}, {&s.am, "am", s.cfg.AMAddr}} {
		if d.addr != "" {
			*d.p = newSender(d.name, d.addr, s.cfg.ClientTLS, 0, s.log)
			go (*d.p).run()
		}
	}
	s.startHeartbeat()
	var mux hl7.Mux
	mux.Handle("RGV^O15", s.handleRGV)
	mux.Handle("ORA^R41", s.handleORA)
	s.mllp = hl7.New(hl7.Config{Addr: s.cfg.MLLPAddr, TLS: s.cfg.MLLPTLS, Handler: mux.Serve,
		Logger: s.log, Clock: s.clk, App: s.cfg.App, Facility: s.cfg.Facility, IDPrefix: "PS"})
	if err := s.mllp.Start(ctx); err != nil {
		s.Close()
		return fmt.Errorf("pumpserver: start MLLP: %w", err)
	}

	subs := map[string]byte{}
	for _, k := range []pumpwire.Kind{pumpwire.KindStatus, pumpwire.KindEvent, pumpwire.KindAlarm, pumpwire.KindAck, pumpwire.KindOnline} {
		subs[pumpwire.Filter(k)] = 1
	}
	// paho runs the connect handler (and so the subscription) in its own
	// goroutine after the connect token completes: Start waits for the first
	// subscription too, so that nothing a pump publishes after Start returned
	// is missed.
	firstSub := make(chan error, 1)
	var subOnce sync.Once
	opts := paho.NewClientOptions().AddBroker(s.cfg.BrokerURL).SetClientID(s.cfg.Name).
		SetUsername(s.cfg.Username).SetPassword(s.cfg.Password).SetTLSConfig(s.cfg.TLS).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetMaxReconnectInterval(2 * time.Second).
		SetKeepAlive(10 * time.Second).SetOrderMatters(true).
		SetCustomOpenConnectionFn(pumpwire.BufferedDialer(s.cfg.BrokerURL, 64<<10)).
		SetStore(pumpwire.NoStore{}).
		// paho's Publish blocks (not bounded by any context) until its
		// outbound queue takes the message, by default up to 30 s when the
		// connection is being torn down; Close must not wait that long.
		SetWriteTimeout(5 * time.Second).
		SetOnConnectHandler(func(c paho.Client) {
			err := subscribe(c, subs, s.onMessage)
			if err != nil {
				s.log.Error("subscribe failed", "err", err)
			} else {
				// Only once subscribed: pumps awaiting the server flush
				// their buffers when they read this.
				s.publishPresence(c, true)
			}
			subOnce.Do(func() { firstSub <- err })
		})
	if will, err := s.presence(false); err == nil {
		opts.SetBinaryWill(pumpwire.ServerOnlineTopic, will, 1, true)
	}
	s.mqtt = paho.NewClient(opts)
	tok := s.mqtt.Connect()
	select {
	case <-tok.Done():
		if tok.Error() != nil {
			s.Close()
			return fmt.Errorf("pumpserver: connect %s: %w", s.cfg.BrokerURL, tok.Error())
		}
	case <-ctx.Done():
		s.Close()
		return fmt.Errorf("pumpserver: connect %s: %w", s.cfg.BrokerURL, ctx.Err())
	}
	select {
	case err := <-firstSub:
		if err != nil {
			s.Close()
			return fmt.Errorf("pumpserver: subscribe at %s: %w", s.cfg.BrokerURL, err)
		}
	case <-ctx.Done():
		s.Close()
		return fmt.Errorf("pumpserver: subscribe at %s: %w", s.cfg.BrokerURL, ctx.Err())
	}
	s.ticker = s.clk.NewTicker(s.cfg.PCD01Interval)
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.receiptLoop(rctx) }()
	go func() { defer s.wg.Done(); s.presenceLoop(rctx) }()
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.ticker.C():
				s.sendPCD01()
			case <-rctx.Done():
				return
			}
		}
	}()
	return nil
}

// subscribe subscribes to the pump topics and waits for the broker's answer;
// a filter the broker refused (SUBACK 0x80) is an error.
func subscribe(c paho.Client, subs map[string]byte, h paho.MessageHandler) error {
	tok := c.SubscribeMultiple(subs, h)
	if !tok.WaitTimeout(10 * time.Second) {
		return errors.New("no SUBACK within 10s")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		var refused []string
		for f, code := range st.Result() {
			if code >= 0x80 {
				refused = append(refused, f)
			}
		}
		if len(refused) > 0 {
			sort.Strings(refused)
			return fmt.Errorf("broker refused %s", strings.Join(refused, ", "))
		}
	}
	return nil
}

// sendReceipt queues the receipt of one event or alarm envelope for its
// pump. It never blocks the MQTT handler (paho's Publish blocks while the
// connection is down): a full queue drops the receipt, which only makes the
// pump send the message again, and the server absorbs it as a duplicate.
func (s *Server) sendReceipt(pumpID, msgID string) {
	select {
	case s.receipts <- [2]string{pumpID, msgID}:
	default:
		s.log.Warn("receipt queue full; the pump will resend", "pump", pumpID, "id", msgID)
	}
}

// receiptLoop publishes queued receipts, one message per pump for what is
// queued at that moment.
func (s *Server) receiptLoop(ctx context.Context) {
	for {
		var first [2]string
		select {
		case first = <-s.receipts:
		case <-ctx.Done():
			return
		}
		byPump := map[string][]string{first[0]: {first[1]}}
	drain:
		for len(byPump) < 1000 {
			select {
			case r := <-s.receipts:
				if len(byPump[r[0]]) < 1000 {
					byPump[r[0]] = append(byPump[r[0]], r[1])
				}
			default:
				break drain
			}
		}
		if !s.mqtt.IsConnectionOpen() {
			continue // the pumps resend after their reconnect
		}
		for pumpID, ids := range byPump {
			seq := s.seq.Add(1)
			b, err := pumpwire.Encode(fmt.Sprintf("%s-m%d", s.cfg.Name, seq), s.cfg.Name, s.clk.Now(), seq, pumpwire.Receipt{IDs: ids})
			if err != nil {
				continue
			}
			s.mqtt.Publish(pumpwire.Topic(pumpID, pumpwire.KindReceipt), 1, false, b)
		}
	}
}

// PresenceEvery is how often (wall time) the server republishes its retained
// presence while connected, so that a pump that missed the message after a
// reconnect (a lost publish, a broker restarted without retained messages)
// learns within that time that the server is there.
const PresenceEvery = 2 * time.Second

func (s *Server) presenceLoop(ctx context.Context) {
	t := time.NewTicker(PresenceEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if ctx.Err() == nil && s.mqtt.IsConnectionOpen() {
				s.publishPresence(s.mqtt, true)
			}
		case <-ctx.Done():
			return
		}
	}
}

// presence encodes the server's retained presence message.
func (s *Server) presence(online bool) ([]byte, error) {
	seq := s.seq.Add(1)
	return pumpwire.Encode(fmt.Sprintf("%s-m%d", s.cfg.Name, seq), s.cfg.Name, s.clk.Now(), seq, pumpwire.Online{Online: online})
}

// publishPresence publishes (retained) whether the server is online.
func (s *Server) publishPresence(c paho.Client, online bool) {
	b, err := s.presence(online)
	if err != nil {
		return
	}
	if tok := c.Publish(pumpwire.ServerOnlineTopic, 1, true, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		s.log.Warn("presence not published", "online", online, "err", tok.Error())
	}
}

// Route names one outbound HL7 destination of the server.
type Route string

// The server's outbound routes.
const (
	RouteIOP Route = "iop" // RRG^O16 to the BCMA
	RouteDOC Route = "doc" // PCD-01/PCD-10 to the EHR
	RouteAM  Route = "am"  // PCD-04 to the alarm manager
)

// Reroute points an outbound route at another address (for example an
// on-path proxy in a man-in-the-middle scenario) and returns the previous
// address. Messages queued and not yet sent go to the new address.
func (s *Server) Reroute(r Route, addr string) (old string, err error) {
	var x *sender
	switch r {
	case RouteIOP:
		x = s.iop
	case RouteDOC:
		x = s.doc
	case RouteAM:
		x = s.am
	}
	if x == nil {
		return "", fmt.Errorf("pumpserver: reroute %s: route not configured", r)
	}
	return x.setAddress(addr), nil
}

// MLLPAddr is the address of the IOC listener.
func (s *Server) MLLPAddr() string { return s.mllp.Addr() }

// Close disconnects and stops every listener and sender; it waits for the
// PCD-01 loop and the MLLP handlers to finish.
func (s *Server) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	if s.ticker != nil {
		s.ticker.Stop()
	}
	if s.mqtt != nil {
		if s.mqtt.IsConnectionOpen() {
			s.publishPresence(s.mqtt, false)
		}
		s.mqtt.Disconnect(250)
	}
	var err error
	if s.mllp != nil {
		err = s.mllp.Close()
	}
	s.wg.Wait()
	for _, x := range []*sender{s.iop, s.doc, s.am} {
		if x != nil {
			x.close()
		}
	}
	return err
}

func (s *Server) changed() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// Wait blocks until cond, evaluated under the server's lock after every
// change, is true or ctx is done.
func (s *Server) Wait(ctx context.Context, cond func(v View) bool) error {
	for {
		s.mu.Lock()
		ok := cond(View{s})
		ch := s.notify
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("pumpserver: wait: %w", ctx.Err())
		}
	}
}

// View gives read access to the server's state inside Wait.
type View struct{ s *Server }

// Pump returns the registry entry of a pump.
func (v View) Pump(id string) (PumpInfo, bool) {
	p, ok := v.s.pumps[id]
	if !ok {
		return PumpInfo{}, false
	}
	return p.info, true
}

// Received returns what the server took in so far (not a copy: read only).
func (v View) Received() []Received { return v.s.received }

func (s *Server) onMessage(_ paho.Client, m paho.Message) { s.handleMessage(m.Topic(), m.Payload()) }

// handleMessage takes in one message published on a pump topic: anything
// that does not decode is counted as malformed and dropped; events and alarms
// are deduplicated and forwarded; acks complete the waiting command.
func (s *Server) handleMessage(topic string, payload []byte) {
	id, env, body, err := pumpwire.Decode(topic, payload)
	if err != nil {
		s.st.malformed.Add(1)
		s.log.Warn("refused pump message", "topic", topic, "err", err)
		return
	}
	if v := s.cfg.ReportVerifier; v != nil {
		var verr error
		if _, isStatus := body.(*pumpwire.Status); isStatus {
			verr = v.Verify(env)
		} else {
			verr = v.VerifySignature(env)
		}
		if verr != nil {
			s.st.authRefused.Add(1)
			s.log.Warn("refused unauthenticated pump message", "topic", topic, "err", verr)
			if s.cfg.OnControl != nil {
				s.cfg.OnControl(pumpwire.ControlEvent{Control: pumpwire.CtlSignedCommands, Action: pumpwire.ActionBlocked,
					PumpID: id, Ref: env.ID, At: s.clk.Now(), Reason: fmt.Sprintf("message on %s refused: %v", topic, verr)})
			}
			return
		}
	}
	now := s.clk.Now()
	if s.cfg.OnStatus != nil {
		if _, ok := body.(*pumpwire.Status); ok {
			s.cfg.OnStatus(id, env.TS, now)
		}
	}
	switch body.(type) {
	case *pumpwire.Event, *pumpwire.Alarm:
		// Every event and alarm is confirmed end to end, duplicates too (the
		// pump resends what it has no receipt for). Deferred before the
		// lock, so it is published after the message was taken in.
		defer s.sendReceipt(id, env.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.pumps[id]
	if rec == nil {
		rec = &pumpRec{info: PumpInfo{ID: id}, orders: map[string]*channelOrder{}}
		s.pumps[id] = rec
	}
	rec.info.LastSeen = now
	switch b := body.(type) {
	case *pumpwire.Status:
		s.st.statusIn.Add(1)
		rec.info.Status = *b
		rec.statusTS = env.TS
		s.setOnline(rec, true, now)
		rec.info.Firmware = b.Firmware
		rec.info.LibraryVersion = b.LibraryVersion
		rec.info.PendingLibrary = b.PendingLibrary
	case *pumpwire.Online:
		s.setOnline(rec, b.Online, now)
		if b.Model != "" {
			rec.info.Model = b.Model
		}
		if b.Firmware != "" {
			rec.info.Firmware = b.Firmware
		}
	case *pumpwire.CommandAck:
		s.st.acksIn.Add(1)
		// Only the commanded pump can answer a command: an ack naming the
		// cmd_id of a command sent to another pump is ignored.
		if w, ok := s.waiters[b.CmdID]; ok && w.pump == id {
			delete(s.waiters, b.CmdID)
			w.ch <- *b
		} else if ok {
			s.log.Warn("ack from a pump that was not commanded", "cmd_id", b.CmdID, "from", id, "commanded", w.pump)
		}
	case *pumpwire.Event:
		if s.dup(id, env.ID) {
			return
		}
		s.st.eventsIn.Add(1)
		s.received = append(s.received, Received{PumpID: id, Kind: pumpwire.KindEvent, MsgID: env.ID, TS: env.TS, ReceivedAt: now, Event: b})
		switch {
		case b.Type == pumpwire.EvLibraryActivated && b.Params["version"] != "":
			rec.info.LibraryVersion = b.Params["version"]
			rec.info.PendingLibrary = ""
		case b.Type == pumpwire.EvPatientChange && b.Params["patient_id"] != "":
			// Alarms and reports name the new patient before the next status.
			rec.info.Status.PatientID = b.Params["patient_id"]
		}
		s.forwardEvent(rec, env, b)
	case *pumpwire.Alarm:
		if s.dup(id, env.ID) {
			return
		}
		s.st.alarmsIn.Add(1)
		s.received = append(s.received, Received{PumpID: id, Kind: pumpwire.KindAlarm, MsgID: env.ID, TS: env.TS, ReceivedAt: now, Alarm: b})
		s.forwardAlarm(rec, env, b)
	}
	s.changed()
}

// Presence is one change of a pump's online state as the server saw it
// (status or online messages, and the broker-published last will).
type Presence struct {
	PumpID string
	Online bool
	At     time.Time // lab time at the server
}

// setOnline records a presence change. Called with s.mu held.
func (s *Server) setOnline(rec *pumpRec, online bool, at time.Time) {
	if rec.info.Online == online && rec.seenPresence {
		return
	}
	rec.seenPresence = true
	rec.info.Online = online
	if len(s.presHist) < maxPresence {
		s.presHist = append(s.presHist, Presence{PumpID: rec.info.ID, Online: online, At: at})
	}
}

// maxPresence bounds the presence history.
const maxPresence = 1 << 20

// PresenceHistory returns every presence change, in order.
func (s *Server) PresenceHistory() []Presence {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Presence(nil), s.presHist...)
}

// dup reports whether an event or alarm envelope id was already taken in
// from this pump. Envelope ids are unique per sender only, so the key is the
// pump id and the id: a pump cannot suppress another pump's messages by
// reusing its ids. The last seenLimit keys are remembered. Called with s.mu
// held.
func (s *Server) dup(pumpID, msgID string) bool {
	key := pumpID + "\x00" + msgID
	if _, ok := s.seen[key]; ok {
		s.st.dups.Add(1)
		return true
	}
	if len(s.seenRing) < seenLimit {
		s.seenRing = append(s.seenRing, key)
	} else {
		delete(s.seen, s.seenRing[s.seenNext])
		s.seenRing[s.seenNext] = key
		s.seenNext = (s.seenNext + 1) % seenLimit
	}
	s.seen[key] = struct{}{}
	return false
}

func (s *Server) header(typ string, dest string) hl7.Header {
	n := s.msgSeq.Add(1)
	h := hl7.Header{SendingApp: hl7.ParseHD(s.cfg.App), SendingFacility: hl7.ParseHD(s.cfg.Facility),
		Time: s.clk.Now(), ControlID: typ + s.session + "-" + strconv.FormatUint(n, 10), AcceptAck: "AL", AppAck: "NE"}
	switch dest {
	case "doc":
		h.ReceivingApp, h.ReceivingFacility = hl7.ParseHD("EHR_SIM"), hl7.ParseHD("HOSP_EHR")
	case "am":
		h.ReceivingApp, h.ReceivingFacility = hl7.ParseHD("ALERTMGR_SIM^1122334455667788^EUI-64"), hl7.ParseHD("HOSP_AM")
	case "iop":
		h.ReceivingApp, h.ReceivingFacility = hl7.ParseHD("BCMA_SIM^0011223344556677^EUI-64"), hl7.ParseHD("HOSP_BCMA")
	}
	return h
}

func (s *Server) patientOf(rec *pumpRec, channel string) (hl7.Patient, *channelOrder) {
	if o := rec.orders[channel]; o != nil {
		return o.order.Patient, o
	}
	return hl7.Patient{MRN: rec.info.Status.PatientID, Authority: "HOSP"}, nil
}

var eventCodes = map[string]string{
	pumpwire.EvDeliveryStart:    "MDC_EVT_PUMP_DELIV_START",
	pumpwire.EvDeliveryStop:     "MDC_EVT_PUMP_DELIV_STOP",
	pumpwire.EvDeliveryComplete: "MDC_EVT_PUMP_DELIV_COMP",
	pumpwire.EvProgramCleared:   "MDC_EVT_PUMP_PROG_CLEARED",
	pumpwire.EvCommStatus:       "MDC_EVT_PUMP_COMM_STATUS_CHANGE",
	pumpwire.EvPatientChange:    "MDC_EVT_PUMP_PATIENT_CHANGE",
}

// forwardEvent sends a PCD-10 for the events IPEC defines. Called with s.mu held.
func (s *Server) forwardEvent(rec *pumpRec, env pumpwire.Envelope, ev *pumpwire.Event) {
	if s.doc == nil {
		return
	}
	ref, ok := eventCodes[ev.Type]
	if !ok {
		return
	}
	code, _ := hl7.EventByRef(ref)
	pat, o := s.patientOf(rec, ev.Channel)
	ie := hl7.InfusionEvent{Header: s.header("EV", "doc"), Patient: pat, Channel: ev.Channel, OrderID: ev.OrderID, OrderApp: "BCMA_SIM",
		EventID: env.ID, EventApp: "PUMPSRV_SIM", EventTime: env.TS, PumpID: rec.info.ID,
		LibraryVersion: rec.info.LibraryVersion, Event: code, CareArea: rec.info.Status.CareArea}
	if o != nil {
		ie.DrugCode, ie.DrugText, ie.DrugSystem = o.order.GiveCode, o.order.GiveText, o.order.GiveSystem
		if ie.OrderID == "" {
			ie.OrderID = o.order.PlacerOrder
		}
	}
	if sn := ev.Snapshot; sn != nil {
		ie.InfusingStatus = "pump-status-" + sn.State
		ie.RateMLH, ie.DoseRate, ie.DoseRateUnit = sn.RateMLH, sn.DoseRate, sn.DoseUnit
		ie.VTBIML, ie.DeliveredML = sn.VTBI, sn.VolumeInfused
		if sn.VTBI > 0 {
			ie.RemainingML = max(0, sn.VTBI-sn.VolumeInfused)
			if sn.RateMLH > 0 {
				ie.TimeRemainingMin = ie.RemainingML / sn.RateMLH * 60
			}
		}
		ie.DrugLabel, ie.WeightKg = sn.DrugName, sn.WeightKg
		if sn.Concentration > 0 {
			ie.Concentration, ie.ConcentrationUnit = sn.Concentration, sn.ConcUnit
		}
	}
	if err := s.doc.enqueue(hl7.BuildInfusionEvent(ie)); err == nil {
		s.st.pcd10.Add(1)
	}
}

// alarmEvent maps a pump alarm to its PCD-04 facet-1 event code.
func alarmEvent(a *pumpwire.Alarm) hl7.Code {
	if a.MDC != 0 {
		if c, ok := hl7.EventByCode(a.MDC); ok {
			return c
		}
		return hl7.Code{Code: a.MDC, Ref: "MDC_EVT_" + strings.ToUpper(a.Code)}
	}
	refs := map[string]string{"air_in_line": "MDC_EVT_FLUID_LINE_AIR", "occlusion_upstream": "MDC_EVT_FLUID_LINE_OCCL_PROXIMAL",
		"occlusion_downstream": "MDC_EVT_FLUID_LINE_OCCL", "battery_depleted": "MDC_EVT_BATT_FAIL", "battery_low": "MDC_EVT_BATT_LO"}
	if r, ok := refs[a.Code]; ok {
		if c, ok := hl7.EventByRef(r); ok {
			return c
		}
	}
	return hl7.MDCEvtAlarm
}

// alertPrefix is the OBX-4 prefix of the PCD-04 rows of an alarm on channel
// ch: the channel is the VMD index, as in PCD-03 (A = 1.1.1.0, B = 1.2.1.0);
// pump-wide alarms use the default 1.1.1.0.
func alertPrefix(ch string) string {
	if len(ch) == 1 && ch[0] > 'A' && ch[0] <= 'Z' {
		return "1." + strconv.Itoa(int(ch[0]-'A')+1) + ".1.0"
	}
	return hl7.DefaultAlertPrefix
}

// forwardAlarm sends a PCD-04. Called with s.mu held.
func (s *Server) forwardAlarm(rec *pumpRec, env pumpwire.Envelope, a *pumpwire.Alarm) {
	if s.am == nil {
		return
	}
	pat, _ := s.patientOf(rec, a.Channel)
	state := "active"
	if a.Phase == pumpwire.PhaseEnd {
		state = "inactive"
	}
	text := a.Text
	if text == "" {
		text = strings.ReplaceAll(a.Code, "_", " ")
	}
	al := hl7.Alert{Header: s.header("AR", "am"), Patient: pat, AlertID: a.AlarmID, AlertApp: "PUMPSRV_SIM",
		OnsetTime: env.TS, PumpID: rec.info.ID, Event: alarmEvent(a), EventText: text, Phase: a.Phase, State: state,
		Inactivation: "enabled", Priority: a.Priority, Type: a.Type, Prefix: alertPrefix(a.Channel)}
	if err := s.enqueueAlert(al); err == nil {
		s.st.pcd04.Add(1)
	}
}

// sendPCD01 reports every pump channel that carries an order.
func (s *Server) sendPCD01() {
	if s.doc == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.pumps))
	for id := range s.pumps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		rec := s.pumps[id]
		for _, ch := range rec.info.Status.Channels {
			if ch.OrderID == "" {
				continue
			}
			pat, o := s.patientOf(rec, ch.Channel)
			ps := hl7.PumpStatus{Header: s.header("DEC", "doc"), Patient: pat, Channel: ch.Channel, OrderID: ch.OrderID, OrderApp: "BCMA_SIM",
				FillerID: fmt.Sprintf("%s-%s-%d", id, ch.Channel, s.msgSeq.Load()), FillerApp: "PUMPSRV_SIM",
				ObsTime: rec.statusTS, PumpID: id, LibraryVersion: rec.info.LibraryVersion,
				CareArea: rec.info.Status.CareArea, RateMLH: ch.RateMLH, DeliveredML: ch.VolumeInfused,
				Status: "pump-status-" + ch.State, DoseRate: ch.DoseRate, DoseRateUnit: ch.DoseUnit, DrugLabel: ch.DrugName}
			if ch.VTBI > 0 {
				ps.RemainingML = max(0, ch.VTBI-ch.VolumeInfused)
			}
			if o != nil {
				ps.DrugCode, ps.DrugText, ps.DrugSystem = o.order.GiveCode, o.order.GiveText, o.order.GiveSystem
			}
			if err := s.doc.enqueue(hl7.BuildPumpStatus(ps)); err == nil {
				s.st.pcd01.Add(1)
			}
		}
	}
}

// ReportNow sends PCD-01 for every channel with an order at once (in addition
// to the periodic reports).
func (s *Server) ReportNow() { s.sendPCD01() }

// SplitPumpChannel splits a PCD-03 pump identifier into pump id and channel:
// "PUMP-0007" (channel A), "PUMP-0007:B" or "PUMP-0007/B".
func SplitPumpChannel(s string) (pump, channel string) {
	if i := strings.LastIndexAny(s, ":/"); i > 0 && i < len(s)-1 {
		return s[:i], s[i+1:]
	}
	return s, "A"
}

// pumpChannel reads the target of a PCD-03: the pump id of OBX-18 (with an
// optional ":B" channel suffix) and, without a suffix, the channel from OBX-4
// of the pump-id row in dotted notation (1.1.0.0 = A, 1.2.0.0 = B).
func pumpChannel(m *hl7.Message, r hl7.RGV) (pumpID, channel string) {
	pumpID, channel, _ = pumpTarget(m, r)
	return pumpID, channel
}

// pumpTarget is pumpChannel that also returns the 1-based position of the
// pump-ID OBX in the message (0 when not found), for ERR-2.
func pumpTarget(m *hl7.Message, r hl7.RGV) (pumpID, channel string, seq int) {
	for i, seg := range m.Segs {
		if seg.Name == "OBX" && hl7.MDCPumpVMD.Matches(seg.Field(3)) {
			seq = i + 1
			break
		}
	}
	if strings.ContainsAny(r.PumpID, ":/") {
		pumpID, channel = SplitPumpChannel(r.PumpID)
		return pumpID, channel, seq
	}
	channel = "A"
	for _, seg := range m.Segments("OBX") {
		if !hl7.MDCPumpVMD.Matches(seg.Field(3)) {
			continue
		}
		parts := strings.Split(seg.Value(4), ".")
		if len(parts) >= 2 {
			if n, err := strconv.Atoi(parts[1]); err == nil && n >= 1 && n <= 26 {
				channel = string(rune('A' + n - 1))
			}
		}
		break
	}
	return r.PumpID, channel, seq
}

// Program sends a program command to a pump and waits for its answer.
func (s *Server) Program(ctx context.Context, pumpID, channel string, p pumpwire.Program) (pumpwire.CommandAck, error) {
	return s.Command(ctx, pumpID, pumpwire.Command{Op: pumpwire.OpProgram, Channel: channel, Program: &p})
}

// Command publishes a command to a pump and waits for its ack (or ctx).
func (s *Server) Command(ctx context.Context, pumpID string, cmd pumpwire.Command) (pumpwire.CommandAck, error) {
	if cmd.CmdID == "" {
		cmd.CmdID = fmt.Sprintf("%s-C%d", s.cfg.Name, s.cmdSeq.Add(1))
	}
	if err := cmd.Validate(); err != nil {
		return pumpwire.CommandAck{}, fmt.Errorf("pumpserver: command %s to %s: %w", cmd.Op, pumpID, err)
	}
	ch := make(chan pumpwire.CommandAck, 1)
	s.mu.Lock()
	s.waiters[cmd.CmdID] = waiter{pump: pumpID, ch: ch}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, cmd.CmdID)
		s.mu.Unlock()
	}()
	seq := s.seq.Add(1)
	b, err := pumpwire.EncodeSigned(s.cfg.CommandSigner, fmt.Sprintf("%s-m%d", s.cfg.Name, seq), s.cfg.Name, s.clk.Now(), seq, cmd)
	if err != nil {
		if s.cfg.CommandSigner != nil && s.cfg.OnControl != nil {
			s.cfg.OnControl(pumpwire.ControlEvent{Control: pumpwire.CtlSignedCommands, Action: pumpwire.ActionBlocked,
				PumpID: pumpID, Ref: cmd.CmdID, At: s.clk.Now(), Reason: "command not sent: " + err.Error()})
		}
		return pumpwire.CommandAck{}, fmt.Errorf("pumpserver: command %s to %s: %w", cmd.Op, pumpID, err)
	}
	if s.mqtt == nil {
		return pumpwire.CommandAck{}, fmt.Errorf("pumpserver: command %s to %s: server not started", cmd.Op, pumpID)
	}
	if err := ctx.Err(); err != nil { // e.g. Close already started: do not publish
		return pumpwire.CommandAck{}, fmt.Errorf("pumpserver: command %s to %s: %w", cmd.Op, pumpID, err)
	}
	tok := s.mqtt.Publish(pumpwire.Topic(pumpID, pumpwire.KindCmd), 1, false, b)
	select {
	case <-tok.Done():
		if tok.Error() != nil {
			return pumpwire.CommandAck{}, fmt.Errorf("pumpserver: command %s to %s: publish: %w", cmd.Op, pumpID, tok.Error())
		}
	case <-ctx.Done():
		return pumpwire.CommandAck{}, fmt.Errorf("pumpserver: command %s to %s: publish: %w", cmd.Op, pumpID, ctx.Err())
	}
	select {
	case a := <-ch:
		return a, nil
	case <-ctx.Done():
		return pumpwire.CommandAck{}, fmt.Errorf("pumpserver: command %s to %s: no ack: %w", cmd.Op, pumpID, ctx.Err())
	}
}

// ProgramFromRGV maps a PCD-03 order to a pump program.
func ProgramFromRGV(r hl7.RGV) pumpwire.Program {
	p := pumpwire.Program{OrderID: r.PlacerOrder, Action: r.OrderControl, PatientID: r.Patient.MRN,
		DrugID: r.GiveCode, DrugName: r.GiveText, DrugAmount: r.DrugAmount, DrugUnit: r.DrugAmountUnit,
		DiluentML: r.DiluentVolume, VTBI: r.VTBI, WeightKg: r.WeightKg}
	unit := r.DoseRateUnit
	switch {
	case strings.EqualFold(r.Device, "PCA"):
		p.PCADose = r.DoseRate
		if r.PCA != nil {
			p.PCALockout = r.PCA.LockoutMin
			if r.PCA.LimitPeriodMin > 0 {
				p.PCAHourLimit = r.PCA.DoseLimit * 60 / r.PCA.LimitPeriodMin
			}
		}
	case unit == "" || unit == "mL/h":
		p.RateMLH = r.DoseRate
	default:
		p.DoseRate, p.DoseUnit = r.DoseRate, unit
	}
	return p
}

func (s *Server) handleRGV(ctx context.Context, m *hl7.Message, meta hl7.ConnMeta) (*hl7.Message, error) {
	s.st.ordersIn.Add(1)
	r, err := hl7.ParseRGV(m)
	if err != nil {
		s.st.ordersRej.Add(1)
		return nil, err
	}
	pumpID, channel, obxSeq := pumpTarget(m, r)
	s.mu.Lock()
	_, known := s.pumps[pumpID]
	s.mu.Unlock()
	if !known {
		s.st.ordersRej.Add(1)
		return nil, &hl7.AckError{Code: 204, AckCode: "CR", Segment: "OBX", Seq: obxSeq, Field: 18, AppCode: "PUMP-UNKNOWN",
			AppText: "Pump not registered", Message: fmt.Sprintf("pump %q is not registered at the pump server", pumpID)}
	}
	if s.cfg.OrderCheck != nil {
		if err := s.cfg.OrderCheck(ctx, r, meta); err != nil {
			s.st.ordersRej.Add(1)
			s.log.Warn("order check refused PCD-03", "order", r.PlacerOrder, "pump", pumpID, "err", err)
			s.reply(m, r, "AR", &hl7.AckError{Code: 207, AppCode: "ORDER-CHECK", AppText: "Order cross-check failed", Message: err.Error()})
			return hl7.BuildAck(m, "CA", nil), nil
		}
	}
	s.wg.Add(1)
	go s.program(m, r, pumpID, channel)
	return hl7.BuildAck(m, "CA", nil), nil
}

// refusalTexts are the ERR-5.2 texts of the pump's refusal codes
// (REFERENCE.md §4.8(b)); ERR-8 carries the pump's own reason. Other codes
// use the pump's reason in both.
var refusalTexts = map[string]string{
	"LIB-HARDMAX":  "Dose exceeds drug library hard limit",
	"LIB-HARDMIN":  "Dose below drug library hard limit",
	"LIB-MAXRATE":  "Rate exceeds care area maximum",
	"LIB-NOTFOUND": "Drug not in drug library for this care area",
	"LIB-UNIT":     "Dose unit differs from drug library entry",
	"LIB-WEIGHT":   "Patient weight missing or out of range",
	"LIB-CHANNEL":  "Drug not allowed on this channel type",
	"LIB-NOBASIC":  "Basic infusion not allowed in this care area",
	"LIB-NOPCA":    "Drug library entry has no PCA limits",
	"CH-BUSY":      "Channel busy",
	"CH-STATE":     "Channel state does not allow this order",
	"CH-UNKNOWN":   "No such channel",
	"PUMP-STATE":   "Pump not operable",
	"BAD-PROGRAM":  "Invalid program values",
}

// program drives one PCD-03 to the pump and answers with RRG^O16.
func (s *Server) program(m *hl7.Message, r hl7.RGV, pumpID, channel string) {
	defer s.wg.Done()
	// Bounded by ProgramTimeout and by Close (which must not wait for it).
	ctx, cancel := context.WithTimeout(s.runCtx, s.cfg.ProgramTimeout)
	defer cancel()
	ack, err := s.Program(ctx, pumpID, channel, ProgramFromRGV(r))
	switch {
	case err != nil:
		s.st.ordersErr.Add(1)
		s.log.Warn("PCD-03 not delivered to pump", "order", r.PlacerOrder, "pump", pumpID, "err", err)
		s.reply(m, r, "AE", &hl7.AckError{Code: 207, AppCode: "PUMP-NORESPONSE", AppText: "Pump did not answer", Message: err.Error()})
	case ack.Result == pumpwire.ResultRejected:
		s.st.ordersRej.Add(1)
		text := refusalTexts[ack.Code]
		if text == "" {
			text = ack.Reason
		}
		s.reply(m, r, "AR", &hl7.AckError{Code: 207, AppCode: ack.Code, AppText: text, Message: ack.Reason})
	default:
		s.st.ordersOK.Add(1)
		s.mu.Lock()
		if rec := s.pumps[pumpID]; rec != nil {
			rec.orders[channel] = &channelOrder{order: r, orderAt: s.clk.Now()}
		}
		s.changed()
		s.mu.Unlock()
		s.reply(m, r, "AA", nil)
	}
}

func (s *Server) reply(m *hl7.Message, r hl7.RGV, code string, e *hl7.AckError) {
	if s.iop == nil {
		return
	}
	a := hl7.Ack{Header: s.header("RRG", "iop"), Code: code, AckedID: m.ControlID()}
	a.Header.AppAck = "NE"
	if e != nil {
		a.Errors = []hl7.AckError{*e}
	}
	if err := s.iop.enqueue(hl7.BuildRRG(a)); err != nil {
		s.log.Error("RRG^O16 not queued", "order", r.PlacerOrder, "err", err)
	}
}

func (s *Server) handleORA(ctx context.Context, m *hl7.Message, meta hl7.ConnMeta) (*hl7.Message, error) {
	st, err := hl7.ParseAlertStatus(m)
	if err != nil {
		return nil, err
	}
	s.st.pcd05.Add(1)
	s.mu.Lock()
	s.alertSt[st.AlertID] = append(s.alertSt[st.AlertID], st)
	s.changed()
	s.mu.Unlock()
	return nil, nil
}

// AlertStatuses returns the PCD-05 statuses received for an alarm id.
func (s *Server) AlertStatuses(alarmID string) []hl7.AlertStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hl7.AlertStatus(nil), s.alertSt[alarmID]...)
}

// Pumps returns the registry, sorted by id.
func (s *Server) Pumps() []PumpInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PumpInfo, 0, len(s.pumps))
	for _, p := range s.pumps {
		out = append(out, p.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Received returns a copy of every event and alarm taken in, in arrival order.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// PushLibrary stages a drug library on every registered pump (or the given
// ones) and returns the acks by pump id. Pumps that infuse defer activation.
func (s *Server) PushLibrary(ctx context.Context, version, url, hash string, pumpIDs ...string) (map[string]pumpwire.CommandAck, error) {
	if len(pumpIDs) == 0 {
		for _, p := range s.Pumps() {
			pumpIDs = append(pumpIDs, p.ID)
		}
	}
	out := map[string]pumpwire.CommandAck{}
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range pumpIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := s.Command(ctx, id, pumpwire.Command{Op: pumpwire.OpActivateLib, LibraryVersion: version, LibraryURL: url, LibraryHash: hash})
			if err == nil && a.Result == pumpwire.ResultDeferred {
				// The registry shows the staged version at once (the pump's
				// next status says the same).
				s.mu.Lock()
				if rec := s.pumps[id]; rec != nil {
					rec.info.PendingLibrary = version
					s.changed()
				}
				s.mu.Unlock()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out[id] = a
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// LibraryVersions counts pumps per active library version.
func (s *Server) LibraryVersions() map[string]int {
	out := map[string]int{}
	for _, p := range s.Pumps() {
		out[p.LibraryVersion]++
	}
	return out
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Pumps: len(s.pumps)}
	for _, p := range s.pumps {
		if p.info.Online {
			st.Online++
		}
	}
	s.mu.Unlock()
	st.StatusIn, st.EventsIn, st.AlarmsIn = s.st.statusIn.Load(), s.st.eventsIn.Load(), s.st.alarmsIn.Load()
	st.AcksIn, st.Duplicates, st.Malformed = s.st.acksIn.Load(), s.st.dups.Load(), s.st.malformed.Load()
	st.AuthRefused = s.st.authRefused.Load()
	st.OrdersIn, st.OrdersAccepted = s.st.ordersIn.Load(), s.st.ordersOK.Load()
	st.OrdersRejected, st.OrdersErrored = s.st.ordersRej.Load(), s.st.ordersErr.Load()
	st.PCD01Out, st.PCD10Out, st.PCD04Out, st.PCD05In = s.st.pcd01.Load(), s.st.pcd10.Load(), s.st.pcd04.Load(), s.st.pcd05.Load()
	for _, x := range []*sender{s.iop, s.doc, s.am} {
		if x != nil {
			st.OutPending += x.pending()
			st.OutRetries += x.retries.Load()
			st.OutRefused += x.rejected.Load()
			st.OutOverflow += x.overflow.Load()
		}
	}
	return st
}
