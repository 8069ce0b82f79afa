package alarms

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
)

// CommunicatorConfig configures a Communicator. The zero value works: a
// phone named "PHONE" on 127.0.0.1 with an ephemeral port and the real
// clock that stores messages and does nothing else.
type CommunicatorConfig struct {
	// ID is the device id, sent as Response.Communicator (and PRT-10 of the
	// manager's PCD-05); default "PHONE". Register the phone with the
	// manager under the same id.
	ID string
	// Addr is the listen address, default 127.0.0.1:0. TLS, when set,
	// serves HTTPS.
	Addr string
	TLS  *tls.Config
	// Clock stamps receipt and cancel times (nil = real).
	Clock clock.Clock
	// Logger receives the phone's logs; nil discards.
	Logger *slog.Logger
	// OnMessage is called in its own goroutine for every dispatch received
	// (repeats included: see Message.Seq), unless the alert was already
	// cancelled. It is the hook for the lab's nurse model, which typically
	// waits a lab latency and calls Accept. Close does not wait for it.
	OnMessage func(Message)
	// OnCancel is called in its own goroutine when the manager cancels an
	// alert (it ended before anyone accepted it).
	OnCancel func(alertID string)
	// HTTPClient posts responses; nil means a client with a
	// DefaultHTTPTimeout (wall) timeout.
	HTTPClient *http.Client
}

// Received is a communicator's entry for one alert: the latest dispatch and
// what happened to it. Times are lab times.
type Received struct {
	Message
	// At is when the first dispatch of the alert arrived; Count how many
	// dispatches arrived (repeats, escalation copies).
	At    time.Time `json:"received_at,omitzero"`
	Count int       `json:"count"`
	// Cancelled is when the manager cancelled the alert (a cancel that
	// arrives before the message leaves an entry with only AlertID set).
	Cancelled time.Time `json:"cancelled,omitzero"`
	// Response is the last status this phone sent, by User, at Responded.
	Response  string    `json:"response,omitempty"`
	User      string    `json:"user,omitempty"`
	Responded time.Time `json:"responded,omitzero"`
}

// Communicator is a simulated nurse phone. Create it with NewCommunicator,
// Start it, Close it.
type Communicator struct {
	cfg    CommunicatorConfig
	clk    clock.Clock
	log    *slog.Logger
	client *http.Client

	mu        sync.Mutex
	ln        net.Listener
	srv       *http.Server
	done      chan struct{}
	closed    bool
	available bool
	msgs      map[string]*Received
	order     []string
	changed   chan struct{}
}

// NewCommunicator returns a phone for cfg; it does not listen until Start.
func NewCommunicator(cfg CommunicatorConfig) *Communicator {
	if cfg.ID == "" {
		cfg.ID = "PHONE"
	}
	c := &Communicator{cfg: cfg, clk: cfg.Clock, log: cfg.Logger, client: cfg.HTTPClient,
		available: true, msgs: map[string]*Received{}, changed: make(chan struct{})}
	if c.clk == nil {
		c.clk = clock.Real()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.client == nil {
		c.client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	return c
}

// ID returns the device id.
func (c *Communicator) ID() string { return c.cfg.ID }

// Start listens and serves in the background. Cancelling ctx closes the
// phone (like Close).
func (c *Communicator) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln != nil || c.closed {
		return fmt.Errorf("alarms: communicator %s: start: already started or closed", c.cfg.ID)
	}
	addr := c.cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("alarms: communicator %s: listen %s: %w", c.cfg.ID, addr, err)
	}
	if c.cfg.TLS != nil {
		ln = tls.NewListener(ln, c.cfg.TLS)
	}
	c.ln = ln
	c.srv = &http.Server{
		Handler:           c.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
	}
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("alarms: communicator: serve", "id", c.cfg.ID, "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = c.Close() })
	c.log.Info("alarms: communicator listening", "id", c.cfg.ID, "url", c.urlLocked())
	return nil
}

// Addr returns the listen address ("" before Start).
func (c *Communicator) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln == nil {
		return ""
	}
	return c.ln.Addr().String()
}

// URL returns the base URL to register with the manager ("" before Start).
func (c *Communicator) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.urlLocked()
}

func (c *Communicator) urlLocked() string {
	if c.ln == nil {
		return ""
	}
	scheme := "http"
	if c.cfg.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.ln.Addr().String()
}

// Close stops the HTTP server, closing open connections, and waits for its
// serve loop. OnMessage and OnCancel callbacks still running are not waited
// for. It is safe to call more than once.
func (c *Communicator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	srv, done := c.srv, c.done
	c.notifyLocked()
	c.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	c.client.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("alarms: communicator %s: close: %w", c.cfg.ID, err)
	}
	return nil
}

// SetAvailable switches the phone on or off the network: while unavailable,
// dispatches are answered 503 (the manager retries, then escalates).
func (c *Communicator) SetAvailable(ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.available = ok
}

func (c *Communicator) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Messages returns a copy of the entries, in order of first arrival.
func (c *Communicator) Messages() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Received, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, *c.msgs[id])
	}
	return out
}

// Message returns the entry of one alert.
func (c *Communicator) Message(alertID string) (Received, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.msgs[alertID]
	if !ok {
		return Received{}, false
	}
	return *r, true
}

// Wait blocks until some entry satisfies cond and returns a copy of it, or
// until ctx is done or the phone closes. It wakes on every change.
func (c *Communicator) Wait(ctx context.Context, cond func(Received) bool) (Received, error) {
	for {
		c.mu.Lock()
		for _, id := range c.order {
			if r := *c.msgs[id]; cond(r) {
				c.mu.Unlock()
				return r, nil
			}
		}
		ch, closed := c.changed, c.closed
		c.mu.Unlock()
		if closed {
			return Received{}, fmt.Errorf("alarms: communicator %s: wait: closed", c.cfg.ID)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Received{}, fmt.Errorf("alarms: communicator %s: wait: %w", c.cfg.ID, ctx.Err())
		}
	}
}

// Accept tells the manager that user accepts the alert (PCD-07 accepted).
func (c *Communicator) Accept(ctx context.Context, alertID, user string) error {
	return c.Respond(ctx, Response{AlertID: alertID, Status: StatusAccepted, User: user})
}

// Reject tells the manager that user rejects the alert (nuisance or false
// positive); the manager escalates at once.
func (c *Communicator) Reject(ctx context.Context, alertID, user, reason string) error {
	return c.Respond(ctx, Response{AlertID: alertID, Status: StatusRejected, User: user, Reason: reason})
}

// Read tells the manager that user has read the alert.
func (c *Communicator) Read(ctx context.Context, alertID, user string) error {
	return c.Respond(ctx, Response{AlertID: alertID, Status: StatusRead, User: user})
}

// Respond posts r to the callback URL of the alert's latest dispatch,
// filling in Communicator (this phone's id) and Token (from the dispatch).
// A non-2xx answer is an error carrying the manager's message.
func (c *Communicator) Respond(ctx context.Context, r Response) error {
	c.mu.Lock()
	e, ok := c.msgs[r.AlertID]
	var cb, token string
	if ok {
		cb, token = e.Callback, e.Token
	}
	c.mu.Unlock()
	if !ok || cb == "" {
		return fmt.Errorf("alarms: communicator %s: respond %s: no message for alert %q", c.cfg.ID, r.Status, r.AlertID)
	}
	r.Communicator = c.cfg.ID
	if r.Token == "" {
		r.Token = token
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("alarms: communicator %s: respond: %w", c.cfg.ID, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("alarms: communicator %s: respond: %w", c.cfg.ID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cb, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("alarms: communicator %s: respond %s: %w", c.cfg.ID, r.Status, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("alarms: communicator %s: respond %s: %w", c.cfg.ID, r.Status, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize))
	if resp.StatusCode/100 != 2 {
		var ae apiError
		msg := string(bytes.TrimSpace(body))
		if json.Unmarshal(body, &ae) == nil && ae.Error != "" {
			msg = ae.Error
		}
		return fmt.Errorf("alarms: communicator %s: respond %s for %s: HTTP %d: %s", c.cfg.ID, r.Status, r.AlertID, resp.StatusCode, msg)
	}
	c.mu.Lock()
	if e, ok := c.msgs[r.AlertID]; ok {
		e.Response, e.User, e.Responded = r.Status, r.User, c.clk.Now()
	}
	c.notifyLocked()
	c.mu.Unlock()
	return nil
}

// Handler returns the phone's HTTP API: POST /v1/messages,
// POST /v1/messages/{id}/cancel, GET /v1/messages.
func (c *Communicator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/messages", c.postMessage)
	mux.HandleFunc("POST /v1/messages/{id}/cancel", c.postCancel)
	mux.HandleFunc("GET /v1/messages", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, c.Messages()) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.log.Debug("alarms: communicator: request", "id", c.cfg.ID, "method", r.Method, "path", r.URL.Path)
		mux.ServeHTTP(w, r)
	})
}

func (c *Communicator) postMessage(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	avail := c.available
	c.mu.Unlock()
	if !avail {
		writeJSON(w, http.StatusServiceUnavailable, apiError{fmt.Sprintf("alarms: communicator %s: unavailable", c.cfg.ID)})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("alarms: communicator %s: read body: %v", c.cfg.ID, err)})
		return
	}
	msg, err := DecodeMessage(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	if msg.Recipient != c.cfg.ID {
		c.log.Warn("alarms: communicator: message for another recipient", "id", c.cfg.ID, "recipient", msg.Recipient, "alert", msg.AlertID)
	}
	c.mu.Lock()
	e, ok := c.msgs[msg.AlertID]
	if !ok {
		e = &Received{At: c.clk.Now()}
		c.msgs[msg.AlertID] = e
		c.order = append(c.order, msg.AlertID)
	}
	e.Message = msg
	e.Count++
	if e.At.IsZero() {
		e.At = c.clk.Now()
	}
	cancelled := !e.Cancelled.IsZero()
	c.notifyLocked()
	c.mu.Unlock()
	c.log.Info("alarms: communicator: message", "id", c.cfg.ID, "alert", msg.AlertID, "level", msg.Level, "seq", msg.Seq, "cancelled", cancelled)
	if f := c.cfg.OnMessage; f != nil && !cancelled {
		go f(msg)
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": msg.ID, "alert_id": msg.AlertID, "status": StatusDelivered})
}

func (c *Communicator) postCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID("alert id", id, true); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("alarms: communicator %s: cancel: %v", c.cfg.ID, err)})
		return
	}
	c.mu.Lock()
	e, ok := c.msgs[id]
	if !ok {
		// The cancel overtook the message: remember it.
		e = &Received{Message: Message{AlertID: id}}
		c.msgs[id] = e
		c.order = append(c.order, id)
	}
	first := e.Cancelled.IsZero()
	if first {
		e.Cancelled = c.clk.Now()
	}
	c.notifyLocked()
	c.mu.Unlock()
	c.log.Info("alarms: communicator: cancel", "id", c.cfg.ID, "alert", id)
	if f := c.cfg.OnCancel; f != nil && first {
		go f(id)
	}
	writeJSON(w, http.StatusOK, map[string]string{"alert_id": id, "status": "cancelled"})
}
