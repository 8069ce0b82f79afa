package pumpwire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
)

// authDomain separates envelope signatures from any other use of a key.
const authDomain = "pumplab-pumpwire-auth-v1"

// Errors of Verify; test with errors.Is. Every error Verify returns is an
// *AuthError wrapping one of them.
var (
	ErrUnsigned     = errors.New("envelope is not signed")
	ErrUnknownKey   = errors.New("unknown key id")
	ErrBadSignature = errors.New("signature does not verify")
	ErrReplay       = errors.New("replayed message")
	ErrCounter      = errors.New("counter outside the window")
	ErrStale        = errors.New("timestamp too old")
	ErrFuture       = errors.New("timestamp in the future")
	ErrWrongSender  = errors.New("key not allowed for this sender")
)

// AuthError is the typed error of Verify: Code is the machine code a pump
// sends in its ack (AUTH-UNSIGNED, AUTH-KEY, AUTH-SIG, AUTH-REPLAY,
// AUTH-COUNTER, AUTH-STALE, AUTH-FUTURE, AUTH-SENDER), Err the sentinel.
type AuthError struct {
	Code   string
	Err    error
	Detail string
}

func (e *AuthError) Error() string {
	if e.Detail == "" {
		return "pumpwire: auth " + e.Code + ": " + e.Err.Error()
	}
	return "pumpwire: auth " + e.Code + ": " + e.Err.Error() + ": " + e.Detail
}

// Unwrap returns the sentinel.
func (e *AuthError) Unwrap() error { return e.Err }

var authCodes = map[error]string{
	ErrUnsigned: "AUTH-UNSIGNED", ErrUnknownKey: "AUTH-KEY", ErrBadSignature: "AUTH-SIG",
	ErrReplay: "AUTH-REPLAY", ErrCounter: "AUTH-COUNTER", ErrStale: "AUTH-STALE", ErrFuture: "AUTH-FUTURE",
	ErrWrongSender: "AUTH-SENDER",
}

func authErr(sentinel error, format string, args ...any) *AuthError {
	return &AuthError{Code: authCodes[sentinel], Err: sentinel, Detail: fmt.Sprintf(format, args...)}
}

// AuthCode returns the code of an *AuthError in err's chain, "" otherwise.
func AuthCode(err error) string {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// SignedBytes returns the byte string an envelope signature covers: the JSON
// object {"domain","v","id","from","ts","seq","body","kid","nonce"} with ts
// in RFC 3339 (UTC, nanoseconds as needed) and body compacted (insignificant
// white space removed). The nonce and key id are covered, so neither can be
// changed to make a captured message look fresh.
func SignedBytes(e Envelope, kid, nonce string) ([]byte, error) {
	var body bytes.Buffer
	if err := json.Compact(&body, e.Body); err != nil {
		return nil, fmt.Errorf("pumpwire: signed bytes: body: %w", err)
	}
	return json.Marshal(struct {
		Domain string          `json:"domain"`
		V      int             `json:"v"`
		ID     string          `json:"id"`
		From   string          `json:"from"`
		TS     string          `json:"ts"`
		Seq    uint64          `json:"seq"`
		Body   json.RawMessage `json:"body"`
		KID    string          `json:"kid"`
		Nonce  string          `json:"nonce"`
	}{authDomain, e.V, e.ID, e.From, e.TS.UTC().Format(time.RFC3339Nano), e.Seq, body.Bytes(), kid, nonce})
}

// Signer signs envelopes with an Ed25519 key (the pump server for commands,
// a pump for its reports).
type Signer struct {
	KeyID string
	Key   ed25519.PrivateKey
	// Rand is the nonce source; nil = crypto/rand. Tests give a seeded
	// reader for reproducible nonces.
	Rand io.Reader

	mu sync.Mutex
}

// Sign fills e.Auth: the key id, a fresh random 128-bit nonce (hex) and the
// base64 Ed25519 signature over SignedBytes.
func (s *Signer) Sign(e *Envelope) error {
	if s == nil || len(s.Key) != ed25519.PrivateKeySize {
		return errors.New("pumpwire: sign: signer has no Ed25519 private key")
	}
	if s.KeyID == "" || len(s.KeyID) > 64 {
		return errors.New("pumpwire: sign: key id missing or longer than 64")
	}
	var n [16]byte
	r := s.Rand
	if r == nil {
		r = rand.Reader
	}
	s.mu.Lock()
	_, err := io.ReadFull(r, n[:])
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("pumpwire: sign: nonce: %w", err)
	}
	nonce := hex.EncodeToString(n[:])
	msg, err := SignedBytes(*e, s.KeyID, nonce)
	if err != nil {
		return err
	}
	e.Auth = &Auth{KeyID: s.KeyID, Nonce: nonce, Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(s.Key, msg))}
	return nil
}

// EncodeSigned is Encode with the envelope signed by s (s nil = unsigned,
// exactly as Encode).
func EncodeSigned(s *Signer, id, from string, ts time.Time, seq uint64, body any) ([]byte, error) {
	if s == nil {
		return Encode(id, from, ts, seq, body)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("pumpwire: encode body: %w", err)
	}
	e := Envelope{V: Version, ID: id, From: from, TS: ts.UTC(), Seq: seq, Body: b}
	if err := s.Sign(&e); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Keys maps key ids to Ed25519 public keys.
	Keys map[string]ed25519.PublicKey
	// Owners optionally binds a key id to the one sender (envelope from) it
	// may sign for; a key id absent here signs for anyone.
	Owners map[string]string
	// NonceCache is how many recent nonces are remembered per sender;
	// default 4096.
	NonceCache int
	// CounterWindow is how far below the highest counter (seq) seen from a
	// sender a counter may be and still be accepted, once; default 32.
	CounterWindow int
	// MaxSkew is the largest accepted distance between an envelope's ts and
	// the verifier's clock; default 30 s.
	MaxSkew time.Duration
	// Clock is the lab clock; nil = clock.Real().
	Clock clock.Clock
}

// Verifier checks signed envelopes: key, signature, timestamp skew, nonce
// replay and per-sender counter window. It is safe for concurrent use.
type Verifier struct {
	cfg VerifierConfig

	mu      sync.Mutex
	senders map[string]*senderState
}

type senderState struct {
	nonces  map[string]struct{}
	ring    []string // nonces, oldest overwritten first
	next    int
	highest uint64              // highest counter accepted
	seen    map[uint64]struct{} // counters accepted within the window below highest
	lastTS  time.Time           // newest ts accepted
}

// NewVerifier returns a verifier; the key maps are copied.
func NewVerifier(cfg VerifierConfig) *Verifier {
	keys := make(map[string]ed25519.PublicKey, len(cfg.Keys))
	for k, v := range cfg.Keys {
		keys[k] = v
	}
	owners := make(map[string]string, len(cfg.Owners))
	for k, v := range cfg.Owners {
		owners[k] = v
	}
	cfg.Keys, cfg.Owners = keys, owners
	if cfg.NonceCache <= 0 {
		cfg.NonceCache = 4096
	}
	if cfg.CounterWindow < 0 {
		cfg.CounterWindow = 0
	} else if cfg.CounterWindow == 0 {
		cfg.CounterWindow = 32
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	return &Verifier{cfg: cfg, senders: map[string]*senderState{}}
}

// Verify checks e and, when it passes, records its nonce and counter so
// that the same message is refused next time. Checks, in order: signed
// (ErrUnsigned), key known (ErrUnknownKey) and allowed for the sender
// (ErrWrongSender), signature (ErrBadSignature), ts within MaxSkew
// (ErrStale, ErrFuture), nonce unseen (ErrReplay), counter (ErrCounter, or
// ErrReplay for a counter already accepted).
//
// Counter rule, per sender: a counter above the highest seen is accepted; one
// at most CounterWindow below it is accepted once; one further below is
// refused — unless its ts is later than every message accepted from that
// sender so far, which is a restarted sender starting a new count (a replay
// cannot have a later ts: ts is signed).
func (v *Verifier) Verify(e Envelope) error {
	if err := v.VerifySignature(e); err != nil {
		return err
	}
	return v.fresh(e)
}

// VerifySignature checks only who signed e (ErrUnsigned, ErrUnknownKey,
// ErrWrongSender, ErrBadSignature) and records nothing: for messages that
// may legitimately arrive again or late — retained messages, events and
// alarms a pump buffered offline or sends again for want of a receipt —
// whose replays the receiver absorbs by other means (deduplication by
// envelope id).
func (v *Verifier) VerifySignature(e Envelope) error {
	a := e.Auth
	if a == nil || a.Sig == "" {
		return authErr(ErrUnsigned, "message %q from %q has no auth block", e.ID, e.From)
	}
	pub, ok := v.cfg.Keys[a.KeyID]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return authErr(ErrUnknownKey, "kid %q", a.KeyID)
	}
	if owner, bound := v.cfg.Owners[a.KeyID]; bound && owner != e.From {
		return authErr(ErrWrongSender, "kid %q signs for %q, message is from %q", a.KeyID, owner, e.From)
	}
	if a.Nonce == "" || len(a.Nonce) > 128 {
		return authErr(ErrBadSignature, "nonce missing or longer than 128")
	}
	sig, err := base64.StdEncoding.DecodeString(a.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return authErr(ErrBadSignature, "sig is not a base64 Ed25519 signature")
	}
	msg, err := SignedBytes(e, a.KeyID, a.Nonce)
	if err != nil {
		return authErr(ErrBadSignature, "%v", err)
	}
	if !ed25519.Verify(pub, msg, sig) {
		return authErr(ErrBadSignature, "message %q from %q, kid %q", e.ID, e.From, a.KeyID)
	}
	return nil
}

// fresh checks the time skew, the nonce and the counter of a message whose
// signature verified, and records them.
func (v *Verifier) fresh(e Envelope) error {
	a := e.Auth
	now := v.cfg.Clock.Now()
	switch d := now.Sub(e.TS); {
	case d > v.cfg.MaxSkew:
		return authErr(ErrStale, "ts %s is %s before now, max skew %s", e.TS.UTC().Format(time.RFC3339Nano), d, v.cfg.MaxSkew)
	case -d > v.cfg.MaxSkew:
		return authErr(ErrFuture, "ts %s is %s after now, max skew %s", e.TS.UTC().Format(time.RFC3339Nano), -d, v.cfg.MaxSkew)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	st := v.senders[e.From]
	if st == nil {
		st = &senderState{nonces: map[string]struct{}{}, seen: map[uint64]struct{}{}}
		v.senders[e.From] = st
	}
	if _, dup := st.nonces[a.Nonce]; dup {
		return authErr(ErrReplay, "nonce %s from %q already seen", a.Nonce, e.From)
	}
	w := uint64(v.cfg.CounterWindow)
	switch {
	case st.highest == 0 || e.Seq > st.highest:
		st.advance(e.Seq, w)
	case st.highest-e.Seq <= w:
		if _, dup := st.seen[e.Seq]; dup {
			return authErr(ErrReplay, "counter %d from %q already accepted", e.Seq, e.From)
		}
		st.seen[e.Seq] = struct{}{}
	case e.TS.After(st.lastTS):
		// A restarted sender: a new count.
		st.highest = 0
		clear(st.seen)
		st.advance(e.Seq, w)
	default:
		return authErr(ErrCounter, "counter %d from %q is more than %d below the highest %d", e.Seq, e.From, w, st.highest)
	}
	if e.TS.After(st.lastTS) {
		st.lastTS = e.TS
	}
	if len(st.ring) < v.cfg.NonceCache {
		st.ring = append(st.ring, a.Nonce)
	} else {
		delete(st.nonces, st.ring[st.next])
		st.ring[st.next] = a.Nonce
		st.next = (st.next + 1) % len(st.ring)
	}
	st.nonces[a.Nonce] = struct{}{}
	return nil
}

// advance makes seq the highest counter and forgets counters below the window.
func (st *senderState) advance(seq, w uint64) {
	st.highest = seq
	st.seen[seq] = struct{}{}
	for c := range st.seen {
		if seq-c > w {
			delete(st.seen, c)
		}
	}
}
