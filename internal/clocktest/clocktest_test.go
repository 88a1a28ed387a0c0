package clocktest

import (
	"sync"
	"testing"
	"time"
)

func TestStopped(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := Stopped(at)
	if got := c.Now(); !got.Equal(at) {
		t.Fatalf("Now %s, want %s", got, at)
	}
	c.Advance(90 * time.Minute)
	if got, want := c.Now(), at.Add(90*time.Minute); !got.Equal(want) {
		t.Fatalf("after Advance: %s, want %s", got, want)
	}
}

func TestRunning(t *testing.T) {
	c := Running()
	before := time.Now()
	c.Advance(time.Hour)
	got := c.Now()
	if got.Before(before.Add(time.Hour)) || got.After(time.Now().Add(time.Hour)) {
		t.Fatalf("Now %s, want an hour after the wall clock (%s)", got, before)
	}
	// Real time still passes.
	first := c.Now()
	time.Sleep(time.Millisecond)
	if !c.Now().After(first) {
		t.Error("a running clock stood still")
	}
}

func TestConcurrentAdvance(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Stopped(at)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Second)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), at.Add(800*time.Second); !got.Equal(want) {
		t.Fatalf("Now %s, want %s", got, want)
	}
}

func TestAdvanceBackwardsPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Advance(-1s) did not panic")
		}
	}()
	Stopped(time.Now()).Advance(-time.Second)
}
