package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
	"github.com/apikeyd/apikeyd/internal/webhook"
)

func TestWebhookOutbox(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := dbtest.OpenDSN(t, dsn)
		s := store.New(db, store.Config{Queue: webhook.Delivered})

		t.Run("OnlyKeyEventsAreQueuedWithTheirChange", func(t *testing.T) {
			k, _ := newKey(t, "alice", base)
			k.Event = eventOf("alice", audit.KeyCreated, base)
			if err := s.CreateKey(ctx, k, 100); err != nil {
				t.Fatal(err)
			}
			failed, _ := newKey(t, "alice", base)
			failed.Event = eventOf("alice", audit.KeyCreated, base)
			if err := s.CreateKey(ctx, failed, 1); err == nil {
				t.Fatal("created over the limit")
			}
			if err := s.AddEvent(ctx, eventOf("alice", audit.UserLogin, base)); err != nil {
				t.Fatal(err)
			}
			if n, err := s.QueueDepth(ctx); err != nil || n != 1 {
				t.Fatalf("queue depth %d %v, want 1", n, err)
			}
			// Not due before its time; then taken once, and not again
			// while its lease lasts.
			if got, err := s.ClaimDeliveries(ctx, base.Add(-time.Second), time.Minute, 10); err != nil || len(got) != 0 {
				t.Fatalf("claimed early: %v %v", got, err)
			}
			got, err := s.ClaimDeliveries(ctx, base, time.Minute, 10)
			if err != nil || len(got) != 1 || got[0].EventID != k.Event.ID || got[0].Attempt != 1 {
				t.Fatalf("claim: %+v %v", got, err)
			}
			if again, _ := s.ClaimDeliveries(ctx, base.Add(59*time.Second), time.Minute, 10); len(again) != 0 {
				t.Fatalf("claimed during the lease: %+v", again)
			}
			// A retry makes it due at its time, as the next attempt.
			if err := s.RetryDelivery(ctx, k.Event.ID, 1, base.Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
			got, err = s.ClaimDeliveries(ctx, base.Add(5*time.Second), time.Minute, 10)
			if err != nil || len(got) != 1 || got[0].Attempt != 2 || string(got[0].Event) == "" {
				t.Fatalf("second claim: %+v %v", got, err)
			}
			if err := s.FinishDelivery(ctx, k.Event.ID); err != nil {
				t.Fatal(err)
			}
			if n, _ := s.QueueDepth(ctx); n != 0 {
				t.Errorf("queue depth %d after delivery", n)
			}
		})

		t.Run("ConcurrentClaimsTakeEachDeliveryOnce", func(t *testing.T) {
			const events = 40
			for range events {
				if err := s.AddEvent(ctx, eventOf("bob", audit.KeyRevoked, base)); err != nil {
					t.Fatal(err)
				}
			}
			other := store.New(dbtest.OpenDSN(t, dsn), store.Config{}) // another server's pool
			var mu sync.Mutex
			seen := map[string]int{}
			var wg sync.WaitGroup
			for i := range 8 {
				claimer := s
				if i%2 == 1 {
					claimer = other
				}
				wg.Go(func() {
					for {
						got, err := claimer.ClaimDeliveries(ctx, base, time.Minute, 3)
						if err != nil {
							t.Error(err)
							return
						}
						if len(got) == 0 {
							return
						}
						mu.Lock()
						for _, d := range got {
							seen[d.EventID]++
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(seen) != events {
				t.Errorf("%d events claimed, want %d", len(seen), events)
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("event %s claimed %d times", id, n)
				}
			}
		})
	})
}
