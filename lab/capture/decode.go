package capture

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// TCP flags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// Segment is the transport view of one Ethernet frame: addresses, ports,
// and for TCP the sequence number, flags and payload.
type Segment struct {
	Proto   string // "tcp" or "udp"
	Src     netip.AddrPort
	Dst     netip.AddrPort
	Seq     uint32
	Flags   byte
	Payload []byte
}

// Tuple is the segment's 5-tuple as the ground truth writes it:
// tcp:127.0.0.1:40000->127.0.0.1:1883.
func (s Segment) Tuple() string { return fmt.Sprintf("%s:%s->%s", s.Proto, s.Src, s.Dst) }

// DecodeEthernet decodes an Ethernet frame carrying IPv4 or IPv6 and TCP or
// UDP. Other frames (ARP, ICMP, fragments after the first) give an error
// that says what they are; truncated or inconsistent headers an error
// naming the field.
func DecodeEthernet(frame []byte) (Segment, error) {
	if len(frame) < 14 {
		return Segment{}, fmt.Errorf("ethernet: frame of %d bytes, header needs 14", len(frame))
	}
	et := binary.BigEndian.Uint16(frame[12:])
	p := frame[14:]
	if et == 0x8100 && len(p) >= 4 { // one VLAN tag
		et, p = binary.BigEndian.Uint16(p[2:]), p[4:]
	}
	var s Segment
	var proto byte
	switch et {
	case 0x0800:
		if len(p) < 20 || p[0]>>4 != 4 {
			return s, fmt.Errorf("ipv4: header truncated or version %d", p0(p)>>4)
		}
		ihl := int(p[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(p[2:]))
		if ihl < 20 || ihl > len(p) || total < ihl {
			return s, fmt.Errorf("ipv4: header length %d or total length %d inconsistent with %d bytes", ihl, total, len(p))
		}
		if total < len(p) {
			p = p[:total] // Ethernet padding
		}
		if binary.BigEndian.Uint16(p[6:])&0x1fff != 0 {
			return s, fmt.Errorf("ipv4: fragment at offset %d", binary.BigEndian.Uint16(p[6:])&0x1fff*8)
		}
		proto = p[9]
		src, _ := netip.AddrFromSlice(p[12:16])
		dst, _ := netip.AddrFromSlice(p[16:20])
		s.Src, s.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		p = p[ihl:]
	case 0x86DD:
		if len(p) < 40 || p[0]>>4 != 6 {
			return s, fmt.Errorf("ipv6: header truncated or version %d", p0(p)>>4)
		}
		plen := int(binary.BigEndian.Uint16(p[4:]))
		proto = p[6]
		src, _ := netip.AddrFromSlice(p[8:24])
		dst, _ := netip.AddrFromSlice(p[24:40])
		s.Src, s.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		p = p[40:]
		if plen < len(p) {
			p = p[:plen]
		}
	default:
		return s, fmt.Errorf("ethernet: ethertype %#04x is not IPv4 or IPv6", et)
	}
	switch proto {
	case 6:
		if len(p) < 20 {
			return s, fmt.Errorf("tcp: header truncated (%d bytes)", len(p))
		}
		off := int(p[12]>>4) * 4
		if off < 20 || off > len(p) {
			return s, fmt.Errorf("tcp: data offset %d outside 20..%d", off, len(p))
		}
		s.Proto = "tcp"
		s.Src = netip.AddrPortFrom(s.Src.Addr(), binary.BigEndian.Uint16(p[0:]))
		s.Dst = netip.AddrPortFrom(s.Dst.Addr(), binary.BigEndian.Uint16(p[2:]))
		s.Seq = binary.BigEndian.Uint32(p[4:])
		s.Flags = p[13]
		s.Payload = p[off:]
	case 17:
		if len(p) < 8 {
			return s, fmt.Errorf("udp: header truncated (%d bytes)", len(p))
		}
		s.Proto = "udp"
		s.Src = netip.AddrPortFrom(s.Src.Addr(), binary.BigEndian.Uint16(p[0:]))
		s.Dst = netip.AddrPortFrom(s.Dst.Addr(), binary.BigEndian.Uint16(p[2:]))
		s.Payload = p[8:]
	default:
		return s, fmt.Errorf("ip: protocol %d is not TCP or UDP", proto)
	}
	return s, nil
}

func p0(p []byte) byte {
	if len(p) == 0 {
		return 0
	}
	return p[0]
}
