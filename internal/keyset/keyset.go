// Package keyset keeps a set of public keys fetched from a URL (an identity
// provider's JWK set, a code host's leak report keys), under one rule for
// every such set: the set is fetched on first need, again when a caller
// needs a key it lacks or when it is older than a maximum age, at most once
// per minimum interval whatever the callers ask, by one fetch that every
// caller waiting shares. A failed fetch keeps the keys fetched before, which
// keep serving; while a needed key is missing and the set cannot be
// fetched, the answer is ErrUnavailable, an outage, never "unknown key". A
// caller waits for a fetch only as long as its context lasts; the fetch
// itself runs to its own time-out for the others. The URL, which may carry
// credentials, is never quoted in an error or the log.
package keyset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/internal/outbound"
)

// ErrUnavailable is returned by Get when the key a caller needs is not in
// the set and the set cannot be fetched now.
var ErrUnavailable = errors.New("keyset: the key set cannot be fetched")

// Config configures a Cache.
type Config struct {
	Name   string       // what the log calls the set ("JWKS")
	URL    string       // where the set is fetched from
	Accept string       // the Accept header of the fetch
	Client *http.Client // http.DefaultClient when nil
	// FetchTimeout bounds one fetch, body included, whoever waits for it.
	FetchTimeout time.Duration
	MaxBytes     int64         // the largest body accepted
	MinRefetch   time.Duration // the least time between two fetch attempts
	MaxAge       time.Duration // a set older than this is fetched again on use; 0: never
	Now          func() time.Time
	Log          *slog.Logger
}

// Cache holds the key set S parsed from the body at a URL.
type Cache[S any] struct {
	cfg   Config
	parse func(ctx context.Context, body []byte) (S, error)

	mu          sync.Mutex
	set         S
	fetchedAt   time.Time     // last successful fetch; zero if none
	attemptedAt time.Time     // start of the last fetch attempt; zero if none
	lastFailed  bool          // the last fetch attempt failed
	inflight    chan struct{} // closed when the running fetch ends; nil if none
}

// New returns a Cache of the set at cfg.URL, which parse reads. It fetches
// nothing before the first Get.
func New[S any](cfg Config, parse func(ctx context.Context, body []byte) (S, error)) *Cache[S] {
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Cache[S]{cfg: cfg, parse: parse}
}

// Get returns the key set, fetched first (or waited for) when has reports
// that it lacks what the caller needs, or when it is older than MaxAge and
// the rate limit allows. has is called with the zero S before any fetch.
// Returns ErrUnavailable when has still reports false and the set was never
// fetched or its last fetch failed, or when ctx ends while Get waits for a
// fetch of a set that lacks what the caller needs.
func (c *Cache[S]) Get(ctx context.Context, has func(S) bool) (S, error) {
	c.mu.Lock()
	set, found := c.set, has(c.set)
	stale := c.fetchedAt.IsZero() || c.cfg.MaxAge > 0 && c.cfg.Now().Sub(c.fetchedAt) >= c.cfg.MaxAge
	var done <-chan struct{}
	if !found || stale {
		done = c.refreshLocked(ctx)
	}
	unavailable := c.fetchedAt.IsZero() || c.lastFailed
	c.mu.Unlock()

	if done != nil {
		select {
		case <-done:
			c.mu.Lock()
			set, found = c.set, has(c.set)
			unavailable = c.fetchedAt.IsZero() || c.lastFailed
			c.mu.Unlock()
		case <-ctx.Done():
			// A key already fetched still serves; the caller cannot wait
			// for the others.
			unavailable = true
		}
	}
	if !found && unavailable {
		var zero S
		return zero, ErrUnavailable
	}
	return set, nil
}

// refreshLocked starts a fetch unless one is running or the rate limit
// forbids it. It returns a channel closed when the running fetch ends, or
// nil if there is nothing to wait for. c.mu must be held.
func (c *Cache[S]) refreshLocked(ctx context.Context) <-chan struct{} {
	if c.inflight != nil {
		return c.inflight
	}
	now := c.cfg.Now()
	if !c.attemptedAt.IsZero() && now.Sub(c.attemptedAt) < c.cfg.MinRefetch {
		return nil
	}
	c.attemptedAt = now
	done := make(chan struct{})
	c.inflight = done
	// The fetch runs on its own, bounded by FetchTimeout, so that a caller
	// that gives up does not cancel it for the others waiting on it.
	go c.fetchAndStore(context.WithoutCancel(ctx), done)
	return done
}

func (c *Cache[S]) fetchAndStore(ctx context.Context, done chan struct{}) {
	var (
		set S
		err error
	)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while loading the key set: %v", r)
		}
		// Logged before the waiting callers are woken, so that the failure
		// is in the log by the time they answer.
		if err != nil {
			c.cfg.Log.LogAttrs(ctx, slog.LevelWarn, c.cfg.Name+" fetch failed; keeping previous keys",
				slog.String("error", err.Error()))
		}
		c.mu.Lock()
		if err == nil {
			c.set = set
			c.fetchedAt = c.cfg.Now()
		}
		c.lastFailed = err != nil
		c.inflight = nil
		close(done)
		c.mu.Unlock()
	}()
	set, err = c.fetch(ctx)
}

// fetch downloads and parses the key set.
func (c *Cache[S]) fetch(ctx context.Context) (S, error) {
	var zero S
	ctx, cancel := context.WithTimeout(ctx, c.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL, nil)
	if err != nil {
		return zero, fmt.Errorf("build request: %w", outbound.WithoutURL(err))
	}
	req.Header.Set("Accept", c.cfg.Accept)
	res, err := c.cfg.Client.Do(req)
	if err != nil {
		return zero, fmt.Errorf("fetch: %w", outbound.WithoutURL(err)) // the URL may carry credentials
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return zero, fmt.Errorf("unexpected HTTP status %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, c.cfg.MaxBytes+1))
	if err != nil {
		return zero, fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > c.cfg.MaxBytes {
		return zero, fmt.Errorf("response body larger than %d bytes", c.cfg.MaxBytes)
	}
	return c.parse(ctx, body)
}
