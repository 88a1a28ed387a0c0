package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

func TestRollKey(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 15, 12, 0, 0, 123_000_000, time.UTC)

	dbtest.Each(t, func(t *testing.T, dsn string) {
		s := mustStore(t, dsn)

		t.Run("GraceCopiesSettingsAndCapsExpiry", func(t *testing.T) {
			old, _ := newKey(t, "rita", base)
			exp := base.Add(48 * time.Hour)
			old.ExpiresAt = &exp
			if err := s.CreateKey(ctx, old, 100); err != nil {
				t.Fatal(err)
			}
			next, _ := newKey(t, "rita", base.Add(time.Second))
			at, end := base.Add(time.Second), base.Add(time.Hour)
			created, prev, hash, err := s.RollKey(ctx, apikey.UserOwner("rita"), old.ID, next, at, end, nil)
			if err != nil {
				t.Fatal(err)
			}
			if hash != old.Hash {
				t.Error("RollKey did not return the old key's hash")
			}
			if *created.Name != *old.Name || !created.ExpiresAt.Equal(exp) || created.ID != next.ID {
				t.Errorf("new key %+v does not copy %+v", created, old)
			}
			if prev.ReplacedBy == nil || *prev.ReplacedBy != next.ID || !prev.ExpiresAt.Equal(end) || prev.RevokedAt != nil {
				t.Errorf("old key after roll: %+v", prev)
			}
			found, err := s.FindKeyByHash(ctx, old.Hash)
			if err != nil || !found.ExpiresAt.Equal(end) || found.RevokedAt != nil {
				t.Fatalf("old key as verified: %+v, %v", found, err)
			}
			keys, err := s.ListKeys(ctx, apikey.UserOwner("rita"))
			if err != nil || len(keys) != 2 || keys[1].ReplacedBy == nil || keys[0].ReplacedBy != nil {
				t.Fatalf("list after roll: %+v, %v", keys, err)
			}

			_, _, _, err = s.RollKey(ctx, apikey.UserOwner("rita"), old.ID, next, at, end, nil)
			if apperr.CodeOf(err) != apperr.KeyAlreadyRolled {
				t.Fatalf("second roll: %v, want KEY_ALREADY_ROLLED", err)
			}
			// Past the grace the old key is gone: not revocable, not renamable.
			if _, err := s.RevokeKey(ctx, apikey.UserOwner("rita"), old.ID, end, audit.Event{}); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("revoke after the grace: %v, want NOT_FOUND", err)
			}
			if _, err := rename(s, "rita", old.ID, nil, end); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("rename after the grace: %v, want NOT_FOUND", err)
			}
			// During it, it is.
			if _, err := s.RevokeKey(ctx, apikey.UserOwner("rita"), old.ID, at, audit.Event{}); err != nil {
				t.Fatalf("revoke during the grace: %v", err)
			}
		})

		t.Run("GraceNeverExtendsExpiry", func(t *testing.T) {
			old, _ := newKey(t, "sam", base)
			exp := base.Add(time.Minute)
			old.ExpiresAt = &exp
			if err := s.CreateKey(ctx, old, 100); err != nil {
				t.Fatal(err)
			}
			next, _ := newKey(t, "sam", base)
			_, prev, _, err := s.RollKey(ctx, apikey.UserOwner("sam"), old.ID, next, base, base.Add(time.Hour), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !prev.ExpiresAt.Equal(exp) {
				t.Fatalf("old key expires %v, want its own %v", prev.ExpiresAt, exp)
			}
		})

		t.Run("NoGraceRevokes", func(t *testing.T) {
			old, _ := newKey(t, "tia", base)
			if err := s.CreateKey(ctx, old, 1); err != nil {
				t.Fatal(err)
			}
			next, _ := newKey(t, "tia", base)
			// At the limit of one key, the roll still succeeds.
			_, prev, _, err := s.RollKey(ctx, apikey.UserOwner("tia"), old.ID, next, base, base, nil)
			if err != nil {
				t.Fatal(err)
			}
			if prev.RevokedAt == nil {
				t.Fatal("a roll without grace did not revoke the old key")
			}
			keys, err := s.ListKeys(ctx, apikey.UserOwner("tia"))
			if err != nil || len(keys) != 1 || keys[0].ID != next.ID {
				t.Fatalf("list: %+v, %v", keys, err)
			}
		})

		t.Run("UnknownRevokedOrOthers", func(t *testing.T) {
			old, _ := newKey(t, "uma", base)
			if err := s.CreateKey(ctx, old, 100); err != nil {
				t.Fatal(err)
			}
			next, _ := newKey(t, "uma", base)
			if _, _, _, err := s.RollKey(ctx, apikey.UserOwner("someone-else"), old.ID, next, base, base, nil); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("another user's key: %v", err)
			}
			if _, err := s.RevokeKey(ctx, apikey.UserOwner("uma"), old.ID, base, audit.Event{}); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := s.RollKey(ctx, apikey.UserOwner("uma"), old.ID, next, base, base, nil); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("a revoked key: %v", err)
			}
		})

		t.Run("ConcurrentRollsOneWins", func(t *testing.T) {
			old, _ := newKey(t, "vic", base)
			if err := s.CreateKey(ctx, old, 100); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			codes := make([]apperr.Code, 12)
			for i := range codes {
				wg.Go(func() {
					next, _ := newKey(t, "vic", base)
					_, _, _, err := s.RollKey(ctx, apikey.UserOwner("vic"), old.ID, next, base, base.Add(time.Hour), nil)
					codes[i] = apperr.CodeOf(err)
				})
			}
			wg.Wait()
			won := 0
			for _, c := range codes {
				switch c {
				case "":
					won++
				case apperr.KeyAlreadyRolled:
				default:
					t.Errorf("a roll failed with %s", c)
				}
			}
			if won != 1 {
				t.Fatalf("%d rolls succeeded, want 1", won)
			}
			keys, err := s.ListKeys(ctx, apikey.UserOwner("vic"))
			if err != nil || len(keys) != 2 {
				t.Fatalf("list: %d keys, %v; want the old and one new", len(keys), err)
			}
		})

		t.Run("Rename", func(t *testing.T) {
			k, _ := newKey(t, "wes", base)
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			name := "renamed"
			got, err := rename(s, "wes", k.ID, &name, base)
			if err != nil || got.Name == nil || *got.Name != name || got.ID != k.ID || !got.CreatedAt.Equal(k.CreatedAt) {
				t.Fatalf("rename: %+v, %v", got, err)
			}
			got, err = rename(s, "wes", k.ID, nil, base)
			if err != nil || got.Name != nil {
				t.Fatalf("clearing the name: %+v, %v", got, err)
			}
			if _, err := rename(s, "someone-else", k.ID, &name, base); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("another user's key: %v", err)
			}
		})
	})
}
