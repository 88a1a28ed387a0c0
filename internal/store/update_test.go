package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// rename sets the name of the user's key id through UpdateKey, with no
// event.
func rename(s *store.Store, user, id string, name *string, at time.Time) (apikey.APIKey, error) {
	k, _, err := s.UpdateKey(context.Background(), apikey.UserOwner(user), id, at, func(old apikey.APIKey) (apikey.KeyUpdate, error) {
		old.Name = name
		return apikey.KeyUpdate{Key: old}, nil
	})
	return k, err
}

// setPolicy replaces the policy of the user's key id through UpdateKey,
// with its balance when setCredits, with no event.
func setPolicy(s *store.Store, user, id string, p apikey.Policy, setCredits bool, at time.Time) (apikey.APIKey, error) {
	k, _, err := s.UpdateKey(context.Background(), apikey.UserOwner(user), id, at, func(old apikey.APIKey) (apikey.KeyUpdate, error) {
		old.Policy = p
		return apikey.KeyUpdate{Key: old, SetCredits: setCredits}, nil
	})
	return k, err
}

func TestUpdateKey(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	dbtest.Each(t, func(t *testing.T, dsn string) {
		s := mustStore(t, dsn)

		// create stores a key of user with policy p, its own lineage.
		create := func(t *testing.T, user string, p apikey.Policy) apikey.NewKey {
			t.Helper()
			k, _ := newKey(t, user, base)
			k.Policy, k.Lineage = p, k.ID
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			k.Credits = refillingAt(k.Credits, base)
			return k
		}
		// stored is the key as ListKeys and FindKeyByHash read it.
		stored := func(t *testing.T, k apikey.NewKey) apikey.APIKey {
			t.Helper()
			listed, err := s.ListKeys(ctx, apikey.UserOwner(k.UserID))
			if err != nil || len(listed) != 1 {
				t.Fatalf("list: %+v, %v; want one key", listed, err)
			}
			found, err := s.FindKeyByHash(ctx, k.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(found.Policy, listed[0].Policy) {
				t.Errorf("FindKeyByHash reads policy %s, ListKeys %s", show(found.Policy), show(listed[0].Policy))
			}
			return listed[0]
		}

		t.Run("WritesNamePolicyAndEvent", func(t *testing.T) {
			credits := &apikey.Credits{Remaining: 40, Refill: &apikey.Refill{Amount: 50, Interval: apikey.RefillDaily}}
			k := create(t, "ulla", apikey.Policy{Credits: credits, Meta: json.RawMessage(`{"plan":"free"}`)})
			name := "renamed"
			next := apikey.Policy{
				Disabled:   true,
				RateLimit:  &apikey.RateLimit{Limit: 10, Period: time.Second},
				Credits:    &apikey.Credits{Remaining: 1}, // not written: SetCredits is false
				AllowedIPs: prefixes("192.0.2.0/24"),
			}
			var seen apikey.APIKey
			got, hash, err := s.UpdateKey(ctx, apikey.UserOwner("ulla"), k.ID, base, func(old apikey.APIKey) (apikey.KeyUpdate, error) {
				seen = old
				ev := eventOf("ulla", audit.KeyUpdated, base)
				ev.Details = map[string]any{"meta": map[string]any{"old": old.Meta, "new": nil}}
				old.Name, old.Policy = &name, next
				return apikey.KeyUpdate{Key: old, Event: ev}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if hash != k.Hash {
				t.Error("UpdateKey did not return the key's hash")
			}
			if !reflect.DeepEqual(seen, k.APIKey) {
				t.Errorf("change saw\n %+v\nwant the key as stored\n %+v", seen, k.APIKey)
			}
			want := k.APIKey
			want.Name, want.Policy = &name, next
			want.Credits = refillingAt(credits, base) // the balance is left alone
			if !reflect.DeepEqual(got, want) {
				t.Errorf("UpdateKey returned\n %+v\nwant\n %+v", got, want)
			}
			if now := stored(t, k); !reflect.DeepEqual(now, want) {
				t.Errorf("stored\n %+v\nwant\n %+v", now, want)
			}
			evs := allEvents(t, s, "ulla")
			if len(evs) != 1 || evs[0].Action != audit.KeyUpdated || evs[0].KeyID != k.ID || evs[0].KeyPrefix != k.KeyPrefix {
				t.Fatalf("events %+v, want one api_key.updated about the key", evs)
			}
			if d, _ := json.Marshal(evs[0].Details); string(d) != `{"meta":{"new":null,"old":{"plan":"free"}}}` {
				t.Errorf("details %s", d)
			}
		})

		t.Run("SetsAndDeletesTheBalance", func(t *testing.T) {
			k := create(t, "vera", apikey.Policy{})
			credits := &apikey.Credits{Remaining: 9, Refill: &apikey.Refill{Amount: 9, Interval: apikey.RefillMonthly, DayOfMonth: 15}}
			got, err := setPolicy(s, "vera", k.ID, apikey.Policy{Credits: credits}, true, base)
			credits = refillingAt(credits, base)
			if err != nil || !reflect.DeepEqual(got.Credits, credits) {
				t.Fatalf("set: credits %+v, %v", got.Credits, err)
			}
			if now := stored(t, k); !reflect.DeepEqual(now.Credits, credits) {
				t.Fatalf("stored credits %+v, want %+v", now.Credits, credits)
			}
			// Set again: replaced, not added.
			credits = &apikey.Credits{Remaining: 2}
			if _, err := setPolicy(s, "vera", k.ID, apikey.Policy{Credits: credits}, true, base); err != nil {
				t.Fatal(err)
			}
			if now := stored(t, k); !reflect.DeepEqual(now.Credits, credits) {
				t.Fatalf("stored credits %+v, want %+v", now.Credits, credits)
			}
			if got, err := setPolicy(s, "vera", k.ID, apikey.Policy{}, true, base); err != nil || got.Credits != nil {
				t.Fatalf("delete: credits %+v, %v", got.Credits, err)
			}
			if now := stored(t, k); now.Credits != nil {
				t.Fatalf("stored credits %+v after deleting them", now.Credits)
			}
			if _, _, err := s.SpendCredits(ctx, k.ID, 1, base); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("spend after deleting the balance: %v, want NOT_FOUND", err)
			}
		})

		t.Run("ChangeErrorAborts", func(t *testing.T) {
			k := create(t, "walt", apikey.Policy{})
			refused := errors.New("refused")
			_, _, err := s.UpdateKey(ctx, apikey.UserOwner("walt"), k.ID, base, func(old apikey.APIKey) (apikey.KeyUpdate, error) {
				return apikey.KeyUpdate{}, refused
			})
			if err != refused {
				t.Fatalf("err %v, want the change's error as is", err)
			}
			// A write that fails (a negative balance breaks a CHECK) aborts
			// the whole update: nothing of it remains, nor its event.
			_, _, err = s.UpdateKey(ctx, apikey.UserOwner("walt"), k.ID, base, func(old apikey.APIKey) (apikey.KeyUpdate, error) {
				old.Disabled = true
				old.Credits = &apikey.Credits{Remaining: -1}
				return apikey.KeyUpdate{Key: old, SetCredits: true, Event: eventOf("walt", audit.KeyUpdated, base)}, nil
			})
			if err == nil {
				t.Fatal("a negative balance was stored")
			}
			if now := stored(t, k); !reflect.DeepEqual(now, k.APIKey) {
				t.Errorf("after failed updates the key is\n %+v\nwant\n %+v", now, k.APIKey)
			}
			if evs := allEvents(t, s, "walt"); len(evs) != 0 {
				t.Errorf("events %+v after failed updates, want none", evs)
			}
		})

		t.Run("NotFound", func(t *testing.T) {
			revoked := create(t, "xena", apikey.Policy{})
			if _, err := s.RevokeKey(ctx, apikey.UserOwner("xena"), revoked.ID, base, audit.Event{}); err != nil {
				t.Fatal(err)
			}
			rolled := create(t, "xena", apikey.Policy{})
			next, _ := newKey(t, "xena", base)
			if _, _, _, err := s.RollKey(ctx, apikey.UserOwner("xena"), rolled.ID, next, base, base.Add(time.Minute), nil); err != nil {
				t.Fatal(err)
			}
			mine := create(t, "yuri", apikey.Policy{})
			called := false
			for _, c := range []struct {
				name, user, id string
				at             time.Time
			}{
				{"Revoked", "xena", revoked.ID, base},
				{"GonePastItsGrace", "xena", rolled.ID, base.Add(time.Minute)},
				{"AnotherUsers", "xena", mine.ID, base},
				{"Unknown", "xena", "00000000-0000-7000-8000-000000000000", base},
			} {
				_, _, err := s.UpdateKey(ctx, apikey.UserOwner(c.user), c.id, c.at, func(old apikey.APIKey) (apikey.KeyUpdate, error) {
					called = true
					return apikey.KeyUpdate{Key: old, Event: eventOf(c.user, audit.KeyUpdated, c.at)}, nil
				})
				if apperr.CodeOf(err) != apperr.NotFound {
					t.Errorf("%s: %v, want NOT_FOUND", c.name, err)
				}
			}
			if called {
				t.Error("change was called for a key that is not there")
			}
			// During its grace a rolled key can still be changed.
			if _, err := rename(s, "xena", rolled.ID, nil, base); err != nil {
				t.Errorf("during the grace: %v", err)
			}
		})

		t.Run("ConcurrentUpdatesSeeEachOther", func(t *testing.T) {
			// Each update adds one to a counter kept in meta: a read that
			// did not wait for the update before it would lose a count.
			k := create(t, "zoe", apikey.Policy{Meta: json.RawMessage(`{"n":0}`)})
			const n = 12
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					_, _, err := s.UpdateKey(ctx, apikey.UserOwner("zoe"), k.ID, base, func(old apikey.APIKey) (apikey.KeyUpdate, error) {
						var m struct{ N int }
						if err := json.Unmarshal(old.Meta, &m); err != nil {
							return apikey.KeyUpdate{}, err
						}
						old.Meta = json.RawMessage(fmt.Sprintf(`{"n":%d}`, m.N+1))
						return apikey.KeyUpdate{Key: old}, nil
					})
					if err != nil {
						t.Errorf("update: %v", err)
					}
				})
			}
			wg.Wait()
			if got := string(stored(t, k).Meta); got != fmt.Sprintf(`{"n":%d}`, n) {
				t.Errorf("meta %s after %d concurrent increments", got, n)
			}
		})
	})
}

// TestUpdateKeyNotifies: an update reaches the other servers' caches, as a
// revocation does.
func TestUpdateKeyNotifies(t *testing.T) {
	ctx := context.Background()
	dsn := dbtest.DSN(t, "postgres")
	writer := store.New(dbtest.OpenDSN(t, dsn), store.Config{})
	cache := newRecordingCache()
	runListener(t, &store.RevocationListener{DB: dbtest.OpenDSN(t, dsn), Cache: cache})
	cache.expect(t, "resume", "suspend")

	k, _ := newKey(t, "alice", time.Now())
	if err := writer.CreateKey(ctx, k, 100); err != nil {
		t.Fatal(err)
	}
	// An update that aborts publishes nothing: the next notification is
	// the real update's.
	_, _, err := writer.UpdateKey(ctx, apikey.UserOwner("alice"), k.ID, time.Now(), func(apikey.APIKey) (apikey.KeyUpdate, error) {
		return apikey.KeyUpdate{}, errors.New("refused")
	})
	if err == nil {
		t.Fatal("an aborted update succeeded")
	}
	if _, err := setPolicy(writer, "alice", k.ID, apikey.Policy{Disabled: true}, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	cache.expect(t, k.Hash)
}
