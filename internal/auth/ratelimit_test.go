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

}

// limited reports whether key has no failure left.
func (l *FailureLimiter[K]) limited(key K) bool {
	ok, _ := l.allow(key)
	return !ok
}

// held reports whether l holds a bucket for key.
func (l *FailureLimiter[K]) held(key K) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.buckets[key]
	return ok
}

// TestFailureLimiterEviction: past its capacity, adding a bucket evicts
// one: a bucket that has refilled first (it holds nothing), else the least
// recently used; a key still trying keeps its state however many keys come
// and go, and a bucket with an attempt in flight is never evicted.
func TestFailureLimiterEviction(t *testing.T) {
	t.Run("OldestOnly", func(t *testing.T) {
		const capacity = 100
		l, _ := newTestLimiter[int](2, 1)
		l.capacity = capacity
		for k := range capacity {
			l.fail(k)
		}
		for k := capacity; k < capacity+3; k++ {
			l.fail(k)
			if n := len(l.buckets); n != capacity {
				t.Fatalf("%d buckets for a capacity of %d", n, capacity)
			}
		}
		for k := range capacity + 3 {
			if want := k >= 3; l.held(k) != want {
				t.Errorf("key %d: held %v, want %v (the three oldest evicted)", k, !want, want)
			}
		}
		l.fail(5)
		if !l.limited(5) {
			t.Error("a key kept through the evictions lost its failures")
		}
	})

	t.Run("RefilledFirst", func(t *testing.T) {
		l, _ := newTestLimiter[int](2, 1)
		l.capacity = 4
		for k := range 3 {
			l.fail(k)
			l.fail(k)
		}
		l.allow(3) // a success: the bucket stays full
		l.fail(4)
		if l.held(3) {
			t.Error("a full bucket was kept while one with failures was evicted")
		}
		for k := range 3 {
			if !l.limited(k) {
				t.Errorf("key %d lost its failures to make room", k)
			}
		}
	})

	t.Run("AttackerKeepsItsState", func(t *testing.T) {
		// At the real capacity: a flood of twice as many new keys, each
		// with a failure, while the attacker keeps trying.
		l, _ := newTestLimiter[int](2, 1)
		const attacker = -1
		l.fail(attacker)
		l.fail(attacker)
		for k := range 2 * maxBuckets {
			l.fail(k)
			if k%1000 == 0 && !l.limited(attacker) {
				t.Fatalf("the attacker's bucket was forgotten after %d new keys", k)
			}
		}
		if n := len(l.buckets); n != maxBuckets {
			t.Errorf("%d buckets for a capacity of %d", n, maxBuckets)
		}
	})

	t.Run("InFlightNeverEvicted", func(t *testing.T) {
		l, _ := newTestLimiter[int](2, 1)
		l.capacity = 2
		r0, _, _ := l.Take(context.Background(), 0)
		r1, _, _ := l.Take(context.Background(), 1)
		l.fail(2)
		if !l.held(0) || !l.held(1) {
			t.Fatal("a bucket with an attempt in flight was evicted")
		}
		r0.Done(errWrong)
		r1.Done(errWrong)
		l.fail(0)
		if !l.limited(0) {
			t.Error("the failure of the attempt in flight was lost")
		}
	})
}

// TestAddressLimiterNetworks: IPv6 addresses share their /64's budget;
// IPv4 addresses, and IPv4-mapped IPv6 addresses as IPv4, have their own.
func TestAddressLimiterNetworks(t *testing.T) {
	for _, tc := range []struct {
		a, b  string
		share bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"fe80::1%eth0", "fe80::2%eth1", true},
		{"192.0.2.1", "::ffff:192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.2", false},
	} {
		t.Run(tc.a+"~"+tc.b, func(t *testing.T) {
			fl, _ := newTestLimiter[netip.Addr](1, 1)
			l := &AddressLimiter{l: fl}
			r, _, _ := l.Take(context.Background(), netip.MustParseAddr(tc.a))
			r.Done(errWrong)
			_, _, ok := l.Take(context.Background(), netip.MustParseAddr(tc.b))
			if ok == tc.share {
				t.Errorf("a failure of %s: %s let through %v, want %v", tc.a, tc.b, ok, !tc.share)
			}
		})
	}
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
