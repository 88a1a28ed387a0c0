package app

import (
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/clocktest"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// testConfig is the default configuration (as if no variable were set) on a
// fresh SQLite database, with a JWT secret.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	noEnv := func(string) (string, bool) { return "", false }
	cfg, err := config.Parse(flag.NewFlagSet("test", flag.ContinueOnError), config.Serve, nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = dbtest.DSN(t, "sqlite")
	cfg.JWTSecret = "a-test-secret-of-at-least-thirty-two-bytes"
	return cfg
}

// newTestApp is apikeyd on a fresh SQLite database, closed when the test ends.
func newTestApp(t *testing.T) *App {
	t.Helper()
	a, err := Open(context.Background(), testConfig(t), Deps{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestNewTakesTheDatabase: New builds the whole handler around a database
// the caller opened and migrated, and Close closes it.
func TestNewTakesTheDatabase(t *testing.T) {
	cfg := testConfig(t)
	db := dbtest.OpenDSN(t, cfg.DatabaseURL)
	a, err := New(context.Background(), cfg, Deps{DB: db, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("readyz on the given database: %d %s", rec.Code, rec.Body)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err == nil {
		t.Error("Close left the database open")
	}
}

// TestNewTakesItsClock: every deadline is decided by the clock New is given
// (Deps.Now), not the wall clock: a login token's lifetime, a key's expiry,
// audit retention. The clock stands years ahead of the wall clock, where
// a deadline decided by the wall clock would go wrong at once.
func TestNewTakesItsClock(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	clock := clocktest.Stopped(time.Now().AddDate(5, 0, 0))
	db := dbtest.OpenDSN(t, cfg.DatabaseURL)
	a, err := New(ctx, cfg, Deps{DB: db, Log: slog.New(slog.DiscardHandler), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	do := func(method, path string, h http.Header, body string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header = h
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		a.Handler.ServeHTTP(rec, r)
		return rec
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	const account = `{"email":"clock@example.com","password":"correct horse battery staple"}`
	if rec := do("POST", "/auth/register", http.Header{}, account); rec.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	rec := do("POST", "/auth/login", http.Header{}, account)
	var login struct {
		Session struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int64  `json:"expires_in"`
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &login); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	tok := login.Session.AccessToken

	expires := clock.Now().Add(time.Hour)
	rec = do("POST", "/auth/api-keys", bearer(tok), `{"expires_at":"`+apitime.Format(expires)+`"}`)
	var key struct{ Key string }
	if err := json.Unmarshal(rec.Body.Bytes(), &key); err != nil || rec.Code != http.StatusCreated {
		t.Fatalf("create with the login token: %d %s", rec.Code, rec.Body)
	}
	verify := func() int { return do("GET", "/auth/verify", http.Header{"X-Api-Key": {key.Key}}, "").Code }
	if c := verify(); c != http.StatusOK {
		t.Fatalf("verify before the expiry: %d", c)
	}
	clock.Advance(time.Hour)
	if c := verify(); c != http.StatusUnauthorized {
		t.Errorf("verify at the expiry: %d, want 401", c)
	}
	clock.Advance(time.Duration(login.Session.ExpiresIn)*time.Second + time.Minute) // past the leeway
	if c := do("GET", "/auth/api-keys", bearer(tok), "").Code; c != http.StatusUnauthorized {
		t.Errorf("the login token answered %d after its lifetime", c)
	}

	if n, err := a.Audit.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("pruned %d events within the retention (%v)", n, err)
	}
	clock.Advance(cfg.AuditRetention)
	if n, err := a.Audit.Prune(ctx); err != nil || n == 0 {
		t.Errorf("pruned %d events past the retention (%v)", n, err)
	}
}

// TestTokenSecret: the secret comes from the configuration, or is generated
// once beside a SQLite file and kept; PostgreSQL without one is refused.
func TestTokenSecret(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Config{DatabaseURL: "file:" + filepath.Join(dir, "keys.db") + "?_pragma=busy_timeout(1)"}
	first, err := TokenSecret(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "keys.jwt-secret")); err != nil || string(b) != string(first)+"\n" {
		t.Fatalf("secret file: %q %v", b, err)
	}
	if again, err := TokenSecret(cfg); err != nil || string(again) != string(first) {
		t.Errorf("second start: a different secret (%v)", err)
	}
	cfg.JWTSecret = "a-test-secret-of-at-least-thirty-two-bytes"
	if s, err := TokenSecret(cfg); err != nil || string(s) != cfg.JWTSecret {
		t.Errorf("configured secret not used (%v)", err)
	}
	if _, err := TokenSecret(config.Config{DatabaseURL: "postgres://db.invalid/apikeyd"}); err == nil {
		t.Error("PostgreSQL without JWT_SECRET or JWT_JWKS_URL accepted")
	}
}
