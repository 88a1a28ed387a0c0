package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/redistest"
)

// openLogged opens an App of cfg, its log in buf, which the test reads
// once it has closed the App (the App's goroutines log too).
func openLogged(cfg config.Config, buf *bytes.Buffer) (*App, error) {
	return Open(context.Background(), cfg, Deps{Log: slog.New(slog.NewTextHandler(buf, nil))})
}

// TestRateLimitsPerServerSaySo: without REDIS_URL each server keeps its own
// buckets, which the start log says on PostgreSQL (where servers may be
// several), not on SQLite (one server).
func TestRateLimitsPerServerSaySo(t *testing.T) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.DatabaseURL = dbtest.DSN(t, db)
			var log bytes.Buffer
			a, err := openLogged(cfg, &log)
			if err != nil {
				t.Fatal(err)
			}
			a.Close()
			if a.rateLimits != nil {
				t.Fatal("a Redis limiter without REDIS_URL")
			}
			said := strings.Contains(log.String(), "set REDIS_URL to share them")
			if said != (db == "postgres") {
				t.Errorf("on %s the log says per-server buckets: %v, want %v:\n%s", db, said, db == "postgres", log.String())
			}
		})
	}
}

// TestRateLimitsThroughRedis: with REDIS_URL the rate limits are Redis's,
// its state is on /metrics, and Close lets the connections go.
func TestRateLimitsThroughRedis(t *testing.T) {
	cfg := testConfig(t)
	cfg.RedisURL = redistest.URL(t)
	var log bytes.Buffer
	a, err := openLogged(cfg, &log)
	if err != nil {
		t.Fatal(err)
	}
	if a.rateLimits == nil {
		a.Close()
		t.Fatal("no Redis limiter with REDIS_URL")
	}
	rec := httptest.NewRecorder()
	a.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if !bytes.Contains(body, []byte("\napikeyd_rate_limit_fallback 0\n")) {
		t.Errorf("/metrics has no apikeyd_rate_limit_fallback 0:\n%s", body)
	}
	a.Close()
	a.rateLimits.Take(context.Background(), "closed", apikey.RateLimit{Limit: 1, Period: time.Second}, time.Now())
	if !a.rateLimits.Fallback() {
		t.Error("after Close the limiter still reached Redis")
	}
	if strings.Contains(log.String(), "set REDIS_URL") {
		t.Errorf("the log speaks of per-server buckets with REDIS_URL set:\n%s", log.String())
	}
}

// TestRedisURLRefusedAtStart: options go-redis refuses stop the start with
// an error naming REDIS_URL, without its password.
func TestRedisURLRefusedAtStart(t *testing.T) {
	cfg := testConfig(t)
	cfg.RedisURL, _ = url.Parse("redis://:hunter2@127.0.0.1:1/0?pool_size=many")
	var log bytes.Buffer
	_, err := openLogged(cfg, &log)
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Open: %v, want an error naming REDIS_URL without its password", err)
	}
}
