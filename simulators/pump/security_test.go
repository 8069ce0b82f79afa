package pump

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

var labT0 = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)

func key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// ctlLog records control events.
type ctlLog struct {
	mu sync.Mutex
	ev []ControlEvent
}

func (c *ctlLog) add(e ControlEvent) { c.mu.Lock(); c.ev = append(c.ev, e); c.mu.Unlock() }
func (c *ctlLog) find(ctl, action string) []ControlEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ControlEvent
	for _, e := range c.ev {
		if e.Control == ctl && e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// secRig is a pump on a fake clock at labT0 with a control log and an
// unstarted agent (commands go through HandleCommand).
type secRig struct {
	*rig
	ctl *ctlLog
	a   *Agent
}

func newSecRig(t *testing.T, cfg Config, acfg AgentConfig) *secRig {
	t.Helper()
	ctl := &ctlLog{}
	cfg.OnControl = ctl.add
	r := &rig{t: t, clk: clock.NewFake(labT0)}
	cfg.Clock = r.clk
	if cfg.Library == nil {
		cfg.Library = testLib("TEST-1")
	}
	if cfg.CareArea == "" {
		cfg.CareArea = "ICU"
	}
	cfg.OnOutput = func(o Output) { r.mu.Lock(); r.out = append(r.out, o); r.mu.Unlock() }
	r.p = New(cfg)
	if acfg.BrokerURL == "" {
		acfg.BrokerURL = "tcp://127.0.0.1:1"
	}
	return &secRig{rig: r, ctl: ctl, a: NewAgent(r.p, acfg)}
}

func (s *secRig) cmd(signer *pumpwire.Signer, seq uint64, c pumpwire.Command) (pumpwire.CommandAck, []byte) {
	s.t.Helper()
	b, err := pumpwire.EncodeSigned(signer, fmt.Sprintf("srv-m%d", seq), "pumpserver", s.clk.Now(), seq, c)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.raw(b), b
}

func (s *secRig) raw(b []byte) pumpwire.CommandAck {
	s.t.Helper()
	ack, ok := s.a.HandleCommand(context.Background(), pumpwire.Topic(s.p.ID(), pumpwire.KindCmd), b)
	if !ok {
		s.t.Fatal("no ack")
	}
	return ack
}

func (s *secRig) running(rate float64) {
	s.t.Helper()
	s.program(pumpwire.Program{OrderID: "O1", PatientID: "MRN-1", RateMLH: rate, VTBI: 1000}, "A")
	s.must(s.p.Start("A", "RN1"))
}

func serverVerifier(clk clock.Clock) *pumpwire.Verifier {
	return pumpwire.NewVerifier(pumpwire.VerifierConfig{Keys: map[string]ed25519.PublicKey{"srv": key(1).Public().(ed25519.PublicKey)},
		Owners: map[string]string{"srv": "pumpserver"}, Clock: clk})
}

func TestSignedCommandsOn(t *testing.T) {
	s := newSecRig(t, Config{}, AgentConfig{})
	s.a.cfg.CommandVerifier = serverVerifier(s.clk)
	signer := &pumpwire.Signer{KeyID: "srv", Key: key(1)}
	s.running(50)

	// ATK-16 under the control: an unsigned set_rate is refused.
	ack, _ := s.cmd(nil, 1, pumpwire.Command{CmdID: "X1", Op: pumpwire.OpSetRate, Channel: "A", RateMLH: 400})
	if ack.Result != pumpwire.ResultRejected || ack.Code != "AUTH-UNSIGNED" {
		t.Fatalf("unsigned set_rate: %+v", ack)
	}
	// Signed by an attacker's key that the pump does not know the signature of.
	ack, _ = s.cmd(&pumpwire.Signer{KeyID: "srv", Key: key(9)}, 2, pumpwire.Command{CmdID: "X2", Op: pumpwire.OpSetRate, Channel: "A", RateMLH: 400})
	if ack.Code != "AUTH-SIG" {
		t.Fatalf("forged set_rate: %+v", ack)
	}
	if sn := s.snap("A"); sn.NominalMLH != 50 || sn.RateMLH != 50 {
		t.Fatalf("refused command changed the rate: %+v", sn)
	}
	if b := s.ctl.find(CtlSignedCommands, ActionBlocked); len(b) != 2 || b[0].Ref != "X1" || b[0].PumpID != s.p.ID() || !strings.Contains(b[0].Reason, "not signed") {
		t.Fatalf("blocked events %+v", b)
	}
	if !hasLog(s.p, "command_refused", "AUTH-UNSIGNED") {
		t.Fatal("refusal not in the pump log")
	}

	// The legitimate server's signed command runs, and its replay is refused.
	ack, payload := s.cmd(signer, 3, pumpwire.Command{CmdID: "C3", Op: pumpwire.OpPause, Channel: "A"})
	if ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("signed pause: %+v", ack)
	}
	if len(s.ctl.find(CtlSignedCommands, ActionAllowed)) != 1 {
		t.Fatal("allowed command not reported")
	}
	s.must(s.p.Resume("A", "RN1"))
	if ack := s.raw(payload); ack.Code != "AUTH-REPLAY" || ack.Result != pumpwire.ResultRejected {
		t.Fatalf("replayed pause: %+v", ack)
	}
	if s.snap("A").State != ChInfusing {
		t.Fatal("replayed pause was executed")
	}
	// A stale captured command (older than max skew) is refused too.
	old, _ := pumpwire.EncodeSigned(signer, "srv-m9", "pumpserver", s.clk.Now().Add(-time.Hour), 9, pumpwire.Command{CmdID: "C9", Op: pumpwire.OpStop, Channel: "A"})
	if ack := s.raw(old); ack.Code != "AUTH-STALE" {
		t.Fatalf("stale command: %+v", ack)
	}
}

func hasLog(p *Pump, action, code string) bool {
	for _, e := range p.Log() {
		if e.Action == action && (code == "" || e.Code == code) {
			return true
		}
	}
	return false
}

func TestSetRateLegacy(t *testing.T) {
	s := newSecRig(t, Config{}, AgentConfig{})
	s.running(50)
	s.clk.Advance(time.Minute)
	ack, _ := s.cmd(nil, 1, pumpwire.Command{CmdID: "X1", Op: pumpwire.OpSetRate, Channel: "A", RateMLH: 400})
	if ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("legacy set_rate: %+v", ack)
	}
	sn := s.snap("A")
	if sn.RateMLH != 400 || sn.NominalMLH != 400 || sn.State != ChInfusing {
		t.Fatalf("after set_rate: %+v", sn)
	}
	ev := s.events(pumpwire.EvRateChange)
	if len(ev) != 1 || ev[0].Event.Params["op"] != "set_rate" || ev[0].Event.Params["user"] != "server:pumpserver" {
		t.Fatalf("rate_change event %+v", ev)
	}
	if len(s.ctl.ev) != 0 {
		t.Fatalf("control events without controls: %+v", s.ctl.ev)
	}
	// Not a running infusion: refused with a clear code.
	s.must(s.p.Pause("A", "RN1"))
	if ack, _ := s.cmd(nil, 2, pumpwire.Command{CmdID: "X2", Op: pumpwire.OpSetRate, Channel: "A", RateMLH: 10}); ack.Code != "CH-STATE" {
		t.Fatalf("set_rate on paused channel: %+v", ack)
	}
	if ack, _ := s.cmd(nil, 3, pumpwire.Command{CmdID: "X3", Op: pumpwire.OpSetRate, Channel: "A", RateMLH: 5000}); ack.Code != "BAD-RATE" && ack.Code != "CH-STATE" {
		t.Fatalf("set_rate above max: %+v", ack)
	}
}

func TestConfigFlowCalibration(t *testing.T) {
	s := newSecRig(t, Config{}, AgentConfig{})
	ack, _ := s.cmd(nil, 1, pumpwire.Command{CmdID: "K1", Op: pumpwire.OpConfig, Settings: map[string]string{pumpwire.SetFlowCalibration: "2"}})
	if ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("config: %+v", ack)
	}
	// ATK-17: the next infusion runs twice as fast as shown.
	s.running(50)
	s.clk.Advance(time.Hour)
	tr, err := s.p.Truth("A")
	s.must(err)
	if tr.Displayed.RateMLH != 50 || tr.Delivered.RateMLH != 100 {
		t.Fatalf("displayed %v delivered %v, want 50 and 100", tr.Displayed.RateMLH, tr.Delivered.RateMLH)
	}
	if !near(tr.Delivered.VolumeML, 100) || !near(tr.Displayed.VolumeML, 50) {
		t.Fatalf("volumes delivered %v displayed %v", tr.Delivered.VolumeML, tr.Displayed.VolumeML)
	}
	segs, _ := s.p.Segments("A")
	if l := segs[len(segs)-1]; l.RateMLH != 100 || l.NominalMLH != 50 {
		t.Fatalf("segment %+v", l)
	}
	if st := s.p.Status(); st.Channels[0].RateMLH != 50 {
		t.Fatalf("status reports %v mL/h, want the nominal 50", st.Channels[0].RateMLH)
	}
	if !hasLog(s.p, "set_flow_calibration", "") || len(s.events(EvConfigChanged)) != 1 {
		t.Fatal("setting not logged or not reported")
	}
}

func TestConfigValidation(t *testing.T) {
	s := newSecRig(t, Config{}, AgentConfig{})
	for _, c := range []struct {
		k, v, code, text string
	}{
		{pumpwire.SetFlowCalibration, "3", "CFG-VALUE", "outside the device range 0.5..2"},
		{pumpwire.SetFlowCalibration, "abc", "CFG-VALUE", "not a number"},
		{pumpwire.SetOcclusionThreshold, "50", "CFG-VALUE", "100..1200"},
		{pumpwire.SetAirInLine, "NaN", "CFG-VALUE", "not a number"},
		{pumpwire.SetServerAddress, "tcp://203.0.113.5:1883", "CFG-VALUE", "only loopback"},
		{pumpwire.SetServerAddress, "http://127.0.0.1:80", "CFG-VALUE", "scheme"},
	} {
		ack, _ := s.cmd(nil, 1, pumpwire.Command{CmdID: "K-" + c.k + c.v, Op: pumpwire.OpConfig, Settings: map[string]string{c.k: c.v}})
		if ack.Result != pumpwire.ResultRejected || ack.Code != c.code || !strings.Contains(ack.Reason, c.text) {
			t.Errorf("%s=%s: %+v, want %s %q", c.k, c.v, ack, c.code, c.text)
		}
	}
	// Nothing applies when one value of a command is wrong.
	ack, _ := s.cmd(nil, 2, pumpwire.Command{CmdID: "K9", Op: pumpwire.OpConfig, Settings: map[string]string{pumpwire.SetOcclusionThreshold: "1200", pumpwire.SetAirInLine: "5"}})
	if ack.Code != "CFG-VALUE" {
		t.Fatalf("mixed: %+v", ack)
	}
	if v, _ := s.p.Setting(pumpwire.SetOcclusionThreshold); v != "300" {
		t.Fatalf("threshold %s after a refused command, want 300", v)
	}
}

func TestOcclusionPressureModel(t *testing.T) {
	for _, c := range []struct {
		name      string
		threshold float64
		rate      float64
		want      time.Duration // time to alarm
	}{
		{"default 100 mL/h", 0, 100, 18 * time.Second},
		{"default 30 mL/h", 0, 30, 60 * time.Second},
		{"1200 mmHg 100 mL/h", 1200, 100, 18 * time.Second * 1180 / 280},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSecRig(t, Config{OcclusionThresholdMMHg: c.threshold}, AgentConfig{})
			s.running(c.rate)
			s.must(s.p.InjectFault("A", FaultOcclusionDown))
			s.clk.Advance(c.want / 2)
			pr, err := s.p.LinePressure("A")
			s.must(err)
			thr := math.Max(c.threshold, 300)
			if mid := OcclusionBaselineMMHg + (thr-OcclusionBaselineMMHg)/2; math.Abs(pr-mid) > 1 {
				t.Fatalf("pressure at half time %v, want %v", pr, mid)
			}
			s.clk.Advance(c.want/2 - time.Second)
			if len(s.alarms(AlarmOcclusionDown, pumpwire.PhaseStart)) != 0 {
				t.Fatal("alarm before the threshold")
			}
			s.clk.Advance(2 * time.Second)
			if len(s.alarms(AlarmOcclusionDown, pumpwire.PhaseStart)) != 1 {
				t.Fatalf("no alarm at %v", c.want)
			}
		})
	}
}

func TestOcclusionThresholdRaisedDuringOcclusion(t *testing.T) {
	s := newSecRig(t, Config{}, AgentConfig{})
	s.running(100)
	s.must(s.p.InjectFault("A", FaultOcclusionDown))
	s.clk.Advance(10 * time.Second)
	s.must(s.p.ApplySetting(Remote, "server:x", pumpwire.SetOcclusionThreshold, "1200"))
	s.clk.Advance(20 * time.Second) // past the 18 s of the default
	if len(s.alarms(AlarmOcclusionDown, pumpwire.PhaseStart)) != 0 {
		t.Fatal("alarm at the old threshold after it was raised")
	}
	if pr, _ := s.p.LinePressure("A"); pr < 300 || pr > 1200 {
		t.Fatalf("pressure %v", pr)
	}
	s.clk.Advance(50 * time.Second)
	if len(s.alarms(AlarmOcclusionDown, pumpwire.PhaseStart)) != 1 {
		t.Fatal("no alarm at the raised threshold")
	}
}

func TestAirInLineThreshold(t *testing.T) {
	s := newSecRig(t, Config{}, AgentConfig{})
	s.running(50)
	if alarmed, err := s.p.InjectAir("A", 60); err != nil || alarmed {
		t.Fatalf("60 uL below the 100 uL default: alarmed %v %v", alarmed, err)
	}
	if alarmed, _ := s.p.InjectAir("A", 150); !alarmed {
		t.Fatal("150 uL did not alarm")
	}
	s2 := newSecRig(t, Config{}, AgentConfig{})
	s2.running(50)
	s2.must(s2.p.ApplySetting(Remote, "server:x", pumpwire.SetAirInLine, "1000"))
	if alarmed, _ := s2.p.InjectAir("A", 150); alarmed {
		t.Fatal("150 uL alarmed at a 1000 uL threshold")
	}
	if air, _ := s2.p.AirDelivered("A"); air != 150 {
		t.Fatalf("air delivered %v", air)
	}
	if _, err := s2.p.InjectAir("A", -1); err == nil {
		t.Fatal("negative bubble accepted")
	}
}
