package main

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseRoute(t *testing.T) {
	r, err := parseRoute("ioc=:2577>10.0.0.5:2577/mllp")
	if err != nil {
		t.Fatal(err)
	}
	if r.name != "ioc" || r.listen != ":2577" || r.upstream != "10.0.0.5:2577" || r.proto != "mllp" {
		t.Fatalf("parsed %+v", r)
	}
	for in, want := range map[string]string{
		"ioc:2577>x:1/mllp":        "want NAME=LISTEN>UPSTREAM/PROTO",
		"ioc=:2577/mllp":           "missing LISTEN>UPSTREAM",
		"ioc=:2577>10.0.0.5:2577":  "missing /PROTO",
		"ioc=:2577>10.0.0.5/mllp":  "upstream \"10.0.0.5\"",
		"ioc=:2577>10.0.0.5:1/ftp": "protocol \"ftp\" is not mllp, mqtt or http",
	} {
		if _, err := parseRoute(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseRoute(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestProtocolOK(t *testing.T) {
	good := map[string][]byte{
		"mllp": []byte("\x0bMSH|^~\\&|"),
		"mqtt": {0x10, 0x1c, 0x00, 0x04, 'M', 'Q', 'T', 'T'},
		"http": []byte("GET /v1/libraries HTTP/1.1\r\n"),
	}
	for proto, b := range good {
		if err := protocolOK(proto, b); err != nil {
			t.Errorf("%s: %v", proto, err)
		}
		for other := range good {
			if other != proto && protocolOK(other, b) == nil {
				t.Errorf("%s bytes accepted as %s", proto, other)
			}
		}
	}
	if err := protocolOK("mllp", []byte{0xff, 0xfe, 0xfd, 0xfc}); err == nil || !strings.Contains(err.Error(), "ff fe fd fc") {
		t.Errorf("junk: %v, want an error naming the first bytes", err)
	}
}

// TestGatewayRelaysAllowedAndRecordsRefused runs a real gateway route on
// loopback in front of a real MLLP-speaking upstream: a framed HL7 message
// goes through and its answer comes back; junk never reaches the upstream
// and is recorded as segmentation evidence.
func TestGatewayRelaysAllowedAndRecordsRefused(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	got := make(chan string, 4)
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				msg, err := bufio.NewReader(c).ReadString(0x1c)
				if err != nil {
					return
				}
				got <- msg
				io.WriteString(c, "\x0bMSH|ACK\r\x1c\r")
			}()
		}
	}()
	r, err := parseRoute("ioc=127.0.0.1:0>" + up.Addr().String() + "/mllp")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", r.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g := &gateway{log: slog.New(slog.DiscardHandler), routes: []*gatewayRoute{r}, now: time.Now, labNow: time.Now}
	go g.accept(ln, r)

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "\x0bMSH|^~\\&|BCMA\r\x1c\r")
	ack, err := bufio.NewReader(c).ReadString(0x1c)
	c.Close()
	if err != nil || !strings.Contains(ack, "MSH|ACK") {
		t.Fatalf("answer through the gateway: %q, %v", ack, err)
	}
	if m := <-got; !strings.Contains(m, "BCMA") {
		t.Fatalf("upstream got %q", m)
	}

	j, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	j.Write([]byte{0xff, 0xfe, 0xfd, 0xfc, 0xfb})
	if n, _ := j.Read(make([]byte, 1)); n != 0 {
		t.Fatal("the gateway answered junk")
	}
	j.Close()
	if r.allowed.Load() != 1 || r.blocked.Load() != 1 {
		t.Fatalf("allowed %d blocked %d, want 1 and 1", r.allowed.Load(), r.blocked.Load())
	}
	g.mu.Lock()
	ev := g.ev
	g.mu.Unlock()
	if len(ev) != 1 || ev[0].Control != "segmentation" || ev[0].Action != "blocked" || !strings.Contains(ev[0].Reason, "not an MLLP") {
		t.Fatalf("evidence %+v", ev)
	}
	select {
	case m := <-got:
		t.Fatalf("junk reached the upstream: %q", m)
	default:
	}
}

func FuzzGatewaySniff(f *testing.F) {
	f.Add("mllp", []byte("\x0bMSH|^~\\&|"))
	f.Add("mqtt", []byte{0x10, 0x1c, 0, 4})
	f.Add("http", []byte("POST / HTTP/1.1"))
	f.Add("mllp", []byte{})
	f.Fuzz(func(t *testing.T, proto string, b []byte) {
		err := protocolOK(proto, b)
		if err == nil && proto == "mllp" && (len(b) < 4 || b[0] != 0x0b) {
			t.Fatalf("accepted %q as MLLP", b)
		}
		if err == nil && proto == "mqtt" && (len(b) < 2 || b[0] != 0x10) {
			t.Fatalf("accepted %q as MQTT", b)
		}
	})
}

func FuzzParseRoute(f *testing.F) {
	f.Add("ioc=:2577>10.0.0.5:2577/mllp")
	f.Add("x=>/")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRoute(s)
		if err == nil && (r.name == "" || r.listen == "" || r.upstream == "") {
			t.Fatalf("parseRoute(%q) accepted an empty part: %+v", s, r)
		}
	})
}
