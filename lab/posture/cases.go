package posture

// Case is one posture document and the outcome Parse gives for it, named
// "case.yaml": Err is "" for a valid document, else a substring of the
// error (file, line and field included).
type Case struct {
	Name string
	YAML string
	Err  string
}

// Cases is the exported table of posture documents: the unit tests and the
// fuzz target (FuzzParse) use it, and so can a tool that writes postures.
var Cases = []Case{
	{"minimal", "name: minimal\n", ""},
	{"name from file", "description: no name\n", ""},
	{"shorthand", "name: s\ncontrols:\n  pki: true\n  mtls-mqtt: true\n", ""},
	{"params", "name: p\ncontrols:\n  rate-limit:\n    enabled: true\n    per_second: 2.5\n    burst: 5\n    targets: [mqtt]\n", ""},
	{"json", `{"name": "j", "controls": {"pki": {"enabled": true}}}`, ""},
	{"empty", "", "case.yaml: empty document"},
	{"comment only", "# nothing\n", "case.yaml: empty document"},
	{"not a mapping", "- a\n- b\n", "case.yaml:1: a posture is a mapping"},
	{"syntax", "name: [\n", "case.yaml:1: invalid YAML"},
	{"tab indent", "name: x\ncontrols:\n\tpki: true\n", "case.yaml:3: invalid YAML"},
	{"second document", "name: a\n---\nname: b\n", "case.yaml:2: a second YAML document is not allowed"},
	{"unknown top field", "name: x\nsecurity: high\n", "case.yaml:2: security: unknown field"},
	{"unknown control", "name: x\ncontrols:\n  firewall: true\n", "case.yaml:3: controls.firewall: unknown field"},
	{"unknown param", "name: x\ncontrols:\n  rate-limit:\n    rate: 3\n", "case.yaml:4: controls.rate-limit.rate: unknown field"},
	{"duplicate key", "name: x\ncontrols:\n  pki: true\n  pki: false\n", "case.yaml:4: controls.pki: duplicate key (first at line 3)"},
	{"alias", "name: x\ncontrols:\n  pki: &on true\n  mtls-mqtt: *on\n", "case.yaml:4: controls.mtls-mqtt: YAML aliases are not supported"},
	{"negative rate", "name: x\ncontrols:\n  rate-limit:\n    enabled: true\n    per_second: -3\n",
		"case.yaml:5: controls.rate-limit.per_second: -3 must be > 0"},
	{"zero burst", "name: x\ncontrols:\n  rate-limit:\n    burst: 0\n", "case.yaml:4: controls.rate-limit.burst: 0 must be >= 1"},
	{"bad target", "name: x\ncontrols:\n  rate-limit:\n    targets: [mqtt, http]\n",
		"case.yaml:4: controls.rate-limit.targets[1]: unknown target \"http\""},
	{"string for bool", "name: x\ncontrols:\n  pki:\n    enabled: yes\n", "case.yaml:4: controls.pki.enabled: expected true or false, got \"yes\""},
	{"string for int", "name: x\ncontrols:\n  signed-commands:\n    counter_window: many\n",
		"case.yaml:4: controls.signed-commands.counter_window: expected a whole number"},
	{"float for int", "name: x\ncontrols:\n  alarm-heartbeat:\n    missed: 1.5\n",
		"case.yaml:4: controls.alarm-heartbeat.missed: expected a whole number"},
	{"number for duration", "name: x\ncontrols:\n  alarm-heartbeat:\n    interval: 30\n",
		"case.yaml:4: controls.alarm-heartbeat.interval: expected a duration such as \"30s\""},
	{"zero duration", "name: x\ncontrols:\n  alarm-heartbeat:\n    interval: 0s\n",
		"case.yaml:4: controls.alarm-heartbeat.interval: 0s must be > 0"},
	{"infinite", "name: x\ncontrols:\n  rate-limit:\n    per_second: .inf\n", "case.yaml:4: controls.rate-limit.per_second: expected a finite number"},
	{"list for control", "name: x\ncontrols:\n  pki: [on]\n", "case.yaml:3: controls.pki: expected a mapping or true/false"},
	{"bad name", "name: Hardened+1\n", "case.yaml:1: name: \"Hardened+1\" must be"},
	{"mtls needs pki", "name: x\ncontrols:\n  mtls-mllp: true\n", "case.yaml:3: controls.mtls-mllp: needs pki, which is off"},
	{"signed needs pki", "name: x\ncontrols:\n  signed-firmware:\n    enabled: true\n",
		"case.yaml:3: controls.signed-firmware: needs pki, which is off"},
	{"wipe revocation needs pki", "name: x\ncontrols:\n  decommission-wipe:\n    enabled: true\n",
		"case.yaml:3: controls.decommission-wipe.revoke_certificate: needs pki"},
	{"cert outlives CA", "name: x\ncontrols:\n  pki:\n    ca_lifetime: 24h\n    cert_lifetime: 48h\n",
		"case.yaml:5: controls.pki.cert_lifetime: 48h must not exceed ca_lifetime 24h"},
	{"unknown listener", "name: x\ncontrols:\n  mtls-mllp:\n    allowed_sources:\n      lis: [ehr]\n",
		"case.yaml:5: controls.mtls-mllp.allowed_sources.lis: unknown MLLP listener \"lis\""},
	{"empty sources", "name: x\ncontrols:\n  mtls-mllp:\n    allowed_sources:\n      ehr: []\n",
		"case.yaml:5: controls.mtls-mllp.allowed_sources.ehr: empty list"},
	{"tls version", "name: x\ncontrols:\n  mtls-mqtt:\n    min_version: 1.1\n",
		"case.yaml:4: controls.mtls-mqtt.min_version: \"1.1\" must be \"1.2\" or \"1.3\""},
	{"tolerance", "name: x\ncontrols:\n  order-crosscheck:\n    rate_tolerance: 1.5\n",
		"case.yaml:4: controls.order-crosscheck.rate_tolerance: 1.5 must be between 0 and 1"},
	{"code length", "name: x\ncontrols:\n  access-codes:\n    min_length: 2\n",
		"case.yaml:4: controls.access-codes.min_length: 2 must be between 4 and 16"},
	{"firmware version", "name: x\ncontrols:\n  signed-firmware:\n    min_version: v4\n",
		"case.yaml:4: controls.signed-firmware.min_version: \"v4\" must be dotted numbers"},
	{"unknown weakness", "name: x\nweaknesses:\n  telnet: true\n", "case.yaml:3: weaknesses.telnet: unknown field"},
	{"port range", "name: x\nweaknesses:\n  service-port:\n    port: 70000\n",
		"case.yaml:4: weaknesses.service-port.port: 70000 must be between 0 and 65535"},
	{"access code digits", "name: x\nweaknesses:\n  shared-credentials:\n    enabled: true\n    access_code: abcd\n",
		"case.yaml:5: weaknesses.shared-credentials.access_code: \"abcd\" must be 1 to 16 digits"},
	{"null string", "name: x\ndescription: ~\n", "case.yaml:2: description: expected a string"},
}
