package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

var t0 = time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)

// fakeNow returns a clock that advances one millisecond per call.
func fakeNow() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return t0.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

func start(t *testing.T, cfg Config) *Intake {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fakeNow()
	}
	in := New(cfg)
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

func waitN(t *testing.T, in *Intake, n int) []score.Alert {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []score.Alert
	if err := in.Wait(ctx, func(as []score.Alert) bool { got = as; return len(as) >= n }); err != nil {
		t.Fatalf("%v; stats %+v", err, in.Stats())
	}
	return got
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url+"/v1/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("response is not JSON: %v", err)
	}
	return resp.StatusCode, m
}

func TestHTTP(t *testing.T) {
	in := start(t, Config{SyslogUDPAddr: Disabled, SyslogTCPAddr: Disabled})
	if in.SyslogUDPAddr() != "" || in.SyslogTCPAddr() != "" {
		t.Fatal("disabled transports listen")
	}
	code, m := post(t, in.HTTPURL(), ExampleAlertJSON)
	if code != http.StatusAccepted || m["accepted"] != 1.0 {
		t.Fatalf("%d %v", code, m)
	}
	code, m = post(t, in.HTTPURL(), `[{"tool":"a"},{"tool":"b"}]`)
	if code != http.StatusAccepted || m["accepted"] != 2.0 {
		t.Fatalf("%d %v", code, m)
	}
	// A batch with one bad alert is refused whole, with the field named.
	code, m = post(t, in.HTTPURL(), `[{"tool":"c"},{"tool":"c"},{"tool":"c"},{"tool":"c","techniques":["T83"]}]`)
	if code != http.StatusBadRequest || m["error"] != `alerts[3].techniques[0]: "T83" is not an ATT&CK technique id (want T0831 or T1234.001)` {
		t.Fatalf("%d %v", code, m)
	}
	// Oversized body.
	code, m = post(t, in.HTTPURL(), `{"tool":"d","text":"`+strings.Repeat("x", MaxBody)+`"}`)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(m["error"].(string), "limit of 1048576") {
		t.Fatalf("%d %v", code, m)
	}
	resp, err := http.Get(in.HTTPURL() + "/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /v1/alerts: %d", resp.StatusCode)
	}

	as := in.Alerts()
	if len(as) != 3 {
		t.Fatalf("%d alerts: %+v", len(as), as)
	}
	if as[0].Tool != "pumpguard" || as[1].Tool != "a" || as[2].Tool != "b" {
		t.Fatalf("order: %+v", as)
	}
	for _, a := range as {
		if a.Source != SourceHTTP || !a.Time.After(t0) {
			t.Fatalf("alert %+v lacks source or receive time", a)
		}
	}
	if !as[0].Reported.Equal(time.Date(2026, 3, 1, 10, 15, 2, 0, time.UTC)) {
		t.Fatalf("Reported = %v", as[0].Reported)
	}
	if as[1].Time != as[2].Time || !as[0].Time.Before(as[1].Time) {
		t.Fatalf("a batch shares one receive time: %v %v %v", as[0].Time, as[1].Time, as[2].Time)
	}

	st := in.Stats().HTTP
	if st.Accepted != 3 || st.Refused != 3 || !strings.Contains(st.LastError, "POST") {
		t.Fatalf("stats %+v", st)
	}
	resp, err = http.Get(in.HTTPURL() + "/v1/alerts/stats")
	if err != nil {
		t.Fatal(err)
	}
	var got Stats
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || got.HTTP.Accepted != 3 || got.HTTP.Refused != 3 {
		t.Fatalf("GET stats: %+v %v", got, err)
	}
}

// TestHTTPCases posts every decoder case: valid ones are accepted with
// their count, refused ones answer 400 with the decoder's error.
func TestHTTPCases(t *testing.T) {
	in := start(t, Config{SyslogUDPAddr: Disabled, SyslogTCPAddr: Disabled})
	want := 0
	for _, c := range AlertCases {
		code, m := post(t, in.HTTPURL(), c.Body)
		if c.Err != "" {
			if code != http.StatusBadRequest || m["error"] != "http: "+c.Err && m["error"] != c.Err {
				t.Errorf("%s: %d %v", c.Name, code, m)
			}
			continue
		}
		want += len(c.Want)
		if code != http.StatusAccepted || m["accepted"] != float64(len(c.Want)) {
			t.Errorf("%s: %d %v", c.Name, code, m)
		}
	}
	if n := len(in.Alerts()); n != want {
		t.Fatalf("%d alerts, want %d", n, want)
	}
}

func TestSyslogUDP(t *testing.T) {
	in := start(t, Config{HTTPAddr: Disabled, SyslogTCPAddr: Disabled})
	c, err := net.Dial("udp", in.SyslogUDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := 0
	for _, sc := range SyslogCases {
		if _, err := c.Write([]byte(sc.Msg)); err != nil && sc.Msg != "" {
			t.Fatal(err)
		}
		if sc.Err == "" {
			n++
		}
	}
	// A good datagram after all of them: when it is in, the others are
	// counted (one reader, in order).
	if _, err := c.Write([]byte(`<13>1 - h last - - -`)); err != nil {
		t.Fatal(err)
	}
	as := waitN(t, in, n+1)
	if as[n].Tool != "last" {
		t.Fatalf("last alert %+v", as[n])
	}
	for i, sc := range SyslogCases {
		_ = i
		if sc.Name == "full" {
			if as[0].Tool != "pumpguard" || as[0].Source != SourceSyslogUDP || as[0].Techniques[0] != "T0831" {
				t.Fatalf("first alert %+v", as[0])
			}
		}
	}
	st := in.Stats().SyslogUDP
	bad := 0
	for _, sc := range SyslogCases {
		if sc.Err != "" && sc.Msg != "" { // an empty datagram is still a datagram
			bad++
		}
	}
	if st.Refused < int64(bad) || st.Accepted != int64(n+1) {
		t.Fatalf("stats %+v, want %d refused", st, bad)
	}
	if !strings.Contains(st.LastError, "APP-NAME: nil and no tool param") {
		t.Fatalf("last error %q", st.LastError)
	}
}

func TestSyslogTCP(t *testing.T) {
	in := start(t, Config{HTTPAddr: Disabled, SyslogUDPAddr: Disabled})
	c, err := net.Dial("tcp", in.SyslogTCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	oc := func(m string) string { return fmt.Sprintf("%d %s", len(m), m) }
	stream := oc(`<13>1 - h one - - -`) + // octet counting
		`<13>1 - h two - - [pumplab@32473 technique="T0855"]` + "\n" + // newline
		oc(`<13>1 - h bad - - [pumplab@32473 technique="T83"]`) + // bad message, good frame
		"12x broken framing\n" + // bad frame, resync at LF
		fmt.Sprintf("%d %s", MaxFrame+1, strings.Repeat("z", MaxFrame+1)) + // oversize, skipped by count
		"<13>1 - h three - - -\r\n" +
		oc("<13>1 - h four - - - multi\nline msg")
	if _, err := io.WriteString(c, stream); err != nil {
		t.Fatal(err)
	}
	as := waitN(t, in, 4)
	for i, want := range []string{"one", "two", "three", "four"} {
		if as[i].Tool != want || as[i].Source != SourceSyslogTCP {
			t.Fatalf("alert %d = %+v, want tool %s", i, as[i], want)
		}
	}
	if as[3].Text != "multi\nline msg" || as[1].Techniques[0] != "T0855" {
		t.Fatalf("alerts %+v", as)
	}
	if st := in.Stats().SyslogTCP; st.Refused != 3 || st.Accepted != 4 {
		t.Fatalf("stats %+v", st)
	}
	// A second connection works alongside; a frame cut by close is counted.
	c2, err := net.Dial("tcp", in.SyslogTCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c2, oc(`<13>1 - h five - - -`)+"40 <13>1")
	c2.Close()
	waitN(t, in, 5)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := in.WaitStats(ctx, func(st Stats) bool { return st.SyslogTCP.Refused == 4 }); err != nil {
		t.Fatalf("truncated frame not counted: %v %+v", err, in.Stats().SyslogTCP)
	}
	if !strings.Contains(in.Stats().SyslogTCP.LastError, "connection closed inside a frame") {
		t.Fatalf("last error %q", in.Stats().SyslogTCP.LastError)
	}
}

// TestLoggerExample runs the docs/alerts.md examples with util-linux logger.
func TestLoggerExample(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		t.Skip("no logger in PATH")
	}
	in := start(t, Config{HTTPAddr: Disabled})
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command("logger", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("logger %v: %v\n%s", args, err, out)
		}
	}
	_, udpPort, _ := net.SplitHostPort(in.SyslogUDPAddr())
	_, tcpPort, _ := net.SplitHostPort(in.SyslogTCPAddr())
	sd := []string{"--sd-id", "pumplab@32473", "--sd-param", `tool="pumpguard"`, "--sd-param", `technique="T0831"`,
		"--sd-param", `asset="PUMP-0007"`, "--sd-param", `severity="high"`}
	run(append([]string{"--rfc5424", "-n", "127.0.0.1", "-P", udpPort, "-d", "-t", "pumpguard"}, append(sd, "rate change without order")...)...)
	as := waitN(t, in, 1)
	run(append([]string{"--rfc5424", "-n", "127.0.0.1", "-P", tcpPort, "-T", "--octet-count", "-t", "pumpguard"}, append(sd, "over tcp")...)...)
	as = waitN(t, in, 2)
	run("--rfc5424", "-n", "127.0.0.1", "-P", tcpPort, "-T", "-t", "pumpguard", "newline framed")
	as = waitN(t, in, 3)
	for i, src := range []string{SourceSyslogUDP, SourceSyslogTCP} {
		a := as[i]
		if a.Tool != "pumpguard" || a.Source != src || a.Severity != "high" || len(a.Techniques) != 1 || a.Techniques[0] != "T0831" || a.Assets[0] != "PUMP-0007" || a.Reported.IsZero() {
			t.Fatalf("alert %d: %+v", i, a)
		}
	}
	if as[0].Text != "rate change without order" || as[2].Text != "newline framed" {
		t.Fatalf("texts %q %q", as[0].Text, as[2].Text)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFileTail(t *testing.T) {
	dir := t.TempDir()
	jl := filepath.Join(dir, "alerts.jsonl")
	eve := filepath.Join(dir, "eve.json")
	appendFile(t, jl, `{"tool":"a1"}`+"\n")
	in := start(t, Config{HTTPAddr: Disabled, SyslogUDPAddr: Disabled, SyslogTCPAddr: Disabled,
		Files: []File{{Path: jl}, {Path: eve, Tool: "suricata-lab"}}, PollInterval: 5 * time.Millisecond})
	waitN(t, in, 1)

	// Appends, a bad line, a line written in two parts.
	appendFile(t, jl, `{"tool":"a2"}`+"\n"+`{"tool":"bad","techniques":["T1"]}`+"\n"+`{"tool":`)
	waitN(t, in, 2)
	appendFile(t, jl, `"a3"}`+"\n")
	as := waitN(t, in, 3)
	if as[2].Tool != "a3" {
		t.Fatalf("split line: %+v", as[2])
	}
	if st := in.Stats().File; st.Refused != 1 || !strings.Contains(st.LastError, `alert.techniques[0]: "T1"`) || !strings.Contains(st.LastError, jl) {
		t.Fatalf("stats %+v", st)
	}

	// eve.json created after start; flow events skipped.
	appendFile(t, eve, `{"event_type":"flow","src_ip":"10.0.0.1"}`+"\n"+ExampleEveAlert+"\n")
	as = waitN(t, in, 4)
	if a := as[3]; a.Tool != "suricata-lab" || a.Source != SourceFile || a.Techniques[0] != "T0831" || a.Addresses[0] != "10.20.0.99" {
		t.Fatalf("eve alert %+v", a)
	}

	// Truncation: the file starts again.
	if err := os.WriteFile(jl, []byte(`{"tool":"t1"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	as = waitN(t, in, 5)
	if as[4].Tool != "t1" {
		t.Fatalf("after truncation %+v", as[4])
	}

	// Rotation: the old file renamed (its late appends still read), a new one created.
	old := jl + ".1"
	if err := os.Rename(jl, old); err != nil {
		t.Fatal(err)
	}
	appendFile(t, jl, `{"tool":"r1"}`+"\n"+`{"tool":"r2"}`+"\n")
	as = waitN(t, in, 7)
	if as[5].Tool != "r1" || as[6].Tool != "r2" {
		t.Fatalf("after rotation %+v", as[5:])
	}
	if st := in.Stats().File; st.Skipped != 1 || st.Accepted != 7 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFileLongLine(t *testing.T) {
	dir := t.TempDir()
	jl := filepath.Join(dir, "alerts.jsonl")
	appendFile(t, jl, strings.Repeat("x", MaxLine+10)+"\n"+`{"tool":"ok"}`+"\n")
	in := start(t, Config{HTTPAddr: Disabled, SyslogUDPAddr: Disabled, SyslogTCPAddr: Disabled,
		Files: []File{{Path: jl}}, PollInterval: 5 * time.Millisecond})
	as := waitN(t, in, 1)
	if as[0].Tool != "ok" {
		t.Fatalf("%+v", as)
	}
	if st := in.Stats().File; st.Refused != 1 || !strings.Contains(st.LastError, "longer than the limit") {
		t.Fatalf("stats %+v", st)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:514", "example.com:1"} {
		in := New(Config{SyslogUDPAddr: addr})
		err := in.Start(t.Context())
		if err == nil || !strings.Contains(err.Error(), "AllowNonLoopback") {
			t.Errorf("%s: err = %v", addr, err)
		}
		in.Close()
	}
	in := start(t, Config{HTTPAddr: "localhost:0", SyslogUDPAddr: "[::1]:0", SyslogTCPAddr: Disabled})
	if in.HTTPURL() == "" {
		t.Fatal("no HTTP URL")
	}
}

// TestConcurrent sends over all transports at once; run with -race.
func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	jl := filepath.Join(dir, "a.jsonl")
	var mu sync.Mutex
	var seen []score.Alert
	in := start(t, Config{Files: []File{{Path: jl}}, PollInterval: 2 * time.Millisecond,
		OnAlert: func(a score.Alert) { mu.Lock(); seen = append(seen, a); mu.Unlock() }})
	const per = 20
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := range per {
				code, _ := post(t, in.HTTPURL(), fmt.Sprintf(`[{"tool":"h%d-%d"},{"tool":"x"}]`, g, i))
				if code != http.StatusAccepted {
					t.Errorf("code %d", code)
				}
			}
		})
		wg.Go(func() {
			c, err := net.Dial("tcp", in.SyslogTCPAddr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			var b bytes.Buffer
			for i := range per {
				fmt.Fprintf(&b, "<13>1 - h t%d-%d - - -\n", g, i)
			}
			c.Write(b.Bytes())
		})
	}
	wg.Go(func() {
		for i := range per {
			appendFile(t, jl, fmt.Sprintf(`{"tool":"f%d"}`+"\n", i))
		}
	})
	wg.Go(func() {
		for range 50 {
			in.Alerts()
			in.Stats()
		}
	})
	wg.Wait()
	want := 3*per*2 + 3*per + per
	as := waitN(t, in, want)
	if len(as) != want {
		t.Fatalf("%d alerts, want %d", len(as), want)
	}
	for i := 1; i < len(as); i++ {
		if as[i].Time.Before(as[i-1].Time) {
			t.Fatalf("receive times out of order at %d", i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != want {
		t.Fatalf("OnAlert saw %d, want %d", len(seen), want)
	}
	for i := range seen {
		if seen[i].Tool != as[i].Tool || seen[i].Time != as[i].Time {
			t.Fatalf("OnAlert order differs at %d", i)
		}
	}
}

func TestWaitContext(t *testing.T) {
	in := start(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := in.Wait(ctx, func(as []score.Alert) bool { return len(as) > 0 }); err == nil {
		t.Fatal("Wait returned nil without alerts")
	}
	if err := in.Start(t.Context()); err == nil {
		t.Fatal("second Start succeeded")
	}
	in.Close()
	in.Close()
	if _, err := net.Dial("tcp", in.SyslogTCPAddr()); err == nil {
		t.Fatal("syslog TCP still listening after Close")
	}
}
