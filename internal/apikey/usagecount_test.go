package apikey_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// countsStore is a real store whose AddCounts fails, as an outage does,
// while down is set, and which counts the calls and the rows written.
type countsStore struct {
	apikey.Store
	down  atomic.Bool
	calls atomic.Int64
	rows  atomic.Int64
}

func (s *countsStore) AddCounts(ctx context.Context, counts []apikey.HourCounts) error {
	s.calls.Add(1)
	if s.down.Load() {
		return apperr.New(apperr.ServerBusy, "database unavailable")
	}
	s.rows.Add(int64(len(counts)))
	return s.Store.AddCounts(ctx, counts)
}

func TestUsageCounting(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, apikey.Config{})
		// at is 10:00 UTC tomorrow; the clock stands at 11:30.
		at := f.clock.Now().UTC().Truncate(24 * time.Hour).Add(34 * time.Hour)
		f.clock.Advance(at.Add(90 * time.Minute).Sub(f.clock.Now()))
		k := f.create(t, nil)
		day := apikey.UsageRange{Granularity: apikey.Daily}

		t.Run("EveryOutcomeInItsHour", func(t *testing.T) {
			for _, c := range []struct {
				o       apikey.Outcome
				n       int
				credits int64
				at      time.Time
			}{
				{apikey.OutcomeOK, 3, 2, at},
				{apikey.OutcomeOK, 1, 0, at.Add(59*time.Minute + 59*time.Second)},
				{"disabled", 1, 0, at},
				{"ip_not_allowed", 2, 0, at},
				{apikey.OutcomeInsufficientScope, 3, 0, at},
				{"rate_limited", 4, 0, at},
				{"usage_exceeded", 5, 0, at},
				{apikey.OutcomeOK, 1, 10, at.Add(time.Hour)},
				{apikey.OutcomeOK, 1, 1, at}, // a request that began before the hour turned
				// No key's: never counted.
				{apikey.OutcomeUnknown, 1, 0, at},
				{apikey.OutcomeRevoked, 1, 0, at},
				{apikey.OutcomeExpired, 1, 0, at},
				{apikey.OutcomeError, 1, 0, at},
			} {
				for range c.n {
					f.svc.Count(k.ID, c.o, c.credits, c.at)
				}
			}
			if err := f.svc.FlushCounts(context.Background()); err != nil {
				t.Fatal(err)
			}
			from, to := at.Add(-time.Hour), at.Add(2*time.Hour)
			u, err := f.svc.KeyUsage(f.jwt, k.ID, apikey.UsageRange{From: &from, To: &to})
			if err != nil {
				t.Fatal(err)
			}
			want := []apikey.UsageBucket{
				{Start: from},
				{Start: at, Counts: apikey.Counts{Valid: 5, Disabled: 1, IPNotAllowed: 2, InsufficientScope: 3, RateLimited: 4, UsageExceeded: 5, CreditsSpent: 7}},
				{Start: at.Add(time.Hour), Counts: apikey.Counts{Valid: 1, CreditsSpent: 10}},
			}
			if u.Granularity != apikey.Hourly || !reflect.DeepEqual(u.Buckets, want) {
				t.Errorf("got %s %+v\nwant %+v", u.Granularity, u.Buckets, want)
			}
			// By day: today's bucket holds both hours; the 29 before are zeros.
			u, err = f.svc.KeyUsage(f.jwt, k.ID, day)
			if err != nil {
				t.Fatal(err)
			}
			if len(u.Buckets) != 30 {
				t.Fatalf("%d daily buckets, want 30", len(u.Buckets))
			}
			last := u.Buckets[29]
			if wantDay := (apikey.UsageBucket{Start: at.Truncate(24 * time.Hour), Counts: apikey.Counts{Valid: 6, Disabled: 1, IPNotAllowed: 2, InsufficientScope: 3, RateLimited: 4, UsageExceeded: 5, CreditsSpent: 17}}); last != wantDay {
				t.Errorf("today: %+v, want %+v", last, wantDay)
			}
			for _, b := range u.Buckets[:29] {
				if b.Total() != 0 {
					t.Errorf("an earlier day counts %+v", b)
				}
			}
		})

		t.Run("KeptThroughAnOutage", func(t *testing.T) {
			cs := &countsStore{Store: f.store}
			svc := apikey.NewService(cs, apikey.Config{Now: f.clock.Now})
			k2 := f.create(t, nil)
			cs.down.Store(true)
			svc.Count(k2.ID, apikey.OutcomeOK, 1, at)
			if err := svc.FlushCounts(context.Background()); apperr.CodeOf(err) != apperr.ServerBusy {
				t.Fatalf("flush during the outage: %v, want SERVER_BUSY", err)
			}
			svc.Count(k2.ID, apikey.OutcomeOK, 1, at)
			svc.Count(k2.ID, "rate_limited", 0, at)
			cs.down.Store(false)
			if err := svc.FlushCounts(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Nothing is written twice once the database is back.
			if err := svc.FlushCounts(context.Background()); err != nil || cs.calls.Load() != 2 {
				t.Fatalf("%d writes, %v; want 2 (nothing left to write)", cs.calls.Load(), err)
			}
			u, err := f.svc.KeyUsage(f.jwt, k2.ID, apikey.UsageRange{})
			if err != nil {
				t.Fatal(err)
			}
			var sum apikey.Counts
			for _, b := range u.Buckets {
				sum.Add(b.Counts)
			}
			if want := (apikey.Counts{Valid: 2, RateLimited: 1, CreditsSpent: 2}); sum != want {
				t.Errorf("after the outage: %+v, want %+v", sum, want)
			}
		})

		t.Run("BoundedThroughAnOutage", func(t *testing.T) {
			apikey.SetMaxBacklog(t, 10)
			cs := &countsStore{Store: f.store}
			cs.down.Store(true)
			svc := apikey.NewService(cs, apikey.Config{Now: f.clock.Now})
			for range 25 {
				svc.Count(uuid.NewString(), apikey.OutcomeOK, 0, at)
			}
			if err := svc.FlushCounts(context.Background()); err == nil {
				t.Fatal("no error for the counts dropped")
			}
			cs.down.Store(false)
			if err := svc.FlushCounts(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := cs.rows.Load(); n != 10 {
				t.Errorf("%d key-hours kept through the outage, want the bound, 10", n)
			}
		})

		t.Run("Retention", func(t *testing.T) {
			// Kept 2h: at 11:30, the counts of 10:00 stay and those of 9:00
			// go.
			svc := apikey.NewService(f.store, apikey.Config{Now: f.clock.Now, UsageRetention: 2 * time.Hour})
			k3 := f.create(t, nil)
			svc.Count(k3.ID, apikey.OutcomeOK, 0, at.Add(-time.Hour))
			svc.Count(k3.ID, apikey.OutcomeOK, 0, at)
			if err := svc.FlushCounts(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.PruneCounts(context.Background()); err != nil {
				t.Fatal(err)
			}
			from := at.Add(-2 * time.Hour)
			u, err := svc.KeyUsage(f.jwt, k3.ID, apikey.UsageRange{From: &from})
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, b := range u.Buckets {
				got = append(got, b.Valid)
			}
			if want := []int64{0, 0, 1, 0}; !reflect.DeepEqual(got, want) {
				t.Errorf("after retention: %v, want %v", got, want)
			}
		})

		t.Run("ConcurrentCountsAllWritten", func(t *testing.T) {
			cs := &countsStore{Store: f.store}
			svc := apikey.NewService(cs, apikey.Config{Now: f.clock.Now})
			keys := make([]string, 8)
			for i := range keys {
				keys[i] = f.create(t, nil).ID
			}
			const perGoroutine = 2000
			var wg sync.WaitGroup
			stop := make(chan struct{})
			flushed := make(chan struct{})
			go func() { // the writer, flushing while verifications count
				defer close(flushed)
				for {
					select {
					case <-stop:
						return
					default:
						if err := svc.FlushCounts(context.Background()); err != nil {
							t.Error(err)
						}
					}
				}
			}()
			for g := range 8 {
				wg.Go(func() {
					for i := range perGoroutine {
						svc.Count(keys[(g+i)%len(keys)], apikey.OutcomeOK, 1, at)
					}
				})
			}
			wg.Wait()
			close(stop)
			<-flushed
			if err := svc.FlushCounts(context.Background()); err != nil {
				t.Fatal(err)
			}
			s, err := f.svc.UsageSummary(f.jwt, apikey.UsageRange{})
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, k := range s.Keys {
				if slices.Contains(keys, k.KeyID) {
					sum += k.Valid
					if k.Valid != k.CreditsSpent {
						t.Errorf("key %s: %d valid, %d credits", k.KeyID, k.Valid, k.CreditsSpent)
					}
				}
			}
			if want := int64(8 * perGoroutine); sum != want {
				t.Errorf("%d authentications written, want %d", sum, want)
			}
		})
	})
}

// recordingStore's part of the CountStore (see verify_test.go).

func (s *recordingStore) AddCounts(context.Context, []apikey.HourCounts) error {
	s.record("AddCounts")
	return nil
}

func (s *recordingStore) KeyCounts(context.Context, apikey.Owner, string, time.Time, time.Time) ([]apikey.HourCounts, error) {
	s.record("KeyCounts")
	return nil, nil
}

func (s *recordingStore) OwnerCounts(context.Context, apikey.Owner, time.Time, time.Time) ([]apikey.HourCounts, error) {
	s.record("OwnerCounts")
	return nil, nil
}

func (s *recordingStore) PruneCounts(context.Context, time.Time) (int, error) {
	s.record("PruneCounts")
	return 0, nil
}

// TestTenThousandKeysOneWrite: the counts of 10,000 distinct keys used in
// one second are written in one statement.
func TestTenThousandKeysOneWrite(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := dbtest.OpenDSN(t, dsn)
		var count dbtest.Statements
		db.AddQueryHook(&count)
		now := time.Now()
		svc := apikey.NewService(store.New(db, store.Config{}), apikey.Config{Now: func() time.Time { return now }})
		for i := range 10_000 {
			svc.Count(uuid.NewString(), apikey.OutcomeOK, int64(i%3), now)
		}
		if err := svc.FlushCounts(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := count.Count(); n != 1 {
			t.Errorf("the counts of 10,000 keys written in %d statements, want 1", n)
		}
		var rows, credits int64
		if err := db.NewSelect().TableExpr("key_usage").ColumnExpr("COUNT(*), SUM(credits_spent)").Scan(context.Background(), &rows, &credits); err != nil {
			t.Fatal(err)
		}
		if rows != 10_000 || credits != 9_999 {
			t.Errorf("%d rows, %d credits; want 10000 and 9999", rows, credits)
		}
	})
}

func TestUsageRanges(t *testing.T) {
	f := newFixture(t, "file:"+t.TempDir()+"/apikeyd.db", apikey.Config{})
	now := f.clock.Now().UTC()
	hour := now.Truncate(time.Hour)
	day := now.Truncate(24 * time.Hour)
	k := f.create(t, nil)
	tp := func(t time.Time) *time.Time { return &t }
	for _, c := range []struct {
		name     string
		r        apikey.UsageRange
		bad      string // a word of the message of a 400; "" when valid
		from, to time.Time
	}{
		{name: "HourlyDefault", r: apikey.UsageRange{}, from: hour.Add(-23 * time.Hour), to: hour.Add(time.Hour)},
		{name: "DailyDefault", r: apikey.UsageRange{Granularity: apikey.Daily}, from: day.Add(-29 * 24 * time.Hour), to: day.Add(24 * time.Hour)},
		{name: "FromOnly", r: apikey.UsageRange{From: tp(hour.Add(-2 * time.Hour))}, from: hour.Add(-2 * time.Hour), to: hour.Add(time.Hour)},
		{name: "ToOnly", r: apikey.UsageRange{To: tp(hour.Add(-5 * time.Hour))}, from: hour.Add(-29 * time.Hour), to: hour.Add(-5 * time.Hour)},
		{name: "MostHours", r: apikey.UsageRange{From: tp(hour.Add(-744 * time.Hour)), To: tp(hour)}, from: hour.Add(-744 * time.Hour), to: hour},
		{name: "MostDays", r: apikey.UsageRange{Granularity: apikey.Daily, From: tp(day.AddDate(0, 0, -366)), To: tp(day)}, from: day.AddDate(0, 0, -366), to: day},
		{name: "OtherZone", r: apikey.UsageRange{From: tp(hour.In(time.FixedZone("", 5*3600+1800)))}, from: hour, to: hour.Add(time.Hour)},
		{name: "TooManyHours", r: apikey.UsageRange{From: tp(hour.Add(-745 * time.Hour)), To: tp(hour)}, bad: "744"},
		{name: "TooManyDays", r: apikey.UsageRange{Granularity: apikey.Daily, From: tp(day.AddDate(0, 0, -367)), To: tp(day)}, bad: "366"},
		{name: "Reversed", r: apikey.UsageRange{From: tp(hour), To: tp(hour.Add(-time.Hour))}, bad: "from"},
		{name: "Empty", r: apikey.UsageRange{From: tp(hour), To: tp(hour)}, bad: "from"},
		{name: "FromUnaligned", r: apikey.UsageRange{From: tp(hour.Add(-time.Hour + time.Minute))}, bad: "from"},
		{name: "ToUnaligned", r: apikey.UsageRange{To: tp(hour.Add(time.Millisecond))}, bad: "to"},
		{name: "DayUnaligned", r: apikey.UsageRange{Granularity: apikey.Daily, From: tp(day.Add(-time.Hour))}, bad: "from"},
		{name: "UnknownGranularity", r: apikey.UsageRange{Granularity: "minute"}, bad: "granularity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, err := f.svc.KeyUsage(f.jwt, k.ID, c.r)
			s, serr := f.svc.UsageSummary(f.jwt, c.r)
			if c.bad != "" {
				for _, err := range []error{err, serr} {
					if apperr.CodeOf(err) != apperr.InvalidRequest || !strings.Contains(apperr.MessageOf(err), c.bad) {
						t.Errorf("got %v, want INVALID_REQUEST naming %q", err, c.bad)
					}
				}
				return
			}
			if err != nil || serr != nil {
				t.Fatal(err, serr)
			}
			for _, b := range [][]apikey.UsageBucket{u.Buckets, s.Buckets} {
				step := time.Hour
				if c.r.Granularity == apikey.Daily {
					step = 24 * time.Hour
				}
				if !b[0].Start.Equal(c.from) || !b[len(b)-1].Start.Add(step).Equal(c.to) {
					t.Errorf("buckets from %s to %s, want [%s, %s)", b[0].Start, b[len(b)-1].Start.Add(step), c.from, c.to)
				}
				for i := range b[1:] {
					if b[i+1].Start.Sub(b[i].Start) != step {
						t.Fatalf("bucket %d starts at %s after %s", i+1, b[i+1].Start, b[i].Start)
					}
				}
			}
		})
	}
	t.Run("NotTheCallersKey", func(t *testing.T) {
		mallory := apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: "mallory", Method: apikey.MethodJWT})
		for _, id := range []string{k.ID, uuid.NewString(), "not-a-uuid"} {
			if _, err := f.svc.KeyUsage(mallory, id, apikey.UsageRange{}); apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("%s: %v, want NOT_FOUND", id, err)
			}
		}
	})
	t.Run("APIKeyPrincipal", func(t *testing.T) {
		p := apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: "alice", Method: apikey.MethodAPIKey, KeyID: k.ID})
		if _, err := f.svc.KeyUsage(p, k.ID, apikey.UsageRange{}); apperr.CodeOf(err) != apperr.JWTRequired {
			t.Errorf("%v, want JWT_REQUIRED", err)
		}
	})
}
