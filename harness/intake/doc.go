// Package intake is the lab's alert intake: it receives the alerts of the
// security tools under test over three transports and merges them into one
// stream of score.Alert records stamped with their receive time.
//
//   - HTTP: POST /v1/alerts with one JSON alert object or an array of them
//     (all or nothing per request), GET /v1/alerts/stats for the counters.
//   - Syslog RFC 5424 over UDP and over TCP (RFC 6587 octet counting or
//     newline-delimited frames), with the alert fields in a structured-data
//     element [pumplab@32473 ...].
//   - Files a tool writes: JSON lines of the same schema as HTTP, and
//     Suricata eve.json alert events, tailed by polling.
//
// Malformed input is refused with an error that says what was wrong and is
// counted per transport (Stats); it never stops a listener. The decoders
// (DecodeAlerts, ParseSyslog, FrameReader, DecodeFileLine) are exported
// for tests and fuzzing and share the case tables in cases.go.
//
// Every listener binds to loopback by default and a non-loopback address is
// refused unless Config.AllowNonLoopback is set: the intake is not
// authenticated, and anyone who can reach it can inject or flood alerts and
// so change a tool's score.
//
// The package has no Ginkgo dependency; the harness adapts it.
package intake
