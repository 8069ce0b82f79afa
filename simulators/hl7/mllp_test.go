package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func reader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

func TestReadFrame(t *testing.T) {
	big := strings.Repeat("x", 100_000) // larger than the bufio buffer
	r := reader("\x0bone\x1c\x0d\x0btwo\r\x1c\x0d\x0b" + big + "\x1c\x0d")
	for _, want := range []string{"one", "two\r", big} {
		got, err := ReadFrame(r, 0)
		if err != nil || string(got) != want {
			t.Fatalf("ReadFrame = %.20q, %v; want %.20q", got, err, want)
		}
	}
	if _, err := ReadFrame(r, 0); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}

	tests := []struct {
		name  string
		in    string
		limit int
		want  error
	}{
		{"oversize", "\x0b12345678901\x1c\x0d", 10, ErrFrameTooLarge},
		{"oversize-no-end", "\x0b" + big, 1000, ErrFrameTooLarge},
		{"truncated", "\x0bMSH|^~", 0, ErrTruncatedFrame},
		{"truncated-after-end-block", "\x0bMSH\x1c", 0, ErrTruncatedFrame},
		{"bad-end", "\x0bMSH\x1cX", 0, ErrBadEndBlock},
		{"missing-start", "MSH|^~\\&\x1c\x0d", 0, ErrMissingStartBlock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(reader(tt.in), tt.limit)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// Exactly at the limit is fine.
	if got, err := ReadFrame(reader("\x0b1234567890\x1c\x0d"), 10); err != nil || string(got) != "1234567890" {
		t.Fatalf("at limit: %q, %v", got, err)
	}
}

func TestReadFrameResync(t *testing.T) {
	// Garbage before a frame is discarded up to the next start block, then
	// the frame reads normally.
	r := reader("garbage\x00\xff\x0bMSH|ok\x1c\x0d")
	if _, err := ReadFrame(r, 0); !errors.Is(err, ErrMissingStartBlock) {
		t.Fatalf("first read: %v", err)
	}
	got, err := ReadFrame(r, 0)
	if err != nil || string(got) != "MSH|ok" {
		t.Fatalf("after resync: %q, %v", got, err)
	}
	// A bad end block leaves the next start block for the next read.
	r = reader("\x0bA\x1c\x0bB\x1c\x0d")
	if _, err := ReadFrame(r, 0); !errors.Is(err, ErrBadEndBlock) {
		t.Fatalf("bad end: %v", err)
	}
	if got, err := ReadFrame(r, 0); err != nil || string(got) != "B" {
		t.Fatalf("after bad end: %q, %v", got, err)
	}
}

func TestWriteFrame(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, ExampleAckO15); err != nil {
		t.Fatal(err)
	}
	want := "\x0b" + string(ExampleAckO15) + "\x1c\x0d"
	if buf.String() != want || string(Frame(ExampleAckO15)) != want {
		t.Fatalf("frame = %q", buf.String())
	}
	got, err := ReadFrame(bufio.NewReader(&buf), 0)
	if err != nil || !bytes.Equal(got, ExampleAckO15) {
		t.Fatalf("read back: %q, %v", got, err)
	}
	if err := WriteFrame(failWriter{}, []byte("x")); err == nil || !strings.Contains(err.Error(), "hl7: mllp: write frame") {
		t.Fatalf("write error = %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("boom") }
