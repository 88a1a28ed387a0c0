package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

func TestSpendCredits(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	midnight := time.Date(2026, 1, 16, 0, 0, 0, 0, time.UTC) // base's first daily refill
	daily := func(amount int64) *apikey.Refill {
		return &apikey.Refill{Amount: amount, Interval: apikey.RefillDaily}
	}
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := dbtest.OpenDSN(t, dsn)
		s := store.New(db, store.Config{})

		// credited stores a key with credits c, created at at; its lineage
		// is its id.
		credited := func(t *testing.T, c apikey.Credits, at time.Time) apikey.NewKey {
			t.Helper()
			k, _ := newKey(t, "spender", at)
			k.Credits, k.Lineage = &c, k.ID
			if err := s.CreateKey(ctx, k, 1000); err != nil {
				t.Fatal(err)
			}
			return k
		}
		// balance is the key's balance as a verification reads it.
		balance := func(t *testing.T, k apikey.NewKey) int64 {
			t.Helper()
			found, err := s.FindKeyByHash(ctx, k.Hash)
			if err != nil || found.Credits == nil {
				t.Fatalf("lookup: credits %v, %v", found.Credits, err)
			}
			return found.Credits.Remaining
		}
		type spend struct {
			cost      int64
			at        time.Time
			remaining int64
			ok        bool
		}
		// expect spends in order and checks each answer.
		expect := func(t *testing.T, lineage string, spends ...spend) {
			t.Helper()
			for i, sp := range spends {
				remaining, ok, err := s.SpendCredits(ctx, lineage, sp.cost, sp.at)
				if err != nil || remaining != sp.remaining || ok != sp.ok {
					t.Fatalf("spend %d (cost %d at %v): %d, %v, %v; want %d, %v", i, sp.cost, sp.at, remaining, ok, err, sp.remaining, sp.ok)
				}
			}
		}

		t.Run("SpendsWhatTheBalanceHolds", func(t *testing.T) {
			k := credited(t, apikey.Credits{Remaining: 5}, base)
			expect(t, k.ID,
				spend{3, base, 2, true},
				spend{3, base, 2, false}, // refused: nothing spent
				spend{0, base, 2, true},  // a check
				spend{2, base, 0, true},
				spend{1, base, 0, false},
				spend{0, base, 0, true},
			)
			if b := balance(t, k); b != 0 {
				t.Errorf("balance %d, want 0", b)
			}
		})

		t.Run("NoBalance", func(t *testing.T) {
			k, _ := newKey(t, "spender", base)
			if err := s.CreateKey(ctx, k, 1000); err != nil {
				t.Fatal(err)
			}
			for _, lineage := range []string{k.ID, "00000000-0000-7000-8000-000000000000"} {
				for _, cost := range []int64{0, 1} {
					if _, _, err := s.SpendCredits(ctx, lineage, cost, base); apperr.CodeOf(err) != apperr.NotFound {
						t.Errorf("lineage %s, cost %d: %v, want NOT_FOUND", lineage, cost, err)
					}
				}
			}
		})

		t.Run("CostOutOfRange", func(t *testing.T) {
			k := credited(t, apikey.Credits{Remaining: 5000}, base)
			for _, cost := range []int64{-1, apikey.MaxCost + 1} {
				if _, _, err := s.SpendCredits(ctx, k.ID, cost, base); apperr.CodeOf(err) != apperr.InvalidRequest {
					t.Errorf("cost %d: %v, want INVALID_REQUEST", cost, err)
				}
			}
			if b := balance(t, k); b != 5000 {
				t.Errorf("balance %d, want 5000", b)
			}
		})

		t.Run("ConcurrentSpendsNeverOverspend", func(t *testing.T) {
			const initial, spends = 100, 300
			k := credited(t, apikey.Credits{Remaining: initial}, base)
			var mu sync.Mutex
			var spent int64
			refused := map[int64]bool{}
			var wg sync.WaitGroup
			for i := range spends {
				cost := int64(1 + i%3)
				wg.Go(func() {
					remaining, ok, err := s.SpendCredits(ctx, k.ID, cost, base)
					if err != nil || remaining < 0 {
						t.Errorf("spend: %d, %v", remaining, err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if ok {
						spent += cost
					} else {
						refused[cost] = true
					}
				})
			}
			wg.Wait()
			left := balance(t, k)
			if spent > initial || left != initial-spent {
				t.Fatalf("spent %d of %d, %d left", spent, initial, left)
			}
			// A spend is refused only when the balance is below its cost,
			// and the balance only goes down.
			for cost := range refused {
				if left >= cost {
					t.Errorf("a spend of %d was refused, yet %d is left", cost, left)
				}
			}
		})

		t.Run("ConcurrentSpendsAcrossARefill", func(t *testing.T) {
			// The balance is empty until midnight, then refilled to 50 once:
			// of spends of 1 on either side of it (servers' clocks differ a
			// little), exactly 50 pass, however they interleave. (A spend
			// dated before midnight may pass once the refill is applied.)
			const amount, spends = 50, 160
			k := credited(t, apikey.Credits{Remaining: 0, Refill: daily(amount)}, base)
			var mu sync.Mutex
			passed := 0
			var wg sync.WaitGroup
			for i := range spends {
				at := midnight.Add(time.Duration(i-spends/4) * time.Millisecond)
				wg.Go(func() {
					_, ok, err := s.SpendCredits(ctx, k.ID, 1, at)
					if err != nil {
						t.Errorf("spend: %v", err)
						return
					}
					if ok {
						mu.Lock()
						passed++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if passed != amount {
				t.Fatalf("%d spends passed, want %d: the refill applied once", passed, amount)
			}
			day := 24 * time.Hour
			expect(t, k.ID,
				spend{1, midnight.Add(day - time.Nanosecond), 0, false},
				spend{1, midnight.Add(day), amount - 1, true}, // the next day's
			)
		})

		t.Run("RefillIsAResetNotASum", func(t *testing.T) {
			k := credited(t, apikey.Credits{Remaining: 80, Refill: daily(50)}, base)
			expect(t, k.ID,
				spend{1, midnight, 79, true},                     // higher than the amount: kept
				spend{50, midnight.Add(time.Hour), 29, true},     // no second refill the same day
				spend{0, midnight.Add(24 * time.Hour), 50, true}, // the next day's, by a check
			)
		})

		t.Run("AtTheRefillTimeExactly", func(t *testing.T) {
			// Enough is left to spend without the refill: only the refill
			// time, compared exactly, tells to apply it first.
			k := credited(t, apikey.Credits{Remaining: 3, Refill: daily(7)}, base)
			expect(t, k.ID,
				spend{1, midnight.Add(-time.Microsecond), 2, true},
				spend{1, midnight, 6, true},
			)
			k = credited(t, apikey.Credits{Remaining: 0, Refill: daily(7)}, base)
			expect(t, k.ID, spend{1, midnight, 6, true})
		})

		t.Run("MissedRefillsApplyOnce", func(t *testing.T) {
			k := credited(t, apikey.Credits{Remaining: 0, Refill: daily(5)}, base)
			later := midnight.Add(3*24*time.Hour + time.Hour)
			expect(t, k.ID,
				spend{4, later, 1, true},
				spend{1, later.Add(time.Hour), 0, true},
				spend{1, later.Add(2 * time.Hour), 0, false},
			)
		})

		t.Run("MonthlyOnTheLastDayOfShorterMonths", func(t *testing.T) {
			created := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
			k := credited(t, apikey.Credits{Remaining: 0, Refill: &apikey.Refill{Amount: 10, Interval: apikey.RefillMonthly, DayOfMonth: 31}}, created)
			feb28 := time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)
			mar31 := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)
			apr30 := time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC)
			expect(t, k.ID,
				spend{1, created.Add(time.Hour), 0, false},
				spend{1, feb28.Add(-time.Second), 0, false},
				spend{1, feb28, 9, true},
				spend{9, mar31.Add(-time.Hour), 0, true},
				spend{1, mar31.Add(-time.Second), 0, false},
				spend{1, mar31, 9, true},
				spend{9, apr30.Add(-time.Second), 0, true},
				spend{1, apr30, 9, true},
			)
		})

		t.Run("RollSharesTheBalance", func(t *testing.T) {
			old, _ := newKey(t, "roller", base)
			old.Policy = apikey.Policy{
				Disabled:   true,
				RateLimit:  &apikey.RateLimit{Limit: 5, Period: time.Minute},
				Credits:    &apikey.Credits{Remaining: 10, Refill: daily(10)},
				AllowedIPs: prefixes("10.0.0.0/8"),
				Meta:       json.RawMessage(`{"plan":"pro"}`),
			}
			old.Lineage = old.ID
			if err := s.CreateKey(ctx, old, 100); err != nil {
				t.Fatal(err)
			}
			old.Credits = refillingAt(old.Credits, base)
			next, _ := newKey(t, "roller", base)
			next.Lineage = next.ID // as the service makes it: the roll replaces it
			created, previous, _, err := s.RollKey(ctx, apikey.UserOwner("roller"), old.ID, next, base, base.Add(time.Hour), nil)
			if err != nil {
				t.Fatal(err)
			}
			if created.Lineage != old.ID || previous.Lineage != old.ID {
				t.Errorf("lineages after the roll: new %s, old %s; want both %s", created.Lineage, previous.Lineage, old.ID)
			}
			if !reflect.DeepEqual(created.Policy, old.Policy) || !reflect.DeepEqual(previous.Policy, old.Policy) {
				t.Errorf("policies after the roll: new %s, old %s; want both %s", show(created.Policy), show(previous.Policy), show(old.Policy))
			}
			expect(t, created.Lineage, spend{4, base, 6, true})
			keys, err := s.ListKeys(ctx, apikey.UserOwner("roller"))
			if err != nil || len(keys) != 2 {
				t.Fatalf("list: %+v, %v", keys, err)
			}
			found, err := s.FindKeyByHash(ctx, next.Hash)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, found)
			for _, k := range keys {
				if k.Lineage != old.ID || k.Credits == nil || k.Credits.Remaining != 6 {
					t.Errorf("key %s: lineage %s, credits %+v; want %s with 6 left", k.ID, k.Lineage, k.Credits, old.ID)
				}
			}
			var n int
			if err := db.NewRaw("SELECT count(*) FROM credit_balances WHERE lineage_id IN (?, ?)", old.ID, next.ID).Scan(ctx, &n); err != nil || n != 1 {
				t.Errorf("%d balances for the two keys, %v; want one", n, err)
			}
		})
	})
}

// BenchmarkSpendCredits: spends of 1 from a balance that holds them, from
// parallel goroutines, on one key (every spend waits for the one before it
// on the row) and spread over many. The PostgreSQL ones need
// APIKEYD_TEST_POSTGRES_URL; run them with
//
//	go test -run '^$' -bench SpendCredits -benchmem ./internal/store/
func BenchmarkSpendCredits(b *testing.B) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, db := range dbtest.Names {
		for _, n := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/%dkeys", db, n), func(b *testing.B) {
				s := store.New(dbtest.Open(b, db), store.Config{})
				lineages := make([]string, n)
				for i := range lineages {
					k, _ := newKey(b, fmt.Sprintf("spender-%d", i), now)
					k.Credits, k.Lineage = &apikey.Credits{Remaining: apikey.MaxCredits}, k.ID
					if err := s.CreateKey(ctx, k, 100); err != nil {
						b.Fatal(err)
					}
					lineages[i] = k.ID
				}
				var next atomic.Int64
				b.ReportAllocs()
				b.ResetTimer() // not the database's creation, nor the keys'
				b.RunParallel(func(pb *testing.PB) {
					lineage := lineages[int(next.Add(1))%n]
					for pb.Next() {
						if _, ok, err := s.SpendCredits(ctx, lineage, 1, now); err != nil || !ok {
							b.Errorf("spend: %v, %v", ok, err)
							return
						}
					}
				})
			})
		}
	}
}
