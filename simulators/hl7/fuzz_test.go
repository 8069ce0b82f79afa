package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// fuzzSeeds are the raw messages of Cases, without the 1 MiB one.
func fuzzSeeds() [][]byte {
	var out [][]byte
	for _, c := range Cases {
		if len(c.Raw) < 64<<10 {
			out = append(out, c.Raw)
		}
	}
	return out
}

// FuzzParse: Parse never panics, fails only with *ParseError, and a parsed
// message encodes to bytes that parse to the same message and encode the
// same way again.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = sniffHeader(b)
		m, err := Parse(b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			_ = AsAckError(err).segment()
			return
		}
		for _, p := range []string{"MSH-9", "MSH-10", "PID-3(2).1", "OBX(2)-18.3", "RXG-15.1.1", "MSH-2", "ZZZ-1"} {
			_ = m.Get(p)
		}
		b1 := m.Bytes()
		m2, err := Parse(b1)
		if err != nil {
			t.Fatalf("re-parse of the encoding failed: %v\ninput %q\nencoded %q", err, b, b1)
		}
		if !reflect.DeepEqual(m.Segs, m2.Segs) || m.Delims != m2.Delims {
			t.Fatalf("round trip changed the message:\ninput %q\nencoded %q", b, b1)
		}
		if b2 := m2.Bytes(); !bytes.Equal(b1, b2) {
			t.Fatalf("encoding not stable:\n%q\n%q", b1, b2)
		}
	})
}

// FuzzReadFrame: ReadFrame never panics, never returns more than the limit,
// and always makes progress; any content without 0x1C round-trips through
// Frame.
func FuzzReadFrame(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(Frame(s), uint16(0))
		f.Add(append([]byte("junk"), Frame(s)...), uint16(64))
	}
	f.Add([]byte("\x0b\x1c\x0d\x0babc\x1c\x0bdef\x1c\x0d"), uint16(3))
	f.Fuzz(func(t *testing.T, b []byte, limit uint16) {
		r := bufio.NewReader(bytes.NewReader(b))
		max := int(limit)
		if max == 0 {
			max = MaxMessageSize
		}
		for i := 0; i <= len(b); i++ {
			frame, err := ReadFrame(r, int(limit))
			if err == nil {
				if len(frame) > max {
					t.Fatalf("frame of %d bytes over limit %d", len(frame), max)
				}
				if bytes.IndexByte(frame, EndBlock) >= 0 {
					t.Fatalf("frame contains the end block: %q", frame)
				}
				continue
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if !errors.Is(err, ErrMissingStartBlock) && !errors.Is(err, ErrBadEndBlock) {
				break // oversize, truncated: the stream is done
			}
		}
		if bytes.IndexByte(b, EndBlock) < 0 && len(b) <= max {
			got, err := ReadFrame(bufio.NewReader(bytes.NewReader(Frame(b))), int(limit))
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("Frame/ReadFrame round trip: %q, %v", got, err)
			}
		}
	})
}

// view is one typed view with its builder.
type view struct {
	name  string
	parse func(*Message) (any, error)
	build func(any) *Message
}

var views = []view{
	{"RGV", func(m *Message) (any, error) { return ParseRGV(m) }, func(v any) *Message { return BuildRGV(v.(RGV)) }},
	{"Ack", func(m *Message) (any, error) { return ParseAck(m) }, func(v any) *Message { return BuildAckMessage(v.(Ack)) }},
	{"RRG", func(m *Message) (any, error) { return ParseRRG(m) }, func(v any) *Message { return BuildRRG(v.(Ack)) }},
	{"PumpStatus", func(m *Message) (any, error) { return ParsePumpStatus(m) }, func(v any) *Message { return BuildPumpStatus(v.(PumpStatus)) }},
	{"InfusionEvent", func(m *Message) (any, error) { return ParseInfusionEvent(m) }, func(v any) *Message { return BuildInfusionEvent(v.(InfusionEvent)) }},
	{"Alert", func(m *Message) (any, error) { return ParseAlert(m) }, func(v any) *Message { return BuildAlert(v.(Alert)) }},
	{"AlertStatus", func(m *Message) (any, error) { return ParseAlertStatus(m) }, func(v any) *Message { return BuildAlertStatus(v.(AlertStatus)) }},
	{"OMP", func(m *Message) (any, error) { return ParseOMP(m) }, func(v any) *Message { return BuildOMP(v.(PharmacyOrder)) }},
	{"RDE", func(m *Message) (any, error) { return ParseRDE(m) }, func(v any) *Message { return BuildRDE(v.(PharmacyOrder)) }},
	{"ADT", func(m *Message) (any, error) { return ParseADT(m) }, func(v any) *Message { return BuildADT(v.(ADT)) }},
	{"Administration", func(m *Message) (any, error) { return ParseAdministration(m) }, func(v any) *Message { return BuildAdministration(v.(Administration)) }},
}

// FuzzTypedViews runs every typed view on parsed input: no view panics,
// errors are *ParseError, and a successful view rebuilds into a message that
// parses and views again to the same bytes (one normalisation step at most).
func FuzzTypedViews(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		_, _ = ParseHeader(m)
		_ = BuildAck(m, AckAA, nil).Bytes()
		for _, v := range views {
			val, err := v.parse(m.Clone())
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("%s: error %T is not a *ParseError: %v", v.name, err, err)
				}
				continue
			}
			b1 := v.build(val).Bytes()
			m1, err := Parse(b1)
			if err != nil {
				t.Fatalf("%s: rebuilt message does not parse: %v\ninput %q\nrebuilt %q", v.name, err, b, b1)
			}
			val2, err := v.parse(m1)
			if err != nil {
				t.Fatalf("%s: rebuilt message does not view: %v\ninput %q\nrebuilt %q", v.name, err, b, b1)
			}
			b2 := v.build(val2).Bytes()
			if b3 := v.build(mustView(t, v, b2)).Bytes(); !bytes.Equal(b2, b3) {
				t.Fatalf("%s: rebuild not stable:\n%q\n%q", v.name, b2, b3)
			}
		}
	})
}

func mustView(t *testing.T, v view, b []byte) any {
	t.Helper()
	m, err := Parse(b)
	if err != nil {
		t.Fatalf("%s: %v\n%q", v.name, err, b)
	}
	val, err := v.parse(m)
	if err != nil {
		t.Fatalf("%s: %v\n%q", v.name, err, b)
	}
	return val
}
