package toolspec

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const good = `name: refdetect
version: 0.1.0
kind: detector
start:
  command: go
  args: [run, ./tools/refdetect]
  env: {REFDETECT_LOG: info}
  dir: ..
  ready: refdetect ready
  timeout: 2m
reads: [pcap, lab-events]
report:
  via: http
scope:
  techniques: [T0831, T0855]
`

func TestParseGood(t *testing.T) {
	m, err := Parse([]byte(good), "ref.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "refdetect" || m.Kind != KindDetector || m.Start.Command != "go" || len(m.Start.Args) != 2 ||
		m.Start.Env["REFDETECT_LOG"] != "info" || m.Start.Timeout != 2*time.Minute || m.Start.When != WhenDuring ||
		m.Report.Via != ViaHTTP || m.Report.Time != "receive" || len(m.Scope.Techniques) != 2 || len(m.Reads) != 2 {
		t.Fatalf("parsed %+v", m)
	}
}

func TestParseErrorsNameFileLineField(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key", strings.Replace(good, "version:", "verison:", 1), "bad.yaml:2: verison: unknown field"},
		{"missing name", strings.Replace(good, "name: refdetect\n", "", 1), "bad.yaml:1: name: missing"},
		{"bad kind", strings.Replace(good, "kind: detector", "kind: firewall", 1), "bad.yaml:3: kind: \"firewall\" is not detector or inline-control"},
		{"bad read", strings.Replace(good, "reads: [pcap, lab-events]", "reads: [pcap, telepathy]", 1), "bad.yaml:11: reads[1]: \"telepathy\" is not an input"},
		{"bad technique", strings.Replace(good, "T0855", "T85", 1), "bad.yaml:15: scope.techniques[1]: \"T85\" is not an ATT&CK technique id"},
		{"bad timeout", strings.Replace(good, "timeout: 2m", "timeout: soon", 1), "bad.yaml:10: start.timeout: \"soon\" is not a positive duration"},
		{"args not list", strings.Replace(good, "args: [run, ./tools/refdetect]", "args: {a: b}", 1), "bad.yaml:6: start.args: want a list of strings, got a mapping"},
		{"no command", strings.Replace(good, "  command: go\n", "", 1), "bad.yaml:5: start: needs a command"},
		{"bad via", strings.Replace(good, "via: http", "via: pigeon", 1), "bad.yaml:13: report.via: \"pigeon\" is not http, syslog or file"},
		{"file without path", strings.Replace(good, "via: http", "via: file", 1), "bad.yaml:13: report.path: missing"},
		{"syntax", "name: [unclosed\n", "bad.yaml:"},
		{"not a mapping", "- a\n- b\n", "bad.yaml:1: manifest must be a mapping, got a list"},
		{"empty", "", "bad.yaml: empty manifest"},
		{"after with receive time", strings.Replace(good, "  timeout: 2m\n", "  timeout: 2m\n  when: after\n", 1), "report.time: a tool started after the run must report time: packet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), "bad.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T, want *Error", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"PUMPLAB_PCAP": "/x/traffic.pcapng"}
	got, err := Expand("-r ${PUMPLAB_PCAP} $HOME", vars)
	if err != nil || got != "-r /x/traffic.pcapng $HOME" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := Expand("${NOPE}", vars); err == nil || !strings.Contains(err.Error(), "${NOPE}") {
		t.Fatalf("err %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("name: x\nkind: detector\nstart: {command: a}\nreads: pcap\nreport: {via: file, path: a, format: eve}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b, "fuzz.yaml")
		if err == nil && (m.Name == "" || m.Report.Via == "") {
			t.Fatalf("accepted a manifest without name or report: %+v", m)
		}
	})
}
