package intake

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzHTTPAlerts(f *testing.F) {
	for _, c := range AlertCases {
		if len(c.Body) < 4096 {
			f.Add([]byte(c.Body))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		as, err := DecodeAlerts(body)
		if err != nil {
			if as != nil {
				t.Fatal("refused body returned alerts")
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			return
		}
		if len(as) == 0 || len(as) > MaxBatch {
			t.Fatalf("%d alerts", len(as))
		}
		for _, a := range as {
			if strings.TrimSpace(a.Tool) == "" || len(a.Tool) > MaxToolLen {
				t.Fatalf("accepted tool %q", a.Tool)
			}
			for _, x := range a.Techniques {
				if checkTechnique("", x) != nil {
					t.Fatalf("accepted technique %q", x)
				}
			}
			if !utf8.ValidString(a.Text) || len(a.Text) > MaxTextLen {
				t.Fatal("accepted bad text")
			}
		}
	})
}

func FuzzSyslog(f *testing.F) {
	for _, c := range SyslogCases {
		f.Add([]byte(c.Msg))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := ParseSyslog(msg)
		if err != nil {
			return
		}
		if m.Priority < 0 || m.Priority > 191 || m.Version != 1 {
			t.Fatalf("accepted PRI %d VERSION %d", m.Priority, m.Version)
		}
		// What parses renders to something that parses the same way.
		m2, err := ParseSyslog([]byte(m.String()))
		if err != nil {
			t.Fatalf("reparse %q: %v", m.String(), err)
		}
		if m2.AppName != m.AppName || len(m2.SD) != len(m.SD) || m2.Msg != m.Msg {
			t.Fatalf("round trip changed %+v to %+v", m, m2)
		}
		a, err := m.Alert(msg)
		if err == nil && (a.Tool == "" || !utf8.ValidString(a.Raw)) {
			t.Fatalf("bad alert %+v", a)
		}
	})
}

func FuzzOctetFraming(f *testing.F) {
	for _, c := range FramingCases {
		f.Add([]byte(c.Stream))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		fr := NewFrameReader(bytes.NewReader(stream), FramingMax)
		total := 0
		for i := 0; ; i++ {
			if i > len(stream)+1 {
				t.Fatal("FrameReader made no progress")
			}
			fr2, err := fr.Next()
			var fe *FrameError
			if errors.As(err, &fe) {
				continue
			}
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("error %v", err)
				}
				break
			}
			if len(fr2) > FramingMax {
				t.Fatalf("frame of %d bytes over the limit", len(fr2))
			}
			total += len(fr2)
		}
		if total > len(stream) {
			t.Fatalf("frames hold %d bytes of a %d-byte stream", total, len(stream))
		}
	})
}

func FuzzEveJSON(f *testing.F) {
	for _, c := range EveCases {
		f.Add([]byte(c.Line))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		as, err := DecodeFileLine(line, "")
		if err != nil {
			if as != nil {
				t.Fatal("refused line returned alerts")
			}
			return
		}
		for _, a := range as {
			if a.Tool == "" {
				t.Fatalf("alert without tool %+v", a)
			}
			for _, x := range a.Techniques {
				if checkTechnique("", x) != nil {
					t.Fatalf("accepted technique %q", x)
				}
			}
		}
	})
}
