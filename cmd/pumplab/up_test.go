package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// rgv is a PCD-03 as a plain BCMA would send it (REFERENCE.md §4.8(a)),
// aimed at PUMP-0003.
const rgv = "MSH|^~\\&|BCMA_SIM^0011223344556677^EUI-64|HOSP_BCMA|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|20250301101500-0500||RGV^O15^RGV_O15|EXT000123|P|2.6|||AL|AL||UNICODE UTF-8|en^English^ISO639||IHE_PCD_PIV_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.3.1^ISO\r" +
	"PID|||MRN4455^^^HOSP^MR||Testpatient^Alex^^^^^L||19700101|F\r" +
	"PV1||I|4W ICU^12^A\r" +
	"ORC|RE|ADM-778899^BCMA_SIM|||||||20250301101500-0500||||||||||RN0042^Nurse^Nina\r" +
	"RXG|1|||NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|250||263762^MDC_DIM_MILLI_L^MDC||||||||0.05|265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC|4|263890^MDC_DIM_MILLI_G^MDC|||||250|263762^MDC_DIM_MILLI_L^MDC\r" +
	"RXR|^IV^HL70162||^IVP^HL70164|^IV^HL70165\r" +
	"OBX|1||69986^MDC_DEV_PUMP_INFUS_VMD^MDC|||||||||||||||^^PUMP-0003^HOSP\r" +
	"OBX|2|NM|68063^MDC_ATTR_PT_WEIGHT^MDC||70|263875^MDC_DIM_KILO_G^MDC\r"

// TestUpServesExternalClients runs `pumplab up` and scripts against the
// endpoints it prints, as a researcher would: any MQTT client sees pump
// status, and an RGV^O15 from a plain MLLP socket programs a pump.
func TestUpServesExternalClients(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	upCtx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- cmdUp(upCtx, []string{"--pumps", "5", "--speed", "60"}, pw, io.Discard)
		pw.Close()
	}()
	endpoints := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && (f[1] == "mqtt" || f[1] == "mllp" || f[1] == "http") {
			endpoints[f[0]] = f[2]
		}
		if strings.HasPrefix(sc.Text(), "Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if endpoints["broker"] == "" || endpoints["pumpserver-ioc"] == "" || endpoints["ehr"] == "" {
		t.Fatalf("up printed endpoints %v", endpoints)
	}

	// Any MQTT client subscribed to the pump topics sees status messages.
	got := make(chan string, 16)
	// The legacy posture's shared broker login (weakness shared-credentials).
	c := paho.NewClient(paho.NewClientOptions().AddBroker(endpoints["broker"]).SetClientID("researcher").
		SetUsername("pump").SetPassword("pump123"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	c.Subscribe("pumplab/v1/pumps/+/status", 0, func(_ paho.Client, m paho.Message) {
		select {
		case got <- m.Topic():
		default:
		}
	})
	select {
	case topic := <-got:
		t.Logf("status seen on %s", topic)
	case <-ctx.Done():
		t.Fatal("no pump status seen on pumplab/v1/pumps/+/status")
	}

	// The pump reports the program on its events topic: 0.05 mcg/kg/min x 70 kg
	// at 16 mcg/mL is 13.125 mL/h.
	programmed := make(chan string, 1)
	tok := c.Subscribe("pumplab/v1/pumps/PUMP-0003/events", 1, func(_ paho.Client, m paho.Message) {
		if strings.Contains(string(m.Payload()), `"program_accepted"`) {
			select {
			case programmed <- string(m.Payload()):
			default:
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe events: %v", tok.Error())
	}
	// A plain socket sends RGV^O15 in MLLP framing and reads ACK^O15.
	conn, err := net.DialTimeout("tcp", endpoints["pumpserver-ioc"], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("\x0b" + rgv + "\x1c\r")); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(conn).ReadString('\x1c')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reply, "MSA|CA|EXT000123") {
		t.Fatalf("ACK^O15: %q", reply)
	}
	select {
	case ev := <-programmed:
		if !strings.Contains(ev, "13.125") {
			t.Fatalf("program event without the 13.125 mL/h rate: %s", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("PUMP-0003 did not report the program")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("up: %v", err)
	}
}
