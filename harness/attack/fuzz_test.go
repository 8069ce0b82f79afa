package attack

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestMQTTCases(t *testing.T) {
	for _, c := range MQTTCases {
		p, n, err := ParseMQTTPacket(c.Bytes)
		if c.Err != "" {
			if err == nil || !strings.Contains(err.Error(), c.Err) {
				t.Errorf("%s: err = %v, want %q", c.Name, err, c.Err)
			}
			continue
		}
		if err != nil || n != len(c.Bytes) || p.Type != c.Type || !bytes.Equal(p.Raw, c.Bytes) {
			t.Errorf("%s: %+v, n=%d, err=%v", c.Name, p, n, err)
			continue
		}
		if c.Publish != nil {
			g, w := p.Publish, c.Publish
			if g == nil || g.Topic != w.Topic || g.QoS != w.QoS || g.Dup != w.Dup || g.Retain != w.Retain || g.PacketID != w.PacketID || !bytes.Equal(g.Payload, w.Payload) {
				t.Errorf("%s: publish %+v, want %+v", c.Name, g, w)
			}
		}
		// The stream reader gives the same packet, and two packets back to
		// back are split where they should be.
		br := bufio.NewReader(bytes.NewReader(append(append([]byte(nil), c.Bytes...), c.Bytes...)))
		for i := 0; i < 2; i++ {
			q, err := ReadMQTTPacket(br, 0)
			if err != nil || !bytes.Equal(q.Raw, c.Bytes) {
				t.Errorf("%s: ReadMQTTPacket #%d = %x, %v", c.Name, i, q.Raw, err)
			}
		}
	}
}

// FuzzMQTTPacket feeds untrusted bytes to the MQTT parser the proxy uses:
// it must not panic, must consume what it says, and a PUBLISH must encode
// back to a packet that parses to the same fields.
func FuzzMQTTPacket(f *testing.F) {
	for _, c := range MQTTCases {
		f.Add(c.Bytes)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := ParseMQTTPacket(b)
		r, rerr := ReadMQTTPacket(bufio.NewReader(bytes.NewReader(b)), 0)
		if err != nil {
			if !errors.Is(err, ErrMQTTShort) && !errors.Is(err, ErrMQTTMalformed) && !errors.Is(err, ErrMQTTTooLarge) {
				t.Fatalf("unclassified error %v", err)
			}
			if rerr == nil {
				t.Fatalf("ReadMQTTPacket accepted what ParseMQTTPacket refused (%v): %x", err, r.Raw)
			}
			return
		}
		if n <= 0 || n > len(b) || !bytes.Equal(p.Raw, b[:n]) {
			t.Fatalf("n = %d of %d, raw %x", n, len(b), p.Raw)
		}
		if rerr != nil || !bytes.Equal(r.Raw, p.Raw) {
			t.Fatalf("ReadMQTTPacket = %x, %v; ParseMQTTPacket = %x", r.Raw, rerr, p.Raw)
		}
		if p.Type == MQTTPublish {
			enc := p.Publish.Encode()
			q, m, err := ParseMQTTPacket(enc)
			if err != nil || m != len(enc) {
				t.Fatalf("re-encoded publish does not parse: %v", err)
			}
			a, z := p.Publish, q.Publish
			if a.Topic != z.Topic || a.QoS != z.QoS || a.Dup != z.Dup || a.Retain != z.Retain || a.PacketID != z.PacketID || !bytes.Equal(a.Payload, z.Payload) {
				t.Fatalf("round trip %+v -> %+v", a, z)
			}
		}
	})
}
