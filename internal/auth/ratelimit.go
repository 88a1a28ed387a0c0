package auth

import (
	"context"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// FailureLimiter rate-limits failed authentications per key (a client
// address, an account) with a token bucket: each failure takes a token;
// tokens refill at a steady rate up to the burst. A key with no token left is
// refused until one refills, whatever credential it sends, so guessing is
// slow.
//
// The token is taken before the attempt is evaluated (Take) and given back
// when it did not fail (Reservation.Done), so attempts sent in parallel
// cannot outrun the budget: however many arrive at once, no more are
// evaluated than there are tokens. A success costs nothing, but while it is
// being evaluated it holds a token; a caller that finds every remaining
// token held by attempts in flight waits for one of them to end rather than
// being refused, so a burst of legitimate requests from one address is
// delayed (at most burst of them are evaluated at once), never answered 429.
// Only failures that have happened refuse.
//
// Memory is bounded: past capacity buckets, adding one evicts another, as a
// clock (second chance) approximates least recently used: the hand goes
// round the buckets in the order they were added, drops the first that has
// refilled (it holds no information) or has not been used since the hand
// last passed, and spares the others once. A bucket with attempts in flight
// is never dropped. So a flood of new keys forgets the keys nobody uses,
// and a key still trying (an attacker, refused) keeps its state.
//
// Locking: mu guards the map and the ring, and is taken for writing only to
// add a bucket (and evict one). Each bucket has its own mutex, and marks its
// use atomically, so requests of keys already seen are not serialised on one
// lock: the map lookup shares mu, the update locks one bucket. The order is
// mu, then a bucket's mutex.
type FailureLimiter[K comparable] struct {
	burst    float64
	rate     float64 // tokens per second
	now      func() time.Time
	capacity int

	mu      sync.RWMutex
	buckets map[K]*bucket
	ring    []K // the keys of buckets, in the order the hand visits them
	hand    int // the next index of ring the hand looks at
}

type bucket struct {
	mu     sync.Mutex
	tokens float64 // free tokens, as of at
	at     time.Time
	// inFlight counts the tokens taken by attempts still being evaluated.
	// A bucket with attempts in flight is never evicted: their outcome
	// must land in it.
	inFlight int
	// ended is closed when an attempt in flight ends, waking the callers
	// waiting for its token; nil while nobody waits.
	ended chan struct{}
	// used is set by every Take of the bucket but the first, and cleared
	// by the clock hand passing it.
	used atomic.Bool
	// gone is set when the bucket is evicted: a caller that found it just
	// before must look again.
	gone bool
}

// maxBuckets bounds memory under a flood of keys.
const maxBuckets = 100_000

// NewFailureLimiter allows burst failures per key, refilling at rate per
// second. A burst of 0 disables limiting.
func NewFailureLimiter[K comparable](burst int, rate float64) *FailureLimiter[K] {
	return &FailureLimiter[K]{burst: float64(burst), rate: rate, now: time.Now, capacity: maxBuckets, buckets: map[K]*bucket{}}
}

// A Reservation is the token Take set aside for one authentication attempt.
// Its holder ends it with Done exactly once, when the outcome is known.
// The zero Reservation (a disabled limiter) ends without effect.
type Reservation struct {
	b     *bucket
	burst float64
}

// Take reserves a token of key's budget for an authentication attempt about
// to be evaluated. It reports false, with how long until a token is back,
// when failures have used the budget up, or when ctx ends while Take waits
// for an attempt in flight to give its token back. The caller must end a
// reservation it got with Done.
func (l *FailureLimiter[K]) Take(ctx context.Context, key K) (Reservation, time.Duration, bool) {
	if l == nil || l.burst == 0 {
		return Reservation{}, 0, true
	}
	for {
		b := l.bucketOf(key)
		b.mu.Lock()
		if b.gone { // swept since the lookup
			b.mu.Unlock()
			continue
		}
		l.refill(b)
		if b.tokens >= 1 {
			b.tokens--
			b.inFlight++
			b.mu.Unlock()
			return Reservation{b: b, burst: l.burst}, 0, true
		}
		wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
		if b.inFlight == 0 {
			b.mu.Unlock()
			return Reservation{}, wait, false
		}
		// Every token left is held by an attempt in flight; a success
		// gives its token back.
		if b.ended == nil {
			b.ended = make(chan struct{})
		}
		ended := b.ended
		b.mu.Unlock()
		select {
		case <-ended:
		case <-ctx.Done():
			return Reservation{}, wait, false
		}
	}
}

// Done ends the attempt r reserved, with its outcome: an error that refuses
// the credential the client brought (Failed) keeps the token; success, or
// any other error (an outage, a malformed request, a valid key that lacks a
// scope), gives it back.
func (r Reservation) Done(err error) {
	b := r.b
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inFlight--
	if !Failed(err) {
		// Adding before or after the refill that the next Take makes
		// comes to the same, so the clock need not be read here.
		b.tokens = math.Min(r.burst, b.tokens+1)
	}
	if b.ended != nil {
		close(b.ended)
		b.ended = nil
	}
}

// Limiter is a budget of failed authentications per key: a FailureLimiter,
// or an AddressLimiter for client addresses.
type Limiter[K comparable] interface {
	Take(ctx context.Context, key K) (Reservation, time.Duration, bool)
}

// Attempt runs check, which checks the credential of r, as one
// authentication attempt charged to key's budget in l (nil: no limit): the
// failure it may be is reserved before check runs (Take), so that requests
// sent in parallel cannot check more credentials than the budget allows,
// and kept only when check fails (Failed). When the budget is spent it sets
// Retry-After on w and returns refused, a RATE_LIMITED error, without
// running check. It is the one way a route that checks its own credential
// (a login, a code host's leak report) draws on a budget.
func Attempt[K comparable](w http.ResponseWriter, r *http.Request, l Limiter[K], key K, refused error, check func() error) (err error) {
	reserved, wait, ok := l.Take(r.Context(), key)
	if !ok {
		httpx.RetryAfter(w, wait)
		return refused
	}
	defer func() { reserved.Done(err) }()
	return check()
}

// Failed reports whether err refuses a credential the client brought, the
// failures a FailureLimiter charges: a missing or malformed one, a key or
// token that does not verify, a wrong password, a bad signature.
func Failed(err error) bool {
	switch apperr.CodeOf(err) {
	case apperr.MissingAuth, apperr.InvalidToken, apperr.InvalidCredentials, apperr.InvalidSignature:
		return true
	}
	return false
}

// bucketOf returns key's bucket, adding a full one if key has none. A
// bucket found is marked used; a new one is not, so that a flood of keys
// each seen once is evicted before the keys that keep coming back.
func (l *FailureLimiter[K]) bucketOf(key K) *bucket {
	l.mu.RLock()
	b := l.buckets[key]
	l.mu.RUnlock()
	if b == nil {
		return l.add(key)
	}
	b.used.Store(true)
	return b
}

// add returns key's bucket, adding a full one if key has none (another
// caller may have added it since the lookup).
func (l *FailureLimiter[K]) add(key K) *bucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[key]; b != nil {
		return b
	}
	if len(l.ring) < l.capacity || !l.evict(key) {
		// Room left, or every bucket has attempts in flight: grow.
		l.ring = append(l.ring, key)
	}
	b := &bucket{tokens: l.burst, at: l.now()}
	l.buckets[key] = b
	return b
}

// evict drops one bucket to make room for key, which takes its place in
// the ring. The hand passes each bucket at most twice (once to clear its
// mark, once to drop it), so the search is short on average; it gives up,
// reporting false, when every bucket has attempts in flight. Callers hold
// mu for writing.
func (l *FailureLimiter[K]) evict(key K) bool {
	for range 2*len(l.ring) + 1 {
		k := l.ring[l.hand]
		b := l.buckets[k]
		b.mu.Lock()
		l.refill(b)
		drop := b.inFlight == 0 && (b.tokens >= l.burst || !b.used.Swap(false))
		b.gone = drop
		b.mu.Unlock()
		if drop {
			delete(l.buckets, k)
			l.ring[l.hand] = key
		}
		l.hand = (l.hand + 1) % len(l.ring)
		if drop {
			return true
		}
	}
	return false
}

// refill brings b up to date. The clock is read with b.mu held, so that
// each bucket's time only moves forward. Callers hold b.mu.
func (l *FailureLimiter[K]) refill(b *bucket) {
	now := l.now()
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
}

// AddressLimiter is the FailureLimiter of client addresses. An IPv4 address
// (an IPv4-mapped IPv6 address is one) has a budget of its own; an IPv6
// address shares the budget of its /64, the smallest network a site is
// given (RFC 6177): one client has billions of addresses there, and a budget
// per address would let it try as many times more.
type AddressLimiter struct {
	l *FailureLimiter[netip.Addr]
}

// NewAddressLimiter allows burst failures per client network, refilling at
// rate per second. A burst of 0 disables limiting.
func NewAddressLimiter(burst int, rate float64) *AddressLimiter {
	return &AddressLimiter{l: NewFailureLimiter[netip.Addr](burst, rate)}
}

// Take is FailureLimiter.Take for the network of addr.
func (a *AddressLimiter) Take(ctx context.Context, addr netip.Addr) (Reservation, time.Duration, bool) {
	if a == nil {
		return Reservation{}, 0, true
	}
	return a.l.Take(ctx, Network(addr))
}

// Network is the network whose budget addr draws on: addr itself for IPv4
// (IPv4-mapped IPv6 included), the first address of its /64 for IPv6.
func Network(addr netip.Addr) netip.Addr {
	addr = addr.Unmap().WithZone("")
	if !addr.Is6() {
		return addr
	}
	p, _ := addr.Prefix(64)
	return p.Addr()
}
