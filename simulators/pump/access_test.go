package pump

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/simulators/pumpwire"
)

func code(err error) string {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Code
	}
	return fmt.Sprint(err)
}

func nccoeAccess() *AccessPolicy {
	return &AccessPolicy{PerUser: true, Users: map[string]string{"bio-ann": "482913"}, MaxFailures: 3, LockoutFor: 10 * time.Minute,
		CodeLifetime: 90 * 24 * time.Hour, ServiceAudit: true, RequireReason: true, SessionTimeout: 15 * time.Minute,
		WorkOrderCheck: func(pumpID, wo string) bool { return wo == "WO-77" && pumpID == "PUMP-0001" }}
}

func TestAccessCodesOnRefuseFactoryCodeAndLock(t *testing.T) {
	s := newSecRig(t, Config{Access: nccoeAccess()}, AgentConfig{})
	// ATK-06: the departed nurse knows the factory code from the manual.
	if _, err := s.p.ServiceLogin("bio-ann", "1234"); code(err) != "SVC-FACTORY" {
		t.Fatalf("factory code: %v", err)
	}
	if _, err := s.p.ServiceLogin("mallory", "000000"); code(err) != "SVC-CODE" {
		t.Fatalf("unknown user: %v", err)
	}
	// Third failure locks the keypad; even the right code is refused then.
	if _, err := s.p.ServiceLogin("bio-ann", "111111"); code(err) != "SVC-CODE" {
		t.Fatalf("wrong code: %v", err)
	}
	if _, err := s.p.ServiceLogin("bio-ann", "482913"); code(err) != "SVC-LOCKED" {
		t.Fatalf("right code during lockout: %v", err)
	}
	bl := s.ctl.find(CtlAccessCodes, ActionBlocked)
	if len(bl) < 4 || !strings.Contains(bl[3].Reason, "locked") {
		t.Fatalf("blocked events %+v", bl)
	}
	s.clk.Advance(11 * time.Minute)
	id, err := s.p.ServiceLogin("bio-ann", "482913")
	if err != nil {
		t.Fatalf("after lockout: %v", err)
	}
	if !hasLog(s.p, "keypad_locked", "SVC-LOCKED") || !hasLog(s.p, "login", "") {
		t.Fatal("lockout or login not logged")
	}
	// Rotation: the old code stops working; revocation ends sessions.
	s.must(s.p.RotateCode("bio-ann", "739104"))
	if _, err := s.p.ServiceLogin("bio-ann", "482913"); code(err) != "SVC-CODE" {
		t.Fatalf("old code after rotation: %v", err)
	}
	if err := s.p.RotateCode("bio-ann", "12"); code(err) != "SVC-CODE-WEAK" {
		t.Fatalf("weak code: %v", err)
	}
	s.must(s.p.RevokeUser("bio-ann"))
	if _, err := s.p.ServiceShow(id); code(err) != "SVC-SESSION" {
		t.Fatalf("session after revoke: %v", err)
	}
	if _, err := s.p.ServiceLogin("bio-ann", "739104"); code(err) != "SVC-CODE" {
		t.Fatalf("revoked user: %v", err)
	}
	// Codes expire.
	s.must(s.p.RotateCode("bio-bob", "555123"))
	s.clk.Advance(91 * 24 * time.Hour)
	if _, err := s.p.ServiceLogin("bio-bob", "555123"); code(err) != "SVC-CODE-EXPIRED" {
		t.Fatalf("expired code: %v", err)
	}
}

func TestAccessLegacyFactoryCode(t *testing.T) {
	s := newSecRig(t, Config{}, AgentConfig{})
	id, err := s.p.ServiceLogin("anyone", "1234")
	if err != nil {
		t.Fatalf("legacy factory code: %v", err)
	}
	for i := 0; i < 20; i++ { // no lockout on a legacy pump
		if _, err := s.p.ServiceLogin("anyone", "0000"); code(err) != "SVC-CODE" {
			t.Fatal(err)
		}
	}
	// No audit: a change needs no service mode.
	s.must(s.p.ServiceSet(id, pumpwire.SetOcclusionThreshold, "1200"))
	if d := s.p.ConfigDump(); d.Settings[pumpwire.SetOcclusionThreshold] != "1200" {
		t.Fatalf("dump %+v", d.Settings)
	}
	if len(s.ctl.ev) != 0 {
		t.Fatalf("control events on a legacy pump: %+v", s.ctl.ev)
	}
}

func TestServiceModeAudit(t *testing.T) {
	s := newSecRig(t, Config{Access: nccoeAccess(), Credentials: Credentials{WiFiPSK: "hunter2"}}, AgentConfig{})
	id, err := s.p.ServiceLogin("bio-ann", "482913")
	s.must(err)
	// Reading needs no service mode; changing does.
	d, err := s.p.ServiceShow(id)
	if err != nil || d.Credentials.WiFiPSK != "hunter2" || d.Settings[pumpwire.SetOcclusionThreshold] != "300" {
		t.Fatalf("show: %+v %v", d, err)
	}
	if err := s.p.ServiceSet(id, pumpwire.SetOcclusionThreshold, "1200"); code(err) != "SVC-AUDIT" {
		t.Fatalf("change outside service mode: %v", err)
	}
	if err := s.p.ServiceEnter(id, "WO-13", "pm"); code(err) != "SVC-WORKORDER" {
		t.Fatalf("unknown work order: %v", err)
	}
	if err := s.p.ServiceEnter(id, "WO-77", ""); code(err) != "SVC-REASON" {
		t.Fatalf("no reason: %v", err)
	}
	if got := len(s.ctl.find(CtlServiceModeAudit, ActionBlocked)); got != 3 {
		t.Fatalf("%d blocked events, want 3", got)
	}
	// The legitimate flow.
	s.must(s.p.ServiceEnter(id, "WO-77", "annual preventive maintenance"))
	s.must(s.p.ServiceSet(id, pumpwire.SetOcclusionThreshold, "500"))
	if v, _ := s.p.Setting(pumpwire.SetOcclusionThreshold); v != "500" {
		t.Fatalf("threshold %s", v)
	}
	au := s.ctl.find(CtlServiceModeAudit, ActionAudited)
	if len(au) != 2 || !strings.Contains(au[1].Reason, "WO-77") || au[1].Ref != id {
		t.Fatalf("audited events %+v", au)
	}
	if ev := s.events(EvConfigChanged); len(ev) != 1 || ev[0].Event.Params["user"] != "bio-ann wo:WO-77" {
		t.Fatalf("config event %+v", ev)
	}
	if len(s.events(pumpwire.EvServiceMode)) != 1 {
		t.Fatal("no service_mode event")
	}
	// Idle sessions end.
	s.clk.Advance(16 * time.Minute)
	if err := s.p.ServiceSet(id, pumpwire.SetAirInLine, "200"); code(err) != "SVC-EXPIRED" {
		t.Fatalf("after timeout: %v", err)
	}
}

// dialPort connects to a service port and returns a line reader/writer.
type portConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialPort(t *testing.T, sp *ServicePort) *portConn {
	t.Helper()
	c, err := net.Dial("tcp", sp.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	pc := &portConn{t: t, c: c, r: bufio.NewReader(c)}
	return pc
}

func (pc *portConn) line() string {
	pc.t.Helper()
	l, err := pc.r.ReadString('\n')
	if err != nil {
		pc.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// do sends a line and returns the reply lines up to the final OK/ERR line.
func (pc *portConn) do(line string) []string {
	pc.t.Helper()
	if _, err := fmt.Fprintf(pc.c, "%s\r\n", line); err != nil {
		pc.t.Fatal(err)
	}
	var out []string
	for {
		l := pc.line()
		out = append(out, l)
		if !strings.HasPrefix(l, "OK-") {
			return out
		}
	}
}

func last(ls []string) string { return ls[len(ls)-1] }

func TestServicePortUnauthenticatedLegacy(t *testing.T) {
	s := newSecRig(t, Config{Access: &AccessPolicy{Unauthenticated: true},
		Credentials: Credentials{BrokerUsername: "pump", BrokerPassword: "pump123", WiFiSSID: "MED-DEV", WiFiPSK: "Infusion2019!"}}, AgentConfig{})
	s.running(50)
	sp, err := NewServicePort(s.p, "")
	s.must(err)
	defer sp.Close()
	pc := dialPort(t, sp)
	if g := pc.line(); !strings.Contains(g, "no login required") {
		t.Fatalf("greeting %q", g)
	}
	// ATK-05: read the config without logging in: credentials and PHI.
	out := pc.do("show config")
	joined := strings.Join(out, "\n")
	for _, want := range []string{"OK-wifi_psk Infusion2019!", "OK-broker_password pump123", "OK-recent_patients MRN-1", "OK-occlusion_threshold_mmhg 300"} {
		if !strings.Contains(joined, want) {
			t.Errorf("SHOW CONFIG lacks %q:\n%s", want, joined)
		}
	}
	if !strings.HasPrefix(last(out), "OK config") {
		t.Fatalf("end of dump %q", last(out))
	}
	// ATK-33 set-up: move the pump to the attacker's broker.
	if r := last(pc.do("SET server_address tcp://127.0.0.1:18830")); r != "OK server_address tcp://127.0.0.1:18830" {
		t.Fatalf("SET: %q", r)
	}
	if r := last(pc.do("SET flow_calibration 9")); !strings.HasPrefix(r, "ERR CFG-VALUE") {
		t.Fatalf("bad value: %q", r)
	}
	if r := last(pc.do("SET no_such 1")); !strings.HasPrefix(r, "ERR CFG-KEY") {
		t.Fatalf("bad key: %q", r)
	}
	if r := last(pc.do("\x01\x02garbage")); !strings.HasPrefix(r, "ERR BAD-CMD") {
		t.Fatalf("garbage: %q", r)
	}
	if r := last(pc.do(strings.Repeat("A", 2000))); !strings.HasPrefix(r, "ERR LINE-TOO-LONG") {
		t.Fatalf("long line: %q", r)
	}
	if r := last(pc.do("HELP")); !strings.HasPrefix(r, "OK LOGIN") {
		t.Fatalf("help after errors: %q", r)
	}
	if r := last(pc.do("QUIT")); r != "OK bye" {
		t.Fatalf("quit: %q", r)
	}
	if !hasLog(s.p, "service_port_connect", "") || !hasLog(s.p, "login_unauthenticated", "") || !hasLog(s.p, "set_server_address", "") {
		t.Fatal("port use not in the pump log")
	}
}

func TestServicePortAuthenticated(t *testing.T) {
	s := newSecRig(t, Config{Access: nccoeAccess()}, AgentConfig{})
	sp, err := NewServicePort(s.p, "127.0.0.1:0")
	s.must(err)
	defer sp.Close()
	pc := dialPort(t, sp)
	if g := pc.line(); !strings.Contains(g, "LOGIN user code") {
		t.Fatalf("greeting %q", g)
	}
	if r := last(pc.do("SHOW CONFIG")); !strings.HasPrefix(r, "ERR SVC-SESSION") {
		t.Fatalf("show without login: %q", r)
	}
	if r := last(pc.do("LOGIN bio-ann 1234")); !strings.HasPrefix(r, "ERR SVC-FACTORY") {
		t.Fatalf("factory login: %q", r)
	}
	if r := last(pc.do("LOGIN bio-ann 482913")); !strings.HasPrefix(r, "OK session PUMP-0001-S") {
		t.Fatalf("login: %q", r)
	}
	if r := last(pc.do("SET occlusion_threshold_mmhg 1200")); !strings.HasPrefix(r, "ERR SVC-AUDIT") {
		t.Fatalf("set outside service: %q", r)
	}
	if r := last(pc.do("SERVICE WO-77 replace door latch")); r != "OK service mode, work order WO-77" {
		t.Fatalf("service: %q", r)
	}
	if r := last(pc.do("SET occlusion_threshold_mmhg 450")); r != "OK occlusion_threshold_mmhg 450" {
		t.Fatalf("set: %q", r)
	}
	if r := last(pc.do("LOGOUT")); r != "OK logged out" {
		t.Fatalf("logout: %q", r)
	}
	if _, err := NewServicePort(s.p, "0.0.0.0:0"); err == nil {
		t.Fatal("service port on a non-loopback address")
	}
	// A listener the caller opened serves the same protocol.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	s.must(err)
	sp2 := ServeServicePort(s.p, ln)
	defer sp2.Close()
	pc2 := dialPort(t, sp2)
	if g := pc2.line(); !strings.HasPrefix(g, "OK pumplab service port PUMP-0001") {
		t.Fatalf("greeting on a caller's listener %q", g)
	}
}

func TestDecommissionWipe(t *testing.T) {
	creds := Credentials{BrokerUsername: "pump", BrokerPassword: "pump123", WiFiSSID: "MED-DEV", WiFiPSK: "Infusion2019!",
		ClientCertPEM: "-----BEGIN CERTIFICATE-----x", ClientKeyPEM: "-----BEGIN PRIVATE KEY-----x"}
	for _, wipe := range []bool{false, true} {
		t.Run(fmt.Sprint("wipe=", wipe), func(t *testing.T) {
			s := newSecRig(t, Config{Credentials: creds, Access: &AccessPolicy{Users: map[string]string{"bio": "123456"}}}, AgentConfig{})
			s.running(50)
			s.clk.Advance(time.Hour)
			st := s.p.Storage()
			if st.CredentialCount != 6 || st.PHICount < 3 || st.LogEntries == 0 {
				t.Fatalf("storage before: %+v", st)
			}
			left := s.p.Decommission(wipe)
			if !s.p.Decommissioned() || s.p.State() != StateOff {
				t.Fatal("not out of service")
			}
			s.p.PowerOn("x")
			if s.p.State() != StateOff {
				t.Fatal("a decommissioned pump powered on")
			}
			after := s.p.Storage()
			if !wipe {
				// ATK-01: the disposed pump still holds everything.
				if after.CredentialCount != 6 || after.Credentials["wifi_psk"] != "Infusion2019!" || after.PHICount == 0 || len(left) == 0 {
					t.Fatalf("unwiped storage %+v left %v", after, left)
				}
				if len(s.ctl.ev) != 0 {
					t.Fatalf("events without wipe: %+v", s.ctl.ev)
				}
				return
			}
			if after.CredentialCount != 0 || after.PHICount != 0 || after.LogEntries != 0 || after.AccessCodes != 0 || after.ProgramHistory != 0 || len(left) != 0 {
				t.Fatalf("after wipe: %+v left %v", after, left)
			}
			if v := s.p.VerifyWiped(); len(v) != 0 {
				t.Fatalf("VerifyWiped %v", v)
			}
			au := s.ctl.find(CtlDecommissionWipe, ActionAudited)
			if len(au) != 1 || !strings.Contains(au[0].Reason, "wiped 6 credentials") || !strings.Contains(au[0].Reason, "verify: clean") {
				t.Fatalf("wipe event %+v", au)
			}
		})
	}
}

func TestStatusCarriesPatientID(t *testing.T) {
	s := newSecRig(t, Config{}, AgentConfig{})
	s.running(50)
	st := s.p.Status()
	if st.PatientID != "MRN-1" || st.Channels[0].PatientID != "MRN-1" {
		t.Fatalf("status patient %q channel %q", st.PatientID, st.Channels[0].PatientID)
	}
	ev := s.events(pumpwire.EvDeliveryStart)
	if len(ev) != 1 || ev[0].Event.Snapshot.PatientID != "MRN-1" {
		t.Fatalf("event snapshot %+v", ev)
	}
}

// FuzzServiceLine feeds arbitrary lines to the service-port parser: never a
// panic, and an accepted line has a known verb with its arguments.
func FuzzServiceLine(f *testing.F) {
	for _, s := range []string{"LOGIN bio 1234", "show config", "SERVICE WO-1 fix it", "SET flow_calibration 2", "QUIT", "HELP", "LOGOUT",
		"", "\x00", "SET a", "LOGIN", strings.Repeat("x", 600), "set\tserver_address\ttcp://127.0.0.1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := ParseServiceLine(line)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		want := map[string]int{"LOGIN": 2, "SHOW": 1, "SERVICE": 2, "SET": 2, "LOGOUT": 0, "QUIT": 0, "HELP": 0}
		n, ok := want[c.Verb]
		if !ok || len(c.Args) != n {
			t.Fatalf("accepted %q as %+v", line, c)
		}
	})
}
