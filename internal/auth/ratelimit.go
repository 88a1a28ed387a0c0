package auth

import (
	"math"
	"sync"
	"time"
)

// FailureLimiter rate-limits failed authentications per key (a client
// address, an account) with a token bucket: each failure takes a token;
// tokens refill at a steady rate up to the burst. A key with no token left is
// refused until one refills, whatever credential it sends, so guessing is
// slow.
type FailureLimiter[K comparable] struct {
	burst float64
	rate  float64 // tokens per second
	now   func() time.Time

	mu      sync.RWMutex
	buckets map[K]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds memory under a flood of keys: past it, full buckets
// are swept at once, and if that is not enough the oldest state is dropped.
const maxBuckets = 100_000

// NewFailureLimiter allows burst failures per key, refilling at rate per
// second. A burst of 0 disables limiting.
func NewFailureLimiter[K comparable](burst int, rate float64) *FailureLimiter[K] {
	return &FailureLimiter[K]{burst: float64(burst), rate: rate, now: time.Now, buckets: map[K]*bucket{}}
}

// level returns key's bucket refilled to now. Callers hold mu.
func (l *FailureLimiter[K]) level(key K, now time.Time) *bucket {
	b, ok := l.buckets[key]
	if !ok {
		return &bucket{tokens: l.burst, at: now}
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	return b
}

// Allow reports whether key may try to authenticate now, and if not, how
// long until it may.
func (l *FailureLimiter[K]) Allow(key K) (bool, time.Duration) {
	if l == nil || l.burst == 0 {
		return true, 0
	}
	// Most addresses never fail: they have no bucket, and every request
	// checks that, so it is a shared lookup.
	l.mu.RLock()
	_, failed := l.buckets[key]
	l.mu.RUnlock()
	if !failed {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.level(key, l.now())
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// Fail records a failed authentication of key.
func (l *FailureLimiter[K]) Fail(key K) {
	if l == nil || l.burst == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.level(key, now)
	b.tokens = math.Max(0, b.tokens-1)
	if _, ok := l.buckets[key]; !ok {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		l.buckets[key] = b
	}
}

// sweep forgets buckets that have refilled; they hold no information.
// Callers hold mu.
func (l *FailureLimiter[K]) sweep(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.at) >= full || len(l.buckets) >= maxBuckets && now.Sub(b.at) >= full/2 {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets) // under a flood of keys, forget rather than grow
	}
}
