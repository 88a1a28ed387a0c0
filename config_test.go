package main

import (
	"net/http"
	"testing"

	"github.com/apikeyd/apikeyd/internal/config"
)

func TestVerifyCacheOff(t *testing.T) {
	eachDBWith(t, func(c *config.Config) { c.CacheSize = 0 }, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		k := e.create(tok, nil)
		for range 3 {
			if s := e.verifyKey(k.Key); s != http.StatusOK {
				t.Fatalf("verify: %d", s)
			}
		}
		if e.App.Keys.Cached(k.Key) {
			t.Fatal("VERIFY_CACHE_SIZE=0 still caches")
		}
		e.revokeKey(tok, k.ID)
		if s := e.verifyKey(k.Key); s != http.StatusUnauthorized {
			t.Fatalf("verify after revoke: %d", s)
		}
	})
}
