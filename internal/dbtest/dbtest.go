// Package dbtest gives tests real, migrated, throwaway databases: SQLite in a
// temporary directory and, when APIKEYD_TEST_POSTGRES_URL is set, a fresh
// PostgreSQL database per test.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/store"
	"github.com/apikeyd/apikeyd/internal/testenv"
)

// PostgresEnv names the variable holding an admin DSN of a PostgreSQL server
// that tests may create databases on.
const PostgresEnv = "APIKEYD_TEST_POSTGRES_URL"

// Names lists the databases every store test runs on.
var Names = []string{"sqlite", "postgres"}

// Each runs fn once per database, each as a subtest named for the database.
func Each(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			fn(t, DSN(t, name))
		})
	}
}

// DSN returns the DSN of a new, empty database of the named kind that is
// removed when the test ends. Without PostgreSQL configured, PostgreSQL tests
// are skipped, except under CI=true, where they fail.
func DSN(tb testing.TB, name string) string {
	tb.Helper()
	switch name {
	case "sqlite":
		return "file:" + filepath.Join(tb.TempDir(), "apikeyd.db")
	case "postgres":
		return postgresDSN(tb)
	}
	tb.Fatalf("dbtest: unknown database %q", name)
	return ""
}

func postgresDSN(tb testing.TB) string {
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		testenv.Missing(tb, PostgresEnv+" is not set", "point it at a PostgreSQL the tests may create databases in")
	}
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("dbtest: bad %s: %v", PostgresEnv, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "apikeyd_test_" + hex.EncodeToString(b[:])

	adminDB, err := store.Open(admin)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if _, err := adminDB.ExecContext(ctx, "CREATE DATABASE ?", bun.Ident(name)); err != nil {
		adminDB.Close()
		tb.Fatalf("dbtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		defer adminDB.Close()
		if _, err := adminDB.ExecContext(context.Background(), "DROP DATABASE IF EXISTS ? WITH (FORCE)", bun.Ident(name)); err != nil {
			tb.Errorf("dbtest: drop database: %v", err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// Open returns an open, migrated database of the named kind, closed when the
// test ends.
func Open(tb testing.TB, name string) *bun.DB {
	tb.Helper()
	return OpenDSN(tb, DSN(tb, name))
}

// OpenDSN opens and migrates dsn, closed when the test ends.
func OpenDSN(tb testing.TB, dsn string) *bun.DB {
	tb.Helper()
	db, err := store.Open(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := store.MigrateUp(context.Background(), db); err != nil {
		tb.Fatalf("dbtest: migrate: %v", err)
	}
	return db
}

// Statements counts the statements run through bun on the databases it is
// added to as a query hook (db.AddQueryHook), from then on, but for the
// pings of the revocation listener (pg_notify), which come and go with
// time. Statements run on db.DB directly, such as the store's prepared
// ones, are not seen.
type Statements struct{ n atomic.Int64 }

// Count returns how many statements ran so far.
func (s *Statements) Count() int64 { return s.n.Load() }

// BeforeQuery implements bun.QueryHook.
func (s *Statements) BeforeQuery(ctx context.Context, ev *bun.QueryEvent) context.Context {
	if !strings.HasPrefix(ev.Query, "SELECT pg_notify(") {
		s.n.Add(1)
	}
	return ctx
}

// AfterQuery implements bun.QueryHook.
func (s *Statements) AfterQuery(context.Context, *bun.QueryEvent) {}
