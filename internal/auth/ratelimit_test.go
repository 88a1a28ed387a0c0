package auth

import (
	"context"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// newTestLimiter returns a limiter on a clock the test moves by hand.
func newTestLimiter[K comparable](burst int, rate float64) (*FailureLimiter[K], *time.Time) {
	now := time.Unix(1_750_000_000, 0)
	l := NewFailureLimiter[K](burst, rate)
	l.now = func() time.Time { return now }
	return l, &now
}

// errWrong is a failed authentication.
var errWrong = apperr.New(apperr.InvalidToken, "invalid or expired token")

// allow reports whether key may try to authenticate now, and if not, how
// long until it may: an attempt that succeeds.
func (l *FailureLimiter[K]) allow(key K) (bool, time.Duration) {
	r, wait, ok := l.Take(context.Background(), key)
	r.Done(nil)
	return ok, wait
}

// fail records a failed attempt of key.
func (l *FailureLimiter[K]) fail(key K) {
	r, _, _ := l.Take(context.Background(), key)
	r.Done(errWrong)
}

func TestFailureLimiter(t *testing.T) {
	t.Run("BurstThenRefusedThenRefilled", func(t *testing.T) {
		l, now := newTestLimiter[netip.Addr](3, 0.5)
		a := netip.MustParseAddr("192.0.2.1")
		for i := range 3 {
			if ok, _ := l.allow(a); !ok {
				t.Fatalf("refused after %d failures, want 3 allowed", i)
			}
			l.fail(a)
		}
		ok, wait := l.allow(a)
		if ok || wait != 2*time.Second {
			t.Fatalf("after the burst: ok %v, wait %v; want refused for 2s", ok, wait)
		}
		*now = now.Add(time.Second)
		if ok, wait := l.allow(a); ok || wait != time.Second {
			t.Fatalf("half refilled: ok %v, wait %v", ok, wait)
		}
		*now = now.Add(time.Second)
		if ok, _ := l.allow(a); !ok {
			t.Fatal("refused after a token refilled")
		}
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		l, _ := newTestLimiter[string](1, 1)
		l.fail("alice@example.com")
		if ok, _ := l.allow("alice@example.com"); ok {
			t.Error("alice allowed past her burst")
		}
		if ok, _ := l.allow("bob@example.com"); !ok {
			t.Error("bob refused for alice's failures")
		}
	})

	t.Run("ZeroBurstDisables", func(t *testing.T) {
		l, _ := newTestLimiter[string](0, 1)
		for range 100 {
			l.fail("k")
		}
		if ok, _ := l.allow("k"); !ok {
			t.Error("a disabled limiter refused")
		}
	})

	t.Run("NilAllowsEverything", func(t *testing.T) {
		var l *FailureLimiter[string]
		l.fail("k")
		if ok, _ := l.allow("k"); !ok {
			t.Error("a nil limiter refused")
		}
	})

	t.Run("RefilledBucketsAreSwept", func(t *testing.T) {
		l, now := newTestLimiter[int](2, 1)
		for k := range 10 {
			l.fail(k)
		}
		*now = now.Add(3 * time.Second)
		l.mu.Lock()
		l.sweep()
		n := len(l.buckets)
		l.mu.Unlock()
		if n != 0 {
			t.Errorf("%d buckets left after every one refilled", n)
		}
	})
}

// TestFailureLimiterNoGlobalLockOnHotPath: while one failed address's bucket
// is being updated, Allow and Fail of another failed address go ahead: the
// update holds no lock that all addresses share. The clock is read in the
// middle of the update, so the test looks from there: the limiter's map lock
// must be free, and the other address must be served on this very goroutine
// (a shared lock held here would deadlock it, so the check comes first).
func TestFailureLimiterNoGlobalLockOnHotPath(t *testing.T) {
	for _, op := range []string{"Allow", "Fail"} {
		t.Run(op, func(t *testing.T) {
			l, now := newTestLimiter[netip.Addr](2, 1)
			a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
			l.fail(a)
			l.fail(b)
			l.fail(b)

			inside, checked := false, false
			l.now = func() time.Time {
				if inside && !checked {
					checked = true
					if !l.mu.TryRLock() {
						t.Fatal("updating one address's bucket holds the limiter-wide lock")
					}
					l.mu.RUnlock()
					if ok, wait := l.allow(b); ok || wait != time.Second {
						t.Errorf("Allow(b) during a's update: ok %v, wait %v; want refused for 1s", ok, wait)
					}
				}
				return *now
			}
			inside = true
			switch op {
			case "Allow":
				if ok, _ := l.allow(a); !ok {
					t.Error("a refused with a token left")
				}
			case "Fail":
				l.fail(a)
			}
			if !checked {
				t.Fatal("the update of a's bucket did not read the clock")
			}
		})
	}
}

// TestFailureLimiterConcurrentFailuresAreExact: failures recorded at once
// from many goroutines, on the same and on different addresses, are each
// counted once: the bucket of an address that failed burst times refuses,
// one that failed burst-1 times allows.
func TestFailureLimiterConcurrentFailuresAreExact(t *testing.T) {
	const burst, workers, addrs = 64, 8, 16
	l, now := newTestLimiter[int](burst, 1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range burst / workers * addrs {
				k := i % addrs
				if k == 0 && w == 0 && i/addrs == 0 {
					continue // address 0 gets one failure fewer
				}
				l.allow(k)
				l.fail(k)
			}
		})
	}
	wg.Wait()
	if ok, wait := l.allow(0); !ok {
		t.Errorf("address 0 failed %d times of a burst of %d and is refused for %v", burst-1, burst, wait)
	}
	for k := 1; k < addrs; k++ {
		if ok, wait := l.allow(k); ok || wait != time.Second {
			t.Errorf("address %d failed %d times: ok %v, wait %v; want refused for 1s", k, burst, ok, wait)
		}
	}
	*now = now.Add(time.Second)
	if ok, _ := l.allow(1); !ok {
		t.Error("refused after a token refilled")
	}
}

// sendAtOnce runs n attempts of key on as many goroutines, released
// together, each ending with outcome(i); it returns how many were let
// through (reserved) and how many refused.
func sendAtOnce[K comparable](l *FailureLimiter[K], key K, n int, outcome func(i int) error) (through, refused int) {
	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		ok, not atomic.Int64
	)
	for i := range n {
		wg.Go(func() {
			<-start
			r, _, allowed := l.Take(context.Background(), key)
			if !allowed {
				not.Add(1)
				return
			}
			ok.Add(1)
			runtime.Gosched() // let the others reach Take while this attempt is evaluated
			r.Done(outcome(i))
		})
	}
	close(start)
	wg.Wait()
	return int(ok.Load()), int(not.Load())
}

// TestFailureLimiterParallelFailuresCannotOutrun: of many failed attempts
// sent at once, exactly burst are evaluated; the others are refused.
func TestFailureLimiterParallelFailuresCannotOutrun(t *testing.T) {
	const burst, n = 10, 64
	l, _ := newTestLimiter[string](burst, 1)
	through, refused := sendAtOnce(l, "k", n, func(int) error { return errWrong })
	if through != burst || refused != n-burst {
		t.Fatalf("%d evaluated, %d refused; want %d and %d", through, refused, burst, n-burst)
	}
}

// TestFailureLimiterSuccessesCostNothing: successes give their token back,
// also when they are sent at once while the budget is nearly spent: an
// attempt that finds every token left held by attempts in flight waits for
// them instead of being refused.
func TestFailureLimiterSuccessesCostNothing(t *testing.T) {
	const burst, n = 10, 64
	l, _ := newTestLimiter[string](burst, 1)
	for range burst - 1 {
		l.fail("k")
	}
	through, refused := sendAtOnce(l, "k", n, func(int) error { return nil })
	if through != n || refused != 0 {
		t.Fatalf("%d successes let through, %d refused; want all %d through", through, refused, n)
	}
	// One failure of the budget is left, and then none.
	if through, refused := sendAtOnce(l, "k", n, func(int) error { return errWrong }); through != 1 || refused != n-1 {
		t.Fatalf("after %d failures and %d successes: %d failures evaluated, %d refused; want 1 and %d", burst-1, n, through, refused, n-1)
	}
}

// TestFailureLimiterWaitsForAttemptsInFlight: while the last token is held
// by an attempt in flight, Take waits for its outcome: the token if it
// succeeded, a refusal if it failed, or a refusal as soon as the caller's
// context ends.
func TestFailureLimiterWaitsForAttemptsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outcome error
		want    bool
	}{{"Succeeded", nil, true}, {"Failed", errWrong, false}} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTestLimiter[string](1, 1)
			held, _, _ := l.Take(context.Background(), "k")
			got := make(chan bool)
			go func() {
				r, _, ok := l.Take(context.Background(), "k")
				r.Done(nil)
				got <- ok
			}()
			waitForWaiter(t, l, "k")
			held.Done(tc.outcome)
			if ok := <-got; ok != tc.want {
				t.Errorf("the attempt in flight %s: the waiting caller let through %v, want %v", tc.name, ok, tc.want)
			}
		})
	}

	t.Run("ContextEnds", func(t *testing.T) {
		l, _ := newTestLimiter[string](1, 1)
		held, _, _ := l.Take(context.Background(), "k")
		defer held.Done(nil)
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan bool)
		go func() {
			_, _, ok := l.Take(ctx, "k")
			got <- ok
		}()
		waitForWaiter(t, l, "k")
		cancel()
		if <-got {
			t.Error("a caller whose context ended was let through")
		}
	})
}

// waitForWaiter returns once a caller waits on key's bucket.
func waitForWaiter[K comparable](t *testing.T, l *FailureLimiter[K], key K) {
	t.Helper()
	for {
		l.mu.RLock()
		b := l.buckets[key]
		l.mu.RUnlock()
		b.mu.Lock()
		waiting := b.ended != nil
		b.mu.Unlock()
		if waiting {
			return
		}
		runtime.Gosched()
	}
}

// BenchmarkFailureLimiterAllowFailed: parallel Allow from addresses that
// have failed before (each has a bucket), the path every request of such an
// address takes.
func BenchmarkFailureLimiterAllowFailed(b *testing.B) {
	l := NewFailureLimiter[netip.Addr](30, 1)
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		l.fail(addrs[i])
	}
	var start atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(start.Add(int64(len(addrs) / 8))) // each goroutine its own addresses
		for pb.Next() {
			l.allow(addrs[i%len(addrs)])
			i += 7
		}
	})
}
