package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/app"
	"github.com/apikeyd/apikeyd/internal/clocktest"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// verifyKey asks e to verify key and returns the status.
func (e *testEnv) verifyKey(key string) int {
	e.t.Helper()
	return e.do("GET", "/auth/verify", hdr("X-Api-Key", key), nil).Status
}

// revokeKey revokes key id through REST and fails unless it answers 204.
func (e *testEnv) revokeKey(tok, id string) {
	e.t.Helper()
	if res := e.do("DELETE", "/auth/api-keys/"+id, bearer(tok), nil); res.Status != http.StatusNoContent {
		e.t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
}

// waitCached verifies key on e until e answers it from its cache (a new
// server caches nothing until its revocation listener is connected).
func (e *testEnv) waitCached(key string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s := e.verifyKey(key); s != http.StatusOK {
			e.t.Fatalf("verify: %d", s)
		}
		if e.App.Keys.Cached(key) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the key is not cached after 10s of verifying it")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refusedWithin verifies key on e until it is refused, failing if it is
// still accepted after d.
func (e *testEnv) refusedWithin(key string, d time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	for {
		switch s := e.verifyKey(key); s {
		case http.StatusUnauthorized:
			return time.Since(start)
		case http.StatusOK:
		default:
			e.t.Fatalf("verify: %d", s)
		}
		if time.Since(start) > d {
			e.t.Fatalf("a revoked key is still accepted %s after the revocation", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRevokedKeyIsRefusedFromThe204 checks the same-server promise: once
// the revoke has answered, no verification accepts the key, even while
// verifications of it run concurrently and refill the cache.
func TestRevokedKeyIsRefusedFromThe204(t *testing.T) {
	// Many refusals from one address follow: no rate limit here.
	eachDBWith(t, noFailLimit, testRefusedFromThe204)
}

func testRefusedFromThe204(t *testing.T, e *testEnv) {
	tok := e.token("alice")
	k := e.create(tok, nil)
	e.waitCached(k.Key)

	type result struct {
		start  time.Time
		status int
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				s := e.verifyKey(k.Key)
				mu.Lock()
				results = append(results, result{start, s})
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	e.revokeKey(tok, k.ID)
	answered := time.Now()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	accepted, refused := 0, 0
	for _, r := range results {
		switch {
		case r.start.After(answered) && r.status != http.StatusUnauthorized:
			t.Fatalf("a verification that began after the 204 answered %d", r.status)
		case r.status == http.StatusOK:
			accepted++
		case r.status == http.StatusUnauthorized:
			refused++
		}
	}
	if accepted == 0 || refused == 0 {
		t.Fatalf("%d verifications accepted and %d refused: the test did not overlap the revocation", accepted, refused)
	}
	if e.App.Keys.Cached(k.Key) {
		t.Fatal("the revoked key is cached")
	}
}

// replicas starts two servers, a and b, on one new PostgreSQL database, with
// one JWT secret, one clock (a.Clock: advancing it moves both past a
// deadline, as on one machine) and the settings of configure.
func replicas(t *testing.T, configure ...func(*config.Config)) (a, b *testEnv) {
	t.Helper()
	dsn := dbtest.DSN(t, "postgres")
	a = newEnvDSN(t, dsn, configure...)
	b = startEnv(t, envSpec{dsn: dsn, clock: a.Clock}, append(configure, func(c *config.Config) { c.JWTSecret = string(a.Secret) })...)
	return a, b
}

// keep has e's log checks watch for k, created through another server (its
// secret and its hash must never appear in e's log either), and returns k.
func (e *testEnv) keep(k createdKey) createdKey {
	e.remember(k.Key)
	e.remember(hashOf(k.Key))
	return k
}

// TestReplicasSeeRevocations runs two servers on one PostgreSQL database: a
// key revoked through one is refused by the other within a second, also
// after their listening connections have been killed.
func TestReplicasSeeRevocations(t *testing.T) {
	a, b := replicas(t)
	tok := a.token("alice")
	k1, k2 := b.keep(a.create(tok, nil)), b.keep(a.create(tok, nil))
	for _, e := range []*testEnv{a, b} {
		e.waitCached(k1.Key)
		e.waitCached(k2.Key)
	}

	a.revokeKey(tok, k1.ID)
	if s := a.verifyKey(k1.Key); s != http.StatusUnauthorized {
		t.Fatalf("the revoking server answered %d right after its 204", s)
	}
	took := b.refusedWithin(k1.Key, time.Second)
	t.Logf("the other server refused the key %s after the revocation", took)
	if !b.App.Keys.Cached(k2.Key) {
		t.Fatal("the revocation of one key evicted another")
	}

	// Kill both listening connections. Each server must empty its cache,
	// reconnect, and from then on hear revocations again.
	ctx := context.Background()
	listening := func() []int {
		var pids []int
		err := a.App.DB.NewRaw(`SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN%' ORDER BY pid`).Scan(ctx, &pids)
		if err != nil {
			t.Fatal(err)
		}
		return pids
	}
	var before []int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if before = listening(); len(before) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d listening connections, want 2 (one per server)", len(before))
		}
	}
	if _, err := a.App.DB.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN (?)", bun.In(before)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.App.Keys.Cached(k2.Key) || a.App.Keys.Cached(k2.Key) {
		if time.Now().After(deadline) {
			t.Fatal("a server kept its cache after losing its listening connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, e := range []*testEnv{a, b} {
		e.waitCached(k2.Key) // caching again means listening again
	}
	// A closed connection's backend may linger a moment in pg_stat_activity.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		after := listening()
		if len(after) == 2 && !slices.Contains(before, after[0]) && !slices.Contains(before, after[1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listening connections %v after killing %v, want two new ones", after, before)
		}
	}

	a.revokeKey(tok, k2.ID)
	if s := a.verifyKey(k2.Key); s != http.StatusUnauthorized {
		t.Fatalf("the revoking server answered %d right after its 204", s)
	}
	took = b.refusedWithin(k2.Key, time.Second)
	t.Logf("after reconnecting, the other server refused the key %s after the revocation", took)
}

// TestLastUseBeforeShutdownIsWritten stops a real server right after a key's
// first use: the graceful shutdown writes it.
func TestLastUseBeforeShutdownIsWritten(t *testing.T) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			dsn := dbtest.DSN(t, db)
			cfg, err := parseConfig()
			if err != nil {
				t.Fatal(err)
			}
			cfg.DatabaseURL, cfg.Addr = dsn, "127.0.0.1:0"
			cfg.JWTSecret = "a-secret-of-at-least-thirty-two-bytes"
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready := make(chan app.Listening, 1)
			done := make(chan error, 1)
			go func() { done <- app.Serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()
			var at app.Listening
			select {
			case at = <-ready:
			case err := <-done:
				t.Fatalf("serve: %v", err)
			}
			// Serve runs on the wall clock, which a running clock never
			// advanced reads.
			e := &testEnv{t: t, URL: "http://" + at.Addr, Secret: []byte(cfg.JWTSecret), Clock: clocktest.Running(), client: contractClient(t, http.DefaultTransport)}
			tok := e.token("alice")
			k := e.create(tok, nil)
			if s := e.verifyKey(k.Key); s != http.StatusOK {
				t.Fatalf("verify: %d", s)
			}
			cancel() // as SIGTERM does
			if err := <-done; err != nil {
				t.Fatalf("serve: %v", err)
			}

			keys, err := store.New(dbtest.OpenDSN(t, dsn), store.Config{}).ListKeys(context.Background(), apikey.UserOwner("alice"))
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0].LastUsedAt == nil {
				t.Fatalf("the use before shutdown was not written: %+v", keys)
			}
		})
	}
}
