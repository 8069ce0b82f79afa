package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pumplab/pumplab/harness/report"
	"github.com/pumplab/pumplab/lab/capture"
)

// requireTool fails (with PUMPLAB_REQUIRE_<NAME> set, as in CI) or skips
// when a program the test needs is not installed.
func requireTool(t *testing.T, prog, env, install string) {
	t.Helper()
	if _, err := exec.LookPath(prog); err == nil {
		return
	}
	if os.Getenv(env) != "" {
		t.Fatalf("%s is set but %s is not in PATH (%s)", env, prog, install)
	}
	t.Skipf("no %s in PATH (%s; %s=1 makes this a failure)", prog, install, env)
}

// TestRunWithToolManifests runs ATK-10 and CTL-01 with the reference
// detector and Suricata side by side, plus a manifest with an error, a tool
// that cannot start and one that crashes mid-run: each is a clear note, the
// run completes and scores the two good tools; tshark decodes the MQTT and
// the HL7 of the run's traffic.pcapng without a malformed packet.
func TestRunWithToolManifests(t *testing.T) {
	requireTool(t, "suricata", "PUMPLAB_REQUIRE_SURICATA", "Debian bookworm-backports: apt-get install -t bookworm-backports suricata")
	requireTool(t, "tshark", "PUMPLAB_REQUIRE_TSHARK", "Debian: apt-get install tshark")
	if os.Geteuid() != 0 && os.Getenv("PUMPLAB_REQUIRE_CAPTURE") == "" {
		t.Skip("capturing the lab's traffic needs root (CAP_NET_RAW); PUMPLAB_REQUIRE_CAPTURE=1 makes this a failure")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "pumplab")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	repo, _ := filepath.Abs("../..")
	write := func(name, body string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", "name: broken\nkind: firewall\nstart: {command: x}\nreads: [pcap]\nreport: {via: http}\n")
	ghost := write("ghost.yaml", "name: ghost\nkind: detector\nstart: {command: pumplab-no-such-tool, ready: up}\nreads: [pcap]\nreport: {via: http}\n")
	crashy := write("crashy.yaml", fmt.Sprintf(`name: crashy
kind: detector
start:
  command: go
  args: [run, ./tools/refdetect, -crash-after-packets, "200"]
  dir: %s
  ready: refdetect ready
  timeout: 3m
reads: [pcap, lab-events]
report: {via: http}
`, repo))
	out := filepath.Join(tmp, "out")
	cmd := exec.Command(bin, "run", "--out", out, "--posture", "legacy", "--label-filter", "ATK-10 || CTL-01",
		"--tool", filepath.Join(repo, "tools/refdetect.yaml"), "--tool", filepath.Join(repo, "tools/suricata.yaml"),
		"--tool", bad, "--tool", ghost, "--tool", crashy)
	b, err := cmd.CombinedOutput()
	log := string(b)
	if err != nil {
		t.Fatalf("pumplab run: %v\n%s", err, log)
	}
	for _, want := range []string{
		`tool manifest ` + bad + ` not used: ` + bad + `:2: kind: "firewall" is not detector or inline-control`,
		`tool ghost could not start (not scored): exec: "pumplab-no-such-tool": executable file not found`,
		`tool crashy exited mid-run at`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("run output lacks %q", want)
		}
	}
	runs, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(runs) != 1 {
		t.Fatalf("run directories %v", runs)
	}
	dir := runs[0]
	var card report.Scorecard
	raw, err := os.ReadFile(filepath.Join(dir, "scorecard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &card); err != nil {
		t.Fatal(err)
	}
	agg := map[string]bool{}
	for _, a := range card.Aggregates {
		agg[a.Tool] = true
	}
	if !agg["refdetect"] || !agg["suricata"] || agg["ghost"] || agg["broken"] {
		t.Errorf("scored tools %v, want refdetect and suricata (and crashy), not ghost or broken\n%s", agg, log)
	}
	// The reference detector and Suricata (by the forged PCD-03's flow) both
	// name ATK-10's technique.
	found := map[string]bool{}
	for _, v := range card.Steps {
		if v.StepID != "ATK-10/1" {
			continue
		}
		for _, d := range v.Tools {
			if d.Category == "technique" {
				found[d.Tool] = true
			}
		}
	}
	if !found["refdetect"] || !found["suricata"] {
		t.Errorf("Technique detections of ATK-10/1: %v, want refdetect and suricata\n%s", found, log)
	}
	// tshark decodes the MQTT and the HL7 of the capture.
	var mqttPorts, mllpPorts []uint16
	evs, err := os.ReadFile(filepath.Join(dir, "lab-events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(evs)), "\n") {
		var ev labEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		for _, e := range ev.Endpoints {
			p, ok := capture.PortOf(e.Address)
			if !ok {
				continue
			}
			switch e.Protocol {
			case "mqtt":
				mqttPorts = append(mqttPorts, p)
			case "mllp":
				mllpPorts = append(mllpPorts, p)
			}
		}
	}
	c := tshark(t, filepath.Join(dir, "traffic.pcapng"), mqttPorts, mllpPorts)
	if c.Malformed != 0 || c.MQTTPublish == 0 || c.MQTTConnect == 0 || c.HL7 == 0 {
		t.Errorf("tshark on the run's capture: %+v", c)
	}
	t.Logf("tshark: %+v", c)
}

type tsharkCounts struct{ Frames, MQTTConnect, MQTTPublish, HL7, Malformed int }

// tshark decodes path with the lab's ports as MQTT and HL7 ("Decode As")
// and counts frames by protocol; a malformed frame shows as _ws.malformed.
func tshark(t *testing.T, path string, mqttPorts, hl7Ports []uint16) tsharkCounts {
	t.Helper()
	args := []string{"-r", path, "-n", "-T", "fields", "-e", "frame.protocols", "-e", "mqtt.msgtype"}
	seen := map[string]bool{}
	for _, p := range mqttPorts {
		if d := fmt.Sprintf("tcp.port==%d,mqtt", p); !seen[d] {
			seen[d] = true
			args = append(args, "-d", d)
		}
	}
	for _, p := range hl7Ports {
		if d := fmt.Sprintf("tcp.port==%d,hl7", p); !seen[d] {
			seen[d] = true
			args = append(args, "-d", d)
		}
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var c tsharkCounts
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		c.Frames++
		protos, types, _ := strings.Cut(line, "\t")
		if strings.Contains(protos, "_ws.malformed") {
			c.Malformed++
		}
		if strings.Contains(protos, ":hl7") {
			c.HL7++
		}
		for _, ty := range strings.Split(types, ",") {
			switch ty {
			case "1":
				c.MQTTConnect++
			case "3":
				c.MQTTPublish++
			}
		}
	}
	return c
}

func TestEveFlow(t *testing.T) {
	got := eveFlow([]byte(`{"event_type":"alert","src_ip":"127.0.0.1","src_port":45576,"dest_ip":"127.0.0.1","dest_port":45229,"proto":"TCP"}`))
	want := []string{"tcp:127.0.0.1:45576->127.0.0.1:45229", "tcp:127.0.0.1:45229->127.0.0.1:45576"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("eveFlow = %v, want %v", got, want)
	}
	if got := eveFlow([]byte(`{"event_type":"stats"}`)); got != nil {
		t.Fatalf("flow of a stats line: %v", got)
	}
	v6 := eveFlow([]byte(`{"src_ip":"::1","src_port":1,"dest_ip":"::1","dest_port":2,"proto":"TCP"}`))
	if len(v6) != 2 || v6[0] != "tcp:[::1]:1->[::1]:2" {
		t.Fatalf("IPv6 flow %v", v6)
	}
}

func TestLineWatcher(t *testing.T) {
	n := 0
	w := &lineWatcher{want: "refdetect ready", onMatch: func() { n++ }}
	w.Write([]byte("starting\nrefdetect re"))
	if n != 0 {
		t.Fatal("matched a partial line")
	}
	w.Write([]byte("ady\nmore\n"))
	if n != 1 {
		t.Fatalf("matches %d, want 1", n)
	}
}

func TestAddrRE(t *testing.T) {
	got := addrRE.FindAllString("tcp:127.0.0.1:45576->127.0.0.1:45229 service-port:127.0.0.1:2424 mllp:[::1]:99 mqtt-client:PUMP-0001", -1)
	if strings.Join(got, " ") != "127.0.0.1:45576 127.0.0.1:45229 127.0.0.1:2424 [::1]:99" {
		t.Fatalf("addresses %q", got)
	}
}
