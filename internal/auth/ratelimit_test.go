package auth

import (
	"net/netip"
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
