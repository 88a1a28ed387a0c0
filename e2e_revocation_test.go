package main

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/dbtest"
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

// TestRevokedKeyIsRefusedFromThe204 checks the same-server promise: once
// the revoke has answered, no verification accepts the key, even while
// verifications of it run concurrently and refill the cache.
func TestRevokedKeyIsRefusedFromThe204(t *testing.T) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) { testRefusedFromThe204(t, db) })
	}
}

func testRefusedFromThe204(t *testing.T, db string) {
	// Many refusals from one address follow: no rate limit here.
	e := newEnv(t, db, func(c *Config) { c.AuthFailBurst = 0 })
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
