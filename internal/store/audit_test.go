package store_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/google/uuid"
)

// eventOf returns an event of action by user at t.
func eventOf(user, action string, t time.Time) audit.Event {
	return audit.New(context.Background(), user, action, t)
}

// allEvents returns every event of user, newest first.
func allEvents(t *testing.T, s interface {
	ListEvents(context.Context, string, string, int) ([]audit.Event, error)
}, user string) []audit.Event {
	t.Helper()
	evs, err := s.ListEvents(context.Background(), user, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestAuditEvents(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

	dbtest.Each(t, func(t *testing.T, dsn string) {
		s := mustStore(t, dsn)

		t.Run("CreateAndRevokeRecordOneEventEach", func(t *testing.T) {
			k, _ := newKey(t, "alice", base)
			k.Event = eventOf("alice", audit.KeyCreated, base)
			k.Event.KeyID, k.Event.KeyPrefix = k.ID, k.KeyPrefix
			k.Event.IP, k.Event.UserAgent = "192.0.2.1", "curl/8.5.0"
			k.Event.Details = map[string]any{"name": *k.Name, "expires_at": nil}
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RevokeKey(ctx, apikey.UserOwner("alice"), k.ID, base, eventOf("alice", audit.KeyRevoked, base)); err != nil {
				t.Fatal(err)
			}
			evs := allEvents(t, s, "alice")
			if len(evs) != 2 {
				t.Fatalf("%d events, want 2: %+v", len(evs), evs)
			}
			rev, cre := evs[0], evs[1]
			if rev.Action != audit.KeyRevoked || rev.KeyID != k.ID || rev.KeyPrefix != k.KeyPrefix || rev.ActorType != audit.ActorUser || rev.ActorID != "alice" {
				t.Errorf("revoke event %+v", rev)
			}
			if cre.Action != audit.KeyCreated || cre.IP != "192.0.2.1" || cre.UserAgent != "curl/8.5.0" || cre.Details["name"] != *k.Name || !cre.OccurredAt.Equal(base) {
				t.Errorf("create event %+v", cre)
			}
			if v, ok := cre.Details["expires_at"]; !ok || v != nil {
				t.Errorf("details %v: want expires_at null", cre.Details)
			}
		})

		t.Run("FailedChangesRecordNothing", func(t *testing.T) {
			for range 2 {
				k, _ := newKey(t, "bob", base)
				k.Event = eventOf("bob", audit.KeyCreated, base)
				if err := s.CreateKey(ctx, k, 1); err != nil && apperr.CodeOf(err) != apperr.KeyLimitReached {
					t.Fatal(err)
				}
			}
			if _, err := s.RevokeKey(ctx, apikey.UserOwner("bob"), "00000000-0000-0000-0000-000000000000", base, eventOf("bob", audit.KeyRevoked, base)); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("revoke unknown: %v", err)
			}
			if evs := allEvents(t, s, "bob"); len(evs) != 1 || evs[0].Action != audit.KeyCreated {
				t.Errorf("events %+v, want the one create that committed", evs)
			}
		})

		t.Run("TwelveConcurrentRevokesOneEvent", func(t *testing.T) {
			k, _ := newKey(t, "carol", base)
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range 12 {
				wg.Go(func() {
					_, err := s.RevokeKey(ctx, apikey.UserOwner("carol"), k.ID, base, eventOf("carol", audit.KeyRevoked, base))
					if err != nil && apperr.CodeOf(err) != apperr.NotFound {
						t.Errorf("revoke: %v", err)
					}
				})
			}
			wg.Wait()
			if evs := allEvents(t, s, "carol"); len(evs) != 1 || evs[0].Action != audit.KeyRevoked {
				t.Errorf("events %+v, want one api_key.revoked", evs)
			}
		})

		t.Run("KeysetPagesNewestFirstOwnOnly", func(t *testing.T) {
			var ids []string
			for i := range 7 {
				ev := eventOf("dave", audit.UserLogin, base.Add(time.Duration(i)*time.Second))
				if err := s.AddEvent(ctx, ev); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, ev.ID)
			}
			if err := s.AddEvent(ctx, eventOf("eve", audit.UserLogin, base)); err != nil {
				t.Fatal(err)
			}
			slices.Reverse(ids)
			var got []string
			before := ""
			for {
				page, err := s.ListEvents(ctx, "dave", before, 3)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range page {
					got = append(got, ev.ID)
				}
				if len(page) < 3 {
					break
				}
				before = page[len(page)-1].ID
				// An event recorded between pages shifts nothing.
				if err := s.AddEvent(ctx, eventOf("dave", audit.UserLogin, base)); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(got, ids) {
				t.Errorf("pages %v, want %v", got, ids)
			}
			// A cursor that is not the user's own event is NOT_FOUND, whether
			// older events exist or not; the oldest own one is an empty page.
			for _, c := range []struct{ user, before string }{{"eve", ids[0]}, {"eve", ids[6]}, {"dave", uuid.Must(uuid.NewV7()).String()}} {
				if page, err := s.ListEvents(ctx, c.user, c.before, 3); apperr.CodeOf(err) != apperr.NotFound {
					t.Errorf("%s after %s: %v, %v; want NOT_FOUND", c.user, c.before, page, err)
				}
			}
			if page, err := s.ListEvents(ctx, "dave", ids[6], 3); err != nil || len(page) != 0 {
				t.Errorf("after the oldest: %v, %v", page, err)
			}
		})

		t.Run("PruneInBatches", func(t *testing.T) {
			old := base.Add(-200 * 24 * time.Hour)
			for i := range 5 {
				if err := s.AddEvent(ctx, eventOf("frank", audit.UserLogin, old.Add(time.Duration(i)*time.Minute))); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.AddEvent(ctx, eventOf("frank", audit.UserLogin, base)); err != nil {
				t.Fatal(err)
			}
			cutoff := base.Add(-90 * 24 * time.Hour)
			if n, err := s.PruneEvents(ctx, cutoff, 3); err != nil || n != 3 {
				t.Fatalf("first batch: %d %v, want 3", n, err)
			}
			if n, err := s.PruneEvents(ctx, cutoff, 3); err != nil || n != 2 {
				t.Fatalf("second batch: %d %v, want 2", n, err)
			}
			if evs := allEvents(t, s, "frank"); len(evs) != 1 || !evs[0].OccurredAt.Equal(base) {
				t.Errorf("left %+v, want the recent event", evs)
			}
		})
	})
}

// TestAuditRetention: the service prunes everything past the retention, a
// bounded batch per statement, and nothing newer.
func TestAuditRetention(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	dbtest.Each(t, func(t *testing.T, dsn string) {
		s := mustStore(t, dsn)
		for i := range 7 {
			if err := s.AddEvent(ctx, eventOf("grace", audit.UserLogin, now.Add(-91*24*time.Hour-time.Duration(i)*time.Hour))); err != nil {
				t.Fatal(err)
			}
		}
		kept := eventOf("grace", audit.UserLogin, now.Add(-89*24*time.Hour))
		if err := s.AddEvent(ctx, kept); err != nil {
			t.Fatal(err)
		}
		svc := audit.NewService(s, audit.Config{
			Principal:  func(context.Context) (string, error) { return "grace", nil },
			Retention:  90 * 24 * time.Hour,
			PruneBatch: 3,
			Now:        func() time.Time { return now },
		})
		if n, err := svc.Prune(ctx); err != nil || n != 7 {
			t.Fatalf("pruned %d %v, want 7", n, err)
		}
		if evs := allEvents(t, s, "grace"); len(evs) != 1 || evs[0].ID != kept.ID {
			t.Errorf("left %+v, want the event within the retention", evs)
		}
	})
}
