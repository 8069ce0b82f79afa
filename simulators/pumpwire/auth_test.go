package pumpwire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
)

var t0 = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)

// seededKey returns a deterministic Ed25519 key.
func seededKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

type chachaReader struct{ r *rand.ChaCha8 }

func (c chachaReader) Read(p []byte) (int, error) { return c.r.Read(p) }

func testSigner() *Signer {
	return &Signer{KeyID: "srv-1", Key: seededKey(1), Rand: chachaReader{rand.NewChaCha8([32]byte{7})}}
}

func testVerifier(clk clock.Clock) *Verifier {
	return NewVerifier(VerifierConfig{Keys: map[string]ed25519.PublicKey{"srv-1": seededKey(1).Public().(ed25519.PublicKey)},
		Owners: map[string]string{"srv-1": "pumpserver"}, CounterWindow: 4, NonceCache: 8, MaxSkew: 30 * time.Second, Clock: clk})
}

func signedEnv(t *testing.T, s *Signer, from string, ts time.Time, seq uint64) Envelope {
	t.Helper()
	b, err := EncodeSigned(s, "m"+string(rune('a'+seq%26)), from, ts, seq, Command{CmdID: "C1", Op: OpStop, Channel: "A"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := DecodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestVerifyAcceptsSignedAndRefusesReplay(t *testing.T) {
	clk := clock.NewFake(t0)
	s, v := testSigner(), testVerifier(clk)
	e := signedEnv(t, s, "pumpserver", t0, 1)
	if err := v.Verify(e); err != nil {
		t.Fatalf("fresh signed message refused: %v", err)
	}
	err := v.Verify(e)
	if !errors.Is(err, ErrReplay) || AuthCode(err) != "AUTH-REPLAY" {
		t.Fatalf("replay: got %v (code %q), want ErrReplay AUTH-REPLAY", err, AuthCode(err))
	}
}

func TestVerifyRefusals(t *testing.T) {
	clk := clock.NewFake(t0)
	s := testSigner()
	other := &Signer{KeyID: "srv-1", Key: seededKey(2)}
	tamper := func(e Envelope) Envelope {
		e.Body = json.RawMessage(`{"cmd_id":"C1","op":"start","channel":"A"}`)
		return e
	}
	cases := []struct {
		name string
		env  func() Envelope
		want error
		code string
	}{
		{"unsigned", func() Envelope { e := signedEnv(t, s, "pumpserver", t0, 1); e.Auth = nil; return e }, ErrUnsigned, "AUTH-UNSIGNED"},
		{"unknown kid", func() Envelope { e := signedEnv(t, s, "pumpserver", t0, 1); e.Auth.KeyID = "x"; return e }, ErrUnknownKey, "AUTH-KEY"},
		{"wrong key", func() Envelope { return signedEnv(t, other, "pumpserver", t0, 1) }, ErrBadSignature, "AUTH-SIG"},
		{"body changed", func() Envelope { return tamper(signedEnv(t, s, "pumpserver", t0, 1)) }, ErrBadSignature, "AUTH-SIG"},
		{"nonce changed", func() Envelope { e := signedEnv(t, s, "pumpserver", t0, 1); e.Auth.Nonce = "00"; return e }, ErrBadSignature, "AUTH-SIG"},
		{"seq changed", func() Envelope { e := signedEnv(t, s, "pumpserver", t0, 1); e.Seq = 99; return e }, ErrBadSignature, "AUTH-SIG"},
		{"garbage sig", func() Envelope { e := signedEnv(t, s, "pumpserver", t0, 1); e.Auth.Sig = "!!"; return e }, ErrBadSignature, "AUTH-SIG"},
		{"stale", func() Envelope { return signedEnv(t, s, "pumpserver", t0.Add(-time.Minute), 1) }, ErrStale, "AUTH-STALE"},
		{"future", func() Envelope { return signedEnv(t, s, "pumpserver", t0.Add(time.Minute), 1) }, ErrFuture, "AUTH-FUTURE"},
		{"key of another sender", func() Envelope { return signedEnv(t, s, "attacker", t0, 1) }, ErrWrongSender, "AUTH-SENDER"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := testVerifier(clk).Verify(c.env())
			if !errors.Is(err, c.want) || AuthCode(err) != c.code {
				t.Fatalf("got %v (code %q), want %v (%s)", err, AuthCode(err), c.want, c.code)
			}
			if !strings.Contains(err.Error(), c.code) {
				t.Fatalf("error %q does not name its code", err)
			}
		})
	}
}

func TestVerifyCounterWindow(t *testing.T) {
	clk := clock.NewFake(t0)
	s, v := testSigner(), testVerifier(clk) // window 4
	for _, seq := range []uint64{10, 8, 9, 6} {
		if err := v.Verify(signedEnv(t, s, "pumpserver", t0, seq)); err != nil {
			t.Fatalf("seq %d within window refused: %v", seq, err)
		}
	}
	// 5 is more than 4 below 10, same ts as the newest accepted: refused.
	if err := v.Verify(signedEnv(t, s, "pumpserver", t0, 5)); !errors.Is(err, ErrCounter) {
		t.Fatalf("seq 5: got %v, want ErrCounter", err)
	}
	// A different message with a counter already accepted is a replay.
	e := signedEnv(t, s, "pumpserver", t0, 8)
	e2 := e
	if err := v.Verify(e2); !errors.Is(err, ErrReplay) {
		t.Fatalf("counter 8 again: got %v, want ErrReplay", err)
	}
	// A restarted sender (counter 1, later ts) starts a new count.
	clk.Advance(time.Second)
	if err := v.Verify(signedEnv(t, s, "pumpserver", clk.Now(), 1)); err != nil {
		t.Fatalf("restarted sender refused: %v", err)
	}
	if err := v.Verify(signedEnv(t, s, "pumpserver", clk.Now(), 2)); err != nil {
		t.Fatalf("restarted sender's next message refused: %v", err)
	}
}

func TestVerifyNonceCacheBounded(t *testing.T) {
	clk := clock.NewFake(t0)
	s, v := testSigner(), testVerifier(clk) // cache 8
	for seq := uint64(1); seq <= 100; seq++ {
		if err := v.Verify(signedEnv(t, s, "pumpserver", t0, seq)); err != nil {
			t.Fatal(err)
		}
	}
	st := v.senders["pumpserver"]
	if len(st.nonces) != 8 || len(st.ring) != 8 || len(st.seen) > 5 {
		t.Fatalf("state not bounded: %d nonces, %d ring, %d counters", len(st.nonces), len(st.ring), len(st.seen))
	}
}

func TestSignedEnvelopeDecodes(t *testing.T) {
	b, err := EncodeSigned(testSigner(), "m1", "pumpserver", t0, 1, Command{CmdID: "C1", Op: OpStop})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"auth":{"kid":"srv-1","nonce":"`)) {
		t.Fatalf("no auth block: %s", b)
	}
	if _, _, _, err := Decode(Topic("PUMP-0001", KindCmd), b); err != nil {
		t.Fatal(err)
	}
}

func TestCommandOps(t *testing.T) {
	for _, c := range []struct {
		cmd Command
		err string
	}{
		{Command{CmdID: "c", Op: OpSetRate, Channel: "A", RateMLH: 50}, ""},
		{Command{CmdID: "c", Op: OpSetRate, RateMLH: 0}, "field rate_ml_h"},
		{Command{CmdID: "c", Op: OpConfig, Settings: map[string]string{SetFlowCalibration: "2"}}, ""},
		{Command{CmdID: "c", Op: OpConfig}, "field settings"},
		{Command{CmdID: "c", Op: OpConfig, Settings: map[string]string{"telnet": "on"}}, "unknown setting"},
		{Command{CmdID: "c", Op: OpFirmware, Firmware: "2.0.0", Image: &FirmwareImage{Version: "2.0.1", Hash: strings.Repeat("ab", 32)}}, "differs"},
		{Command{CmdID: "c", Op: OpFirmware, Firmware: "2.0.0", Image: &FirmwareImage{Version: "2.0.0", Hash: "zz"}}, "field image: field hash"},
	} {
		err := c.cmd.Validate()
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%+v: got %v, want %q", c.cmd, err, c.err)
		}
	}
}

func TestFirmwareImage(t *testing.T) {
	key := seededKey(3)
	f, err := SignFirmware("4.2.0", strings.Repeat("0f", 32), "vendor-1", key)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	g := f
	g.Version = "4.3.0"
	if err := g.Verify(key.Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed version: got %v", err)
	}
	g = f
	g.Sig = ""
	if err := g.Verify(key.Public().(ed25519.PublicKey)); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned: got %v", err)
	}
	for _, c := range []struct {
		a, b string
		want int
	}{{"4.2", "4.2.0", 0}, {"4.2.0", "4.10", -1}, {"10.0", "9.9.9", 1}, {"1.0.1", "1.0.0", 1}} {
		got, err := CompareVersions(c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("CompareVersions(%s, %s) = %d, %v; want %d", c.a, c.b, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "1..2", "v1", "1.x", "1.2.3.4.5.6.7", "1234567890"} {
		if _, err := CompareVersions(bad, "1"); err == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
}

// FuzzVerify feeds arbitrary envelopes to Verify: it must never panic, and it
// must refuse anything not signed by the known key (the fuzzer cannot forge
// Ed25519).
func FuzzVerify(f *testing.F) {
	b, _ := EncodeSigned(testSigner(), "m1", "pumpserver", t0, 1, Command{CmdID: "C1", Op: OpStop})
	f.Add(b)
	for _, c := range Cases {
		f.Add([]byte(c.Payload))
	}
	f.Add([]byte(`{"v":1,"id":"m","from":"pumpserver","ts":"2026-01-01T08:00:00Z","seq":1,"body":{},"auth":{"kid":"srv-1","nonce":"00","sig":"AAAA"}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		e, err := DecodeEnvelope(payload)
		if err != nil {
			return
		}
		v := testVerifier(clock.NewFake(t0))
		err = v.Verify(e)
		if err == nil {
			// Only an untouched signed message may pass: re-verify must be a replay.
			if err2 := v.Verify(e); !errors.Is(err2, ErrReplay) {
				t.Fatalf("accepted message not remembered: %v", err2)
			}
			return
		}
		if AuthCode(err) == "" {
			t.Fatalf("untyped error %v", err)
		}
	})
}

func TestVerifySignatureRecordsNothing(t *testing.T) {
	clk := clock.NewFake(t0)
	s, v := testSigner(), testVerifier(clk)
	e := signedEnv(t, s, "pumpserver", t0.Add(-time.Hour), 1) // late: stale for Verify
	for i := 0; i < 2; i++ {
		if err := v.VerifySignature(e); err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
	}
	if err := v.Verify(e); !errors.Is(err, ErrStale) {
		t.Fatalf("full Verify of a late message: %v", err)
	}
	e.Seq++
	if err := v.VerifySignature(e); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered: %v", err)
	}
}
