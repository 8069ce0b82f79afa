package hl7

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// MLLP framing bytes.
const (
	StartBlock     = 0x0B // VT: start of a frame
	EndBlock       = 0x1C // FS: end of the message
	CarriageReturn = 0x0D // CR: after EndBlock
)

// Framing errors returned (wrapped) by ReadFrame. Test with errors.Is.
var (
	// ErrMissingStartBlock: bytes outside a frame. ReadFrame has discarded
	// them, up to the next start block already received.
	ErrMissingStartBlock = errors.New("hl7: mllp: missing start block 0x0B")
	// ErrFrameTooLarge: the frame exceeds the size cap; the stream cannot be
	// resynchronised reliably and should be closed.
	ErrFrameTooLarge = errors.New("hl7: mllp: frame too large")
	// ErrTruncatedFrame: the stream ended inside a frame.
	ErrTruncatedFrame = errors.New("hl7: mllp: truncated frame")
	// ErrBadEndBlock: 0x1C not followed by 0x0D. The frame is discarded.
	ErrBadEndBlock = errors.New("hl7: mllp: end block 0x1C not followed by 0x0D")
)

// ReadFrame reads one MLLP frame (0x0B msg 0x1C 0x0D) and returns msg.
// Frames larger than limit bytes (<= 0 means MaxMessageSize) fail with
// ErrFrameTooLarge. A clean end of stream before a frame starts returns
// io.EOF; an end inside a frame returns ErrTruncatedFrame. Bytes before the
// start block fail with ErrMissingStartBlock after being discarded (only
// those already buffered, so a frame that follows in the same read is kept
// for the next call).
func ReadFrame(r *bufio.Reader, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = MaxMessageSize
	}
	c, err := r.ReadByte()
	if err != nil {
		return nil, err // io.EOF: clean end between frames
	}
	if c != StartBlock {
		skipped := 1
		for r.Buffered() > 0 {
			next, _ := r.Peek(1)
			if next[0] == StartBlock {
				break
			}
			_, _ = r.ReadByte()
			skipped++
		}
		return nil, fmt.Errorf("%w (discarded %d bytes)", ErrMissingStartBlock, skipped)
	}
	var msg []byte
	for {
		chunk, err := r.ReadSlice(EndBlock)
		if len(msg)+len(chunk) > limit+1 { // +1: the end block itself
			return nil, fmt.Errorf("%w: more than %d bytes", ErrFrameTooLarge, limit)
		}
		msg = append(msg, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w after %d bytes", ErrTruncatedFrame, len(msg))
		}
		return nil, fmt.Errorf("hl7: mllp: read frame: %w", err)
	}
	msg = msg[:len(msg)-1]
	c, err = r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: missing 0x0D after end block", ErrTruncatedFrame)
		}
		return nil, fmt.Errorf("hl7: mllp: read frame: %w", err)
	}
	if c != CarriageReturn {
		_ = r.UnreadByte()
		return nil, ErrBadEndBlock
	}
	return msg, nil
}

// WriteFrame writes msg as one MLLP frame in a single Write call.
func WriteFrame(w io.Writer, msg []byte) error {
	if _, err := w.Write(Frame(msg)); err != nil {
		return fmt.Errorf("hl7: mllp: write frame: %w", err)
	}
	return nil
}

// Frame returns msg wrapped in MLLP framing bytes.
func Frame(msg []byte) []byte {
	buf := make([]byte, 0, len(msg)+3)
	buf = append(buf, StartBlock)
	buf = append(buf, msg...)
	return append(buf, EndBlock, CarriageReturn)
}
