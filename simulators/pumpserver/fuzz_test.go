package pumpserver

import (
	"testing"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// fuzzServer is an unstarted server whose EHR and alarm-manager senders are
// queues nobody drains, so that the fuzz target sees every HL7 message the
// server would send.
func fuzzServer() *Server {
	s := New(Config{Clock: clock.NewFake(t0), Logger: quiet()})
	s.doc = newSender("doc", "127.0.0.1:1", nil, 256, s.log)
	s.am = newSender("am", "127.0.0.1:1", nil, 256, s.log)
	return s
}

// drain returns the messages queued on x.
func drain(x *sender) []*hl7.Message {
	var out []*hl7.Message
	for {
		select {
		case m := <-x.q:
			out = append(out, m)
		default:
			return out
		}
	}
}

// fuzzSeeds are valid pump messages that reach the forwarding paths (the
// pumpwire case table has few of them).
var fuzzSeeds = []pumpwire.Case{
	{Name: "event with snapshot", Topic: pumpwire.Topic("PUMP-0001", pumpwire.KindEvent),
		Payload: `{"v":1,"id":"m2","from":"PUMP-0001","ts":"2026-01-01T08:00:00+01:00","seq":2,"body":{"event_id":"PUMP-0001-E2","type":"delivery_complete","channel":"B","order_id":"O|R^D~1","snapshot":{"channel":"B","type":"lvp","state":"kvo","rate_ml_h":1,"dose_rate":0.05,"dose_unit":"mcg/kg/min","concentration":0.016,"conc_unit":"mg/mL","vtbi_ml":250,"volume_infused_ml":250.5,"drug_name":"Nor\\epi\r\n","weight_kg":70}}}`},
	{Name: "status with orders", Topic: pumpwire.Topic("PUMP-0001", pumpwire.KindStatus),
		Payload: `{"v":1,"id":"m3","from":"PUMP-0001","ts":"2026-01-01T08:00:00Z","seq":3,"body":{"state":"infusing","battery":80,"on_mains":true,"library_version":"L&1","firmware":"1","care_area":"Adult ICU","patient_id":"MRN^1","channels":[{"channel":"A","type":"lvp","state":"infusing","order_id":"ORD-1","rate_ml_h":13.125,"volume_infused_ml":1.5,"vtbi_ml":1},{"channel":"B","type":"lvp","state":"idle","rate_ml_h":0,"volume_infused_ml":0}]}}`},
	{Name: "alarm without mdc", Topic: pumpwire.Topic("PUMP-0001", pumpwire.KindAlarm),
		Payload: `{"v":1,"id":"m4","from":"PUMP-0001","ts":"2026-01-01T08:00:00Z","seq":4,"body":{"alarm_id":"A|2","code":"x_y\u0007","mdc":-5,"phase":"end","priority":"PN","type":"SA","channel":"Z"}}`},
	{Name: "library activated", Topic: pumpwire.Topic("PUMP-0001", pumpwire.KindEvent),
		Payload: `{"v":1,"id":"m5","from":"PUMP-0001","ts":"2026-01-01T08:00:00Z","seq":5,"body":{"event_id":"E5","type":"library_activated","params":{"version":"ADULT-2026.02"}}}`},
	{Name: "patient change", Topic: pumpwire.Topic("PUMP-0001", pumpwire.KindEvent),
		Payload: `{"v":1,"id":"m6","from":"PUMP-0001","ts":"0001-01-01T00:00:01Z","seq":6,"body":{"event_id":"E6","type":"patient_change","params":{"patient_id":"\\F\\"}}}`},
}

// FuzzHandleMessage feeds arbitrary topics and payloads to the server's MQTT
// handler, twice each: it must never panic, must count exactly the inputs
// pumpwire refuses as malformed, must deduplicate events and alarms, and
// every HL7 message it builds from what it took in (PCD-10, PCD-04, and the
// PCD-01 of the resulting registry) must parse back with the typed view the
// EHR and the alarm manager use.
func FuzzHandleMessage(f *testing.F) {
	for _, c := range append(append([]pumpwire.Case(nil), pumpwire.Cases...), fuzzSeeds...) {
		f.Add(c.Topic, []byte(c.Payload))
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		s := fuzzServer()
		_, _, body, decErr := pumpwire.Decode(topic, payload)
		s.handleMessage(topic, payload)
		s.handleMessage(topic, payload)
		st := s.Stats()
		if decErr != nil {
			if st.Malformed != 2 || st.Pumps != 0 {
				t.Fatalf("refused input: Malformed %d, Pumps %d; want 2 and 0 (%v)", st.Malformed, st.Pumps, decErr)
			}
			return
		}
		if st.Malformed != 0 || st.Pumps != 1 {
			t.Fatalf("valid input: Malformed %d, Pumps %d", st.Malformed, st.Pumps)
		}
		switch body.(type) {
		case *pumpwire.Event, *pumpwire.Alarm:
			if st.Duplicates != 1 || st.EventsIn+st.AlarmsIn != 1 || len(s.Received()) != 1 {
				t.Fatalf("same envelope twice: Duplicates %d, in %d, received %d", st.Duplicates, st.EventsIn+st.AlarmsIn, len(s.Received()))
			}
		}
		s.ReportNow()
		docs, alerts := drain(s.doc), drain(s.am)
		st = s.Stats()
		if int64(len(docs)) != st.PCD10Out+st.PCD01Out || int64(len(alerts)) != st.PCD04Out {
			t.Fatalf("queued %d/%d, counted PCD-10 %d + PCD-01 %d / PCD-04 %d", len(docs), len(alerts), st.PCD10Out, st.PCD01Out, st.PCD04Out)
		}
		for _, m := range append(docs, alerts...) {
			again, err := hl7.Parse(m.Bytes())
			if err != nil {
				t.Fatalf("server built an unparseable %s: %v\n%s", m.Type(), err, m)
			}
			switch {
			case m.Type().Is("ORU", "R42"):
				_, err = hl7.ParseInfusionEvent(again)
			case m.Type().Is("ORU", "R01"):
				_, err = hl7.ParsePumpStatus(again)
			case m.Type().Is("ORU", "R40"):
				_, err = hl7.ParseAlert(again)
			default:
				t.Fatalf("unexpected message type %s", m.Type())
			}
			if err != nil {
				t.Fatalf("peer cannot read the server's %s: %v\n%s", m.Type(), err, m)
			}
		}
	})
}

// TestFuzzSeedsValid keeps the extra seeds on the forwarding paths.
func TestFuzzSeedsValid(t *testing.T) {
	for _, c := range fuzzSeeds {
		if _, _, _, err := pumpwire.Decode(c.Topic, []byte(c.Payload)); err != nil {
			t.Errorf("seed %q does not decode: %v", c.Name, err)
		}
	}
}
