package store_test

import (
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/store"
)

// TestOpenRefusesABadPostgresURLQuietly: a PostgreSQL URL apikeyd cannot
// use is an error, not a panic, and the error never shows its password.
func TestOpenRefusesABadPostgresURLQuietly(t *testing.T) {
	for _, dsn := range []string{
		"postgres://apikeyd:hunter2-password@db:port/apikeyd",      // not a port
		"postgres://apikeyd:hunter2%zz-password@db:5432/apikeyd",   // a bad escape
		"postgresql://apikeyd:hunter2-password@db/x?sslmode=bogus", // a bad parameter
		"postgres://apikeyd:hunter2-password@db/x?timeout=soon",
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Open panics: %v", r)
				}
			}()
			db, err := store.Open(dsn)
			if err == nil {
				db.Close()
				t.Fatalf("Open accepted %s", dsn)
			}
			if !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Open: %v, want an error naming DATABASE_URL without its password", err)
			}
		}()
	}
}
