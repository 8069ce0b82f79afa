package main

import (
	"bytes"
	"errors"
	"time"

	"github.com/pumplab/pumplab/lab/capture"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// maxOutOfOrder is how many segments after a gap are held before the gap
// is given up on.
const maxOutOfOrder = 32

// maxBuffered bounds what one direction of a connection may hold unparsed
// (and out of order) before it is dropped.
const maxBuffered = 4 << 20

// half is one direction of a TCP connection being reassembled.
type half struct {
	tuple   string
	next    uint32 // next expected sequence number
	synced  bool
	buf     []byte
	ooo     map[uint32][]byte // out-of-order segments by sequence number
	proto   string            // "mqtt", "mllp", "other" once known
	conn    *conn
	started time.Time
	gaps    int
}

// conn pairs the two directions; the MQTT client id of the connection is
// learned from the CONNECT of its client direction.
type conn struct {
	// serverPort is the port the client connected to (from its SYN, or
	// from the first client message when the SYN was not captured).
	serverPort uint16
	pump       string // pump id a service-port banner named
	clientID   string
	user       string
	client     string // tuple of the client->server direction
	closed     bool
}

// reassembler turns captured segments into MQTT packets and HL7 messages.
type reassembler struct {
	halves map[string]*half
	conns  map[string]*conn // by canonical connection key
	out    sink
	errs   int
}

// sink receives what the reassembler decodes.
type sink interface {
	mqtt(t time.Time, h *half, p mqttPacket)
	hl7(t time.Time, h *half, serverPort uint16, m *hl7.Message, raw []byte)
	closed(t time.Time, h *half)
	opened(t time.Time, tuple string, dstPort uint16)
	text(t time.Time, h *half, line string)
}

func newReassembler(out sink) *reassembler {
	return &reassembler{halves: map[string]*half{}, conns: map[string]*conn{}, out: out}
}

func connKey(s capture.Segment) string {
	a, b := s.Src.String(), s.Dst.String()
	if a > b {
		a, b = b, a
	}
	return a + "|" + b
}

// segment takes one captured TCP segment.
func (r *reassembler) segment(t time.Time, s capture.Segment) {
	if s.Proto != "tcp" {
		return
	}
	tuple := s.Tuple()
	h := r.halves[tuple]
	key := connKey(s)
	if s.Flags&capture.FlagSYN != 0 {
		// A new connection on this tuple replaces any old one.
		c := &conn{}
		if s.Flags&capture.FlagACK == 0 {
			c.client = tuple
			c.serverPort = s.Dst.Port()
			r.conns[key] = c
			r.out.opened(t, tuple, s.Dst.Port())
		} else if old := r.conns[key]; old != nil {
			c = old
		} else {
			r.conns[key] = c
		}
		h = &half{tuple: tuple, next: s.Seq + 1, synced: true, ooo: map[uint32][]byte{}, conn: c, started: t}
		r.halves[tuple] = h
		return
	}
	if h == nil {
		// Mid-stream (the capture started after the connection): follow
		// from here.
		c := r.conns[key]
		if c == nil {
			c = &conn{}
			r.conns[key] = c
		}
		h = &half{tuple: tuple, next: s.Seq, synced: true, ooo: map[uint32][]byte{}, conn: c, started: t}
		r.halves[tuple] = h
	}
	if len(s.Payload) > 0 {
		r.data(t, h, s.Seq, s.Payload, s.Dst.Port())
	}
	if s.Flags&(capture.FlagFIN|capture.FlagRST) != 0 {
		h.conn.closed = true
		r.out.closed(t, h)
		delete(r.halves, tuple)
		if _, other := r.halves[reverse(tuple)]; !other {
			delete(r.conns, key)
		}
	}
}

func reverse(tuple string) string {
	i := bytes.IndexByte([]byte(tuple), ':')
	rest := tuple[i+1:]
	a, b, _ := cut(rest, "->")
	return tuple[:i+1] + b + "->" + a
}

func cut(s, sep string) (string, string, bool) {
	if i := bytes.Index([]byte(s), []byte(sep)); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// data appends in-order payload and parses what is complete.
func (r *reassembler) data(t time.Time, h *half, seq uint32, p []byte, dstPort uint16) {
	d := int32(seq - h.next)
	switch {
	case d < 0: // retransmission, maybe overlapping
		if int(-d) >= len(p) {
			return
		}
		p = p[-d:]
	case d > 0:
		h.ooo[seq] = append([]byte(nil), p...)
		if len(h.ooo) < maxOutOfOrder {
			return
		}
		// The missing bytes are not coming (the capture lost them): skip
		// to the earliest segment held and parse on from there.
		first, best := true, uint32(0)
		for q := range h.ooo {
			if first || int32(q-best) < 0 {
				best, first = q, false
			}
		}
		h.next, h.buf = best, nil
		h.gaps++
		r.errs++
		p = h.ooo[best]
		delete(h.ooo, best)
	}
	h.buf = append(h.buf, p...)
	h.next += uint32(len(p))
	for len(h.ooo) > 0 {
		q, ok := h.ooo[h.next]
		if !ok {
			break
		}
		delete(h.ooo, h.next)
		h.buf = append(h.buf, q...)
		h.next += uint32(len(q))
	}
	r.parse(t, h, dstPort)
	if len(h.buf) > maxBuffered {
		h.buf, h.proto = nil, "other"
		r.errs++
	}
}

// parse identifies the protocol from the first bytes and emits complete
// MQTT packets and MLLP frames.
func (r *reassembler) parse(t time.Time, h *half, dstPort uint16) {
	if h.proto == "" && len(h.buf) > 0 {
		switch {
		case h.buf[0] == 0x0b:
			h.proto = "mllp"
		case h.buf[0]>>4 == mqttConnect && len(h.buf) >= 8:
			if _, _, err := parseMQTT(h.buf); err == nil || errors.Is(err, errMQTTShort) {
				h.proto = "mqtt"
			} else {
				h.proto = "other"
			}
		case h.buf[0]>>4 == mqttConnect:
			return // wait for the protocol name
		case isText(h.buf):
			h.proto = "text" // a line protocol: a telnet-style service port
		default:
			// The server direction of an MQTT connection starts with
			// CONNACK (0x20); it is MQTT when the other direction is.
			if o := r.halves[reverse(h.tuple)]; o != nil && o.proto == "mqtt" {
				h.proto = "mqtt"
			} else {
				h.proto = "other"
			}
		}
	}
	switch h.proto {
	case "mqtt":
		for len(h.buf) > 0 {
			p, n, err := parseMQTT(h.buf)
			if errors.Is(err, errMQTTShort) {
				return
			}
			if err != nil {
				// Not MQTT from here (after a gap, mid-packet): drop what is
				// buffered; the next segment normally starts a packet.
				r.errs++
				if n == 0 || n > len(h.buf) {
					h.buf = h.buf[:0]
					return
				}
			} else {
				if p.Type == mqttConnect {
					h.conn.clientID, h.conn.user, h.conn.client = p.ClientID, p.User, h.tuple
					if h.conn.serverPort == 0 {
						h.conn.serverPort = dstPort
					}
				}
				r.out.mqtt(t, h, p)
			}
			h.buf = h.buf[n:]
		}
	case "mllp":
		for {
			start := bytes.IndexByte(h.buf, 0x0b)
			if start < 0 {
				h.buf = h.buf[:0]
				return
			}
			end := bytes.Index(h.buf[start:], []byte{0x1c, 0x0d})
			if end < 0 {
				h.buf = h.buf[start:]
				return
			}
			raw := h.buf[start+1 : start+end]
			if m, err := hl7.Parse(raw); err == nil {
				r.out.hl7(t, h, dstPort, m, raw)
			} else {
				r.errs++
			}
			h.buf = h.buf[start+end+2:]
		}
	case "text":
		for {
			i := bytes.IndexByte(h.buf, '\n')
			if i < 0 {
				if len(h.buf) > 4096 {
					h.buf = h.buf[:0]
				}
				return
			}
			r.out.text(t, h, string(bytes.TrimRight(h.buf[:i], "\r")))
			h.buf = h.buf[i+1:]
		}
	default:
		h.buf = h.buf[:0]
	}
}

// isText reports whether a stream starts with a line of printable ASCII
// (at least 4 bytes), as a telnet-style protocol does.
func isText(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return i >= 2
		}
		if c < 0x20 || c > 0x7e || i > 256 {
			return false
		}
	}
	return true
}
