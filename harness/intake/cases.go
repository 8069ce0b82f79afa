package intake

import (
	"strings"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

// AlertCase is a fixture of DecodeAlerts (the HTTP body and JSON-line
// schema). Decoder, server and fuzz tests share the table.
type AlertCase struct {
	Name string
	Body string
	// Want are the decoded alerts (Raw compared as well) for a valid body.
	Want []score.Alert
	// Err is the exact error text for a refused body; "" means valid.
	Err string
}

// SyslogCase is a fixture of DecodeSyslog.
type SyslogCase struct {
	Name string
	Msg  string
	// Want is the alert for a valid message, Raw excepted (it is Msg).
	Want score.Alert
	// Err is a substring of the error; "" means valid.
	Err string
}

// FramingCase is a fixture of FrameReader: a TCP stream, the frames it
// yields in order and how many *FrameError it reports.
type FramingCase struct {
	Name      string
	Stream    string
	Frames    []string
	BadFrames int
	// Final is the error ending the stream: "" for io.EOF, else a
	// substring ("unexpected EOF").
	Final string
}

// EveCase is a fixture of DecodeFileLine with Suricata eve.json lines and
// JSON alert lines.
type EveCase struct {
	Name string
	Line string
	// Want is the alert for a valid line, Raw excepted.
	Want score.Alert
	// Skip marks a line that is no alert (ErrNotAlert).
	Skip bool
	// Err is a substring of the error; "" means valid (or skipped).
	Err string
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// ExampleAlertJSON is a complete alert object (docs/alerts.md).
const ExampleAlertJSON = `{"tool":"pumpguard","time":"2026-03-01T10:15:02Z","severity":"high",` +
	`"assets":["PUMP-0007"],"addresses":["10.20.0.17"],"techniques":["T0831"],"tactics":["TA0106"],` +
	`"category":"rogue-command","text":"rate change without a BCMA order","telemetry":false,"raw":{"rule":42}}`

var exampleAlert = score.Alert{
	Tool: "pumpguard", Reported: mustTime("2026-03-01T10:15:02Z"), Severity: "high",
	Assets: []string{"PUMP-0007"}, Addresses: []string{"10.20.0.17"}, Techniques: []string{"T0831"},
	Tactics: []string{"TA0106"}, Category: "rogue-command", Text: "rate change without a BCMA order",
	Raw: `{"rule":42}`,
}

func batch(n int, elem string) string {
	return "[" + strings.TrimSuffix(strings.Repeat(elem+",", n), ",") + "]"
}

// AlertCases are the DecodeAlerts fixtures.
var AlertCases = []AlertCase{
	{Name: "full object", Body: ExampleAlertJSON, Want: []score.Alert{exampleAlert}},
	{Name: "minimal", Body: `{"tool":"t"}`, Want: []score.Alert{{Tool: "t"}}},
	{Name: "array of two", Body: `[{"tool":"a","techniques":["T0855.001"]},{"tool":"b","telemetry":true,"raw":"pkt"}]`,
		Want: []score.Alert{{Tool: "a", Techniques: []string{"T0855.001"}}, {Tool: "b", Telemetry: true, Raw: "pkt"}}},
	{Name: "lone string as list", Body: `{"tool":"t","assets":"PUMP-0001","addresses":"10.0.0.1:1883"}`,
		Want: []score.Alert{{Tool: "t", Assets: []string{"PUMP-0001"}, Addresses: []string{"10.0.0.1:1883"}}}},
	{Name: "nulls and extensions", Body: ` {"tool":"t","severity":null,"x_rule":7} `, Want: []score.Alert{{Tool: "t"}}},
	{Name: "max batch", Body: batch(MaxBatch, `{"tool":"t"}`), Want: func() []score.Alert {
		out := make([]score.Alert, MaxBatch)
		for i := range out {
			out[i].Tool = "t"
		}
		return out
	}()},

	{Name: "empty body", Body: "  ", Err: `body: empty, want an alert object or an array of them`},
	{Name: "empty array", Body: `[]`, Err: `body: empty array, want at least one alert`},
	{Name: "bad json", Body: `{"tool":`, Err: `body: invalid JSON at byte 8: unexpected end of JSON input`},
	{Name: "scalar", Body: `42`, Err: `body: a JSON number, want an alert object or an array of them`},
	{Name: "too many", Body: batch(MaxBatch+1, `{"tool":"t"}`), Err: `body: 1001 alerts, more than the limit of 1000 per request`},
	{Name: "no tool", Body: `{"text":"x"}`, Err: `alert.tool: required, the name of the tool`},
	{Name: "blank tool", Body: `{"tool":" "}`, Err: `alert.tool: required, the name of the tool`},
	{Name: "tool not string", Body: `{"tool":1}`, Err: `alert.tool: want a string, got a JSON number`},
	{Name: "bad technique in batch", Body: `[{"tool":"a"},{"tool":"a"},{"tool":"a"},{"tool":"a","techniques":["T83"]}]`,
		Err: `alerts[3].techniques[0]: "T83" is not an ATT&CK technique id (want T0831 or T1234.001)`},
	{Name: "bad tactic", Body: `{"tool":"a","tactics":["TA01"]}`, Err: `alert.tactics[0]: "TA01" is not an ATT&CK tactic id (want TA0106)`},
	{Name: "bad address", Body: `{"tool":"a","addresses":["pump7"]}`, Err: `alert.addresses[0]: "pump7" is not an IP address or IP:port (put host names in assets)`},
	{Name: "bad time", Body: `{"tool":"a","time":"yesterday"}`, Err: `alert.time: "yesterday" is not an RFC 3339 time (want 2026-03-01T10:15:00Z)`},
	{Name: "unknown field", Body: `{"tool":"a","technique":"T0831"}`, Err: `alert: unknown field "technique" (known: tool, time, severity, assets, addresses, techniques, tactics, category, text, telemetry, raw; extensions start with x_)`},
	{Name: "telemetry string", Body: `{"tool":"a","telemetry":"yes"}`, Err: `alert.telemetry: want true or false, got a JSON string`},
	{Name: "element not object", Body: `[{"tool":"a"},"b"]`, Err: `alerts[1]: want an alert object, got a JSON string`},
	{Name: "list not array", Body: `{"tool":"a","assets":{"x":1}}`, Err: `alert.assets: want an array of strings, got a JSON object`},
	{Name: "list item not string", Body: `{"tool":"a","assets":[1]}`, Err: `alert.assets[0]: want a string, got a JSON number`},
	{Name: "empty asset", Body: `{"tool":"a","assets":[""]}`, Err: `alert.assets[0]: empty`},
	{Name: "long tool", Body: `{"tool":"` + strings.Repeat("x", MaxToolLen+1) + `"}`, Err: `alert.tool: 129 bytes, more than the limit of 128`},
	{Name: "long text", Body: `{"tool":"a","text":"` + strings.Repeat("x", MaxTextLen+1) + `"}`, Err: `alert.text: 8193 bytes, more than the limit of 8192`},
	{Name: "control char", Body: `{"tool":"a\u0007"}`, Err: `alert.tool: control character U+0007 in "a\a"`},
	{Name: "too many items", Body: `{"tool":"a","assets":` + batch(MaxListItems+1, `"p"`) + `}`, Err: `alert.assets: 65 items, more than the limit of 64`},
}

const (
	sdFull = `[pumplab@32473 tool="pumpguard" technique="T0831" asset="PUMP-0007" tactic="TA0106" severity="high" telemetry="true"]`
)

// SyslogCases are the DecodeSyslog fixtures.
var SyslogCases = []SyslogCase{
	{Name: "full", Msg: `<165>1 2026-03-01T10:15:02.123Z ids01 snort 4242 ALERT ` + sdFull + ` rate change without order`,
		Want: score.Alert{Tool: "pumpguard", Reported: mustTime("2026-03-01T10:15:02.123Z"), Severity: "high",
			Assets: []string{"PUMP-0007"}, Techniques: []string{"T0831"}, Tactics: []string{"TA0106"},
			Telemetry: true, Text: "rate change without order"}},
	{Name: "app-name is tool, PRI severity", Msg: `<12>1 - - pumpguard - - -`,
		Want: score.Alert{Tool: "pumpguard", Severity: "warning"}},
	{Name: "repeated params, other SD, BOM", Msg: `<14>1 2026-03-01T10:15:02+01:00 h ids - - [timeQuality tzKnown="1"][pumplab@32473 asset="PUMP-0001" asset="PUMP-0002" technique="T0831" technique="T0855" address="10.0.0.7" category="x\]y\"z"] ` + "\xEF\xBB\xBFmsg",
		Want: score.Alert{Tool: "ids", Reported: mustTime("2026-03-01T10:15:02+01:00"), Severity: "informational",
			Assets: []string{"PUMP-0001", "PUMP-0002"}, Techniques: []string{"T0831", "T0855"}, Addresses: []string{"10.0.0.7"},
			Category: `x]y"z`, Text: "msg"}},
	{Name: "trailing newline", Msg: "<13>1 - h t - - -\n", Want: score.Alert{Tool: "t", Severity: "notice"}},

	{Name: "empty", Msg: ``, Err: `PRI: empty message`},
	{Name: "no PRI", Msg: `hello`, Err: `PRI: message starts with 'h'`},
	{Name: "PRI range", Msg: `<192>1 - - t - - -`, Err: `PRI: 192 out of range`},
	{Name: "BSD syslog", Msg: `<13>Mar  1 10:15:02 host tag: msg`, Err: `VERSION: missing after PRI: RFC 3164`},
	{Name: "version 2", Msg: `<13>2 - - t - - -`, Err: `VERSION: "2" unsupported`},
	{Name: "bad time", Msg: `<13>1 yesterday h t - - -`, Err: `TIMESTAMP: "yesterday" is not an RFC 3339 time`},
	{Name: "truncated header", Msg: `<13>1 - h t -`, Err: `PROCID: message ends after it`},
	{Name: "double space", Msg: `<13>1 -  h t - - -`, Err: `HOSTNAME: empty at offset 8`},
	{Name: "long app-name", Msg: `<13>1 - h ` + strings.Repeat("a", 49) + ` - - -`, Err: `APP-NAME: 49 characters, more than 48`},
	{Name: "no SD", Msg: `<13>1 - h t - - msg`, Err: `STRUCTURED-DATA: want - or '['`},
	{Name: "unclosed SD", Msg: `<13>1 - h t - - [pumplab@32473 tool="x"`, Err: `element [pumplab@32473 not closed`},
	{Name: "unquoted value", Msg: `<13>1 - h t - - [pumplab@32473 tool=x]`, Err: `value must be in double quotes`},
	{Name: "unclosed value", Msg: `<13>1 - h t - - [pumplab@32473 tool="x]`, Err: `value not closed`},
	{Name: "no SP after SD", Msg: `<13>1 - h t - - [a b="c"]x`, Err: `want SP or end after it`},
	{Name: "bad technique", Msg: `<13>1 - h t - - [pumplab@32473 technique="T83"]`, Err: `SD pumplab@32473 technique[0]: "T83" is not an ATT&CK technique id`},
	{Name: "bad tactic", Msg: `<13>1 - h t - - [pumplab@32473 tactic="TA1"]`, Err: `"TA1" is not an ATT&CK tactic id`},
	{Name: "bad telemetry", Msg: `<13>1 - h t - - [pumplab@32473 telemetry="maybe"]`, Err: `SD pumplab@32473 telemetry: "maybe", want true or false`},
	{Name: "unknown param", Msg: `<13>1 - h t - - [pumplab@32473 techniques="T0831"]`, Err: `unknown param "techniques"`},
	{Name: "no tool", Msg: `<13>1 - h - - - [pumplab@32473 asset="PUMP-0001"]`, Err: `APP-NAME: nil and no tool param`},
}

// FramingCases are the FrameReader fixtures.
var FramingCases = []FramingCase{
	{Name: "octet counting", Stream: "11 <13>1 - h t9 <13>1 - x", Frames: []string{"<13>1 - h t", "<13>1 - x"}},
	{Name: "newline", Stream: "<13>1 a\n<13>1 b\r\n\n<13>1 c", Frames: []string{"<13>1 a", "<13>1 b", "<13>1 c"}},
	{Name: "mixed with separators", Stream: "5 <1>1 \n<2>1\n\x006 <3>1 x", Frames: []string{"<1>1 ", "<2>1", "<3>1 x"}},
	{Name: "bad count resyncs at LF", Stream: "12x garbage\n<13>1 ok\n", Frames: []string{"<13>1 ok"}, BadFrames: 1},
	{Name: "digits then LF", Stream: "123\n<13>1 ok\n", Frames: []string{"<13>1 ok"}, BadFrames: 1},
	{Name: "oversized count skipped", Stream: "70 " + strings.Repeat("z", 70) + "4 <1>1", Frames: []string{"<1>1"}, BadFrames: 1},
	{Name: "overlong line skipped", Stream: strings.Repeat("y", 80) + "\n<1>1 ok\n", Frames: []string{"<1>1 ok"}, BadFrames: 1},
	{Name: "truncated frame", Stream: "20 <13>1", Final: "unexpected EOF"},
	{Name: "truncated count", Stream: "<1>1 a\n20", Frames: []string{"<1>1 a"}, Final: "unexpected EOF"},
}

// FramingMax is the frame limit the FramingCases are written for.
const FramingMax = 64

// ExampleEveAlert is a Suricata eve.json alert line (docs/alerts.md).
const ExampleEveAlert = `{"timestamp":"2026-03-01T10:15:02.123456+0000","flow_id":1,"in_iface":"lo","event_type":"alert",` +
	`"src_ip":"10.20.0.99","src_port":40000,"dest_ip":"10.20.0.5","dest_port":1883,"proto":"TCP",` +
	`"alert":{"action":"allowed","gid":1,"signature_id":9000001,"rev":1,"signature":"PUMPLAB MQTT rogue rate change T0831",` +
	`"category":"Attempted Administrator Privilege Gain","severity":1,"metadata":{"mitre_tactic_id":["TA0106"]}}}`

// EveCases are the DecodeFileLine fixtures.
var EveCases = []EveCase{
	{Name: "eve alert, technique in signature", Line: ExampleEveAlert, Want: score.Alert{Tool: "suricata",
		Reported: mustTime("2026-03-01T10:15:02.123456Z"), Severity: "high",
		Assets: []string{"10.20.0.99", "10.20.0.5"}, Addresses: []string{"10.20.0.99", "10.20.0.5"},
		Techniques: []string{"T0831"}, Tactics: []string{"TA0106"}, Category: "Attempted Administrator Privilege Gain",
		Text: "PUMPLAB MQTT rogue rate change T0831 [sid 9000001]"}},
	{Name: "eve alert, technique metadata, asset", Line: `{"event_type":"alert","timestamp":"2026-03-01T10:15:02Z","src_ip":"10.0.0.1","alert":{"signature":"x T0000","severity":3,"metadata":{"mitre_technique_id":["T0855","T0836"],"asset":["PUMP-0007"]}}}`,
		Want: score.Alert{Tool: "suricata", Reported: mustTime("2026-03-01T10:15:02Z"), Severity: "low",
			Assets: []string{"PUMP-0007", "10.0.0.1"}, Addresses: []string{"10.0.0.1"}, Techniques: []string{"T0855", "T0836"}, Text: "x T0000"}},
	{Name: "eve flow skipped", Line: `{"event_type":"flow","src_ip":"10.0.0.1"}`, Skip: true},
	{Name: "empty line skipped", Line: "   ", Skip: true},
	{Name: "json alert line", Line: `{"tool":"t","assets":["PUMP-0001"]}`, Want: score.Alert{Tool: "t", Assets: []string{"PUMP-0001"}}},

	{Name: "eve alert without alert", Line: `{"event_type":"alert"}`, Err: `eve.alert: missing`},
	{Name: "eve bad time", Line: `{"event_type":"alert","timestamp":"now","alert":{}}`, Err: `eve.timestamp: "now" is not a Suricata or RFC 3339 time`},
	{Name: "eve bad technique", Line: `{"event_type":"alert","alert":{"metadata":{"mitre_technique_id":["T1"]}}}`, Err: `eve.alert.metadata.mitre_technique_id[0]: "T1" is not an ATT&CK technique id`},
	{Name: "eve bad ip", Line: `{"event_type":"alert","src_ip":"host","alert":{}}`, Err: `"host" is not an IP address`},
	{Name: "eve wrong type", Line: `{"event_type":"alert","alert":{"signature":5}}`, Err: `eve.alert.signature: want a JSON string, got a JSON number`},
	{Name: "json alert line bad", Line: `{"tool":"t","techniques":["X"]}`, Err: `alert.techniques[0]: "X" is not an ATT&CK technique id`},
	{Name: "not json", Line: `hello`, Err: `body: invalid JSON at byte 1`},
}
