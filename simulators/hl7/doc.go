// Package hl7 is the lab's HL7 v2 toolkit: an ER7 codec, MLLP framing, an
// MLLP server and client (plain TCP or TLS), and typed builders and views for
// the IHE PCD messages the simulators exchange.
//
// # Codec
//
// [Parse] decodes ER7 bytes into a [Message]: a list of [Segment]s whose
// fields are [Field] values (repetitions of components of subcomponents),
// with escape sequences decoded. [Message.Bytes] encodes it again; decoding
// the encoding gives the same message. Values are addressed with paths such
// as "MSH-10", "RXG-15", "OBX-18.1", "PID-3(2).1" or "OBX(2)-5.1.1"
// ([Message.Get], [Message.Set]). Malformed input yields a *[ParseError] that
// names the segment and field.
//
// # Transport
//
// [ReadFrame] and [WriteFrame] implement MLLP framing (0x0B msg 0x1C 0x0D)
// with a size cap. [Server] accepts MLLP connections, calls a [Handler] for
// every message and writes its reply (or a default acknowledgement); [Client]
// sends a message and waits for one reply.
//
// # IHE PCD messages
//
// Plain structs with Build and Parse functions cover the messages of the lab:
// PCD-03 [RGV] (RGV^O15) with its acknowledgements ([Ack]: ACK^O15,
// RRG^O16), PCD-01 [PumpStatus] (ORU^R01), PCD-10 [InfusionEvent]
// (ORU^R42), PCD-04 [Alert] (ORU^R40), PCD-05 [AlertStatus] (ORA^R41), the
// pharmacy orders [PharmacyOrder] (OMP^O09, RDE^O11), [ADT] (A01/A02/A08)
// and [Administration] (RAS^O17). Builders never read the wall clock: the
// caller passes lab time in [Header].
//
// [Cases] is the exported fixture table shared by codec, server, fuzz and
// attack tests.
package hl7
