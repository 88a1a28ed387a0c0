package apikey

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/internal/gcra"
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
// Each bucket is one time kept exactly in nanoseconds (see package gcra):
// Limit requests sent at once are allowed and the next one is not, at any
// rate.
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
	buckets map[string]*gcra.State
	// fullAt is a time (Unix nanoseconds) before which no bucket of the
	// shard is full: the least TAT when it was set. A TAT only moves
	// forward, so it stays a lower bound as long as each new bucket
	// lowers it; the shard looks for full buckets only once it has passed.
	fullAt int64
	_      [64]byte // keeps neighbouring shards' locks off one cache line
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
		s.buckets = make(map[string]*gcra.State)
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
		b = &gcra.State{}
		s.buckets[bucket] = b
	}
	r := b.Take(gcra.Rate{Limit: l.Limit, Period: int64(l.Period)}, at)
	if added {
		s.fullAt = min(s.fullAt, b.TAT)
	}
	s.mu.Unlock()
	return QuotaOf(l, r, time.Nanosecond)
}

// QuotaOf returns the Quota of a request to a bucket of rate l whose
// result r counts time in units of unit.
func QuotaOf(l RateLimit, r gcra.Result, unit time.Duration) Quota {
	return Quota{
		Allowed:    r.Allowed,
		Limit:      l.Limit,
		Period:     l.Period,
		Remaining:  r.Remaining,
		RetryAfter: time.Duration(r.RetryAfter) * unit,
		Reset:      time.Duration(r.Reset) * unit,
	}
}

// makeRoom drops buckets of a full shard at now: every bucket that is full
// again, or else, when all owe tokens, the one owing the least of a few.
// Callers hold s.mu.
func (s *limiterShard) makeRoom(now int64) {
	if now >= s.fullAt {
		least := int64(math.MaxInt64)
		for name, b := range s.buckets {
			if b.Full(now) {
				delete(s.buckets, name)
			} else {
				least = min(least, b.TAT)
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
		if b.TAT < least {
			victim, least = name, b.TAT
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
