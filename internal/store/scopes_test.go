package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// TestStoreScopes: unrestricted (nil) and empty ([]) scopes differ and both
// come back exactly, from the list and from the lookup by hash; a key
// written without the column (as every key was before the scopes
// migration) reads as unrestricted.
func TestStoreScopes(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := dbtest.OpenDSN(t, dsn)
		s := mustStore(t, dsn)
		for i, want := range [][]string{nil, {}, {"orders:read"}, {"a", "b.c", "d:e-f_g"}} {
			k, _ := newKey(t, "scoped", base.Add(time.Duration(i)*time.Second))
			k.Scopes = want
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			got, err := s.FindKeyByHash(ctx, k.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if (got.Scopes == nil) != (want == nil) || !slices.Equal(got.Scopes, want) {
				t.Errorf("FindKeyByHash: scopes %#v, want %#v", got.Scopes, want)
			}
			keys, err := s.ListKeys(ctx, apikey.UserOwner("scoped"))
			if err != nil {
				t.Fatal(err)
			}
			if g := keys[0].Scopes; (g == nil) != (want == nil) || !slices.Equal(g, want) {
				t.Errorf("ListKeys: scopes %#v, want %#v", g, want)
			}
		}

		t.Run("RowWithoutScopesIsUnrestricted", func(t *testing.T) {
			k, _ := newKey(t, "legacy", base)
			if _, err := db.ExecContext(ctx,
				"INSERT INTO api_keys (id, user_id, key_hash, key_prefix, created_at, lineage_id) VALUES (?, ?, ?, ?, ?, ?)",
				k.ID, k.UserID, k.Hash, k.KeyPrefix, k.CreatedAt, k.ID); err != nil {
				t.Fatal(err)
			}
			got, err := s.FindKeyByHash(ctx, k.Hash)
			if err != nil || got.Scopes != nil {
				t.Fatalf("scopes %#v, err %v; want nil (unrestricted)", got.Scopes, err)
			}
		})
	})
}
