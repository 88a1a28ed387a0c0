package auth

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newTestLimiter returns a limiter on a clock the test moves by hand.
func newTestLimiter[K comparable](burst int, rate float64) (*FailureLimiter[K], *time.Time) {
	now := time.Unix(1_750_000_000, 0)
	l := NewFailureLimiter[K](burst, rate)
	l.now = func() time.Time { return now }
	return l, &now
}

func TestFailureLimiter(t *testing.T) {
	t.Run("BurstThenRefusedThenRefilled", func(t *testing.T) {
		l, now := newTestLimiter[netip.Addr](3, 0.5)
		a := netip.MustParseAddr("192.0.2.1")
		for i := range 3 {
			if ok, _ := l.Allow(a); !ok {
				t.Fatalf("refused after %d failures, want 3 allowed", i)
			}
			l.Fail(a)
		}
		ok, wait := l.Allow(a)
		if ok || wait != 2*time.Second {
			t.Fatalf("after the burst: ok %v, wait %v; want refused for 2s", ok, wait)
		}
		*now = now.Add(time.Second)
		if ok, wait := l.Allow(a); ok || wait != time.Second {
			t.Fatalf("half refilled: ok %v, wait %v", ok, wait)
		}
		*now = now.Add(time.Second)
		if ok, _ := l.Allow(a); !ok {
			t.Fatal("refused after a token refilled")
		}
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		l, _ := newTestLimiter[string](1, 1)
		l.Fail("alice@example.com")
		if ok, _ := l.Allow("alice@example.com"); ok {
			t.Error("alice allowed past her burst")
		}
		if ok, _ := l.Allow("bob@example.com"); !ok {
			t.Error("bob refused for alice's failures")
		}
	})

	t.Run("ZeroBurstDisables", func(t *testing.T) {
		l, _ := newTestLimiter[string](0, 1)
		for range 100 {
			l.Fail("k")
		}
		if ok, _ := l.Allow("k"); !ok {
			t.Error("a disabled limiter refused")
		}
	})

	t.Run("NilAllowsEverything", func(t *testing.T) {
		var l *FailureLimiter[string]
		l.Fail("k")
		if ok, _ := l.Allow("k"); !ok {
			t.Error("a nil limiter refused")
		}
	})

	t.Run("RefilledBucketsAreSwept", func(t *testing.T) {
		l, now := newTestLimiter[int](2, 1)
		for k := range 10 {
			l.Fail(k)
		}
		*now = now.Add(3 * time.Second)
		l.mu.Lock()
		l.sweep(*now)
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
			l.Fail(a)
			l.Fail(b)
			l.Fail(b)

			inside, checked := false, false
			l.now = func() time.Time {
				if inside && !checked {
					checked = true
					if !l.mu.TryRLock() {
						t.Fatal("updating one address's bucket holds the limiter-wide lock")
					}
					l.mu.RUnlock()
					if ok, wait := l.Allow(b); ok || wait != time.Second {
						t.Errorf("Allow(b) during a's update: ok %v, wait %v; want refused for 1s", ok, wait)
					}
				}
				return *now
			}
			inside = true
			switch op {
			case "Allow":
				if ok, _ := l.Allow(a); !ok {
					t.Error("a refused with a token left")
				}
			case "Fail":
				l.Fail(a)
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
				l.Allow(k)
				l.Fail(k)
			}
		})
	}
	wg.Wait()
	if ok, wait := l.Allow(0); !ok {
		t.Errorf("address 0 failed %d times of a burst of %d and is refused for %v", burst-1, burst, wait)
	}
	for k := 1; k < addrs; k++ {
		if ok, wait := l.Allow(k); ok || wait != time.Second {
			t.Errorf("address %d failed %d times: ok %v, wait %v; want refused for 1s", k, burst, ok, wait)
		}
	}
	*now = now.Add(time.Second)
	if ok, _ := l.Allow(1); !ok {
		t.Error("refused after a token refilled")
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
		l.Fail(addrs[i])
	}
	var start atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(start.Add(int64(len(addrs) / 8))) // each goroutine its own addresses
		for pb.Next() {
			l.Allow(addrs[i%len(addrs)])
			i += 7
		}
	})
}
