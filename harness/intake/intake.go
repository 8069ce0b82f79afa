package intake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

// Sources of alerts (score.Alert.Source).
const (
	SourceHTTP      = "http"
	SourceSyslogUDP = "syslog-udp"
	SourceSyslogTCP = "syslog-tcp"
	SourceFile      = "file"
)

// Disabled as a listen address turns that transport off.
const Disabled = "-"

// File is a file a tool writes alerts to, one JSON object per line.
type File struct {
	Path string
	// Tool names the alerts of Suricata eve.json lines, which carry no tool
	// name; default DefaultEveTool. JSON alert lines name their own tool.
	Tool string
}

// Config configures an Intake. The zero value works: HTTP, syslog UDP and
// syslog TCP on 127.0.0.1 with kernel-chosen ports, no files.
type Config struct {
	// HTTPAddr, SyslogUDPAddr and SyslogTCPAddr are listen addresses,
	// default 127.0.0.1:0 each; Disabled ("-") turns the transport off.
	HTTPAddr, SyslogUDPAddr, SyslogTCPAddr string
	// AllowNonLoopback permits listen addresses other than loopback. The
	// intake is unauthenticated: whoever reaches it can inject or flood
	// alerts and so change the scores, so it stays on loopback unless the
	// tools under test run elsewhere on a lab-only network.
	AllowNonLoopback bool
	// Files are tailed from their start, following appends; a file that
	// does not exist yet is waited for; truncation and rotation (a new file
	// at the path) are followed by reading the new content from its start.
	Files []File
	// PollInterval is how often files are polled, default 200ms.
	PollInterval time.Duration
	// Now stamps Alert.Time; nil is time.Now (wall clock).
	Now func() time.Time
	// Logger receives refusals and listener errors; nil discards.
	Logger *slog.Logger
	// OnAlert, if set, is called for every accepted alert, in receive
	// order, after it is in Alerts. It must not block long: it holds up the
	// transport that received the alert.
	OnAlert func(score.Alert)
}

// TransportStats counts what one transport received.
type TransportStats struct {
	// Accepted counts alerts accepted.
	Accepted int64 `json:"accepted"`
	// Refused counts refused units: HTTP requests, syslog messages or
	// frames, file lines. A refused HTTP batch counts once.
	Refused int64 `json:"refused"`
	// Skipped counts file lines that carry no alert (eve.json events other
	// than alerts, empty lines).
	Skipped int64 `json:"skipped,omitempty"`
	// LastError is the text of the latest refusal, LastErrorTime its time.
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// Stats counts per transport.
type Stats struct {
	HTTP      TransportStats `json:"http"`
	SyslogUDP TransportStats `json:"syslog_udp"`
	SyslogTCP TransportStats `json:"syslog_tcp"`
	File      TransportStats `json:"file"`
}

// Intake receives alerts. Create it with New, then Start; Close stops it.
type Intake struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	deliver sync.Mutex // serialises append + OnAlert, keeping receive order

	mu      sync.Mutex
	alerts  []score.Alert
	stats   Stats
	changed chan struct{} // closed and replaced on every change
	started bool
	closed  bool

	httpLn   net.Listener
	httpSrv  *http.Server
	udpConn  net.PacketConn
	tcpLn    net.Listener
	tcpConns map[net.Conn]struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// New returns an Intake for cfg; nothing listens before Start.
func New(cfg Config) *Intake {
	in := &Intake{cfg: cfg, log: cfg.Logger, now: cfg.Now, changed: make(chan struct{}), tcpConns: map[net.Conn]struct{}{}}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	if in.now == nil {
		in.now = time.Now
	}
	if in.cfg.PollInterval <= 0 {
		in.cfg.PollInterval = 200 * time.Millisecond
	}
	return in
}

func defaultAddr(a string) string {
	if a == "" {
		return "127.0.0.1:0"
	}
	return a
}

// checkLoopback refuses a listen address that is not loopback.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address; set Config.AllowNonLoopback to listen there (the intake is unauthenticated)", addr)
	}
	return nil
}

// Start listens on the configured transports and starts tailing files. The
// listeners run until Close or until ctx is done.
func (in *Intake) Start(ctx context.Context) (err error) {
	in.mu.Lock()
	if in.started {
		in.mu.Unlock()
		return errors.New("intake: start: already started")
	}
	in.started = true
	in.mu.Unlock()

	addrs := map[string]string{"http": defaultAddr(in.cfg.HTTPAddr), "syslog-udp": defaultAddr(in.cfg.SyslogUDPAddr), "syslog-tcp": defaultAddr(in.cfg.SyslogTCPAddr)}
	for name, a := range addrs {
		if a == Disabled || in.cfg.AllowNonLoopback {
			continue
		}
		if err := checkLoopback(a); err != nil {
			return fmt.Errorf("intake: start %s: %w", name, err)
		}
	}
	ctx, in.cancel = context.WithCancel(ctx)
	defer func() {
		if err != nil {
			in.Close()
		}
	}()
	var lc net.ListenConfig
	if a := addrs["http"]; a != Disabled {
		if in.httpLn, err = lc.Listen(ctx, "tcp", a); err != nil {
			return fmt.Errorf("intake: start http: %w", err)
		}
		in.httpSrv = &http.Server{
			Handler:           in.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			ErrorLog:          slog.NewLogLogger(in.log.Handler(), slog.LevelDebug),
		}
		in.wg.Go(func() {
			if err := in.httpSrv.Serve(in.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				in.log.Error("intake: serve http", "err", err)
			}
		})
	}
	if a := addrs["syslog-udp"]; a != Disabled {
		if in.udpConn, err = lc.ListenPacket(ctx, "udp", a); err != nil {
			return fmt.Errorf("intake: start syslog-udp: %w", err)
		}
		in.wg.Go(in.serveUDP)
	}
	if a := addrs["syslog-tcp"]; a != Disabled {
		if in.tcpLn, err = lc.Listen(ctx, "tcp", a); err != nil {
			return fmt.Errorf("intake: start syslog-tcp: %w", err)
		}
		in.wg.Go(in.serveTCP)
	}
	for _, f := range in.cfg.Files {
		in.wg.Go(func() { in.tail(ctx, f) })
	}
	in.wg.Go(func() {
		<-ctx.Done()
		in.closeListeners()
	})
	return nil
}

// HTTPURL is the base URL of the HTTP transport (http://127.0.0.1:PORT), ""
// when disabled or not started. Alerts go to HTTPURL()+"/v1/alerts".
func (in *Intake) HTTPURL() string {
	if in.httpLn == nil {
		return ""
	}
	return "http://" + in.httpLn.Addr().String()
}

// SyslogUDPAddr is the syslog UDP address, "" when disabled or not started.
func (in *Intake) SyslogUDPAddr() string {
	if in.udpConn == nil {
		return ""
	}
	return in.udpConn.LocalAddr().String()
}

// SyslogTCPAddr is the syslog TCP address, "" when disabled or not started.
func (in *Intake) SyslogTCPAddr() string {
	if in.tcpLn == nil {
		return ""
	}
	return in.tcpLn.Addr().String()
}

// Alerts returns a copy of the accepted alerts in receive order.
func (in *Intake) Alerts() []score.Alert {
	in.mu.Lock()
	defer in.mu.Unlock()
	return cloneAlerts(in.alerts)
}

func cloneAlerts(as []score.Alert) []score.Alert {
	out := make([]score.Alert, len(as))
	copy(out, as)
	return out
}

// Stats returns the counters per transport.
func (in *Intake) Stats() Stats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stats
}

// Wait blocks until cond holds for the accepted alerts (checked now and
// after every change) or ctx is done. cond gets a copy it may keep.
func (in *Intake) Wait(ctx context.Context, cond func([]score.Alert) bool) error {
	for {
		in.mu.Lock()
		as := cloneAlerts(in.alerts)
		ch := in.changed
		in.mu.Unlock()
		if cond(as) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("intake: wait for alerts (have %d): %w", len(as), ctx.Err())
		}
	}
}

// WaitStats blocks until cond holds for the counters (checked now and
// after every accepted, refused or skipped unit) or ctx is done. It awaits
// refusals, which add no alert.
func (in *Intake) WaitStats(ctx context.Context, cond func(Stats) bool) error {
	for {
		in.mu.Lock()
		st := in.stats
		ch := in.changed
		in.mu.Unlock()
		if cond(st) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("intake: wait for stats: %w", ctx.Err())
		}
	}
}

func (in *Intake) transport(source string) *TransportStats {
	switch source {
	case SourceHTTP:
		return &in.stats.HTTP
	case SourceSyslogUDP:
		return &in.stats.SyslogUDP
	case SourceSyslogTCP:
		return &in.stats.SyslogTCP
	default:
		return &in.stats.File
	}
}

func (in *Intake) notifyLocked() {
	close(in.changed)
	in.changed = make(chan struct{})
}

// accept stamps and stores alerts, then calls OnAlert.
func (in *Intake) accept(source string, as []score.Alert) {
	in.deliver.Lock()
	defer in.deliver.Unlock()
	t := in.now()
	in.mu.Lock()
	for i := range as {
		as[i].Time = t
		as[i].Source = source
	}
	in.alerts = append(in.alerts, as...)
	in.transport(source).Accepted += int64(len(as))
	in.notifyLocked()
	in.mu.Unlock()
	if in.cfg.OnAlert != nil {
		for _, a := range as {
			in.cfg.OnAlert(a)
		}
	}
}

// refuse counts a refused unit and logs why.
func (in *Intake) refuse(source string, err error, attrs ...any) {
	in.mu.Lock()
	ts := in.transport(source)
	ts.Refused++
	ts.LastError = err.Error()
	ts.LastErrorTime = in.now()
	in.notifyLocked()
	in.mu.Unlock()
	in.log.Warn("intake: refused", append([]any{"source", source, "err", err}, attrs...)...)
}

func (in *Intake) skip(source string) {
	in.mu.Lock()
	in.transport(source).Skipped++
	in.notifyLocked()
	in.mu.Unlock()
}

func (in *Intake) closeListeners() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return
	}
	in.closed = true
	if in.httpSrv != nil {
		_ = in.httpSrv.Close()
	} else if in.httpLn != nil {
		_ = in.httpLn.Close()
	}
	if in.udpConn != nil {
		_ = in.udpConn.Close()
	}
	if in.tcpLn != nil {
		_ = in.tcpLn.Close()
	}
	for c := range in.tcpConns {
		_ = c.Close()
	}
}

// Close stops every transport and waits for the HTTP server, the syslog
// readers (including open TCP connections, which it closes) and the file
// tails to return. Alerts, Stats and Wait keep working after Close.
func (in *Intake) Close() error {
	if in.cancel != nil {
		in.cancel()
	}
	in.closeListeners()
	in.wg.Wait()
	return nil
}

// serveUDP reads one message per datagram.
func (in *Intake) serveUDP() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := in.udpConn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			in.log.Warn("intake: read syslog-udp", "err", err)
			continue
		}
		in.syslogMessage(SourceSyslogUDP, buf[:n], from)
	}
}

func (in *Intake) syslogMessage(source string, msg []byte, from net.Addr) {
	a, err := DecodeSyslog(msg)
	if err != nil {
		in.refuse(source, fmt.Errorf("%s: %w", source, err), "from", from.String())
		return
	}
	in.accept(source, []score.Alert{a})
}

func (in *Intake) serveTCP() {
	for {
		c, err := in.tcpLn.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			in.log.Warn("intake: accept syslog-tcp", "err", err)
			continue
		}
		in.mu.Lock()
		if in.closed {
			in.mu.Unlock()
			_ = c.Close()
			return
		}
		in.tcpConns[c] = struct{}{}
		in.mu.Unlock()
		in.wg.Go(func() { in.serveTCPConn(c) })
	}
}

func (in *Intake) serveTCPConn(c net.Conn) {
	defer func() {
		in.mu.Lock()
		delete(in.tcpConns, c)
		in.mu.Unlock()
		_ = c.Close()
	}()
	fr := NewFrameReader(c, MaxFrame)
	for {
		frame, err := fr.Next()
		var fe *FrameError
		switch {
		case errors.As(err, &fe):
			in.refuse(SourceSyslogTCP, err, "from", c.RemoteAddr().String())
			continue
		case errors.Is(err, io.ErrUnexpectedEOF):
			in.refuse(SourceSyslogTCP, fmt.Errorf("syslog-tcp frame: connection closed inside a frame"), "from", c.RemoteAddr().String())
			return
		case err != nil:
			return
		}
		in.syslogMessage(SourceSyslogTCP, frame, c.RemoteAddr())
	}
}
