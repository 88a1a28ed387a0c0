// Package redislimit is an apikey.RateLimiter whose buckets live in Redis
// (or Valkey), shared by every apikeyd server: a burst sent to any number of
// servers gets a key's limit, plus what refills meanwhile, never more (see
// docs/usage-policy.md).
//
// Each bucket is one Redis hash, "apikeyd:rl:" followed by the bucket's name,
// updated by a Lua script that runs the generic cell rate algorithm of
// package gcra in microseconds: Redis runs a script atomically, so requests
// arriving at once through different servers are counted one after the
// other, and the script reads the time from Redis (TIME), so the servers'
// clocks, however far apart, play no part. The script answers the numbers
// gcra.Outcome turns into a quota, so the memory limiter and this one mean
// the same by every field. A bucket's key expires when the bucket is full
// again (it then carries no state), so idle keys take no room.
//
// Why a script of our own rather than github.com/go-redis/redis_rate, which
// runs GCRA the same way: its script counts in floating-point seconds, so at
// a rate such as 3 a second a burst may get one request more or less than
// the limit, and its remaining counts can be off by one from the memory
// limiter's; its keys have a fixed prefix; and it would be one more module
// for thirty lines of Lua. The script is sent with EVALSHA (go-redis's
// Script), the whole script only when Redis does not know it yet. It needs
// Redis 5 or later (scripts replicated by their effects, so that TIME may
// precede a write), or Valkey.
//
// While Redis cannot be reached, rate limits fall back to buckets in this
// server's memory (each server then has its own), and come back to Redis by
// themselves: see Limiter.
package redislimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/gcra"
)

// KeyPrefix begins the name of every bucket's Redis key.
const KeyPrefix = "apikeyd:rl:"

// probeKey is the bucket Run takes from (one a second, expiring after a
// second), outside the buckets' names.
const probeKey = "apikeyd:rl-probe"

// Defaults of Config.
const (
	DefaultTimeout       = 100 * time.Millisecond
	DefaultProbeInterval = time.Second
)

//go:embed take.lua
var takeSource string

var takeScript = redis.NewScript(takeSource)

// Observer is told when the limiter falls back to this server's buckets
// (on) and when it is back on Redis (off).
type Observer interface {
	RateLimitFallback(on bool)
}

// Config is what New needs.
type Config struct {
	// URL is Redis's: redis:// or rediss:// (TLS), with a password and a
	// database number if need be, and go-redis's options in the query.
	URL *url.URL
	// Timeout bounds each call to Redis, so that an outage never holds a
	// verification for longer; DefaultTimeout when zero.
	Timeout time.Duration
	// ProbeInterval is how often Run pings Redis; DefaultProbeInterval
	// when zero.
	ProbeInterval time.Duration
	// Fallback keeps the buckets while Redis cannot be reached;
	// apikey.NewMemoryLimiter(0) when nil.
	Fallback *apikey.MemoryLimiter
	Observer Observer     // nil: none
	Log      *slog.Logger // nil: slog.Default()
}

// Limiter takes tokens from buckets in Redis. When a call to Redis fails
// (an error, or no answer within the timeout) it falls back: that request
// and every one after it are answered from buckets in this server's memory,
// without calling Redis, until Run's probe finds Redis answering again.
// The buckets there start full: during an outage each server lets a key
// have its limit.
// Each change is logged once and told to the Observer. Take never fails.
type Limiter struct {
	client   *redis.Client
	addr     string // host:port, for the log: never the URL, which may carry a password
	timeout  time.Duration
	interval time.Duration
	fallback *apikey.MemoryLimiter
	observer Observer
	log      *slog.Logger

	down atomic.Bool // answering from fallback
	mu   sync.Mutex  // orders the changes of down with their log lines
}

var _ apikey.RateLimiter = (*Limiter)(nil)

// New returns a Limiter on the Redis of cfg.URL. It does not connect: a
// Redis that cannot be reached yet is an outage like any other.
// Returns an error, which never quotes the URL, for options go-redis
// refuses.
func New(cfg Config) (*Limiter, error) {
	if cfg.URL == nil {
		return nil, errors.New("no Redis URL")
	}
	opts, err := redis.ParseURL(cfg.URL.String())
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return nil, errors.New("not a Redis URL") // url.Error quotes the URL
		}
		return nil, err
	}
	// Let each call's deadline (Timeout) bound its network I/O too.
	opts.ContextTimeoutEnabled = true
	l := &Limiter{
		client:   redis.NewClient(opts),
		addr:     opts.Addr,
		timeout:  cfg.Timeout,
		interval: cfg.ProbeInterval,
		fallback: cfg.Fallback,
		observer: cfg.Observer,
		log:      cfg.Log,
	}
	if l.timeout <= 0 {
		l.timeout = DefaultTimeout
	}
	if l.interval <= 0 {
		l.interval = DefaultProbeInterval
	}
	if l.fallback == nil {
		l.fallback = apikey.NewMemoryLimiter(0)
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.observer != nil {
		l.observer.RateLimitFallback(false)
	}
	return l, nil
}

// Take takes one token from the bucket named bucket, of rate rl, at
// Redis's time; while Redis cannot be reached, from this server's bucket at
// now.
func (l *Limiter) Take(ctx context.Context, bucket string, rl apikey.RateLimit, now time.Time) apikey.Quota {
	r := gcra.Rate{Limit: rl.Limit, Period: rl.Period.Microseconds()}
	if l.down.Load() || r.Limit < 1 || r.Period < 1 {
		return l.fallback.Take(ctx, bucket, rl, now)
	}
	step, rem := r.Interval()
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	res, err := takeScript.Run(cctx, l.client, []string{KeyPrefix + bucket}, r.Limit, r.Period, step, rem).Int64Slice()
	cancel()
	if err == nil && len(res) != 3 {
		err = fmt.Errorf("the rate limit script answered %d numbers, not 3", len(res))
	}
	if err != nil {
		if ctx.Err() == nil { // not the caller giving up: Redis failed
			l.setDown(true, err)
		}
		return l.fallback.Take(ctx, bucket, rl, now)
	}
	return apikey.QuotaOf(rl, gcra.Outcome(r, res[0] == 1, res[1], res[2]), time.Microsecond)
}

// Run probes Redis at once and then every ProbeInterval until ctx ends: an
// answer ends a fallback, a failure starts one (so that /metrics tells of
// an outage even while no rate-limited key is used). The probe runs the
// script itself, on a key of its own, rather than a PING: a Redis that
// answers but cannot run it (a full memory, a user not allowed scripts)
// is no Redis to go back to. The first probe, which opens the first
// connection, may take the whole interval.
func (l *Limiter) Run(ctx context.Context) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for timeout := l.interval; ; timeout = l.timeout {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := takeScript.Run(pctx, l.client, []string{probeKey}, 1, 1_000_000, 1_000_000, 0).Err()
		cancel()
		if ctx.Err() != nil {
			return
		}
		l.setDown(err != nil, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Fallback reports whether the limiter answers from this server's buckets.
func (l *Limiter) Fallback() bool { return l.down.Load() }

// Close closes the connections to Redis.
func (l *Limiter) Close() error { return l.client.Close() }

// setDown records whether Redis is unreachable (err: why), logging and
// telling the observer of a change once.
func (l *Limiter) setDown(down bool, err error) {
	if l.down.Load() == down {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down.Load() == down {
		return
	}
	l.down.Store(down)
	if l.observer != nil {
		l.observer.RateLimitFallback(down)
	}
	if down {
		l.log.Warn("rate limits: Redis cannot be reached; each server keeps its own buckets until it answers again",
			"redis", l.addr, "err", err)
	} else {
		l.log.Info("rate limits: Redis answers again; the buckets are shared again", "redis", l.addr)
	}
}
