// Package alarms is the lab's alarm manager (the IHE PCD ACM "AM" actor) and
// the simulated nurse communicators it dispatches to.
//
// A [Manager] receives PCD-04 Report Alert messages (ORU^R40) over MLLP from
// an alert reporter (the pump server), records one [AlertRecord] per alert,
// and disseminates each alert over HTTP to nurse communicators (a WCTP-like
// JSON stand-in for PCD-06). Communicators answer on the manager's
// /v1/responses endpoint (a stand-in for PCD-07: delivered, read, accepted,
// rejected). An alert that nobody accepts within [Config.EscalateAfter] lab
// time escalates to the next level of the routing chain (primary nurse,
// charge nurse, ...), and keeps being re-sent to the last level, a bounded
// number of times. Acceptance is reported back to the reporter as PCD-05
// (ORA^R41) over MLLP. A PCD-04 phase "end" closes the alert; if nobody had
// accepted it, escalation stops and the communicators are told to cancel.
//
// The records carry the alarm metrics of the lab (REFERENCE.md §3.0):
// L_notify (onset to first delivery) and L_ack (onset to acceptance) in lab
// time, the same spans measured in wall time from receipt, and whether the
// alert was missed (never delivered).
//
// A [Communicator] is a simulated nurse phone: an HTTP server that stores
// dispatched messages, hands each to a callback (the lab's nurse model), and
// posts the nurse's answer to the manager with [Communicator.Accept] or
// [Communicator.Reject].
//
// The JSON bodies exchanged between the two are [Message] (dispatch) and
// [Response] (answer). Their decoders, [DecodeMessage] and [DecodeResponse],
// are strict and fuzzed; [ResponseCases] and [MessageCases] are the exported
// fixture tables. The HTTP API is documented in docs/alarms.md.
//
// Time: every decision (escalation, retries, recorded lab times) uses the
// injected clock.Clock. The wall clock is read only to stamp the wall-time
// latency fields (see [Config.Wall]).
package alarms
