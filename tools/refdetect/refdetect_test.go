package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/lab/capture"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// wire feeds real protocol bytes (MQTT 3.1.1 packets, MLLP-framed HL7) as
// TCP segments in Ethernet frames through the detector's decoder,
// reassembler and rules, as a capture would.
type wire struct {
	t      *testing.T
	eng    *Engine
	re     *reassembler
	alerts []Alert
	now    time.Time
	seq    map[string]uint32
	port   uint16
}

const (
	brokerPort = 1883
	iocPort    = 2575
	emarPort   = 2576
	amPort     = 2577
	ehrPort    = 2578
)

func newWire(t *testing.T) *wire {
	w := &wire{t: t, now: time.Date(2026, 11, 28, 23, 0, 0, 0, time.UTC), seq: map[string]uint32{}, port: 40000}
	w.eng = NewEngine(Config{Tool: "refdetect"}, func(a Alert) { w.alerts = append(w.alerts, a) })
	w.re = newReassembler(w.eng)
	var ev LabEvent
	json.Unmarshal([]byte(fmt.Sprintf(`{"event":"lab-start","lab":1,"clock_speed":60,"pumps":["PUMP-0001","PUMP-0002"],
		"pump_server_client_id":"pumpserver","monitor_user":"monitor","endpoints":[
		{"name":"broker","address":"tcp://127.0.0.1:%d"},{"name":"pumpserver-ioc","address":"127.0.0.1:%d"},
		{"name":"emar-bcma","address":"127.0.0.1:%d"},{"name":"alarm-manager","address":"127.0.0.1:%d"},{"name":"ehr","address":"127.0.0.1:%d"}]}`, brokerPort, iocPort, emarPort, amPort, ehrPort)), &ev)
	w.eng.Lab(ev)
	return w
}

// frame builds an Ethernet/IPv4/TCP frame.
func frame(src, dst uint16, seq uint32, flags byte, payload []byte) []byte {
	b := make([]byte, 14+20+20, 54+len(payload))
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(40+len(payload)))
	ip[8], ip[9] = 64, 6
	copy(ip[12:], []byte{127, 0, 0, 1})
	copy(ip[16:], []byte{127, 0, 0, 1})
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], src)
	binary.BigEndian.PutUint16(tcp[2:], dst)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12] = 5 << 4
	tcp[13] = flags
	return append(b, payload...)
}

func (w *wire) packet(src, dst uint16, flags byte, payload []byte) {
	w.now = w.now.Add(time.Millisecond)
	key := fmt.Sprint(src, dst)
	seq := w.seq[key]
	if flags&capture.FlagSYN != 0 {
		seq = 1000
	}
	s, err := capture.DecodeEthernet(frame(src, dst, seq, flags, payload))
	if err != nil {
		w.t.Fatal(err)
	}
	w.re.segment(w.now, s)
	if flags&capture.FlagSYN != 0 {
		seq++
	}
	w.seq[key] = seq + uint32(len(payload))
	w.eng.Tick(w.now)
}

// connect opens a TCP connection to dst and returns the client port.
func (w *wire) connect(dst uint16) uint16 {
	w.port++
	p := w.port
	w.packet(p, dst, capture.FlagSYN, nil)
	w.packet(dst, p, capture.FlagSYN|capture.FlagACK, nil)
	w.packet(p, dst, capture.FlagACK, nil)
	return p
}

func mqttString(s string) []byte {
	b := []byte{byte(len(s) >> 8), byte(len(s))}
	return append(b, s...)
}

func mqttFixed(typeFlags byte, body []byte) []byte {
	out := []byte{typeFlags}
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

func mqttConnectPacket(clientID string) []byte {
	body := append(mqttString("MQTT"), 4, 0x02, 0, 30)
	return mqttFixed(0x10, append(body, mqttString(clientID)...))
}

func mqttPublishPacket(topic string, payload []byte) []byte {
	return mqttFixed(0x30, append(mqttString(topic), payload...))
}

// mqttClient connects clientID to the broker and returns its port.
func (w *wire) mqttClient(clientID string) uint16 {
	p := w.connect(brokerPort)
	w.packet(p, brokerPort, capture.FlagPSH|capture.FlagACK, mqttConnectPacket(clientID))
	w.packet(brokerPort, p, capture.FlagPSH|capture.FlagACK, []byte{0x20, 2, 0, 0})
	return p
}

func (w *wire) publish(port uint16, pump string, kind pumpwire.Kind, from, id string, body any) {
	payload, err := pumpwire.Encode(id, from, w.now, 1, body)
	if err != nil {
		w.t.Fatal(err)
	}
	w.packet(port, brokerPort, capture.FlagPSH|capture.FlagACK, mqttPublishPacket(pumpwire.Topic(pump, kind), payload))
}

func (w *wire) hl7(dst uint16, m *hl7.Message) {
	p := w.connect(dst)
	w.packet(p, dst, capture.FlagPSH|capture.FlagACK, hl7.Frame(m.Bytes()))
	ack := hl7.BuildAck(m, "AA", nil)
	w.packet(dst, p, capture.FlagPSH|capture.FlagACK, hl7.Frame(ack.Bytes()))
	w.packet(p, dst, capture.FlagFIN|capture.FlagACK, nil)
}

// only returns the categories of the alerts so far and clears them.
func (w *wire) only() []string {
	var out []string
	for _, a := range w.alerts {
		if a.Tool != "refdetect" || len(a.Techniques) == 0 || len(a.Assets) == 0 {
			w.t.Errorf("alert without tool, techniques or assets: %+v", a)
		}
		out = append(out, a.Category)
	}
	w.alerts = nil
	return out
}

func want(t *testing.T, got []string, cats ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(cats, ",") {
		t.Fatalf("alerts %v, want %v", got, cats)
	}
}

func rde(placer, mrn string, dose float64) *hl7.Message {
	return hl7.BuildRDE(hl7.PharmacyOrder{Header: hl7.Header{ControlID: "RX" + placer}, Patient: hl7.Patient{MRN: mrn},
		PlacerOrder: placer, PlacerApp: "EHR_SIM", FillerOrder: "F" + placer, FillerApp: "PHARM", GiveCode: "NOREPI-4-250",
		Dose: dose, DoseUnit: "mcg/kg/min", DrugAmount: 4, DrugAmountUnit: "mg", DiluentVolume: 250, WeightKg: 70})
}

func rgv(control, action, placer, mrn, pump, nurse string, dose, amount, weight float64) *hl7.Message {
	return hl7.BuildRGV(hl7.RGV{Header: hl7.Header{ControlID: control}, Patient: hl7.Patient{MRN: mrn},
		OrderControl: action, PlacerOrder: placer, PlacerApp: "EHR_SIM", Nurse: hl7.Person{ID: nurse},
		GiveCode: "NOREPI-4-250", DoseRate: dose, DoseRateUnit: "mcg/kg/min", DrugAmount: amount, DrugAmountUnit: "mg",
		DiluentVolume: 250, VTBI: 250, PumpID: pump, WeightKg: weight})
}

func TestLegitimateWorkflowIsQuiet(t *testing.T) {
	w := newWire(t)
	srv := w.mqttClient("pumpserver")
	p1 := w.mqttClient("PUMP-0001")
	w.hl7(emarPort, rde("ORD-1", "MRN1", 0.05))
	w.hl7(iocPort, rgv("BCMA000001", "RE", "ORD-1", "MRN1", "PUMP-0001", "RN0042", 0.05, 4, 70))
	w.publish(srv, "PUMP-0001", pumpwire.KindCmd, "pumpserver", "c1", pumpwire.Command{CmdID: "c1", Op: pumpwire.OpProgram, Channel: "A",
		Program: &pumpwire.Program{OrderID: "ORD-1", Action: "RE", DoseRate: 0.05}})
	st := pumpwire.Status{State: "infusing", PatientID: "MRN1", Channels: []pumpwire.ChannelStatus{{Channel: "A", State: "infusing", RateMLH: 13.125}}}
	for i := 0; i < 5; i++ {
		w.publish(p1, "PUMP-0001", pumpwire.KindStatus, "PUMP-0001", fmt.Sprint("s", i), st)
	}
	// A titration (XO) from the BCMA scan: clinical, not an alert; the
	// pump server programs the pump, which runs the new rate once the
	// nurse confirms (a status or two later).
	w.hl7(iocPort, rgv("BCMA000002", "XO", "ORD-1", "MRN1", "PUMP-0001", "RN0042", 0.15, 4, 70))
	w.publish(srv, "PUMP-0001", pumpwire.KindCmd, "pumpserver", "c2", pumpwire.Command{CmdID: "c2", Op: pumpwire.OpProgram, Channel: "A",
		Program: &pumpwire.Program{OrderID: "ORD-1", Action: "XO", DoseRate: 0.15}})
	w.publish(p1, "PUMP-0001", pumpwire.KindStatus, "PUMP-0001", "s10", st)
	st.Channels[0].RateMLH = 39.375
	w.publish(p1, "PUMP-0001", pumpwire.KindStatus, "PUMP-0001", "s11", st)
	w.publish(p1, "PUMP-0001", pumpwire.KindStatus, "PUMP-0001", "s12", st)
	// An alarm the pump server forwards to the alarm manager in time.
	w.publish(p1, "PUMP-0001", pumpwire.KindAlarm, "PUMP-0001", "a1", pumpwire.Alarm{AlarmID: "A1", Code: "occlusion_downstream", Phase: "start", Priority: "PH", Type: "SP"})
	w.hl7(amPort, hl7.BuildAlert(hl7.Alert{Header: hl7.Header{ControlID: "AM1"}, AlertID: "A1", PumpID: "PUMP-0001", Phase: hl7.PhaseStart, State: hl7.StateActive, Priority: "PH", Type: "SP"}))
	w.now = w.now.Add(10 * time.Second)
	w.eng.Tick(w.now)
	want(t, w.only())
}

func TestAttacksAreDetected(t *testing.T) {
	w := newWire(t)
	w.mqttClient("pumpserver")
	p1 := w.mqttClient("PUMP-0001")
	w.hl7(emarPort, rde("ORD-1", "MRN1", 0.05))
	w.publish(p1, "PUMP-0001", pumpwire.KindStatus, "PUMP-0001", "s0", pumpwire.Status{State: "infusing", PatientID: "MRN1",
		Channels: []pumpwire.ChannelStatus{{Channel: "A", State: "infusing", RateMLH: 13.125}}})
	want(t, w.only())

	// Forged PCD-03 (ATK-10): no scanning clinician.
	w.hl7(iocPort, rgv("ROGUE0001", "XO", "ORD-1", "MRN1", "PUMP-0001", "", 0.15, 4, 70))
	want(t, w.only(), ruleNoOrder)
	// Weight and concentration changed in transit (ATK-13, ATK-12).
	w.hl7(iocPort, rgv("BCMA000003", "RE", "ORD-1", "MRN1", "PUMP-0001", "RN0042", 0.05, 4, 140))
	want(t, w.only(), ruleDoseMismatch)
	w.hl7(iocPort, rgv("BCMA000004", "RE", "ORD-1", "MRN1", "PUMP-0001", "RN0042", 0.05, 2, 70))
	want(t, w.only(), ruleDoseMismatch)
	// Another patient's order to a pump that infuses MRN1 (ATK-14).
	w.hl7(emarPort, rde("ORD-2", "MRN2", 0.15))
	w.hl7(iocPort, rgv("BCMA000005", "XO", "ORD-2", "MRN2", "PUMP-0001", "RN0042", 0.15, 4, 70))
	want(t, w.only(), ruleNoOrder)
	// An accepted PCD-03 sent again (ATK-15).
	w.hl7(iocPort, rgv("BCMA000005", "XO", "ORD-2", "MRN2", "PUMP-0001", "RN0042", 0.15, 4, 70))
	want(t, w.only(), ruleReplay)

	// MQTT: an unknown client subscribing to everything, then commanding.
	atk := w.mqttClient("attacker-1")
	want(t, w.only(), ruleUnknownClient)
	w.packet(atk, brokerPort, capture.FlagPSH|capture.FlagACK, mqttFixed(0x82, append([]byte{0, 1}, append(mqttString("pumplab/v1/#"), 0)...)))
	want(t, w.only(), ruleWildcardSub)
	w.publish(atk, "PUMP-0001", pumpwire.KindCmd, "pumpserver", "x1", pumpwire.Command{CmdID: "x1", Op: pumpwire.OpStop})
	want(t, w.only(), ruleRogueCommand)
	// A spoofed alarm end published by the attacker.
	w.publish(atk, "PUMP-0002", pumpwire.KindAlarm, "PUMP-0002", "x2", pumpwire.Alarm{AlarmID: "Z", Code: "air_in_line", Phase: "end", Priority: "PH", Type: "SP"})
	want(t, w.only(), ruleSpoofedReport)
	// The same command message id again: a replay (one alert per subject and minute for the rogue command).
	w.publish(atk, "PUMP-0001", pumpwire.KindCmd, "pumpserver", "x1", pumpwire.Command{CmdID: "x1", Op: pumpwire.OpStop})
	want(t, w.only(), ruleReplay)
	// The pump server's client id taken over from another connection.
	w.mqttClient("pumpserver")
	want(t, w.only(), ruleClientTakeover)

	// ATK-25: a pump alarm that never reaches the alarm manager.
	w.publish(p1, "PUMP-0001", pumpwire.KindAlarm, "PUMP-0001", "a9", pumpwire.Alarm{AlarmID: "A9", Code: "occlusion_downstream", Phase: "start", Priority: "PH", Type: "SP"})
	want(t, w.only())
	w.now = w.now.Add(2 * time.Second) // 120 lab s at x60
	w.eng.Tick(w.now)
	want(t, w.only(), ruleAlarmSuppress)

	// Documentation of a delivery the pump never reported (ATK-24), and of
	// one it did.
	w.publish(p1, "PUMP-0001", pumpwire.KindEvent, "PUMP-0001", "ev-1", pumpwire.Event{EventID: "E1", Type: pumpwire.EvDeliveryStart, Channel: "A"})
	w.hl7(ehrPort, hl7.BuildInfusionEvent(hl7.InfusionEvent{Header: hl7.Header{ControlID: "DOC1"}, Patient: hl7.Patient{MRN: "MRN1"},
		EventID: "ev-1", PumpID: "PUMP-0001", Event: hl7.Code{Ref: "MDC_EVT_PUMP_DELIV_START"}}))
	want(t, w.only())
	w.hl7(ehrPort, hl7.BuildInfusionEvent(hl7.InfusionEvent{Header: hl7.Header{ControlID: "SPOOF0024"}, Patient: hl7.Patient{MRN: "MRN1"},
		EventID: "SPOOFEV1", PumpID: "PUMP-0001", Event: hl7.Code{Ref: "MDC_EVT_PUMP_DELIV_COMP"}}))
	want(t, w.only(), ruleSpoofedDoc)

	// PCD-01 to the EHR: the rate the pump reports is documented; another
	// rate is a spoofed status (ATK-24 style).
	w.hl7(ehrPort, hl7.BuildPumpStatus(hl7.PumpStatus{Header: hl7.Header{ControlID: "DEC1"}, Patient: hl7.Patient{MRN: "MRN1"}, PumpID: "PUMP-0001", Channel: "A", RateMLH: 13.125}))
	want(t, w.only())
	w.hl7(ehrPort, hl7.BuildPumpStatus(hl7.PumpStatus{Header: hl7.Header{ControlID: "SPOOF01"}, Patient: hl7.Patient{MRN: "MRN1"}, PumpID: "PUMP-0001", Channel: "A", RateMLH: 5}))
	want(t, w.only(), ruleSpoofedStatus)

	// A rate change at the pump that no program from the pump server set.
	w.publish(p1, "PUMP-0001", pumpwire.KindStatus, "PUMP-0001", "s1", pumpwire.Status{State: "infusing", PatientID: "MRN1",
		Channels: []pumpwire.ChannelStatus{{Channel: "A", State: "infusing", RateMLH: 39.4}}})
	want(t, w.only(), ruleDoseMismatch)
}

func TestAlarmFlood(t *testing.T) {
	w := newWire(t)
	p := w.mqttClient("PUMP-0002")
	for i := 0; i < 8; i++ {
		w.publish(p, "PUMP-0002", pumpwire.KindAlarm, "PUMP-0002", fmt.Sprint("f", i), pumpwire.Alarm{AlarmID: fmt.Sprint("F", i), Code: "air_in_line", Phase: "start", Priority: "PN", Type: "SP"})
	}
	want(t, w.only(), ruleAlarmFlood)
}

func TestParseMQTTErrors(t *testing.T) {
	if _, _, err := parseMQTT([]byte{0x30}); err != errMQTTShort {
		t.Fatalf("1 byte: %v", err)
	}
	if _, _, err := parseMQTT([]byte{0x10, 4, 0, 2, 'X', 'Y'}); err == nil || !strings.Contains(err.Error(), "protocol name") {
		t.Fatalf("bad CONNECT: %v", err)
	}
	if _, _, err := parseMQTT([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}); err == nil {
		t.Fatal("5-byte remaining length accepted")
	}
	p, n, err := parseMQTT(mqttPublishPacket("a/b", []byte("x")))
	if err != nil || n != 8 || p.Topic != "a/b" || string(p.Payload) != "x" {
		t.Fatalf("publish: %+v %d %v", p, n, err)
	}
}

func FuzzParseMQTT(f *testing.F) {
	f.Add(mqttConnectPacket("PUMP-0001"))
	f.Add(mqttPublishPacket("pumplab/v1/pumps/PUMP-0001/cmd", []byte(`{"v":1}`)))
	f.Add(mqttFixed(0x82, append([]byte{0, 1}, append(mqttString("#"), 0)...)))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, n, err := parseMQTT(b)
		if err == nil && (n <= 0 || n > len(b)) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
	})
}

// FuzzStream feeds arbitrary payloads as a TCP stream to the reassembler
// and the rules: no input may crash them.
func FuzzStream(f *testing.F) {
	f.Add(mqttConnectPacket("PUMP-0001"), []byte{0x0b, 'M', 'S', 'H', 0x1c, 0x0d})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		w := newWire(t)
		p := w.connect(brokerPort)
		w.packet(p, brokerPort, capture.FlagPSH|capture.FlagACK, a)
		w.packet(p, brokerPort, capture.FlagPSH|capture.FlagACK, b)
		q := w.connect(iocPort)
		w.packet(q, iocPort, capture.FlagPSH|capture.FlagACK, b)
		w.packet(q, iocPort, capture.FlagPSH|capture.FlagACK, a)
	})
}

func TestServicePortSession(t *testing.T) {
	w := newWire(t)
	var ev LabEvent
	json.Unmarshal([]byte(`{"event":"lab-start","clock_speed":60,"pumps":["PUMP-0001"],"endpoints":[{"name":"service-PUMP-0001","protocol":"telnet","address":"127.0.0.1:2323"},{"name":"broker","protocol":"mqtt","address":"tcp://127.0.0.1:1883"}]}`), &ev)
	w.eng.Lab(ev)
	w.mqttClient("PUMP-0001")
	want(t, w.only())
	w.connect(2323)
	got := w.alerts
	want(t, w.only(), ruleServicePort)
	if got[0].Assets[len(got[0].Assets)-1] != "PUMP-0001" {
		t.Fatalf("assets %v do not name the pump", got[0].Assets)
	}
}

// TestAlarmBurstAndSpoofedPCD04: a burst the pump server forwards slowly is
// no suppression while PCD-04s keep flowing; a PCD-04 for an alarm the pump
// never raised is spoofed.
func TestAlarmBurstAndSpoofedPCD04(t *testing.T) {
	w := newWire(t)
	p1 := w.mqttClient("PUMP-0001")
	p2 := w.mqttClient("PUMP-0002")
	w.publish(p1, "PUMP-0001", pumpwire.KindAlarm, "PUMP-0001", "b1", pumpwire.Alarm{AlarmID: "PUMP-0001-A1", Code: "battery_low", Phase: "start", Priority: "PL", Type: "ST"})
	w.publish(p2, "PUMP-0002", pumpwire.KindAlarm, "PUMP-0002", "b2", pumpwire.Alarm{AlarmID: "PUMP-0002-A1", Code: "battery_low", Phase: "start", Priority: "PL", Type: "ST"})
	// PUMP-0001's PCD-04 arrives in time (the deadline is 60 lab s, 1 s
	// at x60), PUMP-0002's after its first deadline: the link is busy.
	w.now = w.now.Add(500 * time.Millisecond)
	w.hl7(amPort, hl7.BuildAlert(hl7.Alert{Header: hl7.Header{ControlID: "AM1"}, AlertID: "PUMP-0001-A1", PumpID: "PUMP-0001", Phase: hl7.PhaseStart, State: hl7.StateActive, Priority: "PL", Type: "ST"}))
	w.now = w.now.Add(1000 * time.Millisecond)
	w.eng.Tick(w.now)
	w.hl7(amPort, hl7.BuildAlert(hl7.Alert{Header: hl7.Header{ControlID: "AM2"}, AlertID: "PUMP-0002-A1", PumpID: "PUMP-0002", Phase: hl7.PhaseStart, State: hl7.StateActive, Priority: "PL", Type: "ST"}))
	w.now = w.now.Add(10 * time.Second)
	w.eng.Tick(w.now)
	want(t, w.only())
	// A PCD-04 for an alarm id PUMP-0002 never published.
	w.hl7(amPort, hl7.BuildAlert(hl7.Alert{Header: hl7.Header{ControlID: "X1"}, AlertID: "PUMP-0002-A9", PumpID: "PUMP-0002", Phase: hl7.PhaseStart, State: hl7.StateActive, Priority: "PH", Type: "SP"}))
	want(t, w.only(), ruleSpoofedAlarm)
}

func TestCommandTechniques(t *testing.T) {
	for _, c := range []struct {
		cmd  pumpwire.Command
		want string
	}{
		{pumpwire.Command{Op: pumpwire.OpSetRate}, "T0855 T0848 T0836 T0831"},
		{pumpwire.Command{Op: pumpwire.OpConfig, Settings: map[string]string{pumpwire.SetOcclusionThreshold: "1200"}}, "T0855 T0848 T0836 T0838 T0837"},
		{pumpwire.Command{Op: pumpwire.OpConfig, Settings: map[string]string{pumpwire.SetServerAddress: "tcp://127.0.0.1:1"}}, "T0855 T0848 T0836 T0815"},
		{pumpwire.Command{Op: pumpwire.OpStatusRequest}, "T0855 T0848"},
	} {
		if got := strings.Join(commandTechniques(c.cmd), " "); got != c.want {
			t.Errorf("%s %v: %s, want %s", c.cmd.Op, c.cmd.Settings, got, c.want)
		}
	}
}

func TestServicePortTextSession(t *testing.T) {
	w := newWire(t)
	p := w.connect(2424) // a port the lab did not list
	w.packet(2424, p, capture.FlagPSH|capture.FlagACK, []byte("OK pumplab service port PUMP-0002 LVP-9 fw1.2: LOGIN user code\r\n"))
	got := append([]Alert(nil), w.alerts...)
	want(t, w.only(), ruleServicePort)
	if got[0].Assets[0] != "PUMP-0002" || got[0].Assets[1] != "service-port:127.0.0.1:2424" {
		t.Fatalf("assets %v", got[0].Assets)
	}
	w.packet(p, 2424, capture.FlagPSH|capture.FlagACK, []byte("LOGIN service 0000\r\n"))
	want(t, w.only()) // one alert per session and lab minute
}

func TestLibraryRollback(t *testing.T) {
	w := newWire(t)
	p := w.mqttClient("PUMP-0001")
	w.publish(p, "PUMP-0001", pumpwire.KindEvent, "PUMP-0001", "l1", pumpwire.Event{EventID: "L1", Type: pumpwire.EvLibraryActivated,
		Params: map[string]string{"version": "ADULT-2026.02", "previous": "ADULT-2026.01"}})
	want(t, w.only())
	w.publish(p, "PUMP-0001", pumpwire.KindEvent, "PUMP-0001", "l2", pumpwire.Event{EventID: "L2", Type: pumpwire.EvLibraryActivated,
		Params: map[string]string{"version": "ADULT-2026.01", "previous": "ADULT-2026.02"}})
	want(t, w.only(), ruleLibrary)
}

// TestAlarmEndAndPumpIdentity: a PCD-04 end the pump confirms soon after is
// fine, one it never confirms is a spoofed end (ATK-28); a pump identity
// subscribing to every pump is stolen credentials (ATK-01).
func TestAlarmEndAndPumpIdentity(t *testing.T) {
	w := newWire(t)
	p1 := w.mqttClient("PUMP-0001")
	alarm := func(id, phase string) {
		w.publish(p1, "PUMP-0001", pumpwire.KindAlarm, "PUMP-0001", id+phase, pumpwire.Alarm{AlarmID: id, Code: "occlusion_downstream", Phase: phase, Priority: "PH", Type: "SP"})
	}
	end := func(id string) {
		w.hl7(amPort, hl7.BuildAlert(hl7.Alert{Header: hl7.Header{ControlID: "E" + id}, AlertID: id, PumpID: "PUMP-0001", Phase: hl7.PhaseEnd, State: hl7.StateInactive, Priority: "PH", Type: "SP"}))
	}
	alarm("PUMP-0001-A1", "start")
	w.hl7(amPort, hl7.BuildAlert(hl7.Alert{Header: hl7.Header{ControlID: "S1"}, AlertID: "PUMP-0001-A1", PumpID: "PUMP-0001", Phase: hl7.PhaseStart, State: hl7.StateActive, Priority: "PH", Type: "SP"}))
	end("PUMP-0001-A1")
	alarm("PUMP-0001-A1", "end")
	w.now = w.now.Add(5 * time.Second)
	w.eng.Tick(w.now)
	want(t, w.only())
	alarm("PUMP-0001-A2", "start")
	w.hl7(amPort, hl7.BuildAlert(hl7.Alert{Header: hl7.Header{ControlID: "S2"}, AlertID: "PUMP-0001-A2", PumpID: "PUMP-0001", Phase: hl7.PhaseStart, State: hl7.StateActive, Priority: "PH", Type: "SP"}))
	end("PUMP-0001-A2")
	want(t, w.only())
	w.now = w.now.Add(5 * time.Second)
	w.eng.Tick(w.now)
	want(t, w.only(), ruleAlarmEnd)

	thief := w.mqttClient("PUMP-0002")
	w.packet(thief, brokerPort, capture.FlagPSH|capture.FlagACK, mqttFixed(0x82, append([]byte{0, 1}, append(mqttString("pumplab/v1/pumps/+/status"), 0)...)))
	got := append([]Alert(nil), w.alerts...)
	want(t, w.only(), ruleWildcardSub)
	if got[0].Techniques[0] != "T0859" {
		t.Fatalf("techniques %v", got[0].Techniques)
	}
}
