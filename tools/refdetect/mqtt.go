package main

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MQTT 3.1.1 control packet types the detector reads.
const (
	mqttConnect   = 1
	mqttPublish   = 3
	mqttSubscribe = 8
)

// mqttPacket is what the detector needs of one MQTT control packet.
type mqttPacket struct {
	Type     byte
	Dup      bool
	ClientID string   // CONNECT
	User     string   // CONNECT, when the user name flag is set
	Topic    string   // PUBLISH
	Payload  []byte   // PUBLISH
	Filters  []string // SUBSCRIBE
}

var errMQTTShort = errors.New("mqtt: incomplete packet")

// maxMQTTPacket bounds one packet (the lab's payloads are at most 64 KiB).
const maxMQTTPacket = 1 << 20

// parseMQTT reads one control packet from the start of b and returns it and
// its length; errMQTTShort when b holds only part of it; another error,
// naming the field, for bytes that are not MQTT.
func parseMQTT(b []byte) (mqttPacket, int, error) {
	if len(b) < 2 {
		return mqttPacket{}, 0, errMQTTShort
	}
	var p mqttPacket
	p.Type = b[0] >> 4
	p.Dup = b[0]&0x08 != 0
	rem, mult, i := 0, 1, 1
	for {
		if i >= len(b) {
			return p, 0, errMQTTShort
		}
		if i > 4 {
			return p, 0, errors.New("mqtt: remaining length longer than 4 bytes")
		}
		c := b[i]
		rem += int(c&0x7f) * mult
		mult *= 128
		i++
		if c&0x80 == 0 {
			break
		}
	}
	if rem > maxMQTTPacket {
		return p, 0, fmt.Errorf("mqtt: remaining length %d over %d", rem, maxMQTTPacket)
	}
	if len(b) < i+rem {
		return p, 0, errMQTTShort
	}
	body := b[i : i+rem]
	n := i + rem
	str := func(at int, field string) (string, int, error) {
		if at+2 > len(body) {
			return "", 0, fmt.Errorf("mqtt: %s: length outside the packet", field)
		}
		l := int(binary.BigEndian.Uint16(body[at:]))
		if at+2+l > len(body) {
			return "", 0, fmt.Errorf("mqtt: %s: %d bytes outside the packet", field, l)
		}
		return string(body[at+2 : at+2+l]), at + 2 + l, nil
	}
	switch p.Type {
	case mqttConnect:
		proto, at, err := str(0, "CONNECT protocol name")
		if err != nil {
			return p, n, err
		}
		if proto != "MQTT" && proto != "MQIsdp" {
			return p, n, fmt.Errorf("mqtt: CONNECT protocol name %q", proto)
		}
		if at+4 > len(body) {
			return p, n, errors.New("mqtt: CONNECT variable header truncated")
		}
		level, flags := body[at], body[at+1]
		at += 4
		if level == 5 { // MQTT 5 properties
			if at >= len(body) {
				return p, n, errors.New("mqtt: CONNECT properties truncated")
			}
			pl, w := 0, 0
			for m := 1; w < 4 && at+w < len(body); w++ {
				pl += int(body[at+w]&0x7f) * m
				m *= 128
				if body[at+w]&0x80 == 0 {
					w++
					break
				}
			}
			at += w + pl
		}
		if p.ClientID, at, err = str(at, "CONNECT client id"); err != nil {
			return p, n, err
		}
		if flags&0x04 != 0 { // will
			if _, at, err = str(at, "CONNECT will topic"); err != nil {
				return p, n, err
			}
			if _, at, err = str(at, "CONNECT will message"); err != nil {
				return p, n, err
			}
		}
		if flags&0x80 != 0 {
			if p.User, _, err = str(at, "CONNECT user name"); err != nil {
				return p, n, err
			}
		}
	case mqttPublish:
		topic, at, err := str(0, "PUBLISH topic")
		if err != nil {
			return p, n, err
		}
		p.Topic = topic
		if (b[0]>>1)&3 > 0 {
			at += 2 // packet id
		}
		if at > len(body) {
			return p, n, errors.New("mqtt: PUBLISH packet id truncated")
		}
		p.Payload = body[at:]
	case mqttSubscribe:
		at := 2
		for at < len(body) {
			f, next, err := str(at, "SUBSCRIBE topic filter")
			if err != nil {
				return p, n, err
			}
			p.Filters = append(p.Filters, f)
			at = next + 1
		}
	}
	return p, n, nil
}
