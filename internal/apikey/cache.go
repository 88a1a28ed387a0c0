package apikey

import (
	"sync"
	"sync/atomic"
	"time"
)

// Verification cache defaults.
const (
	DefaultCacheSize        = 100_000
	DefaultCacheTTL         = 30 * time.Second
	DefaultNegativeCacheTTL = 2 * time.Second
	maxCacheShards          = 64
	// evictionSample is how many entries a full shard looks at to choose
	// the one to drop: the one that lapses first among them.
	evictionSample = 8
)

// cache remembers verified keys (digest → principal) for a bounded time, and
// unknown digests for a shorter one, so that verification costs a map lookup
// instead of a query. It never serves a revoked key:
//
//   - Revocation evicts synchronously (evict), on the server that revokes
//     before it answers, and on the others when the notification arrives.
//   - A lookup that read the database before an eviction must not put the
//     key back afterwards (the fill race). Every eviction bumps its shard's
//     generation; get returns the generation it saw, and put stores nothing
//     if the generation has moved since. A lookup reads the generation
//     before it queries the database, so its answer is older than any
//     eviction it could overwrite.
//   - While suspended (revocations from elsewhere may be missed: the
//     listener is disconnected) it serves and stores nothing.
//
// A positive entry lapses at its time to live or at the key's expiry,
// whichever comes first, so an expired key stops verifying on time.
//
// A nil *cache is a cache that is off (VERIFY_CACHE_SIZE=0): every method
// is safe to call on it; it stores nothing and every get is a miss.
type cache struct {
	ttl, negTTL time.Duration
	live        atomic.Bool
	mask        uint8
	shards      []cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	gen     uint64 // bumped by every eviction and purge; guarded by mu
	max     int    // entries in keys
	negMax  int    // entries in unknown
	keys    map[Digest]cachedKey
	unknown map[Digest]refusal
	_       [64]byte // keeps neighbouring shards' locks off one cache line
}

// refusal is a digest recently found not to verify, and why (for metrics).
type refusal struct {
	why   Outcome   // OutcomeUnknown, OutcomeRevoked or OutcomeExpired
	until time.Time // when the entry lapses
}

type cachedKey struct {
	p     Principal
	until time.Time // when the entry lapses: cached-at + TTL, or the key's expiry if sooner
}

// lookup is what the cache knows of a digest.
type lookup int

const (
	cacheMiss    lookup = iota // ask the database
	cacheHit                   // a verified key
	cacheUnknown               // recently found not to verify
)

// newCache returns a live cache of at most size verified keys and negSize
// unknown digests. The caps are split between shards (a power of two, at
// most 64) and rounded down, so they are never exceeded.
func newCache(size int, ttl time.Duration, negSize int, negTTL time.Duration) *cache {
	n := 1
	for n < maxCacheShards && n*2 <= size {
		n *= 2
	}
	c := &cache{ttl: ttl, negTTL: negTTL, mask: uint8(n - 1), shards: make([]cacheShard, n)}
	for i := range c.shards {
		s := &c.shards[i]
		s.max = max(1, size/n)
		s.negMax = negSize / n
		s.keys = make(map[Digest]cachedKey)
		s.unknown = make(map[Digest]refusal)
	}
	c.live.Store(true)
	return c
}

func (c *cache) shard(d Digest) *cacheShard { return &c.shards[d[0]&c.mask] }

// get looks d up at now. On a miss it returns the shard's generation, to
// hand to put or putUnknown once the database has answered; on a cached
// refusal, why the key was refused.
func (c *cache) get(d Digest, now time.Time) (Principal, lookup, uint64, Outcome) {
	if c == nil {
		return Principal{}, cacheMiss, 0, ""
	}
	s := c.shard(d)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !c.live.Load() {
		return Principal{}, cacheMiss, s.gen, ""
	}
	if e, ok := s.keys[d]; ok && now.Before(e.until) {
		return e.p, cacheHit, 0, OutcomeOK
	}
	if r, ok := s.unknown[d]; ok && now.Before(r.until) {
		return Principal{}, cacheUnknown, 0, r.why
	}
	return Principal{}, cacheMiss, s.gen, ""
}

// put caches a verified key until the earlier of now+TTL and expires, unless
// the shard's generation moved past gen (an eviction happened since the
// lookup began) or the cache is suspended.
func (c *cache) put(d Digest, gen uint64, p Principal, now time.Time, expires *time.Time) {
	if c == nil {
		return
	}
	until := now.Add(c.ttl)
	if expires != nil && expires.Before(until) {
		until = *expires
	}
	s := c.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.live.Load() || s.gen != gen {
		return
	}
	if _, ok := s.keys[d]; !ok && len(s.keys) >= s.max {
		evictOne(s.keys, func(e cachedKey) time.Time { return e.until })
	}
	s.keys[d] = cachedKey{p: p, until: until}
}

// putUnknown remembers for the negative TTL that d does not verify, and why,
// with put's conditions.
func (c *cache) putUnknown(d Digest, gen uint64, now time.Time, why Outcome) {
	if c == nil {
		return
	}
	s := c.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.live.Load() || s.gen != gen || s.negMax == 0 {
		return
	}
	if _, ok := s.unknown[d]; !ok && len(s.unknown) >= s.negMax {
		evictOne(s.unknown, func(r refusal) time.Time { return r.until })
	}
	s.unknown[d] = refusal{why: why, until: now.Add(c.negTTL)}
}

// evictOne drops, of a few entries of a full shard, the one that lapses
// first. Map iteration starts at a random place, so this approximates
// dropping the oldest entry without keeping an order.
func evictOne[V any](m map[Digest]V, until func(V) time.Time) {
	var victim Digest
	var first time.Time
	n := 0
	for d, v := range m {
		if t := until(v); n == 0 || t.Before(first) {
			victim, first = d, t
		}
		if n++; n == evictionSample {
			break
		}
	}
	delete(m, victim)
}

// evict forgets d. Lookups in flight in its shard will not store their
// answers.
func (c *cache) evict(d Digest) {
	if c == nil {
		return
	}
	s := c.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, d)
	delete(s.unknown, d)
	s.gen++
}

// purge forgets everything. Lookups in flight will not store their answers.
func (c *cache) purge() {
	if c == nil {
		return
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.keys)
		clear(s.unknown)
		s.gen++
		s.mu.Unlock()
	}
}

// suspend empties the cache and keeps it empty until resume.
func (c *cache) suspend() {
	if c == nil {
		return
	}
	c.live.Store(false)
	c.purge()
}

// resume empties the cache and starts caching again. Lookups that began
// while it was suspended store nothing.
func (c *cache) resume() {
	if c == nil {
		return
	}
	c.purge()
	c.live.Store(true)
}

// len returns the number of verified keys and unknown digests held.
func (c *cache) len() (keys, unknown int) {
	if c == nil {
		return 0, 0
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		keys += len(s.keys)
		unknown += len(s.unknown)
		s.mu.RUnlock()
	}
	return keys, unknown
}
