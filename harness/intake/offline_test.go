package intake

import (
	"context"
	"testing"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

func TestAddOfflineKeepsReportedTime(t *testing.T) {
	in := New(Config{HTTPAddr: "-", SyslogUDPAddr: "-", SyslogTCPAddr: "-"})
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	pkt := time.Date(2026, 1, 5, 8, 0, 1, 0, time.UTC)
	a, err := DecodeEve([]byte(`{"timestamp":"2026-01-05T08:00:01.000000+0000","event_type":"alert","src_ip":"127.0.0.1","dest_ip":"127.0.0.1","alert":{"signature":"x T0855","signature_id":1,"severity":1}}`), "suricata")
	if err != nil {
		t.Fatal(err)
	}
	in.AddOffline([]score.Alert{a, {Tool: "suricata"}})
	got := in.Alerts()
	if len(got) != 2 || !got[0].Time.Equal(pkt) || got[0].Source != SourceFile || got[1].Time.IsZero() || got[1].Time.Equal(pkt) {
		t.Fatalf("alerts %+v", got)
	}
	if in.Stats().File.Accepted != 2 {
		t.Fatalf("stats %+v", in.Stats())
	}
}
