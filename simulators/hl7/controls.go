package hl7

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Control names reported in Reject.Control (the posture's control names).
const (
	ControlMTLS      = "mtls-mllp"
	ControlRateLimit = "rate-limit"
)

// Reject actions.
const (
	Blocked = "blocked"
	Flagged = "flagged"
)

// Application error codes (ERR-5.1) of the listener controls' AR replies.
const (
	AppCodeSenderNotAllowed = "SENDER-NOT-ALLOWED"
	AppCodeRateLimited      = "RATE-LIMIT"
)

// Reject is one act of a listener control (posture controls mtls-mllp and
// rate-limit), for lab evidence and the syslog audit.
type Reject struct {
	// Control is ControlMTLS or ControlRateLimit.
	Control string
	// Action is Blocked.
	Action string
	// Target is the listener: Config.Name, else its address.
	Target string
	// Source is who: the client certificate CN, else the remote address
	// (host:port; for the rate limit the host).
	Source string
	// Reason says why, in words.
	Reason string
	// Ref is the message control id (MSH-10) when there was a message,
	// else the connection ("conn 3 127.0.0.1:41234").
	Ref string
}

// RateLimit is a token bucket per source on the messages of a listener:
// PerSecond tokens a wall second, at most Burst saved. The source is the
// client certificate CN, else the remote host (all connections of a source
// share its bucket). A message over the limit is not handled: it is
// answered AR with an ERR naming the limit (ERR-5 RATE-LIMIT), and one
// Reject is reported per run of such answers.
type RateLimit struct {
	PerSecond float64
	Burst     int
	// Exempt lists sources (CNs or hosts) the limit does not apply to, e.g.
	// the pump server at the EHR listener, whose PCD-01 burst grows with
	// the fleet (one message per infusing channel every interval).
	Exempt []string
	// Now reads the wall clock; nil means time.Now.
	Now func() time.Time
}

type limiter struct {
	cfg     RateLimit
	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	tokens   float64
	last     time.Time
	limiting bool
}

// take spends a token of source's bucket. ok false means over the limit;
// first says it is the first refusal of a run.
func (l *limiter) take(source string) (ok, first bool) {
	now := time.Now()
	if l.cfg.Now != nil {
		now = l.cfg.Now()
	}
	burst := float64(l.cfg.Burst)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[source]
	if !found {
		b = &tokenBucket{tokens: burst, last: now}
		l.buckets[source] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*l.cfg.PerSecond)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		b.limiting = false
		return true, false
	}
	first = !b.limiting
	b.limiting = true
	return false, first
}

// describeHandshake says in words what a failed server-side handshake means.
func describeHandshake(err error) string {
	var rh tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.Is(err, io.EOF):
		return "the client closed the connection without a TLS handshake (a port probe?): " + msg
	case errors.As(err, &rh):
		return "the client did not speak TLS (plain MLLP on the TLS port?): " + msg
	case strings.Contains(msg, "didn't provide a certificate"):
		return "the client presented no certificate: " + msg
	case strings.Contains(msg, "unknown authority"):
		return "the client certificate is not from the lab CA: " + msg
	case strings.Contains(msg, "revoked"):
		return "the client certificate is revoked: " + msg
	case strings.Contains(msg, "expired") || strings.Contains(msg, "not yet valid"):
		return "the client certificate is not valid at lab time: " + msg
	}
	return msg
}

func (s *Server) name() string {
	if s.cfg.Name != "" {
		return s.cfg.Name
	}
	return s.Addr()
}

func (s *Server) reject(r Reject) {
	if s.cfg.OnReject != nil {
		s.cfg.OnReject(r)
	}
}

// sourceOf is the rate-limit source of a connection: the CN, else the host.
func sourceOf(meta ConnMeta) string {
	if meta.PeerCN != "" {
		return meta.PeerCN
	}
	if host, _, err := net.SplitHostPort(meta.RemoteAddr); err == nil {
		return host
	}
	return meta.RemoteAddr
}

// notAllowed returns why the connection may not send ("" if it may).
func (s *Server) notAllowed(meta ConnMeta) string {
	if s.allowed == nil || s.allowed[meta.PeerCN] {
		return ""
	}
	if meta.PeerCN == "" {
		return fmt.Sprintf("listener %s accepts only certificates of %s; the sender presented none", s.name(), s.allowedList)
	}
	return fmt.Sprintf("certificate CN %q is not allowed to send to listener %s (allowed: %s)", meta.PeerCN, s.name(), s.allowedList)
}

// VerificationError is the error of Dial (and SendOnce) when the server's
// certificate failed verification: not from a trusted CA, expired, revoked,
// or not issued to the expected server name (a man in the middle holding a
// certificate of the lab CA under another name). errors.As finds it, and
// *tls.CertificateVerificationError below it when crypto/tls produced it.
type VerificationError struct {
	Addr       string // the address dialled
	ServerName string // the identity the client expected
	Err        error
}

func (e *VerificationError) Error() string {
	return fmt.Sprintf("hl7: client: dial %s: the server's certificate failed verification as %q (wrong server or man in the middle?): %v",
		e.Addr, e.ServerName, e.Err)
}

func (e *VerificationError) Unwrap() error { return e.Err }

// hookError marks an error of the caller's VerifyPeerCertificate hook (the
// lab PKI's revocation check), so that Dial can tell it from I/O errors.
type hookError struct{ err error }

func (e *hookError) Error() string { return e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }

// isVerification reports whether a TLS dial error is a failed verification
// of the server's certificate.
func isVerification(err error) bool {
	var cv *tls.CertificateVerificationError
	var he *hookError
	return errors.As(err, &cv) || errors.As(err, &he)
}

// rateLimit answers a frame over the source's limit with AR; limited false
// lets it through.
func (s *Server) rateLimit(frame []byte, meta ConnMeta, log interface {
	Warn(msg string, args ...any)
}) (reply []byte, limited bool) {
	if s.limit == nil {
		return nil, false
	}
	src := sourceOf(meta)
	if slices.Contains(s.limit.cfg.Exempt, src) {
		return nil, false
	}
	ok, first := s.limit.take(src)
	if ok {
		return nil, false
	}
	s.nRejected.Add(1)
	s.nRateLimited.Add(1)
	r := s.limit.cfg
	msg := fmt.Sprintf("rate limit of %g messages/s (burst %d) per source exceeded by %s at listener %s; message not processed",
		r.PerSecond, r.Burst, src, s.name())
	if first {
		log.Warn("hl7 server: rate limited", "listener", s.name(), "source", src)
		s.reject(Reject{Control: ControlRateLimit, Action: Blocked, Target: s.name(), Source: src, Reason: msg,
			Ref: sniffHeader(frame).ControlID})
	}
	return s.rejectRaw(frame, &AckError{Code: ErrCodeInternal, AppCode: AppCodeRateLimited, AppText: "rate limit exceeded",
		Message: msg}), true
}
