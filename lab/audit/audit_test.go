package audit

import (
	"bufio"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var line5424 = regexp.MustCompile(`^<(\d+)>1 \S+Z pumplab (\S+) - (\S+) \[pumplab-audit@32473( [a-z]+="[^"]*")+\] .+$`)

func TestFormat(t *testing.T) {
	at := time.Date(2026, 1, 5, 8, 12, 0, 250e6, time.UTC)
	got := Format(Record{Time: at, LabTime: at, App: "pumpserver", Control: "order-crosscheck", Action: "blocked",
		Target: "PUMP-0001", Ref: "hl7:ROGUE0001", Reason: `PCD-03 "x"] matches no scan`})
	want := `<84>1 2026-01-05T08:12:00.250Z pumplab pumpserver - blocked [pumplab-audit@32473 control="order-crosscheck" action="blocked" target="PUMP-0001" ref="hl7:ROGUE0001" labtime="2026-01-05T08:12:00.25Z"] PCD-03 "x"] matches no scan`
	if got != want {
		t.Fatalf("Format:\n got %s\nwant %s", got, want)
	}
	if !line5424.MatchString(got) {
		t.Fatalf("not RFC 5424 shaped: %s", got)
	}
	if s := Format(Record{Action: "flagged", App: "a b\x01"}); !strings.HasPrefix(s, "<85>1 ") || !strings.Contains(s, " pumplab ab - flagged ") {
		t.Errorf("severity/app token: %s", s)
	}
}

func TestUDPSink(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l, err := New("udp://" + pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write(Record{App: "broker", Control: "broker-acl", Action: "blocked", Target: "broker", Source: "PUMP-0002", Ref: "pumplab/v1/pumps/PUMP-0001/cmd"})
	buf := make([]byte, 4096)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if m := line5424.FindStringSubmatch(string(buf[:n])); m == nil || m[1] != "84" || m[2] != "broker" {
		t.Fatalf("received %q", buf[:n])
	}
	if len(l.Records()) != 1 || l.Err() != nil {
		t.Fatalf("records %d err %v", len(l.Records()), l.Err())
	}
}

func TestTCPSinkOctetCounting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		var lines []string
		for range 2 {
			n, err := r.ReadString(' ')
			if err != nil {
				break
			}
			size, _ := strconv.Atoi(strings.TrimSpace(n))
			b := make([]byte, size)
			if _, err := r.Read(b); err != nil {
				break
			}
			lines = append(lines, string(b))
		}
		got <- lines
	}()
	l, err := New("tcp://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	l.Write(Record{App: "PUMP-0001", Control: "access-codes", Action: "blocked", Reason: "factory code refused"})
	l.Write(Record{App: "PUMP-0001", Control: "service-mode-audit", Action: "audited", Reason: "service session WO-1"})
	lines := <-got
	l.Close()
	if len(lines) != 2 || !line5424.MatchString(lines[0]) || !strings.HasSuffix(lines[1], "service session WO-1") {
		t.Fatalf("lines %q", lines)
	}
}

func TestSinkRefusesNonLoopbackAndBadURLs(t *testing.T) {
	for _, s := range []string{"udp://10.1.2.3:514", "http://127.0.0.1:1", "127.0.0.1:514", "tcp://"} {
		if _, err := New(s); err == nil {
			t.Errorf("New(%q) accepted", s)
		}
	}
}

func TestFailedSinkKeepsRecords(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		ln.Close()
	}()
	l, err := New("tcp://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		l.Write(Record{Control: "rate-limit", Action: "blocked"})
	}
	if len(l.Records()) != 50 {
		t.Fatalf("records %d", len(l.Records()))
	}
	if l.Err() == nil {
		t.Log("peer close not yet seen by writes; records kept regardless")
	}
}
