package intake

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// FrameError is a refused frame of a syslog TCP stream. The reader has
// resynchronised after it: the caller counts it and calls Next again.
type FrameError struct{ Msg string }

func (e *FrameError) Error() string { return "syslog-tcp frame: " + e.Msg }

// FrameReader splits a syslog TCP stream into messages (RFC 6587). Each frame
// is detected on its own, so one stream may mix both framings:
//
//   - octet counting: MSG-LEN SP SYSLOG-MSG, where MSG-LEN is a decimal
//     byte count with no leading zero (a frame starting with 1-9);
//   - non-transparent framing: the message up to LF (a frame starting with
//     anything else, normally '<'); a CR before the LF and NUL terminators
//     are accepted too.
//
// Empty lines and stray LF, CR or NUL between frames are skipped. A frame
// longer than the maximum is discarded and reported as a *FrameError; an
// octet-counted one is skipped by its count, so the frames after it are
// kept. A malformed length skips to the next LF.
type FrameReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewFrameReader reads frames of at most max bytes (MaxFrame if max <= 0).
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 {
		max = MaxFrame
	}
	return &FrameReader{r: bufio.NewReaderSize(r, 16<<10), max: max}
}

// Next returns the next frame, valid until the next call. Its error is a
// *FrameError for a refused frame (call Next again), io.EOF at a clean end
// of stream, io.ErrUnexpectedEOF for a stream that ends inside a frame, or
// the error of the underlying reader.
func (f *FrameReader) Next() ([]byte, error) {
	// Skip separators between frames.
	var c byte
	for {
		b, err := f.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b != '\n' && b != '\r' && b != 0 {
			c = b
			break
		}
	}
	if c >= '1' && c <= '9' {
		return f.octetCounted(c)
	}
	_ = f.r.UnreadByte()
	return f.line()
}

func (f *FrameReader) octetCounted(first byte) ([]byte, error) {
	n := int(first - '0')
	digits := 1
	for {
		b, err := f.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if b == ' ' {
			break
		}
		if b < '0' || b > '9' || digits >= 9 {
			// Not a length: this is no octet-counted frame. Resync at LF.
			if b == '\n' {
				return nil, &FrameError{Msg: fmt.Sprintf("line starting with %d%q is neither an octet count nor a message (want MSG-LEN SP or '<')", n, b)}
			}
			if err := f.skipLine(); err != nil && err != io.EOF {
				return nil, err
			}
			return nil, &FrameError{Msg: fmt.Sprintf("malformed octet count at %q (want MSG-LEN SP SYSLOG-MSG); skipped to the next LF", b)}
		}
		n = n*10 + int(b-'0')
		digits++
	}
	if n > f.max {
		if _, err := f.r.Discard(n); err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return nil, &FrameError{Msg: fmt.Sprintf("octet-counted frame of %d bytes, more than the limit of %d; skipped", n, f.max)}
	}
	if cap(f.buf) < n {
		f.buf = make([]byte, n)
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return f.buf, nil
}

// line reads up to LF or NUL; a last line without LF is a frame too (the
// sender closed after it).
func (f *FrameReader) line() ([]byte, error) {
	f.buf = f.buf[:0]
	over := false
	for {
		b, err := f.r.ReadByte()
		if err != nil {
			if !errors.Is(err, io.EOF) || (len(f.buf) == 0 && !over) {
				return nil, err
			}
			break
		}
		if b == '\n' || b == 0 {
			break
		}
		if len(f.buf) > f.max { // room for max bytes and a CR before LF
			over = true
			continue
		}
		f.buf = append(f.buf, b)
	}
	if n := len(f.buf); n > 0 && f.buf[n-1] == '\r' {
		f.buf = f.buf[:n-1]
	}
	if over || len(f.buf) > f.max {
		return nil, &FrameError{Msg: fmt.Sprintf("line longer than the limit of %d bytes; skipped to the next LF", f.max)}
	}
	return f.buf, nil
}

func (f *FrameReader) skipLine() error {
	for {
		b, err := f.r.ReadByte()
		if err != nil {
			return err
		}
		if b == '\n' {
			return nil
		}
	}
}
