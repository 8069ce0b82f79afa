package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// tailer follows one file by polling.
type tailer struct {
	in   *Intake
	f    File
	file *os.File
	info os.FileInfo
	off  int64
	buf  []byte // an incomplete last line
	skip bool   // discarding an over-long line up to its LF
}

func (in *Intake) tail(ctx context.Context, f File) {
	t := &tailer{in: in, f: f}
	defer t.closeFile()
	tick := time.NewTicker(in.cfg.PollInterval)
	defer tick.Stop()
	for {
		t.poll()
		select {
		case <-ctx.Done():
			t.poll() // what was written before Close still counts
			return
		case <-tick.C:
		}
	}
}

func (t *tailer) closeFile() {
	if t.file != nil {
		_ = t.file.Close()
		t.file = nil
	}
}

func (t *tailer) poll() {
	st, err := os.Stat(t.f.Path)
	if err != nil {
		if t.file != nil {
			// Removed (rotation in progress): finish the old file.
			t.read()
		}
		return
	}
	if t.file != nil && !os.SameFile(t.info, st) {
		t.read() // the rest of the rotated file
		t.closeFile()
	}
	if t.file == nil {
		f, err := os.Open(t.f.Path)
		if err != nil {
			return
		}
		t.file, t.info, t.off, t.buf, t.skip = f, st, 0, t.buf[:0], false
	}
	if st.Size() < t.off { // truncated: start again
		t.off, t.buf, t.skip = 0, t.buf[:0], false
	}
	t.read()
}

// read reads from the offset to EOF and handles the complete lines.
func (t *tailer) read() {
	chunk := make([]byte, 64<<10)
	for {
		n, err := t.file.ReadAt(chunk, t.off)
		if n > 0 {
			t.off += int64(n)
			t.consume(chunk[:n])
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.in.log.Warn("intake: read file", "path", t.f.Path, "err", err)
			}
			return
		}
	}
}

func (t *tailer) consume(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if !t.skip {
				t.buf = append(t.buf, b...)
				if len(t.buf) > MaxLine {
					t.refuseLong()
				}
			}
			return
		}
		if t.skip {
			t.skip = false
		} else {
			t.buf = append(t.buf, b[:i]...)
			if len(t.buf) > MaxLine {
				t.refuseLong()
				t.skip = false
			} else {
				t.line(t.buf)
			}
		}
		t.buf = t.buf[:0]
		b = b[i+1:]
	}
}

func (t *tailer) refuseLong() {
	t.in.refuse(SourceFile, fmt.Errorf("file %s: line longer than the limit of %d bytes; skipped", t.f.Path, MaxLine))
	t.buf = t.buf[:0]
	t.skip = true
}

func (t *tailer) line(l []byte) {
	as, err := DecodeFileLine(l, t.f.Tool)
	switch {
	case errors.Is(err, ErrNotAlert):
		t.in.skip(SourceFile)
	case err != nil:
		t.in.refuse(SourceFile, fmt.Errorf("file %s: %w", t.f.Path, err))
	default:
		t.in.accept(SourceFile, as)
	}
}
