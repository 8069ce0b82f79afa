package capture

import (
	"bytes"
	"io"
	"testing"
	"time"
)

func FuzzDecodeEthernet(f *testing.F) {
	f.Add([]byte{})
	f.Add(append(make([]byte, 12), 0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
		0x9c, 0x40, 0x07, 0x5b, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeEthernet(b)
		if err == nil && (s.Proto == "" || len(s.Payload) > len(b)) {
			t.Fatalf("decoded %+v", s)
		}
	})
}

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, LinkTypeEthernet, 65535, "lo", "fuzz")
	w.WritePacket(time.Unix(1, 5), []byte("0123456789abcdef"), 16, "a comment")
	w.Flush()
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()-3])
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := NewReader(bytes.NewReader(b))
		for i := 0; i < 1000; i++ {
			p, err := rd.Next()
			if err != nil {
				if err == io.EOF || err == ErrShort {
					return
				}
				return
			}
			if len(p.Data) > len(b) {
				t.Fatalf("packet of %d bytes from %d bytes", len(p.Data), len(b))
			}
		}
	})
}

func TestWriterReaderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkTypeEthernet, 8, "lo", "test")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 5, 8, 0, 0, 123456789, time.UTC)
	if err := w.WritePacket(ts, []byte("0123456789"), 10, "ATK-10/1"); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	whole := buf.Bytes()
	// A file cut inside the packet block reads as ErrShort, then completes.
	rd := NewReader(bytes.NewReader(whole[:len(whole)-5]))
	if _, err := rd.Next(); err != ErrShort {
		t.Fatalf("cut file: %v, want ErrShort", err)
	}
	rd = NewReader(bytes.NewReader(whole))
	p, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !p.Time.Equal(ts) || string(p.Data) != "01234567" || p.OrigLen != 10 || p.LinkType != LinkTypeEthernet {
		t.Fatalf("read %+v (time %v)", p, p.Time)
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("after the last packet: %v", err)
	}
	if _, err := NewReader(bytes.NewReader([]byte("not a pcapng file at all"))).Next(); err == nil {
		t.Fatal("garbage read as pcapng")
	}
}
