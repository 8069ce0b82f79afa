// Package attack is the lab's attack toolkit: reusable helpers that the
// attack scenarios (REFERENCE.md §3.1) compose into steps. It speaks the
// lab's real protocols: MQTT to the broker between pumps and the pump server
// (forged commands, spoofed events and alarms, sniffing, floods, a
// publish-rewriting proxy) and HL7 v2 over MLLP between clinical systems
// (forged PCD-03 orders, capture and replay, a tampering proxy, floods).
//
// Three rules hold for every helper:
//
//   - Safety rail: every network target goes through [Targets], which
//     refuses any address that is not loopback (127.0.0.0/8, ::1,
//     localhost) or inside a lab network prefix the caller added
//     explicitly. Host names are resolved and every resolved address is
//     checked; the connection then goes to a checked address, so the check
//     happens before any packet is sent.
//   - Ground truth first: [Do] writes the step's [score.Step] record
//     through a [Recorder] before the action runs and again, with its end
//     time and correlation ids, after it.
//   - Helpers return errors and never assert: they wrap every error with the
//     operation ("attack: replay frame 2 to 127.0.0.1:2575: ..."); specs
//     decide what a result means. This package imports no test framework.
//
// See docs/attack-toolkit.md.
package attack
