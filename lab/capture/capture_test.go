package capture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/pumplab/pumplab/lab/broker"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// startCapture starts a capture on lo, or fails the test with the reason
// (tests run as root here; without CAP_NET_RAW the capture cannot be
// tested, and that is an error, not a pass).
func startCapture(t *testing.T) *Capture {
	t.Helper()
	c, err := Start(Config{Path: filepath.Join(t.TempDir(), "traffic.pcapng")})
	if errors.Is(err, ErrPermission) && os.Getenv("PUMPLAB_REQUIRE_CAPTURE") == "" {
		t.Skipf("%v (set PUMPLAB_REQUIRE_CAPTURE=1 to make this a failure)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const rgv = "MSH|^~\\&|BCMA|WARD|PUMPSRV|HOSP|20260105080000||RGV^O15^RGV_O15|CAP0001|P|2.6\rPID|||MRN5501||DOE^JANE\rORC|XO|ORD1\rRXG|1||||0.05|mcg/kg/min\r"

// traffic makes real MQTT (embedded broker, paho client) and real MLLP
// traffic on loopback and returns the ports to allow.
func traffic(t *testing.T, c *Capture) (mqttPort, mllpPort uint16) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := &broker.Embedded{}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mqttPort, _ = PortOf(b.URL())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	mllpPort, _ = PortOf(ln.Addr().String())
	c.AllowPorts(mqttPort, mllpPort)

	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		if _, err := hl7.ReadFrame(br, 1<<20); err != nil {
			return
		}
		hl7.WriteFrame(conn, []byte("MSH|^~\\&|PUMPSRV|HOSP|BCMA|WARD|20260105080001||ACK^O15^ACK|A1|P|2.6\rMSA|CA|CAP0001\r"))
	}()
	cl, err := hl7.Dial(ctx, ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SendRaw(ctx, []byte(rgv)); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("capture-test")
	mc := paho.NewClient(o)
	if tok := mc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	for i := 0; i < 5; i++ {
		tok := mc.Publish("pumplab/v1/pumps/PUMP-0001/status", 1, false, fmt.Sprintf(`{"v":1,"id":"m%d","body":{}}`, i))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	mc.Disconnect(100)
	return mqttPort, mllpPort
}

// awaitClosed waits until the capture saw a FIN or RST towards each port
// (the clients closed: every packet before it was captured).
func awaitClosed(t *testing.T, c *Capture, ports ...uint16) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		done := 0
		for _, p := range ports {
			for _, f := range c.Flows() {
				if f.Closed && strings.HasSuffix(f.Tuple, fmt.Sprintf(":%d", p)) {
					done++
					break
				}
			}
		}
		if done == len(ports) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture saw no close towards ports %v (flows %+v)", ports, c.Flows())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCaptureLoopbackReadBack(t *testing.T) {
	c := startCapture(t)
	mqttPort, mllpPort := traffic(t, c)
	awaitClosed(t, c, mqttPort, mllpPort)
	// Traffic on a port that was not allowed is filtered out.
	other, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() {
		if conn, err := other.Accept(); err == nil {
			conn.Close()
		}
	}()
	if conn, err := net.Dial("tcp", other.Addr().String()); err == nil {
		conn.Close()
	}
	other.Close()
	// Await the capture reading them (held, counted as filtered).
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Filtered == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	otherPort, _ := PortOf(other.Addr().String())

	f, err := os.Open(c.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := NewReader(f)
	var mqtt, mllp int
	var sawRGV bool
	for {
		p, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		s, err := DecodeEthernet(p.Data)
		if err != nil {
			t.Fatalf("captured frame does not decode: %v", err)
		}
		if s.Src.Port() == otherPort || s.Dst.Port() == otherPort {
			t.Fatalf("packet on the filtered port %d was written", otherPort)
		}
		if time.Since(p.Time) > time.Minute || p.Time.After(time.Now()) {
			t.Fatalf("packet time %v is not now", p.Time)
		}
		switch {
		case s.Src.Port() == mqttPort || s.Dst.Port() == mqttPort:
			mqtt++
		case s.Src.Port() == mllpPort || s.Dst.Port() == mllpPort:
			mllp++
			if strings.Contains(string(s.Payload), "RGV^O15") {
				sawRGV = true
			}
		}
	}
	if mqtt == 0 || mllp == 0 || !sawRGV {
		t.Fatalf("read back %d MQTT and %d MLLP packets, RGV seen %v", mqtt, mllp, sawRGV)
	}
	if len(c.Flows()) < 4 {
		t.Fatalf("flows %+v", c.Flows())
	}
	if c.Stats().Filtered == 0 {
		t.Fatal("nothing was filtered")
	}
	if c.Stats().KernelTime == 0 {
		t.Fatalf("no packet carries the kernel's receive time: %+v", c.Stats())
	}
}

// TestTsharkDecodesCapture is the check: Debian's tshark decodes the
// MQTT and the HL7 of the capture without a malformed packet.
func TestTsharkDecodesCapture(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("PUMPLAB_REQUIRE_TSHARK") != "" {
			t.Fatal("PUMPLAB_REQUIRE_TSHARK is set but tshark is not in PATH (Debian: apt-get install tshark)")
		}
		t.Skip("no tshark in PATH (Debian: apt-get install tshark; PUMPLAB_REQUIRE_TSHARK=1 makes this a failure)")
	}
	c := startCapture(t)
	mqttPort, mllpPort := traffic(t, c)
	awaitClosed(t, c, mqttPort, mllpPort)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got := Tshark(t, c.Path(), []uint16{mqttPort}, []uint16{mllpPort})
	if got.Malformed != 0 || got.MQTTPublish < 5 || got.HL7 < 2 || got.MQTTConnect < 1 {
		t.Fatalf("tshark: %+v", got)
	}
}

// TsharkCounts are what tshark decoded in a pcapng file.
type TsharkCounts struct {
	Frames, MQTTConnect, MQTTPublish, HL7, Malformed int
}

// Tshark runs tshark on path, decoding the given ports as MQTT and as HL7
// over MLLP (tshark's "Decode As"; its HL7 heuristic does not know every
// IHE PCD message type), and counts.
func Tshark(t testing.TB, path string, mqttPorts, hl7Ports []uint16) TsharkCounts {
	t.Helper()
	args := []string{"-r", path, "-n", "-T", "fields", "-e", "frame.protocols", "-e", "mqtt.msgtype"}
	for _, p := range mqttPorts {
		args = append(args, "-d", fmt.Sprintf("tcp.port==%d,mqtt", p))
	}
	for _, p := range hl7Ports {
		args = append(args, "-d", fmt.Sprintf("tcp.port==%d,hl7", p))
	}
	out, err := exec.Command("tshark", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, out)
	}
	var c TsharkCounts
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		c.Frames++
		protos, types, _ := strings.Cut(line, "\t")
		if strings.Contains(protos, "_ws.malformed") || strings.Contains(protos, "_ws.expert") && strings.Contains(protos, "malformed") {
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

func TestPortOf(t *testing.T) {
	for in, want := range map[string]uint16{"tcp://127.0.0.1:1883": 1883, "127.0.0.1:2575": 2575, "http://127.0.0.1:8080/v1": 8080, "[::1]:99": 99, "localhost:7": 7} {
		if got, ok := PortOf(in); !ok || got != want {
			t.Errorf("PortOf(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "nonsense", "tcp://host"} {
		if _, ok := PortOf(in); ok {
			t.Errorf("PortOf(%q) found a port", in)
		}
	}
}

// TestPreRoll: traffic on a port captured before the port is allowed (a
// lab's start-up) is written once it is, before later packets.
func TestPreRoll(t *testing.T) {
	c := startCapture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port, _ := PortOf(ln.Addr().String())
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, conn)
			conn.Close()
		}
	}()
	send := func(msg string) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(msg))
		conn.Close()
	}
	send("early-before-allow")
	// Await the early connection's close in the pre-roll (Stats counts
	// held packets as filtered until they are written).
	// Other tests' loopback traffic also counts as filtered, so await the
	// early connection's own packets (its FIN among them) in the pre-roll.
	deadline := time.Now().Add(5 * time.Second)
	for heldFor(c, port) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("early packets never reached the capture")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.AllowPorts(port)
	send("late-after-allow")
	// Await both client connections' data and close in the capture.
	deadline = time.Now().Add(5 * time.Second)
	for {
		done := 0
		for _, f := range c.Flows() {
			if f.Closed && f.Bytes > 0 && strings.HasSuffix(f.Tuple, fmt.Sprintf(":%d", port)) {
				done++
			}
		}
		if done >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flows %+v", c.Flows())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Stats().PreRoll == 0 {
		t.Fatalf("no packet written from the pre-roll: %+v", c.Stats())
	}
	f, _ := os.Open(c.Path())
	defer f.Close()
	rd := NewReader(f)
	var order []string
	var last time.Time
	for {
		p, err := rd.Next()
		if err != nil {
			break
		}
		if p.Time.Before(last) {
			t.Fatalf("packets out of time order: %v after %v", p.Time, last)
		}
		last = p.Time
		s, _ := DecodeEthernet(p.Data)
		if len(s.Payload) > 0 {
			order = append(order, string(s.Payload))
		}
	}
	if len(order) != 2 || order[0] != "early-before-allow" || order[1] != "late-after-allow" {
		t.Fatalf("payloads in the file: %q", order)
	}
}

// heldFor counts the pre-roll packets held for a port.
func heldFor(c *Capture, port uint16) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, h := range c.pre[c.preHead:] {
		if h.seg.Src.Port() == port || h.seg.Dst.Port() == port {
			n++
		}
	}
	return n
}
