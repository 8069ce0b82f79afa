package toolspec_test

import (
	"fmt"

	"github.com/pumplab/pumplab/harness/toolspec"
)

func Example() {
	m, err := toolspec.Parse([]byte(`name: pumpguard
version: 2.1.0
kind: detector
start:
  command: /opt/pumpguard/bin/pumpguard
  args: [--pcap, "${PUMPLAB_PCAP}", --post, "${PUMPLAB_ALERTS_URL}"]
  ready: listening
reads: [pcap, lab-events]
report:
  via: http
scope:
  techniques: [T0831, T0855]
`), "pumpguard.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Name, m.Kind, m.Start.When, m.Report.Via, m.Scope.Techniques)
	_, err = toolspec.Parse([]byte("name: pumpguard\nkind: firewall\n"), "bad.yaml")
	fmt.Println(err)
	// Output:
	// pumpguard detector during http [T0831 T0855]
	// bad.yaml:1: reads: missing; bad.yaml:1: report: missing; bad.yaml:1: start: missing; bad.yaml:2: kind: "firewall" is not detector or inline-control
}
