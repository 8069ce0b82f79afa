package hl7

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pumplab/pumplab/clock"
)

// Handler answers one message. It returns the reply to write, or nil for the
// server's default acknowledgement (see Server), or an error: an *AckError
// chooses the ERR content and MSA-1, any other error gives AE with ERR-3 207
// and the error text in ERR-8. ctx is cancelled when the server closes.
type Handler func(ctx context.Context, m *Message, meta ConnMeta) (*Message, error)

// ConnMeta describes the connection a message came in on.
type ConnMeta struct {
	ConnID     uint64 // 1, 2, ... per server
	RemoteAddr string
	LocalAddr  string
	TLS        bool
	// PeerCN is the common name of the TLS client certificate ("" without
	// one); PeerCert the certificate itself.
	PeerCN   string
	PeerCert *x509.Certificate
}

// Config configures a Server. The zero value works: plain MLLP on
// 127.0.0.1:0 answering every message with a default acknowledgement.
type Config struct {
	// Addr is the listen address, default 127.0.0.1:0.
	Addr string
	// TLS, when set, makes the server speak MLLP over TLS. Set ClientAuth
	// to tls.RequireAndVerifyClientCert for mutual TLS (the lab's ATNA-style
	// control).
	TLS *tls.Config
	// Handler answers messages; nil acknowledges everything.
	Handler Handler
	// MaxMessage caps the size of a frame, default MaxMessageSize.
	MaxMessage int
	// Logger receives connection and rejection logs; nil discards.
	Logger *slog.Logger
	// Clock stamps MSH-7 of acknowledgements; nil is the wall clock.
	Clock clock.Clock
	// App and Facility are MSH-3 and MSH-4 of generated acknowledgements
	// ("NAME^ID^TYPE" allowed); empty means the MSH-5/6 of the message.
	App, Facility string
	// IDPrefix prefixes the MSH-10 of generated acknowledgements (followed by
	// a counter), default "ACK".
	IDPrefix string
	// HandshakeTimeout bounds the TLS handshake (wall time), default 10s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds writing a reply (wall time), default 10s.
	WriteTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for that long (wall
	// time); 0 keeps idle connections open (interface engines keep MLLP
	// connections up for days).
	IdleTimeout time.Duration

	// Name names the listener in Reject.Target and logs (e.g.
	// "alarm-manager"); default its address.
	Name string
	// AllowedCNs, when set, lists the client certificate common names
	// allowed to send (posture mtls-mllp allowed_sources); needs TLS. A
	// connection from anyone else is reported at once and its first
	// message is answered AR (ERR-5 SENDER-NOT-ALLOWED, ERR-8 naming the
	// CN and the listener), then closed; no message of it is handled.
	AllowedCNs []string
	// RateLimit, when set, limits the messages of each source (posture
	// rate-limit, target mllp); see RateLimit.
	RateLimit *RateLimit
	// OnReject receives every act of the controls above and every failed
	// TLS handshake; it is called from the connection goroutines, possibly
	// at once, and must not block.
	OnReject func(Reject)
}

// Stats counts what a server saw.
type Stats struct {
	Connections int64 // accepted connections
	Received    int64 // frames received (valid or not)
	Accepted    int64 // messages answered with AA/CA or a handler reply
	Rejected    int64 // frames answered with AR/AE/CR/CE, oversize frames, runs of unframed bytes
	TLSFailures int64 // failed TLS handshakes
	NotAllowed  int64 // connections refused by AllowedCNs
	RateLimited int64 // messages answered AR by the rate limit (also in Rejected)
}

// Server is an MLLP listener. Create it with New, then Start; Close stops it.
//
// Acknowledgement rules: each frame gets exactly one reply frame, written on
// the same connection.
//   - Unparseable message: ACK with MSA-1 AR and an ERR (ERR-2 location,
//     ERR-3 table 0357 code from the *ParseError, ERR-4 E, ERR-8 text);
//     MSA-2 is the MSH-10 when it can still be read.
//   - Handler returns a reply: written as is (MSH-7 and MSH-10 filled in if
//     empty).
//   - Handler returns nil, nil: ACK with MSA-1 CA when MSH-15 (accept
//     acknowledgement type) is AL, SU or ER (enhanced mode), otherwise AA
//     (original mode, also for MSH-15 NE: the server always answers).
//   - Handler returns an error: ACK with MSA-1 AE (CE in enhanced mode), or
//     the *AckError's AckCode, and its ERR segment. A handler panic is
//     answered as 207 AE.
//   - Frame larger than MaxMessage: ACK AR (207) then the connection closes.
//   - Bytes outside a frame are discarded without reply (MLLP); a bad end
//     block gets AR.
//
// The connection and the server keep serving after a rejection.
type Server struct {
	cfg    Config
	log    *slog.Logger
	clk    clock.Clock
	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup

	connSeq, ackSeq                                  atomic.Uint64
	nConns, nRecv, nAccepted, nRejected, nTLSFailure atomic.Int64
	nNotAllowed, nRateLimited                        atomic.Int64

	allowed     map[string]bool
	allowedList string
	limit       *limiter
}

// New returns a server for cfg; it does not listen until Start.
func New(cfg Config) *Server {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = MaxMessageSize
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "ACK"
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, clk: cfg.Clock, conns: map[net.Conn]struct{}{}}
	if cfg.AllowedCNs != nil {
		s.allowed = map[string]bool{}
		for _, cn := range cfg.AllowedCNs {
			s.allowed[cn] = true
		}
		s.allowedList = strings.Join(cfg.AllowedCNs, ", ")
	}
	if cfg.RateLimit != nil {
		s.limit = &limiter{cfg: *cfg.RateLimit, buckets: map[string]*tokenBucket{}}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clk == nil {
		s.clk = clock.Real()
	}
	return s
}

// Start listens on cfg.Addr and serves in the background. Cancelling ctx
// closes the server (like Close).
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil || s.closed {
		return errors.New("hl7: server: already started or closed")
	}
	if s.cfg.AllowedCNs != nil && (s.cfg.TLS == nil || len(s.cfg.AllowedCNs) == 0) {
		return fmt.Errorf("hl7: server %s: AllowedCNs needs TLS and at least one name", s.cfg.Addr)
	}
	if r := s.cfg.RateLimit; r != nil && (r.PerSecond <= 0 || r.Burst < 1) {
		return fmt.Errorf("hl7: server %s: rate limit %g/s burst %d: per second must be > 0 and burst >= 1", s.cfg.Addr, r.PerSecond, r.Burst)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("hl7: server: listen %s: %w", s.cfg.Addr, err)
	}
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.wg.Add(1)
	go s.acceptLoop()
	context.AfterFunc(ctx, func() { _ = s.Close() })
	s.log.Info("hl7 server listening", "addr", ln.Addr().String(), "tls", s.cfg.TLS != nil)
	return nil
}

// Addr returns the address the server listens on ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections: s.nConns.Load(),
		Received:    s.nRecv.Load(),
		Accepted:    s.nAccepted.Load(),
		Rejected:    s.nRejected.Load(),
		TLSFailures: s.nTLSFailure.Load(),
		NotAllowed:  s.nNotAllowed.Load(),
		RateLimited: s.nRateLimited.Load(),
	}
}

// Close stops accepting, cancels the handlers' context, interrupts idle
// connections, and waits until the accept loop, the running handlers (whose
// replies are still written) and the connection goroutines have returned.
// It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
		s.cancel()
	}
	for c := range s.conns {
		// Interrupt blocked reads; the connection goroutine closes it.
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("hl7 server accept", "err", err)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.nConns.Add(1)
		go s.serveConn(c)
	}
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	meta := ConnMeta{ConnID: s.connSeq.Add(1), RemoteAddr: c.RemoteAddr().String(), LocalAddr: c.LocalAddr().String()}
	log := s.log.With("conn", meta.ConnID, "remote", meta.RemoteAddr)
	if tc, ok := c.(*tls.Conn); ok {
		meta.TLS = true
		hctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			s.nTLSFailure.Add(1)
			why := describeHandshake(err)
			log.Warn("hl7 server: TLS handshake failed", "listener", s.name(), "err", why)
			s.reject(Reject{Control: ControlMTLS, Action: Blocked, Target: s.name(), Source: meta.RemoteAddr,
				Reason: "TLS handshake failed: " + why, Ref: fmt.Sprintf("conn %d %s", meta.ConnID, meta.RemoteAddr)})
			return
		}
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			meta.PeerCert = certs[0]
			meta.PeerCN = certs[0].Subject.CommonName
		}
	}
	log.Debug("hl7 server: connection", "tls", meta.TLS, "peer_cn", meta.PeerCN)
	refused := s.notAllowed(meta)
	if refused != "" {
		s.nNotAllowed.Add(1)
		log.Warn("hl7 server: sender not allowed", "listener", s.name(), "peer_cn", meta.PeerCN, "reason", refused)
		src := meta.PeerCN
		if src == "" {
			src = meta.RemoteAddr
		}
		s.reject(Reject{Control: ControlMTLS, Action: Blocked, Target: s.name(), Source: src, Reason: refused,
			Ref: fmt.Sprintf("conn %d %s", meta.ConnID, meta.RemoteAddr)})
	}
	br := bufio.NewReader(c)
	inGarbage := false
	for {
		if !s.armRead(c) {
			return
		}
		frame, err := ReadFrame(br, s.cfg.MaxMessage)
		if err != nil {
			switch {
			case errors.Is(err, ErrMissingStartBlock):
				if !inGarbage {
					s.nRejected.Add(1)
					log.Warn("hl7 server: bytes outside a frame discarded", "err", err)
				}
				inGarbage = true
				continue
			case errors.Is(err, ErrFrameTooLarge):
				s.nRecv.Add(1)
				s.nRejected.Add(1)
				log.Warn("hl7 server: oversized frame, closing", "max", s.cfg.MaxMessage)
				ack := s.rejectRaw(nil, &AckError{Code: ErrCodeInternal,
					Message: fmt.Sprintf("message exceeds %d bytes", s.cfg.MaxMessage)})
				_ = s.write(c, ack)
				return
			case errors.Is(err, ErrBadEndBlock):
				s.nRecv.Add(1)
				s.nRejected.Add(1)
				log.Warn("hl7 server: bad end block", "err", err)
				ack := s.rejectRaw(nil, &AckError{Code: ErrCodeSegmentSequence, Message: err.Error()})
				if s.write(c, ack) != nil {
					return
				}
				continue
			default:
				if !errors.Is(err, net.ErrClosed) && !isEOF(err) && !isTimeout(err) {
					log.Debug("hl7 server: read", "err", err)
				}
				return
			}
		}
		inGarbage = false
		s.nRecv.Add(1)
		if refused != "" {
			s.nRejected.Add(1)
			_ = s.write(c, s.rejectRaw(frame, &AckError{Code: ErrCodeInternal, AppCode: AppCodeSenderNotAllowed,
				AppText: "sender not allowed", Message: refused}))
			return
		}
		if reply, limited := s.rateLimit(frame, meta, log); limited {
			if err := s.write(c, reply); err != nil {
				return
			}
			continue
		}
		reply := s.handle(frame, meta, log)
		if err := s.write(c, reply); err != nil {
			log.Debug("hl7 server: write reply", "err", err)
			return
		}
	}
}

// armRead sets the idle deadline before a read; it reports false once the
// server is closing (under the lock, so that Close's interruption is never
// overwritten).
func (s *Server) armRead(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.cfg.IdleTimeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	}
	return true
}

func isEOF(err error) bool {
	return errors.Is(err, ErrTruncatedFrame) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Server) write(c net.Conn, msg []byte) error {
	_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	return WriteFrame(c, msg)
}

// handle parses one frame, runs the handler and returns the reply bytes.
func (s *Server) handle(frame []byte, meta ConnMeta, log *slog.Logger) []byte {
	m, err := ParseLimit(frame, s.cfg.MaxMessage)
	if err != nil {
		s.nRejected.Add(1)
		log.Warn("hl7 server: rejected unparseable message", "err", err)
		return s.rejectRaw(frame, AsAckError(err))
	}
	reply, herr := s.callHandler(m, meta)
	enhanced := false
	switch m.Segment("MSH").Value(15) {
	case "AL", "SU", "ER":
		enhanced = true
	}
	if herr != nil {
		ae := AsAckError(herr)
		code := ae.AckCode
		if code == "" {
			code = AckAE
			if enhanced {
				code = AckCE
			}
		}
		if ae.Code == 0 {
			cp := *ae
			cp.Code = ErrCodeInternal
			ae = &cp
		}
		s.nRejected.Add(1)
		log.Info("hl7 server: handler rejected message", "type", m.Type().String(), "id", m.ControlID(), "ack", code, "err", herr)
		ack := BuildAck(m, code, ae)
		s.stamp(ack)
		return ack.Bytes()
	}
	s.nAccepted.Add(1)
	if reply == nil {
		code := AckAA
		if enhanced {
			code = AckCA
		}
		reply = BuildAck(m, code, nil)
		s.stamp(reply)
		return reply.Bytes()
	}
	if msh := reply.Segment("MSH"); msh != nil {
		if msh.Value(7) == "" {
			msh.SetField(7, F(FormatTime(s.clk.Now())))
		}
		if msh.Value(10) == "" {
			msh.SetField(10, F(s.nextID()))
		}
	}
	return reply.Bytes()
}

func (s *Server) callHandler(m *Message, meta ConnMeta) (reply *Message, err error) {
	if s.cfg.Handler == nil {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("hl7 server: handler panic", "panic", r)
			reply, err = nil, &AckError{Code: ErrCodeInternal, Message: "internal error"}
		}
	}()
	return s.cfg.Handler(s.ctx, m, meta)
}

func (s *Server) nextID() string {
	return s.cfg.IDPrefix + strconv.FormatUint(s.ackSeq.Add(1), 10)
}

// stamp sets MSH-3/4 (when configured), MSH-7 and MSH-10 of a generated
// acknowledgement.
func (s *Server) stamp(ack *Message) {
	msh := ack.Segment("MSH")
	if s.cfg.App != "" {
		msh.SetField(3, ParseHD(s.cfg.App).field())
	}
	if s.cfg.Facility != "" {
		msh.SetField(4, ParseHD(s.cfg.Facility).field())
	}
	ack.Stamp(s.clk.Now(), s.nextID())
}

// rejectRaw builds an AR acknowledgement for bytes that did not parse,
// reading what it can of their MSH (control ID, trigger, applications).
func (s *Server) rejectRaw(raw []byte, ae *AckError) []byte {
	h := sniffHeader(raw)
	rh := h.Reply()
	rh.Type = MessageType{Code: "ACK"}
	if h.Type.Trigger != "" {
		rh.Type = MessageType{"ACK", h.Type.Trigger, "ACK"}
	}
	ack := BuildAckMessage(Ack{Header: rh, Code: AckAR, AckedID: h.ControlID, Errors: []AckError{*ae}})
	s.stamp(ack)
	return ack.Bytes()
}

// sniffHeader reads MSH-3..6, MSH-9.2 and MSH-10 from raw bytes that failed
// to parse, keeping only plausible values.
func sniffHeader(raw []byte) Header {
	var h Header
	if len(raw) < 8 || !bytes.HasPrefix(raw, []byte("MSH")) {
		return h
	}
	line := raw
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	if len(line) < 4 {
		return h
	}
	sep := line[3]
	if !validDelim(sep) {
		return h
	}
	parts := bytes.Split(line, []byte{sep})
	get := func(n int) string { // MSH-n
		if n-1 >= len(parts) {
			return ""
		}
		v := parts[n-1]
		if len(v) > 64 {
			return ""
		}
		for _, c := range v {
			if c < ' ' || c >= 0x7f {
				return ""
			}
		}
		return string(v)
	}
	comp := byte('^')
	if len(parts) > 1 && len(parts[1]) > 0 {
		comp = parts[1][0]
	}
	hd := func(n int) HD {
		p := bytes.SplitN([]byte(get(n)), []byte{comp}, 3)
		for len(p) < 3 {
			p = append(p, nil)
		}
		return HD{string(p[0]), string(p[1]), string(p[2])}
	}
	h.SendingApp, h.SendingFacility = hd(3), hd(4)
	h.ReceivingApp, h.ReceivingFacility = hd(5), hd(6)
	h.ControlID = get(10)
	if t := bytes.Split([]byte(get(9)), []byte{comp}); len(t) > 1 && validCode(string(t[1]), 1, 3) {
		h.Type.Trigger = string(t[1])
	}
	return h
}

// Unsupported returns the error a handler returns for a message type it does
// not handle: AR with ERR-3 200 at MSH-9.
func Unsupported(m *Message) *AckError {
	return &AckError{Code: ErrCodeUnsupportedType, Segment: "MSH", Seq: 1, Field: 9, AckCode: AckAR,
		Message: fmt.Sprintf("unsupported message type %s", m.Type())}
}

// Mux routes messages to handlers by "CODE^TRIGGER" (e.g. "RGV^O15"), or by
// "CODE" alone as a fallback. Unknown types are rejected with Unsupported.
type Mux struct {
	mu sync.RWMutex
	m  map[string]Handler
}

// Handle registers h for typ ("RGV^O15" or "ORU").
func (x *Mux) Handle(typ string, h Handler) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[string]Handler{}
	}
	x.m[typ] = h
}

// Serve is the Handler of the mux.
func (x *Mux) Serve(ctx context.Context, m *Message, meta ConnMeta) (*Message, error) {
	t := m.Type()
	x.mu.RLock()
	h, ok := x.m[t.String()]
	if !ok {
		h, ok = x.m[t.Code]
	}
	x.mu.RUnlock()
	if !ok {
		return nil, Unsupported(m)
	}
	return h(ctx, m, meta)
}
