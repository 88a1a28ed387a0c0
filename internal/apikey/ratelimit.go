package apikey

import (
	"context"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"
)

// DefaultMaxBuckets is the number of buckets a MemoryLimiter keeps when
// NewMemoryLimiter is given 0.
const DefaultMaxBuckets = 100_000

const (
	maxLimiterShards = 64
	// minShardBuckets keeps small limiters in few shards, so that their
	// capacity is not split into shards too small to be useful.
	minShardBuckets = 256
)

// MemoryLimiter is a RateLimiter that keeps its buckets in this process's
// memory: exact for one server; with N servers each has its own buckets.
//
// It runs the generic cell rate algorithm (GCRA), which is a token bucket
// kept as one number per bucket: the theoretical arrival time (TAT), when
// the bucket will be full again. A request arriving at now advances it by
// the emission interval T = Period/Limit from max(TAT, now), and is allowed
// when the new TAT is at most Period ahead of now (it then owes at most
// Limit tokens). A bucket whose TAT has passed is full: a new key and an
// idle one have the whole burst.
//
// T is rarely a whole number of nanoseconds (1s/3), so the TAT is kept
// exactly, as nanoseconds and a remainder in Limit-ths of a nanosecond:
// Limit requests sent at once are allowed and the next one is not, whatever
// the rate.
//
// Memory is bounded: the buckets are split between shards (each with its
// own lock, so that keys do not wait on each other), each holding at most
// its share of maxBuckets. A shard that is full first drops every bucket
// that is full again (it carries no state: a new one is the same), and only
// when every bucket owes tokens drops the one owing the least, of a few.
type MemoryLimiter struct {
	seed   maphash.Seed
	mask   uint64
	shards []limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	max     int
	buckets map[string]*gcra
	// fullAt is a time (Unix nanoseconds) before which no bucket of the
	// shard is full: the least TAT when it was set. A TAT only moves
	// forward, so it stays a lower bound as long as each new bucket
	// lowers it; the shard looks for full buckets only once it has passed.
	fullAt int64
	_      [64]byte // keeps neighbouring shards' locks off one cache line
}

// gcra is one bucket's state.
type gcra struct {
	tat   int64 // Unix nanoseconds, plus frac/limit of a nanosecond
	frac  int64 // 0…limit-1
	limit int64 // the Limit frac is counted in
}

// NewMemoryLimiter returns a limiter that keeps at most maxBuckets buckets
// (DefaultMaxBuckets when 0 or less).
func NewMemoryLimiter(maxBuckets int) *MemoryLimiter {
	if maxBuckets <= 0 {
		maxBuckets = DefaultMaxBuckets
	}
	n := 1
	for n < maxLimiterShards && n*2*minShardBuckets <= maxBuckets {
		n *= 2
	}
	l := &MemoryLimiter{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]limiterShard, n)}
	for i := range l.shards {
		s := &l.shards[i]
		s.max = maxBuckets / n
		s.buckets = make(map[string]*gcra)
		s.fullAt = math.MaxInt64
	}
	return l
}

// Take takes one token at now from the bucket named bucket, of rate l. A
// rate without tokens (Limit or Period not positive) refuses everything.
func (m *MemoryLimiter) Take(_ context.Context, bucket string, l RateLimit, now time.Time) Quota {
	if l.Limit < 1 || l.Period <= 0 {
		return Quota{Limit: l.Limit, Period: l.Period}
	}
	at := now.UnixNano()
	s := &m.shards[maphash.String(m.seed, bucket)&m.mask]
	s.mu.Lock()
	b := s.buckets[bucket]
	added := b == nil
	if added {
		if len(s.buckets) >= s.max {
			s.makeRoom(at)
		}
		b = &gcra{}
		s.buckets[bucket] = b
	}
	q := b.take(l, at)
	if added {
		s.fullAt = min(s.fullAt, b.tat)
	}
	s.mu.Unlock()
	return q
}

// take applies one request at now (Unix nanoseconds) to b.
func (b *gcra) take(l RateLimit, now int64) Quota {
	period, limit := int64(l.Period), l.Limit
	q := Quota{Limit: limit, Period: l.Period}
	tat, frac := b.tat, b.frac
	if b.limit != limit && frac > 0 {
		// The remainder was counted in another rate's units: round up.
		tat, frac = tat+1, 0
	}
	if tat < now {
		tat, frac = now, 0
	}
	// next = tat + T, with T = Period/Limit = step + rem/Limit.
	step, rem := period/limit, period%limit
	next, nextFrac := tat+step, frac+rem
	if nextFrac >= limit {
		next, nextFrac = next+1, nextFrac-limit
	}
	ahead := next - now // plus nextFrac/limit
	if ahead > period || ahead == period && nextFrac > 0 {
		// Refused: a token is back when next-Period is reached.
		q.RetryAfter = ceilNanos(ahead-period, nextFrac)
		q.Reset = ceilNanos(tat-now, frac)
		return q
	}
	b.tat, b.frac, b.limit = next, nextFrac, limit
	q.Allowed = true
	q.Reset = ceilNanos(ahead, nextFrac)
	// Tokens left: (Period - ahead)/T = ((Period-ahead)*Limit - nextFrac)/Period,
	// in 128 bits since Period*Limit may exceed 64.
	hi, lo := bits.Mul64(uint64(period-ahead), uint64(limit))
	lo, borrow := bits.Sub64(lo, uint64(nextFrac), 0)
	left, _ := bits.Div64(hi-borrow, lo, uint64(period))
	q.Remaining = int64(left)
	return q
}

// ceilNanos returns ns plus frac fractions of a nanosecond, rounded up.
func ceilNanos(ns, frac int64) time.Duration {
	if frac > 0 {
		ns++
	}
	return time.Duration(ns)
}

// full reports whether b is full at now: it carries no state.
func (b *gcra) full(now int64) bool {
	return b.tat < now || b.tat == now && b.frac == 0
}

// makeRoom drops buckets of a full shard at now: every bucket that is full
// again, or else, when all owe tokens, the one owing the least of a few.
// Callers hold s.mu.
func (s *limiterShard) makeRoom(now int64) {
	if now >= s.fullAt {
		least := int64(math.MaxInt64)
		for name, b := range s.buckets {
			if b.full(now) {
				delete(s.buckets, name)
			} else {
				least = min(least, b.tat)
			}
		}
		s.fullAt = least
		if len(s.buckets) < s.max {
			return
		}
	}
	// Map iteration starts at a random place: a sample of a few.
	var victim string
	least, n := int64(math.MaxInt64), 0
	for name, b := range s.buckets {
		if b.tat < least {
			victim, least = name, b.tat
		}
		if n++; n == evictionSample {
			break
		}
	}
	delete(s.buckets, victim)
}

// len returns the number of buckets held.
func (m *MemoryLimiter) len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
