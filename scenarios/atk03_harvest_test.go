package scenarios

import (
	"testing"
	"time"

	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// mqttString is an MQTT length-prefixed string.
func mqttString(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// connectPacket is an MQTT 3.1.1 CONNECT with a user name and password.
func connectPacket(client, user, pass string) []byte {
	body := append(mqttString("MQTT"), 4, 0xC2, 0, 30)
	body = append(body, mqttString(client)...)
	body = append(body, mqttString(user)...)
	body = append(body, mqttString(pass)...)
	return append([]byte{0x10, byte(len(body))}, body...)
}

// tapSeed is a pump's cleartext session: CONNECT, then a status naming
// the patient on channel A.
func tapSeed(t testing.TB) []byte {
	st, err := pumpwire.Encode("PUMP-0001-s-m1", "PUMP-0001", time.Unix(0, 0), 1, pumpwire.Status{State: "running",
		Channels: []pumpwire.ChannelStatus{{Channel: "A", State: "infusing", PatientID: "MRN0001", RateMLH: 13.125}}})
	if err != nil {
		t.Fatal(err)
	}
	pub := (&attack.Publish{QoS: 0, Topic: pumpwire.Topic("PUMP-0001", pumpwire.KindStatus), Payload: st}).Encode()
	return append(connectPacket("PUMP-0001", "pumpfleet", "Shared2019"), pub...)
}

// TestHarvest reads the login and the patient out of a cleartext session
// and nothing out of a TLS one.
func TestHarvest(t *testing.T) {
	h := harvest([]tapStream{{Up: tapSeed(t)}})
	if h.Creds != 1 || len(h.PHI) != 1 || h.PHI[0] != "MRN0001" || h.Publishes != 1 || h.TLSStreams != 0 {
		t.Fatalf("cleartext session: %+v, want 1 login, patient MRN0001, 1 PUBLISH", h)
	}
	tlsHello := []byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5}
	h = harvest([]tapStream{{Up: tlsHello, Down: []byte{0x16, 0x03, 0x03, 0, 1, 9}}})
	if h.TLSStreams != 2 || h.Packets != 0 || h.Creds != 0 || len(h.PHI) != 0 || h.Bytes != 16 {
		t.Fatalf("TLS session: %+v, want 2 TLS streams and nothing read", h)
	}
}

// FuzzHarvest: whatever bytes a tap copies, the analysis neither crashes
// nor finds patients without a PUBLISH nor miscounts the bytes.
func FuzzHarvest(f *testing.F) {
	f.Add(tapSeed(f), []byte{})
	f.Add([]byte{0x16, 0x03, 0x01}, []byte{0x30, 0x00})
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff}, []byte{0x30, 0x02, 0x00, 0x05})
	f.Fuzz(func(t *testing.T, up, down []byte) {
		h := harvest([]tapStream{{Up: up, Down: down}})
		if h.Bytes != len(up)+len(down) {
			t.Fatalf("bytes %d, want %d", h.Bytes, len(up)+len(down))
		}
		if len(h.PHI) > 0 && h.Publishes == 0 {
			t.Fatalf("%d patients without a PUBLISH", len(h.PHI))
		}
		if h.Creds > h.Packets {
			t.Fatalf("%d logins from %d packets", h.Creds, h.Packets)
		}
	})
}
