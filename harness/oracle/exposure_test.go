package oracle

import (
	"testing"
	"time"

	"github.com/pumplab/pumplab/lab"
)

func TestPumpMinutesOffline(t *testing.T) {
	ch := []lab.Presence{
		{PumpID: "P1", Online: false, At: at(10)},
		{PumpID: "P1", Online: true, At: at(25)},
		{PumpID: "P2", Online: false, At: at(50)},
		{PumpID: "P3", Online: false, At: at(-5)}, // offline since before the window
	}
	got := PumpMinutesOffline(ch, []string{"P1", "P2", "P3", "P4"}, at(0), at(60))
	near(t, "pump-minutes offline", got, 15+10+60)
	near(t, "window inside the P1 outage", PumpMinutesOffline(ch, []string{"P1"}, at(12), at(20)), 8)
}

// connect builds an MQTT 3.1.1 CONNECT with user name and password.
func connect(client, user, pass string) []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	body := append(str("MQTT"), 4, 0xC2, 0, 30)
	body = append(body, str(client)...)
	body = append(body, str(user)...)
	body = append(body, str(pass)...)
	return append([]byte{0x10, byte(len(body))}, body...)
}

func TestExposure(t *testing.T) {
	hl := []byte("MSH|^~\\&|BCMA|H|PS|H|20260105080000||RGV^O15^RGV_O15|X1|P|2.6\rPID|||MRN4455^^^HOSP^MR||Testpatient^Alex\r")
	hl2 := []byte("MSH|^~\\&|BCMA|H|PS|H|20260105080000||RGV^O15^RGV_O15|X2|P|2.6\rPID|||MRN4455^^^HOSP^MR\r")
	status := []byte(`{"v":1,"id":"m1","from":"PUMP-0001","ts":"2026-01-05T08:00:00Z","seq":1,"body":{"state":"infusing","patient_id":"MRN5501","channels":[]}}`)
	if n := ExposedPHI([][]byte{hl, hl2, status, []byte("garbage")}); n != 2 {
		t.Fatalf("PHI exposed %d patients, want 2", n)
	}
	pk := [][]byte{connect("PUMP-0001", "pump", "shared-secret"), connect("PUMP-0002", "pump", "shared-secret"),
		connect("pumpserver", "server", "s3cret"), {0x30, 0x02, 0, 0}, {0x10}}
	if n := ExposedCredentials(pk); n != 2 {
		t.Fatalf("credentials exposed %d, want 2 distinct pairs", n)
	}
	_ = time.Second
}

// FuzzExposure feeds arbitrary captures to the exposure oracles: they parse
// untrusted bytes and must never panic.
func FuzzExposure(f *testing.F) {
	f.Add(connect("c", "u", "p"))
	f.Add([]byte("MSH|^~\\&|A|B|C|D|20260105||ADT^A01|1|P|2.6\rPID|||M1\r"))
	f.Add([]byte{0x10, 0x7f, 0, 4, 'M', 'Q', 'T', 'T', 5, 0xC6, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ExposedCredentials([][]byte{b})
		_ = ExposedPHI([][]byte{b})
	})
}
