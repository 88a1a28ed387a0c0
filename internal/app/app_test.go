package app

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

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
	a, err := Open(context.Background(), testConfig(t), slog.New(slog.DiscardHandler))
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
