package auth

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// FailureLimiter rate-limits failed authentications per client address with
// a token bucket: each failure takes a token; tokens refill at a steady rate
// up to the burst. An address with no token left is refused until one
// refills, whatever credential it sends, so guessing keys is slow.
type FailureLimiter struct {
	burst float64
	rate  float64 // tokens per second
	now   func() time.Time

	mu      sync.RWMutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds memory under a flood of addresses: past it, full buckets
// are swept at once, and if that is not enough the oldest state is dropped.
const maxBuckets = 100_000

// NewFailureLimiter allows burst failures per address, refilling at rate per
// second. A burst of 0 disables limiting.
func NewFailureLimiter(burst int, rate float64) *FailureLimiter {
	return &FailureLimiter{burst: float64(burst), rate: rate, now: time.Now, buckets: map[netip.Addr]*bucket{}}
}

// level returns addr's bucket refilled to now. Callers hold mu.
func (l *FailureLimiter) level(addr netip.Addr, now time.Time) *bucket {
	b, ok := l.buckets[addr]
	if !ok {
		return &bucket{tokens: l.burst, at: now}
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	return b
}

// Allow reports whether addr may try to authenticate now, and if not, how
// long until it may.
func (l *FailureLimiter) Allow(addr netip.Addr) (bool, time.Duration) {
	if l == nil || l.burst == 0 {
		return true, 0
	}
	// Most addresses never fail: they have no bucket, and every request
	// checks that, so it is a shared lookup.
	l.mu.RLock()
	_, failed := l.buckets[addr]
	l.mu.RUnlock()
	if !failed {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.level(addr, l.now())
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// Fail records a failed authentication from addr.
func (l *FailureLimiter) Fail(addr netip.Addr) {
	if l == nil || l.burst == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.level(addr, now)
	b.tokens = math.Max(0, b.tokens-1)
	if _, ok := l.buckets[addr]; !ok {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		l.buckets[addr] = b
	}
}

// sweep forgets buckets that have refilled; they hold no information.
// Callers hold mu.
func (l *FailureLimiter) sweep(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for a, b := range l.buckets {
		if now.Sub(b.at) >= full || len(l.buckets) >= maxBuckets && now.Sub(b.at) >= full/2 {
			delete(l.buckets, a)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets) // under an address flood, forget rather than grow
	}
}
