package pumpwire

// Case is one entry of the exported pump-wire case table: a topic and payload
// with the error a decoder must give ("" for a valid message). Codec tests,
// server tests, attack tests and fuzz seeds share it.
type Case struct {
	Name    string
	Topic   string
	Payload string
	Err     string // substring of the expected error; "" = valid
}

const okEnv = `"v":1,"id":"m1","from":"PUMP-0001","ts":"2026-01-01T08:00:00Z","seq":1`

// Cases is the pump-wire case table.
var Cases = []Case{
	{"status", Topic("PUMP-0001", KindStatus), `{` + okEnv + `,"body":{"state":"infusing","battery":80,"on_mains":true,"library_version":"ADULT-2026.01","firmware":"1.0.0","channels":[{"channel":"A","type":"lvp","state":"infusing","rate_ml_h":13.125,"volume_infused_ml":1.5}]}}`, ""},
	{"event", Topic("PUMP-0001", KindEvent), `{` + okEnv + `,"body":{"event_id":"PUMP-0001-E1","type":"delivery_start","channel":"A","order_id":"ORD-1","params":{"rate_ml_h":"13.125"}}}`, ""},
	{"alarm", Topic("PUMP-0001", KindAlarm), `{` + okEnv + `,"body":{"alarm_id":"PUMP-0001-A1","code":"occlusion_downstream","mdc":196940,"phase":"start","priority":"PH","type":"ST","channel":"A","stops":true}}`, ""},
	{"command", Topic("PUMP-0001", KindCmd), `{"v":1,"id":"c1","from":"pumpserver","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C1","op":"program","channel":"A","program":{"order_id":"ORD-1","action":"RE","drug_id":"NOREPI-4-250","dose_rate":0.05,"dose_unit":"mcg/kg/min","drug_amount":4,"drug_unit":"mg","diluent_ml":250,"vtbi_ml":250,"weight_kg":70}}}`, ""},
	{"ack", Topic("PUMP-0001", KindAck), `{` + okEnv + `,"body":{"cmd_id":"C1","order_id":"ORD-1","result":"rejected","code":"LIB-HARDMAX"}}`, ""},
	{"receipt", Topic("PUMP-0001", KindReceipt), `{"v":1,"id":"r1","from":"pumpserver","ts":"2026-01-01T08:00:00Z","seq":3,"body":{"ids":["PUMP-0001-s1-m4","PUMP-0001-s1-m5"]}}`, ""},
	{"receipt empty", Topic("PUMP-0001", KindReceipt), `{"v":1,"id":"r1","from":"pumpserver","ts":"2026-01-01T08:00:00Z","seq":3,"body":{"ids":[]}}`, "field ids"},
	{"online", Topic("PUMP-0001", KindOnline), `{` + okEnv + `,"body":{"online":false}}`, ""},
	{"bad topic prefix", "other/PUMP-0001/status", `{}`, "not under"},
	{"bad topic kind", Prefix + "PUMP-0001/telnet", `{}`, "unknown kind"},
	{"bad pump id", Prefix + "PUMP 1/status", `{}`, "not allowed"},
	{"not json", Topic("PUMP-0001", KindStatus), `\x00\xff garbage`, "envelope"},
	{"wrong version", Topic("PUMP-0001", KindStatus), `{"v":2,"id":"m1","from":"PUMP-0001","ts":"2026-01-01T08:00:00Z","seq":1,"body":{}}`, "field v"},
	{"missing seq", Topic("PUMP-0001", KindStatus), `{"v":1,"id":"m1","from":"PUMP-0001","ts":"2026-01-01T08:00:00Z","body":{}}`, "field seq"},
	{"missing body", Topic("PUMP-0001", KindStatus), `{` + okEnv + `}`, "field body"},
	{"unknown envelope field", Topic("PUMP-0001", KindStatus), `{` + okEnv + `,"body":{},"x":1}`, "unknown field"},
	{"spoofed sender", Topic("PUMP-0002", KindAlarm), `{` + okEnv + `,"body":{"alarm_id":"a","code":"c","phase":"start","priority":"PH","type":"ST"}}`, "field from"},
	{"status no state", Topic("PUMP-0001", KindStatus), `{` + okEnv + `,"body":{"battery":50,"channels":[]}}`, "field state"},
	{"status battery", Topic("PUMP-0001", KindStatus), `{` + okEnv + `,"body":{"state":"idle","battery":150,"channels":[]}}`, "field battery"},
	{"alarm bad phase", Topic("PUMP-0001", KindAlarm), `{` + okEnv + `,"body":{"alarm_id":"a","code":"c","phase":"maybe","priority":"PH","type":"ST"}}`, "field phase"},
	{"alarm bad priority", Topic("PUMP-0001", KindAlarm), `{` + okEnv + `,"body":{"alarm_id":"a","code":"c","phase":"start","priority":"P9","type":"ST"}}`, "field priority"},
	{"command unknown op", Topic("PUMP-0001", KindCmd), `{"v":1,"id":"c1","from":"x","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C1","op":"telnet"}}`, "field op"},
	{"command negative rate", Topic("PUMP-0001", KindCmd), `{"v":1,"id":"c1","from":"x","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C1","op":"program","program":{"order_id":"O","action":"RE","rate_ml_h":-5}}}`, "negative"},
	{"command no program", Topic("PUMP-0001", KindCmd), `{"v":1,"id":"c1","from":"x","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C1","op":"program"}}`, "field program"},
	{"command set_rate", Topic("PUMP-0001", KindCmd), `{"v":1,"id":"c1","from":"x","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C1","op":"set_rate","channel":"A","rate_ml_h":400}}`, ""},
	{"command set_rate no rate", Topic("PUMP-0001", KindCmd), `{"v":1,"id":"c1","from":"x","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C1","op":"set_rate","channel":"A"}}`, "field rate_ml_h"},
	{"command config", Topic("PUMP-0001", KindCmd), `{"v":1,"id":"c1","from":"x","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C1","op":"config","settings":{"occlusion_threshold_mmhg":"1200"}}}`, ""},
	{"command config unknown setting", Topic("PUMP-0001", KindCmd), `{"v":1,"id":"c1","from":"x","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C1","op":"config","settings":{"telnet":"on"}}}`, "unknown setting"},
	{"command with auth", Topic("PUMP-0001", KindCmd), `{"v":1,"id":"c1","from":"pumpserver","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C1","op":"stop","channel":"A"},"auth":{"kid":"pumpserver-1","nonce":"00112233445566778899aabbccddeeff","sig":"AAAA"}}`, ""},
	{"command auth unknown field", Topic("PUMP-0001", KindCmd), `{"v":1,"id":"c1","from":"pumpserver","ts":"2026-01-01T08:00:00Z","seq":1,"body":{"cmd_id":"C1","op":"stop"},"auth":{"kid":"k","alg":"none"}}`, "unknown field"},
	{"ack bad result", Topic("PUMP-0001", KindAck), `{` + okEnv + `,"body":{"cmd_id":"C1","result":"maybe"}}`, "field result"},
	{"trailing data", Topic("PUMP-0001", KindOnline), `{` + okEnv + `,"body":{"online":true}} {}`, "trailing"},
}
