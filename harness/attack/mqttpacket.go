package attack

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MQTT 3.1.1 control packet types (fixed header, high nibble).
const (
	MQTTConnect     byte = 1
	MQTTConnack     byte = 2
	MQTTPublish     byte = 3
	MQTTPuback      byte = 4
	MQTTPubrec      byte = 5
	MQTTPubrel      byte = 6
	MQTTPubcomp     byte = 7
	MQTTSubscribe   byte = 8
	MQTTSuback      byte = 9
	MQTTUnsubscribe byte = 10
	MQTTUnsuback    byte = 11
	MQTTPingreq     byte = 12
	MQTTPingresp    byte = 13
	MQTTDisconnect  byte = 14
)

// MaxMQTTPacket is the largest packet the MQTT parser and proxy accept
// (remaining length); MQTT allows 256 MiB, the lab's payloads are at most
// 64 KiB.
const MaxMQTTPacket = 1 << 20

// Errors of the MQTT packet parser (wrapped). Test with errors.Is.
var (
	ErrMQTTShort     = errors.New("attack: mqtt: packet truncated")
	ErrMQTTMalformed = errors.New("attack: mqtt: malformed packet")
	ErrMQTTTooLarge  = errors.New("attack: mqtt: packet too large")
)

// MQTTPacket is one MQTT control packet as read from the wire.
type MQTTPacket struct {
	Type  byte   // MQTTConnect ... MQTTDisconnect
	Flags byte   // low nibble of the fixed header
	Raw   []byte // the whole packet, fixed header included, byte for byte
	// Publish is the decoded PUBLISH (Type MQTTPublish only).
	Publish *Publish
	// PacketID is the packet identifier of PUBLISH (QoS > 0), PUBACK,
	// PUBREC, PUBREL and PUBCOMP; 0 otherwise.
	PacketID uint16
}

// Publish is a decoded MQTT 3.1.1 PUBLISH packet.
type Publish struct {
	Dup      bool
	QoS      byte // 0, 1 or 2
	Retain   bool
	Topic    string
	PacketID uint16 // QoS 1 and 2 only
	Payload  []byte
}

// Encode returns the PUBLISH packet with a minimal remaining length.
func (p *Publish) Encode() []byte {
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	h := MQTTPublish<<4 | (p.QoS&3)<<1
	if p.Dup {
		h |= 0x08
	}
	if p.Retain {
		h |= 0x01
	}
	b := make([]byte, 0, n+5)
	b = append(b, h)
	b = appendVarint(b, n)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.Topic)))
	b = append(b, p.Topic...)
	if p.QoS > 0 {
		b = binary.BigEndian.AppendUint16(b, p.PacketID)
	}
	return append(b, p.Payload...)
}

func appendVarint(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// mqttAck returns a PUBACK/PUBREC/PUBREL/PUBCOMP packet.
func mqttAck(typ byte, id uint16) []byte {
	h := typ << 4
	if typ == MQTTPubrel {
		h |= 0x02
	}
	return []byte{h, 2, byte(id >> 8), byte(id)}
}

// headerLen decodes the fixed header of b: it returns the header length and
// the remaining length, or ErrMQTTShort when b is too short to tell.
func headerLen(b []byte, max int) (hdr, rem int, err error) {
	if len(b) < 2 {
		return 0, 0, ErrMQTTShort
	}
	mult := 1
	for i := 1; ; i++ {
		if i > 4 {
			return 0, 0, fmt.Errorf("%w: remaining length longer than 4 bytes", ErrMQTTMalformed)
		}
		if i >= len(b) {
			return 0, 0, ErrMQTTShort
		}
		rem += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			hdr = i + 1
			break
		}
		mult *= 128
	}
	if rem > max {
		return 0, 0, fmt.Errorf("%w: remaining length %d above %d", ErrMQTTTooLarge, rem, max)
	}
	return hdr, rem, nil
}

// ParseMQTTPacket parses the first MQTT 3.1.1 control packet of b and
// returns it with the number of bytes it used. It decodes PUBLISH fully and
// the packet id of the publish acknowledgements; other packets are kept as
// raw bytes. A buffer that ends inside the packet gives ErrMQTTShort.
func ParseMQTTPacket(b []byte) (MQTTPacket, int, error) {
	hdr, rem, err := headerLen(b, MaxMQTTPacket)
	if err != nil {
		return MQTTPacket{}, 0, err
	}
	n := hdr + rem
	if len(b) < n {
		return MQTTPacket{}, 0, fmt.Errorf("%w: need %d bytes, have %d", ErrMQTTShort, n, len(b))
	}
	p := MQTTPacket{Type: b[0] >> 4, Flags: b[0] & 0x0f, Raw: b[:n:n]}
	body := b[hdr:n]
	switch p.Type {
	case 0, 15:
		return MQTTPacket{}, 0, fmt.Errorf("%w: reserved packet type %d", ErrMQTTMalformed, p.Type)
	case MQTTPublish:
		pub, err := parsePublish(p.Flags, body)
		if err != nil {
			return MQTTPacket{}, 0, err
		}
		p.Publish, p.PacketID = pub, pub.PacketID
	case MQTTPuback, MQTTPubrec, MQTTPubrel, MQTTPubcomp:
		if len(body) != 2 {
			return MQTTPacket{}, 0, fmt.Errorf("%w: type %d with remaining length %d, want 2", ErrMQTTMalformed, p.Type, len(body))
		}
		p.PacketID = binary.BigEndian.Uint16(body)
	}
	return p, n, nil
}

func parsePublish(flags byte, body []byte) (*Publish, error) {
	pub := &Publish{Dup: flags&0x08 != 0, QoS: (flags >> 1) & 3, Retain: flags&0x01 != 0}
	if pub.QoS == 3 {
		return nil, fmt.Errorf("%w: PUBLISH with QoS 3", ErrMQTTMalformed)
	}
	if len(body) < 2 {
		return nil, fmt.Errorf("%w: PUBLISH without topic length", ErrMQTTMalformed)
	}
	tl := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	if len(body) < tl {
		return nil, fmt.Errorf("%w: PUBLISH topic of %d bytes, %d left", ErrMQTTMalformed, tl, len(body))
	}
	topic := body[:tl]
	body = body[tl:]
	if !utf8.Valid(topic) || strings.ContainsAny(string(topic), "\x00+#") {
		return nil, fmt.Errorf("%w: PUBLISH topic %q: invalid UTF-8, NUL or wildcard", ErrMQTTMalformed, topic)
	}
	pub.Topic = string(topic)
	if pub.QoS > 0 {
		if len(body) < 2 {
			return nil, fmt.Errorf("%w: PUBLISH QoS %d without packet id", ErrMQTTMalformed, pub.QoS)
		}
		pub.PacketID = binary.BigEndian.Uint16(body)
		if pub.PacketID == 0 {
			return nil, fmt.Errorf("%w: PUBLISH QoS %d with packet id 0", ErrMQTTMalformed, pub.QoS)
		}
		body = body[2:]
	}
	pub.Payload = append([]byte(nil), body...)
	return pub, nil
}

// ReadMQTTPacket reads one control packet from r (at most max bytes of
// remaining length; <= 0 means MaxMQTTPacket). A clean end of stream
// between packets returns io.EOF.
func ReadMQTTPacket(r *bufio.Reader, max int) (MQTTPacket, error) {
	if max <= 0 || max > MaxMQTTPacket {
		max = MaxMQTTPacket
	}
	head := make([]byte, 0, 5)
	for {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && len(head) > 0 {
				err = fmt.Errorf("%w: end of stream in fixed header", ErrMQTTShort)
			}
			return MQTTPacket{}, err
		}
		head = append(head, c)
		if len(head) >= 2 && c&0x80 == 0 || len(head) == 5 {
			break
		}
	}
	hdr, rem, err := headerLen(head, max)
	if err != nil {
		return MQTTPacket{}, err
	}
	buf := make([]byte, hdr+rem)
	copy(buf, head[:hdr])
	if _, err := io.ReadFull(r, buf[hdr:]); err != nil {
		return MQTTPacket{}, fmt.Errorf("%w: %v", ErrMQTTShort, err)
	}
	p, _, err := ParseMQTTPacket(buf)
	return p, err
}

// MQTTCase is one entry of the MQTT parser's case table.
type MQTTCase struct {
	Name  string
	Bytes []byte
	// Type and Publish are the expected decoding; Err a substring of the
	// expected error ("" = valid).
	Type    byte
	Publish *Publish
	Err     string
}

// MQTTCases is the case table of the MQTT packet parser: valid packets of
// every kind the proxy meets and malformed ones. Tests and FuzzMQTTPacket
// use it.
var MQTTCases = []MQTTCase{
	{Name: "publish qos0", Bytes: (&Publish{Topic: "pumplab/v1/pumps/PUMP-0001/status", Payload: []byte(`{"v":1}`)}).Encode(),
		Type: MQTTPublish, Publish: &Publish{Topic: "pumplab/v1/pumps/PUMP-0001/status", Payload: []byte(`{"v":1}`)}},
	{Name: "publish qos1 retain dup", Bytes: (&Publish{Dup: true, QoS: 1, Retain: true, Topic: "a/b", PacketID: 7, Payload: []byte("x")}).Encode(),
		Type: MQTTPublish, Publish: &Publish{Dup: true, QoS: 1, Retain: true, Topic: "a/b", PacketID: 7, Payload: []byte("x")}},
	{Name: "publish qos2 empty payload", Bytes: (&Publish{QoS: 2, Topic: "t", PacketID: 0x0102}).Encode(),
		Type: MQTTPublish, Publish: &Publish{QoS: 2, Topic: "t", PacketID: 0x0102, Payload: []byte{}}},
	{Name: "publish 200-byte payload (2-byte length)", Bytes: (&Publish{Topic: "t", Payload: make([]byte, 200)}).Encode(),
		Type: MQTTPublish, Publish: &Publish{Topic: "t", Payload: make([]byte, 200)}},
	{Name: "puback", Bytes: mqttAck(MQTTPuback, 7), Type: MQTTPuback},
	{Name: "pubrel", Bytes: mqttAck(MQTTPubrel, 9), Type: MQTTPubrel},
	{Name: "pingreq", Bytes: []byte{0xc0, 0x00}, Type: MQTTPingreq},
	{Name: "disconnect", Bytes: []byte{0xe0, 0x00}, Type: MQTTDisconnect},
	{Name: "connect", Bytes: []byte{0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 4, 'p', 'u', 'm', 'p'}, Type: MQTTConnect},
	{Name: "subscribe", Bytes: []byte{0x82, 0x08, 0, 1, 0, 3, 'a', '/', '#', 1}, Type: MQTTSubscribe},
	{Name: "empty", Bytes: nil, Err: "truncated"},
	{Name: "header only", Bytes: []byte{0x30}, Err: "truncated"},
	{Name: "truncated body", Bytes: []byte{0x30, 0x05, 0, 1, 't'}, Err: "truncated"},
	{Name: "remaining length 5 bytes", Bytes: []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, Err: "longer than 4 bytes"},
	{Name: "too large", Bytes: []byte{0x30, 0xff, 0xff, 0xff, 0x7f}, Err: "too large"},
	{Name: "reserved type 0", Bytes: []byte{0x00, 0x00}, Err: "reserved packet type"},
	{Name: "reserved type 15", Bytes: []byte{0xf0, 0x00}, Err: "reserved packet type"},
	{Name: "publish qos3", Bytes: []byte{0x36, 0x05, 0, 1, 't', 0, 1}, Err: "QoS 3"},
	{Name: "publish topic overruns", Bytes: []byte{0x30, 0x03, 0, 9, 't'}, Err: "topic of 9 bytes"},
	{Name: "publish no topic length", Bytes: []byte{0x30, 0x01, 0}, Err: "without topic length"},
	{Name: "publish wildcard topic", Bytes: []byte{0x30, 0x03, 0, 1, '#'}, Err: "wildcard"},
	{Name: "publish invalid utf8", Bytes: []byte{0x30, 0x03, 0, 1, 0xff}, Err: "invalid UTF-8"},
	{Name: "publish qos1 no packet id", Bytes: []byte{0x32, 0x03, 0, 1, 't'}, Err: "without packet id"},
	{Name: "publish qos1 packet id 0", Bytes: []byte{0x32, 0x05, 0, 1, 't', 0, 0}, Err: "packet id 0"},
	{Name: "puback too long", Bytes: []byte{0x40, 0x03, 0, 1, 0}, Err: "want 2"},
}
