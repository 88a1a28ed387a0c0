package logsink

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// output records what reaches it; it can be made slow or failing.
type output struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	delay  time.Duration
	err    error
}

func (o *output) Write(p []byte) (int, error) {
	time.Sleep(o.delay)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes++
	if o.err != nil {
		return 0, o.err
	}
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func TestWritesArriveInOrderOnClose(t *testing.T) {
	out := &output{}
	w := New(out, time.Hour)
	var want strings.Builder
	for i := range 1000 {
		line := fmt.Sprintf("record %d\n", i)
		want.WriteString(line)
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := out.String(); got != "" {
		t.Fatalf("%d bytes written before any flush was due", len(got))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want.String() {
		t.Fatal("Close did not write everything, in order")
	}
}

func TestFlushesPeriodically(t *testing.T) {
	out := &output{}
	w := New(out, 10*time.Millisecond)
	defer w.Close()
	w.Write([]byte("hello\n"))
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "hello\n" {
		if time.Now().After(deadline) {
			t.Fatal("a record was not written within 5s with a 10ms flush interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLargeBufferIsWrittenWithoutWaitingForTheTimer(t *testing.T) {
	out := &output{}
	w := New(out, time.Hour)
	line := []byte(strings.Repeat("x", 199) + "\n")
	const n = 10 * flushAt / 200
	for range n {
		w.Write(line)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(out.String()) < 9*flushAt {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes written of %d: a large buffer waited for the timer", len(out.String()), n*len(line))
		}
		time.Sleep(time.Millisecond)
	}
	w.Close()
	if got := len(out.String()); got != n*len(line) {
		t.Errorf("%d bytes written, want %d", got, n*len(line))
	}
	if out.writes > 20 {
		t.Errorf("%d writes for %d records", out.writes, n)
	}
}

func TestConcurrentWritersKeepRecordsWhole(t *testing.T) {
	out := &output{delay: 50 * time.Microsecond}
	w := New(out, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				w.Write(fmt.Appendf(nil, "writer %d record %d\n", g, i))
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := map[int]int{}
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var g, i int
		if _, err := fmt.Sscanf(line, "writer %d record %d", &g, &i); err != nil {
			t.Fatalf("mangled record %q", line)
		}
		if i != next[g] {
			t.Fatalf("writer %d: record %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	for g := range 8 {
		if next[g] != 2000 {
			t.Errorf("writer %d: %d records, want 2000", g, next[g])
		}
	}
}

func TestOutputErrorIsReported(t *testing.T) {
	out := &output{err: errors.New("disk full")}
	w := New(out, time.Hour)
	if _, err := w.Write([]byte("x\n")); err != nil {
		t.Fatalf("Write failed: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close did not report the output's error")
	}
}

func TestSlowOutputBoundsTheBuffer(t *testing.T) {
	out := &output{delay: 20 * time.Millisecond}
	w := New(out, time.Hour)
	line := []byte(strings.Repeat("y", 1023) + "\n")
	for range 3 * maxBuffer / len(line) {
		w.Write(line)
		w.mu.Lock()
		n := len(w.buf)
		w.mu.Unlock()
		if n > maxBuffer {
			t.Fatalf("%d bytes buffered, more than %d", n, maxBuffer)
		}
	}
	w.Close()
	if got := len(out.String()); got != 3*maxBuffer/len(line)*len(line) {
		t.Fatalf("%d bytes written", got)
	}
}
