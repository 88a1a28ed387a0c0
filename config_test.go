package main

import (
	"net/http"
	"testing"
	"time"
)

func TestVerifyCacheSettings(t *testing.T) {
	cfg, _, err := parseConfig("test", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CacheSize != 100_000 || cfg.CacheTTL != 30*time.Second {
		t.Errorf("defaults: size %d, TTL %s; want 100000, 30s", cfg.CacheSize, cfg.CacheTTL)
	}

	t.Setenv("VERIFY_CACHE_SIZE", "5000")
	t.Setenv("VERIFY_CACHE_TTL", "5s")
	cfg, _, err = parseConfig("test", nil, nil)
	if err != nil || cfg.CacheSize != 5000 || cfg.CacheTTL != 5*time.Second {
		t.Errorf("from the environment: size %d, TTL %s, err %v", cfg.CacheSize, cfg.CacheTTL, err)
	}
	cfg, _, err = parseConfig("test", []string{"-verify-cache-size", "0", "-verify-cache-ttl", "1m"}, nil)
	if err != nil || cfg.CacheSize != 0 || cfg.CacheTTL != time.Minute {
		t.Errorf("flags win: size %d, TTL %s, err %v", cfg.CacheSize, cfg.CacheTTL, err)
	}

	for _, bad := range [][]string{
		{"-verify-cache-size", "-1"},
		{"-verify-cache-size", "many"},
		{"-verify-cache-ttl", "0s"},
		{"-verify-cache-ttl", "-5s"},
		{"-verify-cache-ttl", "soon"},
	} {
		if _, _, err := parseConfig("test", bad, nil); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestVerifyCacheOff(t *testing.T) {
	eachDBWith(t, func(c *Config) { c.CacheSize = 0 }, func(t *testing.T, e *testEnv) {
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
