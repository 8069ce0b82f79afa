package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// LinkTypeEthernet is the pcapng link type of an Ethernet interface
// (LINKTYPE_ETHERNET); loopback frames captured with AF_PACKET carry an
// Ethernet header with zero addresses.
const LinkTypeEthernet = 1

// pcapng block types (IETF draft-ietf-opsawg-pcapng).
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockEPB = 0x00000006
	magicBO  = 0x1A2B3C4D
)

// MaxBlock is the largest block the reader accepts.
const MaxBlock = 1 << 20

// Writer writes a pcapng file with one section and one interface whose
// timestamps are in nanoseconds. It is not safe for concurrent use.
type Writer struct {
	w       *bufio.Writer
	snaplen uint32
}

func pad4(n int) int { return (4 - n%4) % 4 }

// option encodes one pcapng option.
func option(code uint16, val []byte) []byte {
	b := make([]byte, 4, 4+len(val)+pad4(len(val)))
	binary.LittleEndian.PutUint16(b[0:], code)
	binary.LittleEndian.PutUint16(b[2:], uint16(len(val)))
	b = append(b, val...)
	return append(b, make([]byte, pad4(len(val)))...)
}

func (w *Writer) block(typ uint32, body []byte) error {
	total := uint32(12 + len(body))
	var h [8]byte
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint32(h[4:], total)
	if _, err := w.w.Write(h[:]); err != nil {
		return err
	}
	if _, err := w.w.Write(body); err != nil {
		return err
	}
	var t [4]byte
	binary.LittleEndian.PutUint32(t[:], total)
	_, err := w.w.Write(t[:])
	return err
}

// NewWriter writes the section header and the interface description of
// interface ifName (link type, snapshot length) to out.
func NewWriter(out io.Writer, linkType uint16, snaplen uint32, ifName, app string) (*Writer, error) {
	w := &Writer{w: bufio.NewWriterSize(out, 64<<10), snaplen: snaplen}
	shb := make([]byte, 16)
	binary.LittleEndian.PutUint32(shb[0:], magicBO)
	binary.LittleEndian.PutUint16(shb[4:], 1) // major
	binary.LittleEndian.PutUint16(shb[6:], 0) // minor
	binary.LittleEndian.PutUint64(shb[8:], ^uint64(0))
	shb = append(shb, option(4, []byte(app))...) // shb_userappl
	shb = append(shb, option(0, nil)...)
	if err := w.block(blockSHB, shb); err != nil {
		return nil, err
	}
	idb := make([]byte, 8)
	binary.LittleEndian.PutUint16(idb[0:], linkType)
	binary.LittleEndian.PutUint32(idb[4:], snaplen)
	idb = append(idb, option(2, []byte(ifName))...) // if_name
	idb = append(idb, option(9, []byte{9})...)      // if_tsresol: 10^-9 s
	idb = append(idb, option(0, nil)...)
	if err := w.block(blockIDB, idb); err != nil {
		return nil, err
	}
	return w, w.w.Flush()
}

// WritePacket writes one enhanced packet block: data captured at ts, of a
// packet that was origLen bytes on the wire. comment, if not empty, is
// stored as the packet's opt_comment.
func (w *Writer) WritePacket(ts time.Time, data []byte, origLen int, comment string) error {
	if len(data) > int(w.snaplen) {
		data = data[:w.snaplen]
	}
	body := make([]byte, 20, 20+len(data)+pad4(len(data))+16)
	ns := uint64(ts.UnixNano())
	binary.LittleEndian.PutUint32(body[0:], 0) // interface id
	binary.LittleEndian.PutUint32(body[4:], uint32(ns>>32))
	binary.LittleEndian.PutUint32(body[8:], uint32(ns))
	binary.LittleEndian.PutUint32(body[12:], uint32(len(data)))
	binary.LittleEndian.PutUint32(body[16:], uint32(origLen))
	body = append(body, data...)
	body = append(body, make([]byte, pad4(len(data)))...)
	if comment != "" {
		body = append(body, option(1, []byte(comment))...)
		body = append(body, option(0, nil)...)
	}
	return w.block(blockEPB, body)
}

// Flush writes buffered blocks to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }

// Packet is one captured packet read back from a pcapng file.
type Packet struct {
	Time     time.Time
	Data     []byte
	OrigLen  int
	LinkType uint16
}

// ErrShort means the file ends inside a block: a file still being written
// may complete it later (see Reader.Next).
var ErrShort = errors.New("pcapng: file ends inside a block")

// Reader reads pcapng blocks from a file that may still be growing: Next
// returns ErrShort at an incomplete block without consuming it, so the
// caller can retry once more data is there.
type Reader struct {
	r      io.ReadSeeker
	off    int64
	order  binary.ByteOrder
	ifaces []iface
}

type iface struct {
	linkType uint16
	tsUnit   time.Duration // 0 means 10^-6 (default)
	tsDiv    uint64        // when the resolution is not a power of ten
}

// NewReader reads pcapng from r, starting at its current offset 0.
func NewReader(r io.ReadSeeker) *Reader { return &Reader{r: r} }

// Next returns the next packet. It returns io.EOF at the end of complete
// data, ErrShort at an incomplete block, and an error naming the offset
// and the field for malformed data.
func (rd *Reader) Next() (Packet, error) {
	for {
		if _, err := rd.r.Seek(rd.off, io.SeekStart); err != nil {
			return Packet{}, err
		}
		var h [12]byte
		n, err := io.ReadFull(rd.r, h[:8])
		if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			return Packet{}, io.EOF
		}
		if err != nil {
			return Packet{}, ErrShort
		}
		typ := binary.LittleEndian.Uint32(h[0:])
		if typ == blockSHB {
			if _, err := io.ReadFull(rd.r, h[8:12]); err != nil {
				return Packet{}, ErrShort
			}
			switch binary.LittleEndian.Uint32(h[8:]) {
			case magicBO:
				rd.order = binary.LittleEndian
			case 0x4D3C2B1A:
				rd.order = binary.BigEndian
			default:
				return Packet{}, fmt.Errorf("pcapng: offset %d: section header byte-order magic %#x is not 0x1A2B3C4D", rd.off, h[8:12])
			}
			rd.ifaces = nil
		} else if rd.order == nil {
			return Packet{}, fmt.Errorf("pcapng: offset %d: block type %#x before a section header (not a pcapng file?)", rd.off, typ)
		}
		total := rd.order.Uint32(h[4:])
		if total < 12 || total%4 != 0 || total > MaxBlock {
			return Packet{}, fmt.Errorf("pcapng: offset %d: block total length %d (want a multiple of 4 in 12..%d)", rd.off, total, MaxBlock)
		}
		blk := make([]byte, total)
		if _, err := rd.r.Seek(rd.off, io.SeekStart); err != nil {
			return Packet{}, err
		}
		if _, err := io.ReadFull(rd.r, blk); err != nil {
			return Packet{}, ErrShort
		}
		if rd.order.Uint32(blk[total-4:]) != total {
			return Packet{}, fmt.Errorf("pcapng: offset %d: trailing block length %d differs from %d", rd.off, rd.order.Uint32(blk[total-4:]), total)
		}
		start := rd.off
		rd.off += int64(total)
		body := blk[8 : total-4]
		switch rd.order.Uint32(blk[0:]) {
		case blockIDB:
			if len(body) < 8 {
				return Packet{}, fmt.Errorf("pcapng: offset %d: interface description of %d bytes", start, len(body))
			}
			ifc := iface{linkType: rd.order.Uint16(body[0:])}
			rd.parseIDBOptions(body[8:], &ifc)
			rd.ifaces = append(rd.ifaces, ifc)
		case blockEPB:
			if len(body) < 20 {
				return Packet{}, fmt.Errorf("pcapng: offset %d: enhanced packet block of %d bytes", start, len(body))
			}
			id := rd.order.Uint32(body[0:])
			if int(id) >= len(rd.ifaces) {
				return Packet{}, fmt.Errorf("pcapng: offset %d: packet of interface %d, only %d described", start, id, len(rd.ifaces))
			}
			ts := uint64(rd.order.Uint32(body[4:]))<<32 | uint64(rd.order.Uint32(body[8:]))
			capLen := rd.order.Uint32(body[12:])
			if capLen > uint32(len(body)-20) {
				return Packet{}, fmt.Errorf("pcapng: offset %d: captured length %d exceeds the block", start, capLen)
			}
			ifc := rd.ifaces[id]
			return Packet{Time: ifc.time(ts), Data: body[20 : 20+capLen], OrigLen: int(rd.order.Uint32(body[16:])), LinkType: ifc.linkType}, nil
		}
	}
}

func (rd *Reader) parseIDBOptions(b []byte, ifc *iface) {
	for len(b) >= 4 {
		code, l := rd.order.Uint16(b[0:]), int(rd.order.Uint16(b[2:]))
		if code == 0 || 4+l > len(b) {
			return
		}
		if code == 9 && l >= 1 {
			r := b[4]
			if r&0x80 == 0 && r <= 9 {
				u := time.Second
				for i := byte(0); i < r; i++ {
					u /= 10
				}
				ifc.tsUnit = u
			} else if r&0x80 != 0 && r&0x7f < 64 {
				ifc.tsDiv = 1 << (r & 0x7f)
			}
		}
		b = b[4+l+pad4(l):]
	}
}

func (ifc iface) time(ts uint64) time.Time {
	switch {
	case ifc.tsDiv != 0:
		sec := ts / ifc.tsDiv
		frac := ts % ifc.tsDiv
		return time.Unix(int64(sec), int64(frac*uint64(time.Second)/ifc.tsDiv))
	case ifc.tsUnit == 0:
		return time.UnixMicro(int64(ts))
	}
	return time.Unix(0, 0).Add(time.Duration(ts) * ifc.tsUnit)
}
