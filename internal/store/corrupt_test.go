package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// TestCorruptRowIsNamed checks that a row that cannot be read fails the
// listing or lookup it is in with an internal error naming its table and
// id, so that the log says which row to repair.
func TestCorruptRowIsNamed(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := dbtest.OpenDSN(t, dsn)
		s := store.New(db, store.Config{})
		corrupt := func(t *testing.T, query string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(ctx, query, args...); err != nil {
				t.Fatal(err)
			}
		}
		wantNamed := func(t *testing.T, what string, err error, row string) {
			t.Helper()
			if err == nil || !strings.Contains(err.Error(), row) || apperr.CodeOf(err) != apperr.Internal {
				t.Errorf("%s: err %v (code %s), want an internal error naming %q", what, err, apperr.CodeOf(err), row)
			}
		}

		t.Run("Scopes", func(t *testing.T) {
			k, _ := newKey(t, "alice", base)
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			corrupt(t, "UPDATE api_keys SET scopes = 'not json' WHERE id = ?", k.ID)
			row := "api_keys row " + k.ID + ": scopes"
			_, err := s.ListKeys(ctx, apikey.UserOwner("alice"))
			wantNamed(t, "list", err, row)
			_, err = s.FindKeyByHash(ctx, k.Hash)
			wantNamed(t, "verification lookup", err, row)
		})

		t.Run("AllowedIPs", func(t *testing.T) {
			k, _ := newKey(t, "bob", base)
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			corrupt(t, `UPDATE api_keys SET allowed_ips = '["10.0.0.0/33"]' WHERE id = ?`, k.ID)
			row := "api_keys row " + k.ID + ": allowed_ips"
			_, err := s.ListKeys(ctx, apikey.UserOwner("bob"))
			wantNamed(t, "list", err, row)
			_, err = s.FindKeyByHash(ctx, k.Hash)
			wantNamed(t, "verification lookup", err, row)
		})

		t.Run("AuditDetails", func(t *testing.T) {
			ev := eventOf("carol", "api_key.created", base)
			if err := s.AddEvent(ctx, ev); err != nil {
				t.Fatal(err)
			}
			corrupt(t, "UPDATE audit_events SET details = '{' WHERE id = ?", ev.ID)
			_, err := s.ListEvents(ctx, "carol", "", 10)
			wantNamed(t, "audit listing", err, "audit_events row "+ev.ID+": details")
		})

		if !store.IsPostgres(dsn) {
			// SQLite keeps whatever it is given: a column that does not
			// scan names its row too.
			t.Run("Timestamp", func(t *testing.T) {
				k, _ := newKey(t, "dave", base)
				if err := s.CreateKey(ctx, k, 100); err != nil {
					t.Fatal(err)
				}
				corrupt(t, "UPDATE api_keys SET expires_at = 'someday' WHERE id = ?", k.ID)
				_, err := s.ListKeys(ctx, apikey.UserOwner("dave"))
				wantNamed(t, "list", err, "api_keys row "+k.ID)
				_, err = s.FindKeyByHash(ctx, k.Hash)
				wantNamed(t, "verification lookup", err, "api_keys row "+k.ID)
			})
		}
	})
}
