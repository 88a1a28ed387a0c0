package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

var format = apikey.NewFormat(apikey.DefaultPrefix)

// newKey returns a key row for user created at t, and its secret.
func newKey(tb testing.TB, user string, t time.Time) (apikey.NewKey, string) {
	tb.Helper()
	secret := format.Generate()
	id, err := uuid.NewV7()
	if err != nil {
		tb.Fatal(err)
	}
	name := "key " + id.String()[:8]
	return apikey.NewKey{
		APIKey: apikey.APIKey{
			ID:        id.String(),
			UserID:    user,
			KeyPrefix: format.DisplayPrefix(secret),
			Name:      &name,
			CreatedAt: t.UTC().Truncate(time.Millisecond),
		},
		Hash: apikey.Hash(secret),
	}, secret
}

func mustStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	return store.New(dbtest.OpenDSN(t, dsn), store.Config{})
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 15, 12, 0, 0, 123_000_000, time.UTC)

	dbtest.Each(t, func(t *testing.T, dsn string) {
		s := mustStore(t, dsn)

		t.Run("CreateListNewestFirst", func(t *testing.T) {
			var want []string
			for i := range 3 {
				k, _ := newKey(t, "alice", base.Add(time.Duration(i)*time.Second))
				exp := base.Add(48 * time.Hour)
				k.ExpiresAt = &exp
				if err := s.CreateKey(ctx, k, 100); err != nil {
					t.Fatal(err)
				}
				want = append([]string{k.ID}, want...)
			}
			other, _ := newKey(t, "bob", base)
			if err := s.CreateKey(ctx, other, 100); err != nil {
				t.Fatal(err)
			}
			got, err := s.ListKeys(ctx, apikey.UserOwner("alice"))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 {
				t.Fatalf("got %d keys, want 3", len(got))
			}
			for i, k := range got {
				if k.ID != want[i] {
					t.Errorf("key %d: id %s, want %s", i, k.ID, want[i])
				}
				if k.UserID != "alice" || k.LastUsedAt != nil || k.RevokedAt != nil {
					t.Errorf("key %d: %+v", i, k)
				}
				if k.ExpiresAt == nil || !k.ExpiresAt.Equal(base.Add(48*time.Hour)) || k.ExpiresAt.Location() != time.UTC {
					t.Errorf("key %d: expires_at %v", i, k.ExpiresAt)
				}
			}
			if !got[2].CreatedAt.Equal(base) {
				t.Errorf("created_at %v, want %v (millisecond precision kept)", got[2].CreatedAt, base)
			}
		})

		t.Run("FindByHash", func(t *testing.T) {
			k, secret := newKey(t, "carol", base)
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			got, err := s.FindKeyByHash(ctx, apikey.Hash(secret))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != k.ID || got.UserID != "carol" || got.RevokedAt != nil {
				t.Errorf("found %+v", got)
			}
			_, err = s.FindKeyByHash(ctx, apikey.Hash(format.Generate()))
			if apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("unknown hash: err %v, want NOT_FOUND", err)
			}
		})

		t.Run("DuplicateHashRefused", func(t *testing.T) {
			k, _ := newKey(t, "dave", base)
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			k2, _ := newKey(t, "dave", base)
			k2.Hash = k.Hash
			if err := s.CreateKey(ctx, k2, 100); err == nil {
				t.Fatal("a second key with the same hash was stored")
			}
		})

		t.Run("RevokeOnce", func(t *testing.T) {
			k, secret := newKey(t, "erin", base)
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RevokeKey(ctx, apikey.UserOwner("mallory"), k.ID, base, audit.Event{}); apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("revoke by another user: %v, want NOT_FOUND", err)
			}
			hash, err := s.RevokeKey(ctx, apikey.UserOwner("erin"), k.ID, base, audit.Event{})
			if err != nil {
				t.Fatal(err)
			}
			if hash != apikey.Hash(secret) {
				t.Errorf("revoke returned hash %q, want the key's", hash)
			}
			if _, err := s.RevokeKey(ctx, apikey.UserOwner("erin"), k.ID, base, audit.Event{}); apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("second revoke: %v, want NOT_FOUND", err)
			}
			if got, err := s.FindKeyByHash(ctx, apikey.Hash(secret)); err != nil || got.RevokedAt == nil || !got.RevokedAt.Equal(base) {
				t.Errorf("revoked key: %+v %v, want it with revoked_at %v", got, err, base)
			}
			keys, err := s.ListKeys(ctx, apikey.UserOwner("erin"))
			if err != nil || len(keys) != 0 {
				t.Errorf("list after revoke: %v %v", keys, err)
			}
		})

		t.Run("TouchKeys", func(t *testing.T) {
			k, _ := newKey(t, "frank", base)
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			at := base.Add(time.Hour)
			uses := []apikey.Use{{KeyID: k.ID, IP: "192.0.2.7", UserAgent: "curl/8.5.0"}, {KeyID: uuid.NewString()}}
			if err := s.TouchKeys(ctx, uses, at); err != nil {
				t.Fatal(err)
			}
			// An older time never moves last_used_at backwards, nor its origin.
			if err := s.TouchKeys(ctx, []apikey.Use{{KeyID: k.ID, IP: "198.51.100.1"}}, base.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			keys, err := s.ListKeys(ctx, apikey.UserOwner("frank"))
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0].LastUsedAt == nil || !keys[0].LastUsedAt.Equal(at) {
				t.Fatalf("last_used_at = %v, want %v", keys[0].LastUsedAt, at)
			}
			if ip, ua := keys[0].LastUsedIP, keys[0].LastUsedUserAgent; ip == nil || *ip != "192.0.2.7" || ua == nil || *ua != "curl/8.5.0" {
				t.Errorf("last use from %v %v, want 192.0.2.7 curl/8.5.0", ip, ua)
			}
		})

		t.Run("ConcurrentRevokesChangeOneRow", func(t *testing.T) {
			k, _ := newKey(t, "grace", base)
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			var ok, notFound atomic.Int32
			var wg sync.WaitGroup
			for range 12 {
				wg.Go(func() {
					_, err := s.RevokeKey(ctx, apikey.UserOwner("grace"), k.ID, base, audit.Event{})
					switch apperr.CodeOf(err) {
					case "":
						ok.Add(1)
					case apperr.NotFound:
						notFound.Add(1)
					default:
						t.Errorf("revoke: %v", err)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 1 || notFound.Load() != 11 {
				t.Errorf("%d revokes succeeded and %d found nothing; want 1 and 11", ok.Load(), notFound.Load())
			}
		})

		t.Run("LimitHoldsUnderConcurrentCreates", func(t *testing.T) {
			const max, tries = 5, 20
			var created, limited atomic.Int32
			var wg sync.WaitGroup
			for range tries {
				wg.Go(func() {
					k, _ := newKey(t, "heidi", base)
					err := s.CreateKey(ctx, k, max)
					switch apperr.CodeOf(err) {
					case "":
						created.Add(1)
					case apperr.KeyLimitReached:
						limited.Add(1)
					default:
						t.Errorf("create: %v", err)
					}
				})
			}
			wg.Wait()
			keys, err := s.ListKeys(ctx, apikey.UserOwner("heidi"))
			if err != nil {
				t.Fatal(err)
			}
			if created.Load() != max || limited.Load() != tries-max || len(keys) != max {
				t.Errorf("created %d, limited %d, stored %d; want %d, %d, %d", created.Load(), limited.Load(), len(keys), max, tries-max, max)
			}
		})

		t.Run("RevokedKeysFreeTheLimit", func(t *testing.T) {
			k, _ := newKey(t, "ivan", base)
			if err := s.CreateKey(ctx, k, 1); err != nil {
				t.Fatal(err)
			}
			k2, _ := newKey(t, "ivan", base)
			if err := s.CreateKey(ctx, k2, 1); apperr.CodeOf(err) != apperr.KeyLimitReached {
				t.Fatalf("second key: %v, want KEY_LIMIT_REACHED", err)
			}
			if _, err := s.RevokeKey(ctx, apikey.UserOwner("ivan"), k.ID, base, audit.Event{}); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateKey(ctx, k2, 1); err != nil {
				t.Fatalf("after revoke: %v", err)
			}
		})

		t.Run("ConcurrentCreatesOfManyUsers", func(t *testing.T) {
			var wg sync.WaitGroup
			for u := range 8 {
				for range 8 {
					wg.Go(func() {
						k, _ := newKey(t, fmt.Sprintf("crowd-%d", u), base)
						if err := s.CreateKey(ctx, k, 100); err != nil {
							t.Errorf("create: %v", err)
						}
					})
				}
			}
			wg.Wait()
			for u := range 8 {
				keys, err := s.ListKeys(ctx, apikey.UserOwner(fmt.Sprintf("crowd-%d", u)))
				if err != nil || len(keys) != 8 {
					t.Errorf("user %d: %d keys, %v", u, len(keys), err)
				}
			}
		})
	})
}

func TestMigrateDownAndUp(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := dbtest.OpenDSN(t, dsn)
		if g, err := store.MigrateUp(ctx, db); err != nil || !g.IsZero() {
			t.Fatalf("second up: group %v, err %v; want nothing to do", g, err)
		}
		if _, err := store.MigrateDown(ctx, db); err != nil {
			t.Fatal(err)
		}
		_, err := store.New(db, store.Config{}).ListKeys(ctx, apikey.UserOwner("alice"))
		if err == nil {
			t.Fatal("api_keys still exists after down")
		}
		if _, err := store.New(db, store.Config{}).FindUserByEmail(ctx, "alice@example.com"); apperr.CodeOf(err) != apperr.Internal {
			t.Fatalf("users after down: %v, want a missing table", err)
		}
		if _, err := store.MigrateUp(ctx, db); err != nil {
			t.Fatal(err)
		}
		if _, err := store.New(db, store.Config{}).ListKeys(ctx, apikey.UserOwner("alice")); err != nil {
			t.Fatal(err)
		}
		if _, err := store.New(db, store.Config{}).FindUserByEmail(ctx, "alice@example.com"); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("users after up: %v, want NOT_FOUND", err)
		}
	})
}

func TestUnreachableDatabaseIsServerBusy(t *testing.T) {
	db, err := store.Open("postgres://postgres:secret-password@127.0.0.1:1/nowhere?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = store.New(db, store.Config{}).Ping(context.Background())
	var e *apperr.Error
	if !errors.As(err, &e) || e.Code != apperr.ServerBusy {
		t.Fatalf("err %v, want SERVER_BUSY", err)
	}
	if e.Message != "the database is unavailable; try again later" {
		t.Errorf("message %q", e.Message)
	}
}

// TestKeyRoundTrip: every field of a key that InsertKeys writes (its
// balance included), ListKeys reads back; FindKeyByHash reads what a
// verification needs.
func TestKeyRoundTrip(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 1, 15, 12, 0, 0, 123_000_000, time.UTC)
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := dbtest.OpenDSN(t, dsn)
		k, _ := newKey(t, "alice", at)
		used, expires := at.Add(time.Hour), at.Add(48*time.Hour)
		ip, agent, next := "203.0.113.7", "curl/8.5", "0190a1b2-0000-7000-8000-000000000001"
		k.LastUsedAt, k.ExpiresAt, k.ReplacedBy = &used, &expires, &next
		k.LastUsedIP, k.LastUsedUserAgent = &ip, &agent
		k.Scopes = []string{"orders:read", "reports:read"}
		k.Policy = policies[len(policies)-1].policy // every field set
		k.Lineage = k.ID
		if err := store.InsertKeys(ctx, db, []apikey.NewKey{k}); err != nil {
			t.Fatal(err)
		}
		k.Credits = refillingAt(k.Credits, at)
		s := store.New(db, store.Config{})
		found, err := s.FindKeyByHash(ctx, k.Hash)
		if err != nil {
			t.Fatal(err)
		}
		lookup := apikey.APIKey{ID: k.ID, UserID: k.UserID, KeyPrefix: k.KeyPrefix, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, Scopes: k.Scopes,
			Policy: k.Policy, Lineage: k.Lineage}
		if !reflect.DeepEqual(found, lookup) {
			t.Errorf("FindKeyByHash:\n got %+v\nwant %+v", found, lookup)
		}
		listed, err := s.ListKeys(ctx, apikey.UserOwner("alice"))
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != 1 || !reflect.DeepEqual(listed[0], k.APIKey) {
			t.Errorf("ListKeys:\n got %+v\nwant [%+v]", listed, k.APIKey)
		}
	})
}
