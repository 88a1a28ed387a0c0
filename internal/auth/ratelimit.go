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
//
// Locking: mu guards the map only, and is taken for writing only to add or
// sweep buckets. Each bucket has its own mutex, so requests from addresses
// that have failed before (which all check their bucket) are not serialised
// on one lock: the map lookup shares mu, the update locks one bucket. The
// order is mu, then a bucket's mutex.
type FailureLimiter[K comparable] struct {
	burst float64
	rate  float64 // tokens per second
	now   func() time.Time

	mu      sync.RWMutex
	buckets map[K]*bucket
}

type bucket struct {
	mu     sync.Mutex
	tokens float64
	at     time.Time
	// gone is set when the sweep drops the bucket from the map: a caller
	// that found it just before must not record a failure in it, which
	// would be lost.
	gone bool
}

// maxBuckets bounds memory under a flood of keys: past it, full buckets
// are swept at once, and if that is not enough the oldest state is dropped.
const maxBuckets = 100_000

// NewFailureLimiter allows burst failures per key, refilling at rate per
// second. A burst of 0 disables limiting.
func NewFailureLimiter[K comparable](burst int, rate float64) *FailureLimiter[K] {
	return &FailureLimiter[K]{burst: float64(burst), rate: rate, now: time.Now, buckets: map[K]*bucket{}}
}

// lookup returns key's bucket, or nil if key has none.
func (l *FailureLimiter[K]) lookup(key K) *bucket {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.buckets[key]
}

// refill brings b up to date. The clock is read with b.mu held, so that
// each bucket's time only moves forward. Callers hold b.mu.
func (l *FailureLimiter[K]) refill(b *bucket) {
	now := l.now()
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
}

// Allow reports whether key may try to authenticate now, and if not, how
// long until it may.
func (l *FailureLimiter[K]) Allow(key K) (bool, time.Duration) {
	if l == nil || l.burst == 0 {
		return true, 0
	}
	// Most addresses never fail: they have no bucket.
	b := l.lookup(key)
	if b == nil {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gone {
		return true, 0 // swept: it had refilled, or the flood guard forgot it
	}
	l.refill(b)
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
	if b := l.lookup(key); b != nil && l.take(b) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[key]; b != nil && l.take(b) {
		return // added by another failure since the lookup
	}
	if len(l.buckets) >= maxBuckets {
		l.sweep(l.now())
	}
	// A new key starts with a full bucket, less this failure.
	l.buckets[key] = &bucket{tokens: math.Max(0, l.burst-1), at: l.now()}
}

// take records a failure in b, unless the sweep has dropped it.
func (l *FailureLimiter[K]) take(b *bucket) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gone {
		return false
	}
	l.refill(b)
	b.tokens = math.Max(0, b.tokens-1)
	return true
}

// sweep forgets buckets that have refilled; they hold no information.
// Callers hold mu for writing.
func (l *FailureLimiter[K]) sweep(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	drop := func(k K, b *bucket) {
		b.gone = true
		delete(l.buckets, k)
	}
	for k, b := range l.buckets {
		b.mu.Lock()
		if age := now.Sub(b.at); age >= full || len(l.buckets) >= maxBuckets && age >= full/2 {
			drop(k, b)
		}
		b.mu.Unlock()
	}
	if len(l.buckets) >= maxBuckets {
		// Under a flood of keys, forget rather than grow.
		for k, b := range l.buckets {
			b.mu.Lock()
			drop(k, b)
			b.mu.Unlock()
		}
	}
}
