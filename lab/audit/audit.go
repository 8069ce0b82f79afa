// Package audit writes the lab's security audit trail: one RFC 5424 syslog
// line per control decision (what control acted, on what, why), sent over
// UDP or TCP (RFC 6587 octet counting) to a collector such as a SIEM or a
// tool under test, and kept in memory for the run's reports.
//
// A line looks like this (one line, wrapped here):
//
//	<84>1 2026-01-05T08:12:00.250Z pumplab pumpserver - blocked
//	  [pumplab-audit@32473 control="order-crosscheck" action="blocked"
//	  target="PUMP-0001" ref="hl7:ROGUE0001" labtime="2026-01-05T08:12:00Z"]
//	  order cross-check: PCD-03 ROGUE0001 matches no BCMA scan
//
// The facility is 10 (security/authorization); the severity is warning (4)
// for blocked, notice (5) for flagged and informational (6) otherwise. The
// timestamp is wall time (what a collector compares with its own clock); the
// lab time is a structured-data parameter.
package audit

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SDID is the structured-data id of audit lines (32473 is the example
// enterprise number of RFC 5612).
const SDID = "pumplab-audit@32473"

// Facility is syslog facility 10, security/authorization messages.
const Facility = 10

// Record is one control decision.
type Record struct {
	Time    time.Time // wall time
	LabTime time.Time
	App     string // the component that enforced it: broker, pumpserver, PUMP-0001, ...
	Control string // posture control name
	Action  string // blocked, allowed, flagged, audited
	Target  string // asset it protected
	Source  string // who acted: client id, certificate CN, remote address
	Reason  string
	Ref     string // message id, connection, topic
}

// Severity is the syslog severity of the record's action.
func (r Record) Severity() int {
	switch r.Action {
	case "blocked", "denied", "refused":
		return 4
	case "flagged":
		return 5
	}
	return 6
}

// Format renders r as one RFC 5424 message (without framing).
func Format(r Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s pumplab %s - %s [%s", Facility*8+r.Severity(), r.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
		token(r.App), token(r.Action), SDID)
	param := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=\"%s\"", k, escape(v))
		}
	}
	param("control", r.Control)
	param("action", r.Action)
	param("target", r.Target)
	param("source", r.Source)
	param("ref", r.Ref)
	if !r.LabTime.IsZero() {
		param("labtime", r.LabTime.UTC().Format(time.RFC3339Nano))
	}
	b.WriteString("] ")
	msg := r.Reason
	if msg == "" {
		msg = r.Control + " " + r.Action
	}
	b.WriteString(strings.ReplaceAll(msg, "\n", " "))
	return b.String()
}

// token is an RFC 5424 header field: printable ASCII without spaces, "-"
// when empty, at most 48 characters.
func token(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c > 32 && c < 127 {
			b.WriteRune(c)
		}
	}
	out := b.String()
	if out == "" {
		return "-"
	}
	if len(out) > 48 {
		out = out[:48]
	}
	return out
}

// escape escapes a PARAM-VALUE (RFC 5424 §6.3.3).
func escape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`, "\n", " ")
	return r.Replace(s)
}

// Log is an audit trail: it keeps every record and forwards each as a
// syslog line to the sink, if any. It is safe for concurrent use. A sink
// that fails does not lose records: they stay in memory, and the error is
// counted and reported by Err.
type Log struct {
	mu      sync.Mutex
	records []Record
	conn    net.Conn
	tcp     bool
	sink    string
	failed  int
	lastErr error
}

// New returns an audit log that forwards to sink: "" for memory only,
// "udp://127.0.0.1:5514" or "tcp://127.0.0.1:6514" (RFC 6587 octet
// counting). The sink must be a loopback address: the lab talks only to
// itself.
func New(sink string) (*Log, error) {
	l := &Log{sink: sink}
	if sink == "" {
		return l, nil
	}
	u, err := url.Parse(sink)
	if err != nil || (u.Scheme != "udp" && u.Scheme != "tcp") || u.Host == "" {
		return nil, fmt.Errorf("audit: sink %q: want udp://host:port or tcp://host:port", sink)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("audit: sink %q: only loopback collectors are allowed in the lab", sink)
	}
	c, err := net.DialTimeout(u.Scheme, u.Host, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("audit: sink %s: %w", sink, err)
	}
	l.conn, l.tcp = c, u.Scheme == "tcp"
	return l, nil
}

// Write records r and sends it to the sink.
func (l *Log) Write(r Record) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r)
	if l.conn == nil {
		return
	}
	line := Format(r)
	var err error
	_ = l.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if l.tcp {
		_, err = l.conn.Write([]byte(strconv.Itoa(len(line)) + " " + line))
	} else {
		_, err = l.conn.Write([]byte(line))
	}
	if err != nil {
		l.failed++
		l.lastErr = err
	}
}

// Records returns every record so far, in order.
func (l *Log) Records() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Record(nil), l.records...)
}

// Err reports sink failures so far (nil when every line was sent).
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed == 0 {
		return nil
	}
	return fmt.Errorf("audit: %d of %d lines not sent to %s: %w", l.failed, len(l.records), l.sink, l.lastErr)
}

// Close closes the sink.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	err := l.conn.Close()
	l.conn = nil
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
