package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

func TestUsageCounts(t *testing.T) {
	ctx := context.Background()
	hour := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := dbtest.OpenDSN(t, dsn)
		var count dbtest.Statements
		db.AddQueryHook(&count)
		s := store.New(db, store.Config{})
		k, _ := newKey(t, "alice", hour)
		if err := s.CreateKey(ctx, k, 100); err != nil {
			t.Fatal(err)
		}

		t.Run("AddedUpAcrossWrites", func(t *testing.T) {
			// Two servers' writes of the same hour add up; another hour
			// is its own row.
			for _, c := range []apikey.Counts{
				{Valid: 3, RateLimited: 2, CreditsSpent: 7},
				{Valid: 1, Disabled: 1, IPNotAllowed: 2, InsufficientScope: 3, UsageExceeded: 4, CreditsSpent: 1},
			} {
				if err := s.AddCounts(ctx, []apikey.HourCounts{{KeyID: k.ID, Hour: hour, Counts: c}, {KeyID: k.ID, Hour: hour.Add(2 * time.Hour), Counts: apikey.Counts{Valid: 1}}}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.KeyCounts(ctx, apikey.UserOwner("alice"), k.ID, hour, hour.Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			want := []apikey.HourCounts{
				{KeyID: k.ID, Hour: hour, Counts: apikey.Counts{Valid: 4, Disabled: 1, IPNotAllowed: 2, InsufficientScope: 3, RateLimited: 2, UsageExceeded: 4, CreditsSpent: 8}},
				{KeyID: k.ID, Hour: hour.Add(2 * time.Hour), Counts: apikey.Counts{Valid: 2}},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			// [from, to): the end is out.
			if got, _ := s.KeyCounts(ctx, apikey.UserOwner("alice"), k.ID, hour.Add(time.Hour), hour.Add(2*time.Hour)); len(got) != 0 {
				t.Errorf("an empty range has %+v", got)
			}
		})

		t.Run("OnlyTheOwnersKey", func(t *testing.T) {
			if _, err := s.KeyCounts(ctx, apikey.UserOwner("mallory"), k.ID, hour, hour.Add(time.Hour)); apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("another user's key: %v, want NOT_FOUND", err)
			}
			if _, err := s.KeyCounts(ctx, apikey.UserOwner("alice"), uuid.NewString(), hour, hour.Add(time.Hour)); apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("an unknown key: %v, want NOT_FOUND", err)
			}
		})

		t.Run("TenThousandKeysOneStatement", func(t *testing.T) {
			counts := make([]apikey.HourCounts, 10_000)
			for i := range counts {
				counts[i] = apikey.HourCounts{KeyID: uuid.NewString(), Hour: hour, Counts: apikey.Counts{Valid: int64(i + 1)}}
			}
			before := count.Count()
			if err := s.AddCounts(ctx, counts); err != nil {
				t.Fatal(err)
			}
			if n := count.Count() - before; n != 1 {
				t.Errorf("10,000 keys written in %d statements, want 1", n)
			}
			var sum int64
			if err := db.NewSelect().TableExpr("key_usage").ColumnExpr("SUM(valid)").Where("hour = ?", hour).Where("key_id <> ?", k.ID).Scan(ctx, &sum); err != nil {
				t.Fatal(err)
			}
			if want := int64(10_000 * 10_001 / 2); sum != want {
				t.Errorf("stored %d valid authentications, want %d", sum, want)
			}
		})

		t.Run("UserCountsOfUnrevokedKeys", func(t *testing.T) {
			other, _ := newKey(t, "alice", hour)
			revoked, _ := newKey(t, "alice", hour)
			bobs, _ := newKey(t, "bob", hour)
			for _, nk := range []apikey.NewKey{other, revoked, bobs} {
				if err := s.CreateKey(ctx, nk, 100); err != nil {
					t.Fatal(err)
				}
				if err := s.AddCounts(ctx, []apikey.HourCounts{{KeyID: nk.ID, Hour: hour, Counts: apikey.Counts{Valid: 5}}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.RevokeKey(ctx, apikey.UserOwner("alice"), revoked.ID, hour, audit.Event{}); err != nil {
				t.Fatal(err)
			}
			got, err := s.OwnerCounts(ctx, apikey.UserOwner("alice"), hour, hour.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]int64{}
			for _, h := range got {
				ids[h.KeyID] += h.Valid
			}
			if want := map[string]int64{k.ID: 4, other.ID: 5}; !reflect.DeepEqual(ids, want) {
				t.Errorf("alice's counts %v, want %v", ids, want)
			}
			// A revoked key's usage stays readable on its id.
			if got, err := s.KeyCounts(ctx, apikey.UserOwner("alice"), revoked.ID, hour, hour.Add(time.Hour)); err != nil || len(got) != 1 || got[0].Valid != 5 {
				t.Errorf("the revoked key's counts: %+v, %v", got, err)
			}
		})

		t.Run("PruneOldestHourFirst", func(t *testing.T) {
			p, _ := newKey(t, "carol", hour)
			if err := s.CreateKey(ctx, p, 100); err != nil {
				t.Fatal(err)
			}
			old := hour.Add(-48 * time.Hour)
			if err := s.AddCounts(ctx, []apikey.HourCounts{
				{KeyID: p.ID, Hour: old, Counts: apikey.Counts{Valid: 1}},
				{KeyID: p.ID, Hour: old.Add(time.Hour), Counts: apikey.Counts{Valid: 1}},
			}); err != nil {
				t.Fatal(err)
			}
			// Everything before hour goes, one hour per call; hour stays.
			for i, want := range []int{1, 1, 0} {
				if n, err := s.PruneCounts(ctx, hour); err != nil || n != want {
					t.Fatalf("prune %d: %d rows, %v; want %d", i, n, err, want)
				}
			}
			if got, _ := s.KeyCounts(ctx, apikey.UserOwner("alice"), k.ID, hour, hour.Add(time.Hour)); len(got) != 1 {
				t.Errorf("the counts at the cutoff were pruned: %+v", got)
			}
		})
	})
}
