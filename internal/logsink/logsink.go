// Package logsink takes log output off the request path. slog's handlers
// write each record to their io.Writer while holding a lock, so with stderr
// as the writer every request waited for a write system call, and for every
// other request's: under load (the access log writes a line per request) the
// lock became the server's busiest, and a writer descheduled in the middle of
// its call stalled all of them. A Writer instead appends each record to a
// buffer in memory and writes the buffer out in large pieces.
package logsink

import (
	"io"
	"sync"
	"time"
)

// Sizes of the buffer: past flushAt it is written out at once (one system
// call for hundreds of records); past maxBuffer writers wait for the output,
// so a stuck output slows logging down rather than growing memory.
const (
	flushAt   = 64 << 10
	maxBuffer = 1 << 20
)

// Writer buffers what is written to it and writes it to its output in order:
// when FlushEvery has passed, when the buffer is large, and on Flush and
// Close. Records written in the last FlushEvery before the process dies
// without calling Close are lost.
type Writer struct {
	out io.Writer

	// writing serializes writes to out, in the order their buffers were
	// taken. It is taken before mu, never while holding mu.
	writing sync.Mutex
	mu      sync.Mutex
	buf     []byte
	spare   []byte
	err     error // the first error writing to out, reported by Flush and Close

	kick chan struct{} // asks run to flush now
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New returns a Writer to out that flushes at least every flushEvery.
func New(out io.Writer, flushEvery time.Duration) *Writer {
	w := &Writer{
		out:  out,
		buf:  make([]byte, 0, flushAt),
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go w.run(flushEvery)
	return w
}

func (w *Writer) run(every time.Duration) {
	defer close(w.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = w.Flush()
		case <-w.kick:
			_ = w.Flush()
		case <-w.stop:
			return
		}
	}
}

// Write appends p to the buffer. It waits for the output only when the
// buffer is full. It never fails: errors of the output are reported by Flush
// and Close.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	n := len(w.buf)
	w.mu.Unlock()
	switch {
	case n >= maxBuffer:
		_ = w.Flush()
	case n >= flushAt:
		// The caller may hold a lock of its own (slog's handler does):
		// the flushing goroutine writes, not this one.
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Flush writes out everything written so far.
func (w *Writer) Flush() error {
	w.writing.Lock()
	defer w.writing.Unlock()
	return w.flushLocked()
}

// flushLocked swaps the buffers and writes the full one. Callers hold
// writing.
func (w *Writer) flushLocked() error {
	w.mu.Lock()
	full := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.mu.Unlock()
	if len(full) > 0 {
		if _, err := w.out.Write(full); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if cap(full) <= maxBuffer {
		w.spare = full[:0]
	} else {
		w.spare = nil // a burst grew it: let it go
	}
	return w.err
}

// Close stops the periodic flush and writes out what remains. Writes after
// Close still reach the output, at the next Flush, Close or large buffer.
func (w *Writer) Close() error {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	return w.Flush()
}
