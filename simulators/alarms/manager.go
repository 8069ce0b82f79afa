package alarms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// Defaults of Config.
const (
	DefaultEscalateAfter = 60 * time.Second
	DefaultRepeatMax     = 3
	DefaultRetries       = 3
	DefaultRetryBackoff  = 2 * time.Second
	DefaultHTTPTimeout   = 5 * time.Second
	DefaultApp           = "ALERTMGR_SIM^1122334455667788^EUI-64"
	DefaultFacility      = "HOSP_AM"
	// MaxLevels bounds the escalation chain: levels from MaxLevels on are
	// the end of the chain whatever Route answers.
	MaxLevels = 16
)

// DefaultReportStatuses are the PCD-05 statuses sent to the reporter when
// Config.ReportStatuses is nil.
var DefaultReportStatuses = []string{hl7.AlertDelivered, hl7.AlertAccepted, hl7.AlertRejected, hl7.AlertUndeliverable}

// Config configures a Manager. The zero value works: MLLP and HTTP on
// 127.0.0.1 with ephemeral ports, the real clock, every registered
// communicator at level 0, no PCD-05 sent back.
type Config struct {
	// MLLPAddr is where PCD-04 comes in, default 127.0.0.1:0. MLLPTLS, when
	// set, makes it MLLP over TLS (set ClientAuth for mutual TLS).
	MLLPAddr string
	MLLPTLS  *tls.Config
	// HTTPAddr is where communicators answer (/v1/responses), default
	// 127.0.0.1:0. HTTPTLS, when set, serves HTTPS.
	HTTPAddr string
	HTTPTLS  *tls.Config
	// Clock is the lab clock (nil = real). Escalation, retries and every
	// recorded lab time use it.
	Clock clock.Clock
	// Wall reads the wall clock for the *Wall latency stamps only; nil
	// means time.Now.
	Wall func() time.Time
	// Logger receives the manager's logs; nil discards.
	Logger *slog.Logger

	// ReporterAddr is the MLLP address of the alert reporter (the pump
	// server) where PCD-05 ORA^R41 status goes; empty sends none.
	// ReporterTLS, when set, speaks MLLP over TLS to it.
	ReporterAddr string
	ReporterTLS  *tls.Config
	// ReportStatuses selects the PCD-05 statuses sent (each at most once per
	// alert, except rejected): nil means DefaultReportStatuses.
	ReportStatuses []string

	// Route returns the communicator ids to dispatch an alert to at an
	// escalation level (0 = primary nurse(s), 1 = charge nurse, ...); an
	// empty answer for a level above 0 is the end of the chain, and so is
	// level MaxLevels. It is called with the manager's lock held and must
	// not call the Manager. Nil means Levels.
	Route func(a Alert, level int) []string
	// Levels is the simple routing chain used when Route is nil: Levels[i]
	// lists the communicator ids of level i. Nil means every registered
	// communicator (sorted by id) at level 0, and no further level.
	Levels [][]string
	// EscalateAfter is the lab time an alert may stay unaccepted at one
	// level before it goes to the next (default 60 s). At the last level it
	// is re-sent to that level every EscalateAfter, RepeatMax times
	// (default 3; negative means never).
	EscalateAfter time.Duration
	RepeatMax     int
	// Retries is how often a failed dispatch is retried (default 3; negative
	// means never), after RetryBackoff lab time (default 2 s), doubling.
	Retries      int
	RetryBackoff time.Duration
	// HTTPClient sends dispatches and cancels; nil means a client with a
	// DefaultHTTPTimeout (wall) timeout.
	HTTPClient *http.Client
	// CallbackURL is the URL communicators post answers to; empty means
	// HTTPURL()+"/v1/responses".
	CallbackURL string
	// ResponseKey, when set, makes each dispatch carry a token (an HMAC of
	// the alert id and recipient) that answers must echo, with the
	// communicator id: forged answers (ATK-28) get 403. Nil accepts any
	// answer (legacy posture).
	ResponseKey []byte
	// Authorize, when set, is asked about every PCD-04 before it is
	// applied: an error refuses the message (ACK AR, ERR with its text) and
	// counts in Stats.Refused. Use it to check meta.PeerCN under mutual TLS.
	Authorize func(a Alert, meta hl7.ConnMeta) error
	// App and Facility are MSH-3/MSH-4 of PCD-05 messages and
	// acknowledgements, default DefaultApp and DefaultFacility.
	App, Facility string

	// Heartbeat, when set, turns on the alarm-heartbeat control: heartbeat
	// and sequence checks per alert reporter, alert ends held until the
	// reporter's next heartbeat confirms them, a "reporter silent" alert
	// (see HeartbeatCheck and docs/alarms.md). Nil: no check (heartbeats
	// are acknowledged and ignored).
	Heartbeat *HeartbeatCheck
	// OnControl receives every act of the alarm-heartbeat control; it must
	// not block and must not call the Manager (it runs under its lock).
	OnControl func(ControlEvent)

	// MLLPName names the PCD-04 listener in its rejects (default
	// "alarm-manager"); MLLPAllowedCNs (mtls-mllp allowed_sources, needs
	// MLLPTLS), MLLPRateLimit (rate-limit) and OnReject are the listener
	// controls of hl7.Config.
	MLLPName       string
	MLLPAllowedCNs []string
	MLLPRateLimit  *hl7.RateLimit
	OnReject       func(hl7.Reject)
}

// Manager is the alarm manager. Create it with New, Start it, Close it.
type Manager struct {
	cfg    Config
	clk    clock.Clock
	wall   func() time.Time
	log    *slog.Logger
	client *http.Client
	report map[string]bool

	mu       sync.Mutex
	started  bool
	closed   bool
	ctx      context.Context
	cancel   context.CancelFunc
	mllp     *hl7.Server
	httpLn   net.Listener
	httpSrv  *http.Server
	httpDone chan struct{}
	reports  chan *hl7.Message

	reporters map[string]*reporterState

	comms   map[string]string // communicator id -> base URL
	levels  [][]string
	alerts  map[string]*alertState
	order   []string
	changed chan struct{}
	stats   Stats
	dispSeq int
	msgSeq  int

	wg sync.WaitGroup
}

// alertState is the running state of one alert.
type alertState struct {
	alert   Alert
	hdr     hl7.Header
	patient hl7.Patient
	rec     AlertRecord

	level     int
	repeats   int
	exhausted bool
	pending   int // in-flight dispatch posts and scheduled retries
	gen       int // escalation timer generation
	esc       clock.Timer
	timers    []clock.Timer // retry timers; each counts in pending until it runs
	reported  map[string]bool
	last      string // phase|state of the last PCD-04

	reporter   string      // reporter key of the start (heartbeat control)
	pendingEnd *pendingEnd // end held until the next heartbeat
	internal   bool        // raised by the manager itself: no PCD-05
}

func (st *alertState) finished() bool {
	return !st.rec.Accepted.IsZero() || !st.rec.Ended.IsZero() || st.exhausted
}

// New returns a manager for cfg; it does not listen until Start.
func New(cfg Config) *Manager {
	if cfg.EscalateAfter <= 0 {
		cfg.EscalateAfter = DefaultEscalateAfter
	}
	if cfg.RepeatMax == 0 {
		cfg.RepeatMax = DefaultRepeatMax
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.App == "" {
		cfg.App = DefaultApp
	}
	if cfg.Facility == "" {
		cfg.Facility = DefaultFacility
	}
	if cfg.MLLPName == "" {
		cfg.MLLPName = "alarm-manager"
	}
	if hb := cfg.Heartbeat; hb != nil {
		c := *hb
		if c.Interval <= 0 {
			c.Interval = DefaultHeartbeatInterval
		}
		if c.Missed <= 0 {
			c.Missed = DefaultMissed
		}
		if c.MaxGap == 0 {
			c.MaxGap = DefaultMaxGap
		}
		if c.SilentLevel <= 0 {
			c.SilentLevel = DefaultSilentLevel
		}
		cfg.Heartbeat = &c
	}
	m := &Manager{
		reporters: map[string]*reporterState{},
		cfg:       cfg, clk: cfg.Clock, wall: cfg.Wall, log: cfg.Logger, client: cfg.HTTPClient,
		report:  map[string]bool{},
		comms:   map[string]string{},
		levels:  cloneLevels(cfg.Levels),
		alerts:  map[string]*alertState{},
		changed: make(chan struct{}),
	}
	if m.clk == nil {
		m.clk = clock.Real()
	}
	if m.wall == nil {
		m.wall = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.client == nil {
		m.client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	statuses := cfg.ReportStatuses
	if statuses == nil {
		statuses = DefaultReportStatuses
	}
	for _, s := range statuses {
		m.report[s] = true
	}
	return m
}

func cloneLevels(l [][]string) [][]string {
	if l == nil {
		return nil
	}
	out := make([][]string, len(l))
	for i, ids := range l {
		out[i] = append([]string(nil), ids...)
	}
	return out
}

// Start listens for PCD-04 on MLLP and for answers on HTTP, and serves in
// the background. Cancelling ctx closes the manager (like Close).
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.closed {
		return errors.New("alarms: manager: start: already started or closed")
	}
	m.started = true
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	mux := &hl7.Mux{}
	mux.Handle("ORU^R40", m.handlePCD04)
	m.mllp = hl7.New(hl7.Config{
		Addr: m.cfg.MLLPAddr, TLS: m.cfg.MLLPTLS, Handler: mux.Serve, Logger: m.log, Clock: m.clk,
		App: m.cfg.App, Facility: m.cfg.Facility, IDPrefix: "AMACK",
		Name: m.cfg.MLLPName, AllowedCNs: m.cfg.MLLPAllowedCNs, RateLimit: m.cfg.MLLPRateLimit, OnReject: m.cfg.OnReject,
	})
	if err := m.mllp.Start(m.ctx); err != nil {
		m.cancel()
		return fmt.Errorf("alarms: manager: start MLLP: %w", err)
	}
	addr := m.cfg.HTTPAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		m.cancel()
		_ = m.mllp.Close()
		return fmt.Errorf("alarms: manager: listen HTTP %s: %w", addr, err)
	}
	if m.cfg.HTTPTLS != nil {
		ln = tls.NewListener(ln, m.cfg.HTTPTLS)
	}
	m.httpLn = ln
	m.httpSrv = &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	m.httpDone = make(chan struct{})
	go func() {
		defer close(m.httpDone)
		if err := m.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("alarms: manager: serve HTTP", "err", err)
		}
	}()
	if m.cfg.ReporterAddr != "" {
		m.reports = make(chan *hl7.Message, 1024)
		m.goLocked(m.reportLoop)
	}
	if m.cfg.Heartbeat != nil {
		m.startHeartbeatLocked()
	}
	context.AfterFunc(ctx, func() { _ = m.Close() })
	m.log.Info("alarms: manager listening", "mllp", m.mllp.Addr(), "http", m.httpURLLocked())
	return nil
}

// MLLPAddr returns the PCD-04 MLLP address ("" before Start).
func (m *Manager) MLLPAddr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mllp == nil {
		return ""
	}
	return m.mllp.Addr()
}

// HTTPURL returns the base URL of the HTTP API, e.g. http://127.0.0.1:41234
// ("" before Start).
func (m *Manager) HTTPURL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.httpURLLocked()
}

func (m *Manager) httpURLLocked() string {
	if m.httpLn == nil {
		return ""
	}
	scheme := "http"
	if m.cfg.HTTPTLS != nil {
		scheme = "https"
	}
	return scheme + "://" + m.httpLn.Addr().String()
}

func (m *Manager) callbackLocked() string {
	if m.cfg.CallbackURL != "" {
		return m.cfg.CallbackURL
	}
	return m.httpURLLocked() + "/v1/responses"
}

// Close stops the MLLP and HTTP servers (waiting for running PCD-04
// handlers), stops every escalation and retry timer, cancels in-flight
// dispatches, cancel notices and PCD-05 sends, and waits for their
// goroutines. Queued PCD-05 messages are dropped. It is safe to call more
// than once.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	}
	m.closed = true
	for _, st := range m.alerts {
		st.stopTimers()
	}
	for _, r := range m.reporters {
		r.gen++
		if r.timer != nil {
			r.timer.Stop()
		}
	}
	cancel, mllp, srv, done := m.cancel, m.mllp, m.httpSrv, m.httpDone
	m.notifyLocked()
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	var errs []error
	if mllp != nil {
		if err := mllp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("alarms: manager: close MLLP: %w", err))
		}
	}
	if srv != nil {
		if err := srv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("alarms: manager: close HTTP: %w", err))
		}
		<-done
	}
	m.wg.Wait()
	m.client.CloseIdleConnections()
	return errors.Join(errs...)
}

func (st *alertState) stopTimers() {
	st.gen++
	if st.esc != nil {
		st.esc.Stop()
		st.esc = nil
	}
	for _, t := range st.timers {
		if t.Stop() {
			st.pending-- // the retry will not run to account for itself
		}
	}
	st.timers = nil
}

// goLocked runs f in a tracked goroutine unless the manager is closed.
func (m *Manager) goLocked(f func()) bool {
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
	return true
}

// notifyLocked wakes WaitAlert and WaitStats callers.
func (m *Manager) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// RegisterCommunicator adds (or moves) communicator id at base URL url
// (e.g. Communicator.URL()). It may be called before or after Start.
func (m *Manager) RegisterCommunicator(id, url string) error {
	if err := checkID("communicator id", id, true); err != nil {
		return fmt.Errorf("alarms: register communicator: %w", err)
	}
	u, err := neturl.Parse(url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("alarms: register communicator %s: %q is not an http(s) URL", id, url)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.comms[id] = strings.TrimRight(url, "/")
	m.log.Info("alarms: communicator registered", "id", id, "url", url)
	return nil
}

// Communicators returns the registered communicators (id -> base URL).
func (m *Manager) Communicators() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.comms))
	for k, v := range m.comms {
		out[k] = v
	}
	return out
}

// SetLevels replaces the routing chain used when Config.Route is nil (see
// Config.Levels); it applies to dispatches from now on. The change is
// logged (an AM configuration change, cf. ATK-29).
func (m *Manager) SetLevels(levels [][]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log.Warn("alarms: routing changed", "old", m.levels, "new", levels)
	m.levels = cloneLevels(levels)
}

// Levels returns the routing chain (nil = every communicator at level 0).
func (m *Manager) Levels() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneLevels(m.levels)
}

func (m *Manager) recipientsLocked(a Alert, level int) []string {
	if level >= MaxLevels {
		return nil
	}
	if m.cfg.Route != nil {
		return m.cfg.Route(a, level)
	}
	if m.levels != nil {
		if level < len(m.levels) {
			return m.levels[level]
		}
		return nil
	}
	if level > 0 {
		return nil
	}
	ids := make([]string, 0, len(m.comms))
	for id := range m.comms {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Alerts returns a copy of every alert record, in order of arrival.
func (m *Manager) Alerts() []AlertRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]AlertRecord, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, m.alerts[id].rec.clone())
	}
	return out
}

// Alert returns a copy of the record of alert id.
func (m *Manager) Alert(id string) (AlertRecord, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.alerts[id]
	if !ok {
		return AlertRecord{}, false
	}
	return st.rec.clone(), true
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statsLocked()
}

func (m *Manager) statsLocked() Stats {
	s := m.stats
	if m.mllp != nil {
		s.Malformed = m.mllp.Stats().Rejected - s.Refused
	}
	return s
}

// WaitAlert blocks until some alert record satisfies cond and returns a copy
// of the first one (in order of arrival), or until ctx is done or the
// manager closes. It wakes on every change, without polling.
func (m *Manager) WaitAlert(ctx context.Context, cond func(AlertRecord) bool) (AlertRecord, error) {
	for {
		recs, ch, closed := m.snapshot()
		for _, r := range recs {
			if cond(r) {
				return r, nil
			}
		}
		if closed {
			return AlertRecord{}, errors.New("alarms: wait alert: manager closed")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return AlertRecord{}, fmt.Errorf("alarms: wait alert: %w", ctx.Err())
		}
	}
}

// WaitStats blocks until the counters satisfy cond, or ctx is done or the
// manager closes.
func (m *Manager) WaitStats(ctx context.Context, cond func(Stats) bool) (Stats, error) {
	for {
		m.mu.Lock()
		s, ch, closed := m.statsLocked(), m.changed, m.closed
		m.mu.Unlock()
		if cond(s) {
			return s, nil
		}
		if closed {
			return s, errors.New("alarms: wait stats: manager closed")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s, fmt.Errorf("alarms: wait stats: %w", ctx.Err())
		}
	}
}

func (m *Manager) snapshot() ([]AlertRecord, chan struct{}, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	recs := make([]AlertRecord, 0, len(m.order))
	for _, id := range m.order {
		recs = append(recs, m.alerts[id].rec.clone())
	}
	return recs, m.changed, m.closed
}

// ---- PCD-04 in ----

type phaseKind int

const (
	phaseStart  phaseKind = iota // start, start_only, tpoint
	phaseUpdate                  // continue, update, present, escalate, ...
	phaseEnd                     // end, stop, reset, or state inactive
)

func classify(phase, state string) (phaseKind, error) {
	switch phase {
	case "start", "start_only", "tpoint":
		return phaseStart, nil
	case "end", "stop", "reset":
		return phaseEnd, nil
	case "continue", "update", "present", "escalate", "deescalate", "inactivate", "":
	default:
		return 0, &hl7.AckError{Code: hl7.ErrCodeTableValue, Segment: "OBX", Field: 5,
			Message: fmt.Sprintf("alarms: PCD-04: unknown event phase %q", clip(phase))}
	}
	switch state {
	case hl7.StateInactive:
		return phaseEnd, nil
	case hl7.StateActive, hl7.StateLatched:
	case "":
		if phase == "" {
			return 0, &hl7.AckError{Code: hl7.ErrCodeRequiredMissing, Segment: "OBX", Field: 5,
				Message: "alarms: PCD-04: missing event phase and alarm state (facets 3 and 4)"}
		}
	default:
		return 0, &hl7.AckError{Code: hl7.ErrCodeTableValue, Segment: "OBX", Field: 5,
			Message: fmt.Sprintf("alarms: PCD-04: unknown alarm state %q", clip(state))}
	}
	return phaseUpdate, nil
}

func connFrom(meta hl7.ConnMeta) string {
	if meta.PeerCN != "" {
		return meta.RemoteAddr + " cn=" + meta.PeerCN
	}
	return meta.RemoteAddr
}

// handlePCD04 applies one ORU^R40. Returning nil lets the hl7 server answer
// with its default acknowledgement (AA, or CA in enhanced mode).
func (m *Manager) handlePCD04(_ context.Context, msg *hl7.Message, meta hl7.ConnMeta) (*hl7.Message, error) {
	if hl7.IsHeartbeat(msg) {
		if m.cfg.Authorize != nil {
			obr := msg.Segment("OBR")
			a := Alert{ID: obr.Comp(2, 1), App: obr.Comp(2, 2), Reporter: msg.Segment("MSH").Comp(3, 1), ControlID: msg.ControlID()}
			if err := m.cfg.Authorize(a, meta); err != nil {
				m.mu.Lock()
				m.stats.Refused++
				m.notifyLocked()
				m.mu.Unlock()
				m.log.Warn("alarms: heartbeat refused", "from", connFrom(meta), "err", err)
				return nil, &hl7.AckError{Code: hl7.ErrCodeInternal, AckCode: hl7.AckAR, Message: "alarms: heartbeat refused: " + err.Error()}
			}
		}
		return m.handleHeartbeat(msg, meta)
	}
	ha, err := hl7.ParseAlert(msg)
	if err != nil {
		return nil, fmt.Errorf("alarms: PCD-04: %w", err)
	}
	if err := checkID("alert id", ha.AlertID, true); err != nil {
		return nil, &hl7.AckError{Code: hl7.ErrCodeDataType, Segment: "OBR", Field: 2, Message: "alarms: PCD-04: " + err.Error()}
	}
	kind, err := classify(ha.Phase, ha.State)
	if err != nil {
		return nil, err
	}
	a := alertOf(ha)
	if m.cfg.Authorize != nil {
		if err := m.cfg.Authorize(a, meta); err != nil {
			m.mu.Lock()
			m.stats.Refused++
			m.notifyLocked()
			m.mu.Unlock()
			m.log.Warn("alarms: PCD-04 refused", "alert", a.ID, "from", connFrom(meta), "err", err)
			return nil, &hl7.AckError{Code: hl7.ErrCodeInternal, AckCode: hl7.AckAR, Message: "alarms: PCD-04 refused: " + err.Error()}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, &hl7.AckError{Code: hl7.ErrCodeInternal, Message: "alarms: manager closing"}
	}
	defer m.notifyLocked()
	rkey := reporterKey(a.Reporter, meta)
	if m.cfg.Heartbeat != nil {
		if err := m.sequenceLocked(m.reporterLocked(rkey), msg, a.Pump); err != nil {
			return nil, err
		}
	}
	m.stats.Received++
	now := m.clk.Now()
	key := ha.Phase + "|" + ha.State
	st, known := m.alerts[a.ID]
	switch {
	case !known && kind == phaseEnd:
		m.stats.UnknownEnds++
		m.log.Warn("alarms: end of unknown alert", "alert", a.ID, "pump", a.Pump, "from", connFrom(meta))
		return nil, nil
	case !known:
		st := m.startLocked(a, ha, meta, now)
		st.reporter = rkey
		if m.cfg.Heartbeat != nil {
			st.rec.Reporter = rkey
		}
		return nil, nil
	}
	if st.internal {
		return nil, m.refuseLocked(ControlEvent{Source: rkey, Ref: a.ControlID,
			Reason: fmt.Sprintf("PCD-04 from %s for alert %s, which the alarm manager raised itself", rkey, a.ID)}, "END-SOURCE")
	}
	st.rec.Messages++
	if kind == phaseStart || (kind == phaseEnd && !st.rec.Ended.IsZero()) || key == st.last {
		st.rec.Duplicates++
		m.stats.Duplicates++
		m.log.Debug("alarms: duplicate PCD-04", "alert", a.ID, "phase", ha.Phase, "control_id", a.ControlID)
		return nil, nil
	}
	if kind == phaseEnd && m.cfg.Heartbeat != nil && !st.internal {
		return m.pendEndLocked(st, rkey, key, a, meta, now)
	}
	st.last = key
	if kind == phaseEnd {
		m.endLocked(st, meta, now)
		return nil, nil
	}
	// An update: keep the latest facets.
	if a.Priority != "" {
		st.alert.Priority, st.rec.Priority = a.Priority, a.Priority
	}
	st.alert.Phase, st.alert.State, st.alert.Inactivation = a.Phase, a.State, a.Inactivation
	return nil, nil
}

func (m *Manager) startLocked(a Alert, ha hl7.Alert, meta hl7.ConnMeta, now time.Time) *alertState {
	onset := a.Onset
	if onset.IsZero() {
		onset = now
	}
	st := &alertState{
		alert: a, hdr: ha.Header, patient: ha.Patient, reported: map[string]bool{},
		last: ha.Phase + "|" + ha.State,
		rec: AlertRecord{
			ID: a.ID, App: a.App, Pump: a.Pump, Code: a.Event, Text: a.Text,
			Priority: a.Priority, Type: a.Type, Location: a.Location,
			Onset: onset, Received: now, ReceivedWall: m.wall(),
			Messages: 1, StartFrom: connFrom(meta), Status: RecordQueued,
		},
	}
	m.alerts[a.ID] = st
	m.order = append(m.order, a.ID)
	m.stats.Alerts++
	m.log.Info("alarms: alert started", "alert", a.ID, "pump", a.Pump, "event", a.Event, "priority", a.Priority)
	m.dispatchLevelLocked(st, 0)
	m.armLocked(st)
	m.levelFailedLocked(st)
	m.updateStatusLocked(st)
	return st
}

func (m *Manager) endLocked(st *alertState, meta hl7.ConnMeta, now time.Time) {
	st.rec.Ended = now
	st.rec.EndFrom = connFrom(meta)
	st.alert.State = hl7.StateInactive
	m.log.Info("alarms: alert ended", "alert", st.alert.ID, "accepted", !st.rec.Accepted.IsZero(), "from", st.rec.EndFrom)
	if st.rec.Accepted.IsZero() {
		st.stopTimers()
		m.cancelLocked(st)
	}
	m.updateStatusLocked(st)
}

// ---- dispatch ----

func (m *Manager) tokenFor(alertID, recipient string) string {
	if len(m.cfg.ResponseKey) == 0 {
		return ""
	}
	h := hmac.New(sha256.New, m.cfg.ResponseKey)
	h.Write([]byte(alertID + "\n" + recipient))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func (m *Manager) dispatchLevelLocked(st *alertState, level int) {
	if level > st.rec.Level {
		st.rec.Level = level
	}
	ids := m.recipientsLocked(st.alert, level)
	if len(ids) == 0 {
		m.log.Warn("alarms: no recipients", "alert", st.alert.ID, "level", level)
	}
	now := m.clk.Now()
	for _, id := range ids {
		seq := 1
		for _, d := range st.rec.Dispatches {
			if d.Communicator == id {
				seq++
			}
		}
		m.dispSeq++
		d := Dispatch{ID: fmt.Sprintf("AM-%d", m.dispSeq), Communicator: id, Level: level, Seq: seq, Sent: now}
		url, ok := m.comms[id]
		if !ok {
			d.Error, d.GaveUp = "unknown communicator", true
			m.stats.Undeliverable++
			st.rec.Dispatches = append(st.rec.Dispatches, d)
			m.log.Warn("alarms: dispatch to unknown communicator", "alert", st.alert.ID, "communicator", id)
			continue
		}
		d.URL = url
		st.rec.Dispatches = append(st.rec.Dispatches, d)
		m.sendLocked(st, len(st.rec.Dispatches)-1)
	}
}

// sendLocked posts dispatch idx of st (first try or retry).
func (m *Manager) sendLocked(st *alertState, idx int) {
	d := &st.rec.Dispatches[idx]
	msg := Message{
		ID: d.ID, AlertID: st.alert.ID, Recipient: d.Communicator,
		Pump: st.alert.Pump, Event: st.alert.Event, Text: st.alert.Text,
		Priority: st.alert.Priority, Type: st.alert.Type, Location: st.alert.Location,
		Onset: st.rec.Onset, Sent: m.clk.Now(), Level: d.Level, Seq: d.Seq,
		Callback: m.callbackLocked(), Token: m.tokenFor(st.alert.ID, d.Communicator),
	}
	url := d.URL + "/v1/messages"
	ctx := m.ctx
	if !m.goLocked(func() {
		err := m.post(ctx, url, msg)
		m.afterSend(st, idx, err)
	}) {
		return
	}
	d.Attempts++
	st.rec.Attempts++
	st.pending++
	m.stats.Dispatched++
}

func (m *Manager) post(ctx context.Context, url string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("alarms: post %s: %w", url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("alarms: post %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		return fmt.Errorf("alarms: post %s: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxBodySize))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("alarms: post %s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}

func (m *Manager) afterSend(st *alertState, idx int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.notifyLocked()
	st.pending--
	d := &st.rec.Dispatches[idx]
	now := m.clk.Now()
	if err == nil {
		m.stats.Delivered++
		d.Error = ""
		if d.Delivered.IsZero() {
			d.Delivered = now
		}
		m.markDeliveredLocked(st, now)
		m.updateStatusLocked(st)
		return
	}
	m.stats.Failed++
	st.rec.Failures++
	d.Error = err.Error()
	m.log.Warn("alarms: dispatch failed", "alert", st.alert.ID, "communicator", d.Communicator, "attempt", d.Attempts, "err", err)
	switch {
	case m.closed || !st.rec.Accepted.IsZero() || !st.rec.Ended.IsZero():
		// Nothing more to do for this alert.
	case d.Attempts <= m.cfg.Retries:
		backoff := m.cfg.RetryBackoff << (d.Attempts - 1)
		st.pending++
		st.timers = append(st.timers, m.clk.AfterFunc(backoff, func() { m.retry(st, idx) }))
	default:
		d.GaveUp = true
		m.stats.Undeliverable++
		m.levelFailedLocked(st)
	}
	m.updateStatusLocked(st)
}

func (m *Manager) retry(st *alertState, idx int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.notifyLocked()
	st.pending--
	if m.closed || !st.rec.Accepted.IsZero() || !st.rec.Ended.IsZero() {
		m.updateStatusLocked(st)
		return
	}
	m.sendLocked(st, idx)
	m.updateStatusLocked(st)
}

func (m *Manager) markDeliveredLocked(st *alertState, now time.Time) {
	if !st.rec.Delivered.IsZero() {
		return
	}
	st.rec.Delivered, st.rec.DeliveredWall = now, m.wall()
	m.reportLocked(st, hl7.AlertDelivered, "", "")
}

// levelFailedLocked escalates at once when every dispatch of the current
// level has been given up (or the level has none).
func (m *Manager) levelFailedLocked(st *alertState) {
	if st.finished() {
		return
	}
	for _, d := range st.rec.Dispatches {
		if d.Level == st.level && (!d.GaveUp || !d.Delivered.IsZero()) {
			return
		}
	}
	m.escalateLocked(st, "undeliverable", true)
}

// armLocked (re)starts the escalation timer of st.
func (m *Manager) armLocked(st *alertState) {
	if st.esc != nil {
		st.esc.Stop()
	}
	st.gen++
	gen := st.gen
	st.esc = m.clk.AfterFunc(m.cfg.EscalateAfter, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if st.gen != gen || m.closed {
			return
		}
		st.esc = nil
		m.escalateLocked(st, "not accepted", false)
		m.updateStatusLocked(st)
		m.notifyLocked()
	})
}

// escalateLocked moves st to the next level. At the last level, a timeout
// (now false) repeats the dispatch to that level up to RepeatMax times; a
// rejection or failure (now true) leaves it to the running timer.
func (m *Manager) escalateLocked(st *alertState, reason string, now bool) {
	if st.finished() {
		return
	}
	next := st.level + 1
	if len(m.recipientsLocked(st.alert, next)) > 0 {
		st.level = next
		st.rec.Escalations++
		m.stats.Escalated++
		m.log.Info("alarms: alert escalated", "alert", st.alert.ID, "level", next, "reason", reason)
		m.dispatchLevelLocked(st, next)
		m.armLocked(st)
		m.levelFailedLocked(st)
		return
	}
	if now {
		return
	}
	if st.repeats < m.cfg.RepeatMax {
		st.repeats++
		st.rec.Escalations++
		m.stats.Escalated++
		m.log.Info("alarms: alert repeated at last level", "alert", st.alert.ID, "level", st.level, "repeat", st.repeats, "reason", reason)
		m.dispatchLevelLocked(st, st.level)
		m.armLocked(st)
		return
	}
	st.exhausted = true
	st.stopTimers()
	m.log.Warn("alarms: alert unanswered, escalation exhausted", "alert", st.alert.ID, "level", st.level)
}

func (m *Manager) updateStatusLocked(st *alertState) {
	r := &st.rec
	var s string
	switch {
	case !r.Accepted.IsZero():
		s = RecordAccepted
	case !r.Ended.IsZero():
		s = RecordCancelled
	case r.Delivered.IsZero() && st.pending == 0:
		s = RecordUndeliverable
	case st.exhausted:
		s = RecordUnanswered
	case !r.Read.IsZero():
		s = RecordRead
	case !r.Delivered.IsZero():
		s = RecordDelivered
	default:
		s = RecordQueued
	}
	if s == RecordUndeliverable && r.Status != RecordUndeliverable {
		m.reportLocked(st, hl7.AlertUndeliverable, "", "")
	}
	r.Status = s
}

// cancelLocked tells every communicator the alert went to that it ended.
func (m *Manager) cancelLocked(st *alertState) {
	seen := map[string]bool{}
	for _, d := range st.rec.Dispatches {
		if d.URL == "" || seen[d.Communicator] {
			continue
		}
		seen[d.Communicator] = true
		id, comm := st.alert.ID, d.Communicator
		url := d.URL + "/v1/messages/" + neturl.PathEscape(id) + "/cancel"
		body := map[string]string{"alert_id": id, "reason": "ended"}
		ctx := m.ctx
		m.goLocked(func() {
			err := m.post(ctx, url, body)
			m.mu.Lock()
			defer m.mu.Unlock()
			defer m.notifyLocked()
			if err != nil {
				m.log.Warn("alarms: cancel failed", "alert", id, "communicator", comm, "err", err)
				return
			}
			m.stats.Cancelled++
			now := m.clk.Now()
			for i := range st.rec.Dispatches {
				if st.rec.Dispatches[i].Communicator == comm {
					st.rec.Dispatches[i].Cancelled = now
				}
			}
		})
	}
}

// ---- PCD-05 out ----

func (m *Manager) reportLocked(st *alertState, status, user, via string) {
	if m.reports == nil || !m.report[status] || m.closed || st.internal {
		return
	}
	if status != hl7.AlertRejected {
		if st.reported[status] {
			return
		}
		st.reported[status] = true
	}
	m.msgSeq++
	now := m.clk.Now()
	as := hl7.AlertStatus{
		Header: hl7.Header{
			SendingApp: hl7.ParseHD(m.cfg.App), SendingFacility: hl7.ParseHD(m.cfg.Facility),
			ReceivingApp: st.hdr.SendingApp, ReceivingFacility: st.hdr.SendingFacility,
			Time: now, ControlID: fmt.Sprintf("AM%06d", m.msgSeq), AcceptAck: "AL", AppAck: "NE",
		},
		Patient: st.patient,
		AlertID: st.alert.ID, AlertApp: st.alert.App,
		Time: now, Status: status, Communicator: via,
	}
	if user != "" {
		as.Provider = hl7.Person{ID: user}
	}
	select {
	case m.reports <- hl7.BuildAlertStatus(as):
	default:
		m.stats.ReportFailed++
		m.log.Warn("alarms: PCD-05 queue full, dropped", "alert", st.alert.ID, "status", status)
	}
}

// reportLoop sends queued PCD-05 messages over one MLLP connection,
// redialling once on a connection error.
func (m *Manager) reportLoop() {
	ctx := m.ctx
	var c *hl7.Client
	defer func() {
		if c != nil {
			_ = c.Close()
		}
	}()
	for {
		var msg *hl7.Message
		select {
		case <-ctx.Done():
			return
		case msg = <-m.reports:
		}
		ok := false
		for try := 0; try < 2 && !ok && ctx.Err() == nil; try++ {
			if c == nil {
				dctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
				var err error
				c, err = hl7.Dial(dctx, m.cfg.ReporterAddr, m.cfg.ReporterTLS)
				cancel()
				if err != nil {
					m.log.Warn("alarms: PCD-05 dial reporter", "err", err)
					c = nil
					continue
				}
			}
			sctx, cancel := context.WithTimeout(ctx, 2*DefaultHTTPTimeout)
			reply, err := c.Send(sctx, msg)
			cancel()
			if err != nil {
				m.log.Warn("alarms: PCD-05 send", "id", msg.ControlID(), "err", err)
				_ = c.Close()
				c = nil
				continue
			}
			ack, err := hl7.ParseAck(reply)
			if err == nil {
				err = ack.Err()
			}
			if err != nil {
				m.log.Warn("alarms: PCD-05 not accepted by reporter", "id", msg.ControlID(), "err", err)
				break
			}
			ok = true
		}
		m.mu.Lock()
		if ok {
			m.stats.Reported++
		} else {
			m.stats.ReportFailed++
		}
		m.notifyLocked()
		m.mu.Unlock()
	}
}

// ---- HTTP API ----

// Handler returns the manager's HTTP API (for mounting elsewhere):
// POST /v1/responses, GET /v1/alerts, GET /v1/alerts/{id}, GET /v1/stats.
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/responses", m.postResponse)
	mux.HandleFunc("GET /v1/alerts", m.getAlerts)
	mux.HandleFunc("GET /v1/alerts/{id}", m.getAlert)
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, m.Stats()) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.log.Debug("alarms: manager: request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		mux.ServeHTTP(w, r)
	})
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// AlertView is the JSON of an alert in GET /v1/alerts: the record plus its
// latencies in seconds (absent when not reached).
type AlertView struct {
	AlertRecord
	LNotifyS     *float64 `json:"l_notify_s,omitempty"`
	LAckS        *float64 `json:"l_ack_s,omitempty"`
	NotifyWallMS *float64 `json:"notify_wall_ms,omitempty"`
	AckWallMS    *float64 `json:"ack_wall_ms,omitempty"`
}

// View returns r with its latencies.
func (r AlertRecord) View() AlertView {
	v := AlertView{AlertRecord: r}
	sec := func(d time.Duration, ok bool) *float64 {
		if !ok {
			return nil
		}
		f := d.Seconds()
		return &f
	}
	ms := func(d time.Duration, ok bool) *float64 {
		if !ok {
			return nil
		}
		f := float64(d) / float64(time.Millisecond)
		return &f
	}
	v.LNotifyS = sec(r.NotifyLatency())
	v.LAckS = sec(r.AckLatency())
	v.NotifyWallMS = ms(r.NotifyWall())
	v.AckWallMS = ms(r.AckWall())
	return v
}

func (m *Manager) getAlerts(w http.ResponseWriter, _ *http.Request) {
	recs := m.Alerts()
	out := make([]AlertView, len(recs))
	for i, r := range recs {
		out[i] = r.View()
	}
	writeJSON(w, http.StatusOK, out)
}

func (m *Manager) getAlert(w http.ResponseWriter, r *http.Request) {
	rec, ok := m.Alert(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("alarms: unknown alert %q", clip(r.PathValue("id")))})
		return
	}
	writeJSON(w, http.StatusOK, rec.View())
}

// ResponseResult is the JSON answer of POST /v1/responses.
type ResponseResult struct {
	AlertID    string `json:"alert_id"`
	Status     string `json:"status"` // the record's status after the answer
	AcceptedBy string `json:"accepted_by,omitempty"`
}

func (m *Manager) postResponse(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if err != nil {
		m.badResponse(w, http.StatusBadRequest, fmt.Errorf("alarms: response: read body: %w", err))
		return
	}
	resp, err := DecodeResponse(body)
	if err != nil {
		m.badResponse(w, http.StatusBadRequest, err)
		return
	}
	code, res, err := m.Respond(resp)
	if err != nil {
		m.badResponse(w, code, err)
		return
	}
	writeJSON(w, code, res)
}

func (m *Manager) badResponse(w http.ResponseWriter, code int, err error) {
	m.mu.Lock()
	m.stats.BadResponses++
	m.notifyLocked()
	m.mu.Unlock()
	m.log.Warn("alarms: bad response", "code", code, "err", err)
	writeJSON(w, code, apiError{err.Error()})
}

// Respond applies a communicator answer as if it came on /v1/responses and
// returns the HTTP status it would get: 200, 404 unknown alert, 403 bad
// token, 409 accept or reject of an ended (or, for reject, accepted) alert.
// Errors are not counted in Stats.BadResponses (the HTTP path counts them).
func (m *Manager) Respond(resp Response) (int, ResponseResult, error) {
	if err := resp.Validate(); err != nil {
		return http.StatusBadRequest, ResponseResult{}, fmt.Errorf("alarms: response: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.alerts[resp.AlertID]
	if !ok {
		return http.StatusNotFound, ResponseResult{}, fmt.Errorf("alarms: response: unknown alert %q", resp.AlertID)
	}
	if len(m.cfg.ResponseKey) > 0 {
		want := m.tokenFor(resp.AlertID, resp.Communicator)
		if resp.Communicator == "" || !hmac.Equal([]byte(want), []byte(resp.Token)) {
			return http.StatusForbidden, ResponseResult{}, fmt.Errorf("alarms: response for %s: bad or missing token for communicator %q", resp.AlertID, resp.Communicator)
		}
	}
	now := m.clk.Now()
	rec := &st.rec
	switch resp.Status {
	case StatusDelivered:
		m.markDeliveredLocked(st, now)
	case StatusRead:
		m.markDeliveredLocked(st, now)
		if rec.Read.IsZero() {
			rec.Read = now
		}
	case StatusAccepted:
		if !rec.Accepted.IsZero() {
			break // idempotent: the first acceptance stands
		}
		if !rec.Ended.IsZero() {
			return http.StatusConflict, ResponseResult{}, fmt.Errorf("alarms: response: alert %s already ended", resp.AlertID)
		}
		m.markDeliveredLocked(st, now) // an answer implies delivery
		rec.Accepted, rec.AcceptedWall = now, m.wall()
		rec.AcceptedBy, rec.AcceptedVia = resp.User, resp.Communicator
		st.stopTimers()
		m.stats.Accepted++
		m.log.Info("alarms: alert accepted", "alert", resp.AlertID, "user", resp.User, "communicator", resp.Communicator)
		m.reportLocked(st, hl7.AlertAccepted, resp.User, resp.Communicator)
	case StatusRejected:
		if !rec.Accepted.IsZero() {
			return http.StatusConflict, ResponseResult{}, fmt.Errorf("alarms: response: alert %s already accepted by %s", resp.AlertID, rec.AcceptedBy)
		}
		if !rec.Ended.IsZero() {
			return http.StatusConflict, ResponseResult{}, fmt.Errorf("alarms: response: alert %s already ended", resp.AlertID)
		}
		m.markDeliveredLocked(st, now)
		rec.Rejections++
		if !slices.Contains(rec.RejectedBy, resp.User) {
			rec.RejectedBy = append(rec.RejectedBy, resp.User)
		}
		m.stats.Rejected++
		m.log.Info("alarms: alert rejected", "alert", resp.AlertID, "user", resp.User, "reason", resp.Reason)
		m.reportLocked(st, hl7.AlertRejected, resp.User, resp.Communicator)
		m.escalateLocked(st, "rejected", true)
	}
	m.stats.Responses++
	m.updateStatusLocked(st)
	m.notifyLocked()
	return http.StatusOK, ResponseResult{AlertID: rec.ID, Status: rec.Status, AcceptedBy: rec.AcceptedBy}, nil
}
