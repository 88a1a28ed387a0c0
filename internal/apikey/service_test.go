package apikey_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/clocktest"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// watchedStore is a real store that counts key lookups, records which keys
// each TouchKeys call wrote, and can hold a lookup after the database has
// answered it.
type watchedStore struct {
	apikey.Store
	lookups atomic.Int64
	spends  atomic.Int64 // SpendCredits calls

	mu          sync.Mutex
	touches     [][]string
	afterLookup func() // when set, runs before FindKeyByHash returns
}

func (s *watchedStore) FindKeyByHash(ctx context.Context, hash string) (apikey.APIKey, error) {
	s.lookups.Add(1)
	k, err := s.Store.FindKeyByHash(ctx, hash)
	s.mu.Lock()
	hold := s.afterLookup
	s.mu.Unlock()
	if hold != nil {
		hold()
	}
	return k, err
}

func (s *watchedStore) SpendCredits(ctx context.Context, lineage string, cost int64, now time.Time) (int64, bool, error) {
	s.spends.Add(1)
	return s.Store.SpendCredits(ctx, lineage, cost, now)
}

func (s *watchedStore) TouchKeys(ctx context.Context, uses []apikey.Use, at time.Time) error {
	ids := make([]string, len(uses))
	for i, u := range uses {
		ids[i] = u.KeyID
	}
	s.mu.Lock()
	s.touches = append(s.touches, ids)
	s.mu.Unlock()
	return s.Store.TouchKeys(ctx, uses, at)
}

// takeTouches returns the ids written since the last call, one slice per
// TouchKeys call.
func (s *watchedStore) takeTouches() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.touches
	s.touches = nil
	return t
}

// fixture is a Service over a real, watched store, on a settable clock.
type fixture struct {
	svc   *apikey.Service
	store *watchedStore
	clock *clocktest.Clock
	jwt   context.Context // a signed-in user, alice
}

func newFixture(t *testing.T, dsn string, cfg apikey.Config) *fixture {
	t.Helper()
	return newFixtureAt(t, dsn, cfg, time.Now())
}

// newFixtureAt is newFixture with the clock stopped at at.
func newFixtureAt(t *testing.T, dsn string, cfg apikey.Config, at time.Time) *fixture {
	t.Helper()
	f := &fixture{
		store: &watchedStore{Store: store.New(dbtest.OpenDSN(t, dsn), store.Config{})},
		clock: clocktest.Stopped(at),
		jwt:   apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: "alice", Method: apikey.MethodJWT}),
	}
	cfg.Now = f.clock.Now
	f.svc = apikey.NewService(f.store, cfg)
	return f
}

// create makes a key for alice, expiring at expires when not nil.
func (f *fixture) create(t *testing.T, expires *time.Time) apikey.Created {
	t.Helper()
	k, err := f.svc.Create(f.jwt, apikey.CreateInput{ExpiresAt: expires})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// verify checks key and returns its error code ("" when it verified).
func (f *fixture) verify(t *testing.T, key string) apperr.Code {
	t.Helper()
	v, err := f.svc.Verify(context.Background(), apikey.VerifyRequest{Key: key})
	p := v.Principal
	if err != nil {
		return apperr.CodeOf(err)
	}
	if p.Method != apikey.MethodAPIKey || p.UserID != "alice" || p.KeyID == "" {
		t.Fatalf("verified as %+v", p)
	}
	return ""
}

// wantLookups checks how many lookups reached the store in total.
func (f *fixture) wantLookups(t *testing.T, want int64) {
	t.Helper()
	if got := f.store.lookups.Load(); got != want {
		t.Fatalf("%d lookups reached the database, want %d", got, want)
	}
}

func TestVerifyCache(t *testing.T) {
	const ttl, negTTL = 30 * time.Second, 2 * time.Second
	cfg := apikey.Config{CacheTTL: ttl, NegativeCacheTTL: negTTL}
	dbtest.Each(t, func(t *testing.T, dsn string) {
		t.Run("Hit", func(t *testing.T) {
			f := newFixture(t, dsn, cfg)
			k := f.create(t, nil)
			if f.svc.Cached(k.Secret) {
				t.Fatal("a key is cached before its first use")
			}
			for range 5 {
				if code := f.verify(t, k.Secret); code != "" {
					t.Fatalf("verify: %s", code)
				}
			}
			f.wantLookups(t, 1)
			if !f.svc.Cached(k.Secret) {
				t.Fatal("a verified key is not cached")
			}
		})

		t.Run("MalformedIsRefusedWithoutLookup", func(t *testing.T) {
			f := newFixture(t, dsn, cfg)
			k := f.create(t, nil)
			bad := apikeytest.BadChecksum(k.Secret)
			for _, key := range []string{bad, "atiru_short", ""} {
				if code := f.verify(t, key); code != apperr.InvalidToken {
					t.Fatalf("verify %q: %q, want %s", key, code, apperr.InvalidToken)
				}
			}
			f.wantLookups(t, 0)
		})

		t.Run("UnknownIsRememberedBriefly", func(t *testing.T) {
			f := newFixture(t, dsn, cfg)
			unknown := f.svc.Format().Generate() // well formed, never stored
			for range 3 {
				if code := f.verify(t, unknown); code != apperr.InvalidToken {
					t.Fatalf("unknown key: %q", code)
				}
			}
			f.wantLookups(t, 1)
			f.clock.Advance(negTTL)
			f.verify(t, unknown)
			f.wantLookups(t, 2)
		})

		t.Run("TTL", func(t *testing.T) {
			f := newFixture(t, dsn, cfg)
			k := f.create(t, nil)
			f.verify(t, k.Secret)
			f.clock.Advance(ttl - time.Millisecond)
			f.verify(t, k.Secret)
			f.wantLookups(t, 1)
			f.clock.Advance(time.Millisecond)
			if code := f.verify(t, k.Secret); code != "" {
				t.Fatalf("verify after the TTL: %s", code)
			}
			f.wantLookups(t, 2)
		})

		t.Run("ExpiredWhileCached", func(t *testing.T) {
			f := newFixture(t, dsn, cfg)
			expires := f.clock.Now().Add(10 * time.Second)
			k := f.create(t, &expires)
			if code := f.verify(t, k.Secret); code != "" {
				t.Fatalf("verify: %s", code)
			}
			f.clock.Advance(10*time.Second - time.Millisecond)
			if code := f.verify(t, k.Secret); code != "" {
				t.Fatalf("verify just before expiry: %s", code)
			}
			f.clock.Advance(time.Millisecond)
			if code := f.verify(t, k.Secret); code != apperr.InvalidToken {
				t.Fatalf("verify at expires_at: %q, want %s", code, apperr.InvalidToken)
			}
			if f.svc.Cached(k.Secret) {
				t.Fatal("an expired key is still cached")
			}
		})

		t.Run("RevokeEvictsBeforeReturning", func(t *testing.T) {
			f := newFixture(t, dsn, cfg)
			k := f.create(t, nil)
			f.verify(t, k.Secret)
			if !f.svc.Cached(k.Secret) {
				t.Fatal("not cached")
			}
			if _, err := f.svc.Revoke(f.jwt, k.ID); err != nil {
				t.Fatal(err)
			}
			if f.svc.Cached(k.Secret) {
				t.Fatal("a revoked key is still cached")
			}
			if code := f.verify(t, k.Secret); code != apperr.InvalidToken {
				t.Fatalf("verify after revoke: %q, want %s", code, apperr.InvalidToken)
			}
		})

		t.Run("FillRace", func(t *testing.T) {
			// A lookup reads the key, then stalls; meanwhile the key is
			// revoked. The stalled lookup must not put it back.
			f := newFixture(t, dsn, cfg)
			k := f.create(t, nil)
			reached, release := make(chan struct{}), make(chan struct{})
			f.store.mu.Lock()
			f.store.afterLookup = func() {
				close(reached)
				<-release
			}
			f.store.mu.Unlock()
			done := make(chan apperr.Code)
			go func() {
				_, err := f.svc.Verify(context.Background(), apikey.VerifyRequest{Key: k.Secret})
				done <- apperr.CodeOf(err)
			}()
			<-reached
			f.store.mu.Lock()
			f.store.afterLookup = nil
			f.store.mu.Unlock()
			if _, err := f.svc.Revoke(f.jwt, k.ID); err != nil {
				t.Fatal(err)
			}
			close(release)
			if code := <-done; code != "" {
				// It began before the revocation: either answer is
				// right, but the database said yes.
				t.Logf("the stalled lookup answered %s", code)
			}
			if f.svc.Cached(k.Secret) {
				t.Fatal("a lookup that began before the revocation cached the key after it")
			}
			if code := f.verify(t, k.Secret); code != apperr.InvalidToken {
				t.Fatalf("verify after revoke: %q, want %s", code, apperr.InvalidToken)
			}
		})

		t.Run("SuspendAndResume", func(t *testing.T) {
			f := newFixture(t, dsn, cfg)
			k := f.create(t, nil)
			f.verify(t, k.Secret)
			f.svc.SuspendCache()
			if f.svc.Cached(k.Secret) {
				t.Fatal("a suspended cache still holds the key")
			}
			f.verify(t, k.Secret)
			f.verify(t, k.Secret)
			f.wantLookups(t, 3)
			f.svc.ResumeCache()
			f.verify(t, k.Secret)
			f.verify(t, k.Secret)
			f.wantLookups(t, 4)
		})

		t.Run("EvictHash", func(t *testing.T) {
			f := newFixture(t, dsn, cfg)
			k := f.create(t, nil)
			f.verify(t, k.Secret)
			if err := f.svc.EvictHash("not a hash"); err == nil {
				t.Error("EvictHash accepted a malformed hash")
			}
			if !f.svc.Cached(k.Secret) {
				t.Fatal("a malformed hash evicted the key")
			}
			if err := f.svc.EvictHash(apikey.Hash(k.Secret)); err != nil {
				t.Fatal(err)
			}
			if f.svc.Cached(k.Secret) {
				t.Fatal("EvictHash left the key cached")
			}
		})

		t.Run("Off", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{CacheSize: -1})
			k := f.create(t, nil)
			unknown := f.svc.Format().Generate()
			for range 3 {
				f.verify(t, k.Secret)
				f.verify(t, unknown)
			}
			f.wantLookups(t, 6)
			if f.svc.Cached(k.Secret) {
				t.Fatal("a cache that is off holds a key")
			}
		})
	})
}

func TestLastUsedIsCoalesced(t *testing.T) {
	const interval = time.Minute
	for _, cacheSize := range []int{0, -1} {
		t.Run(fmt.Sprintf("CacheSize=%d", cacheSize), func(t *testing.T) {
			f := newFixture(t, dbtest.DSN(t, "sqlite"), apikey.Config{LastUsedInterval: interval, CacheSize: cacheSize, MaxKeysPerUser: 100})
			const keys, uses = 5, 40
			var secrets []string
			for range keys {
				secrets = append(secrets, f.create(t, nil).Secret)
			}
			burst := func() {
				var wg sync.WaitGroup
				for _, s := range secrets {
					for range uses {
						wg.Go(func() {
							if code := f.verify(t, s); code != "" {
								t.Errorf("verify: %s", code)
							}
						})
					}
				}
				wg.Wait()
			}
			flush := func() (statements, rows int) {
				if err := f.svc.FlushUsage(context.Background()); err != nil {
					t.Fatal(err)
				}
				for _, ids := range f.store.takeTouches() {
					statements++
					rows += len(ids)
				}
				return statements, rows
			}

			burst()
			if s, r := flush(); s != 1 || r != keys {
				t.Fatalf("%d uses of %d keys wrote %d rows in %d statements, want %d rows in 1", keys*uses, keys, r, s, keys)
			}
			// Within the interval, more uses write nothing.
			f.clock.Advance(interval - time.Second)
			burst()
			if s, r := flush(); s != 0 || r != 0 {
				t.Fatalf("uses within the interval wrote %d rows in %d statements", r, s)
			}
			// Once it has passed, each key is written once more.
			f.clock.Advance(time.Second)
			burst()
			if s, r := flush(); s != 1 || r != keys {
				t.Fatalf("after the interval: %d rows in %d statements, want %d in 1", r, s, keys)
			}
		})
	}
}

func TestLastUsedIsWrittenOnShutdown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, apikey.Config{})
		k := f.create(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.svc.RunUsageFlusher(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}()
		f.verify(t, k.Secret) // the last use before shutdown
		cancel()
		<-done
		keys, err := f.svc.List(f.jwt)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0].LastUsedAt == nil {
			t.Fatalf("last_used_at not written on shutdown: %+v", keys)
		}
	})
}

// TestLastUsedBacklogIsWrittenInBatches checks that a backlog larger than a
// statement's batch goes out in several bounded statements, and that a row
// the database refuses is dropped, named, while every other is written.
func TestLastUsedBacklogIsWrittenInBatches(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		const keys, batch = 101, 50
		apikey.SetTouchBatch(t, batch)
		f := newFixture(t, dsn, apikey.Config{MaxKeysPerUser: keys})
		created := make([]apikey.Created, keys)
		for i := range created {
			created[i] = f.create(t, nil)
		}
		useAll := func() {
			for _, k := range created {
				if code := f.verify(t, k.Secret); code != "" {
					t.Fatalf("verify: %s", code)
				}
			}
		}
		// lastUsed returns each key's last_used_at.
		lastUsed := func() map[string]*time.Time {
			listed, err := f.svc.List(f.jwt)
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]*time.Time{}
			for _, k := range listed {
				m[k.ID] = k.LastUsedAt
			}
			return m
		}
		checkBatches := func() (statements int) {
			for _, ids := range f.store.takeTouches() {
				if len(ids) > batch {
					t.Errorf("one statement wrote %d uses, more than %d", len(ids), batch)
				}
				statements++
			}
			return statements
		}

		useAll()
		if err := f.svc.FlushUsage(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := checkBatches(); n != 3 {
			t.Errorf("%d uses written in %d statements, want 3", keys, n)
		}
		for id, at := range lastUsed() {
			if at == nil {
				t.Fatalf("key %s: last_used_at not written", id)
			}
		}

		// The database now refuses to update one key: it is dropped, the
		// others are written, and the next flush does not try it again.
		bad := created[keys/2].ID
		refuseUpdates(t, dsn, bad)
		f.clock.Advance(time.Hour)
		useAll()
		err := f.svc.FlushUsage(context.Background())
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Fatalf("flush with a refused row: err %v, want one naming key %s", err, bad)
		}
		checkBatches()
		want := f.clock.Now().UTC().Truncate(time.Millisecond)
		for id, at := range lastUsed() {
			if id != bad && (at == nil || !at.Equal(want)) {
				t.Fatalf("key %s: last_used_at %v, want %v", id, at, want)
			}
			if id == bad && (at == nil || at.Equal(want)) {
				t.Fatalf("refused key: last_used_at %v", at)
			}
		}
		if err := f.svc.FlushUsage(context.Background()); err != nil {
			t.Fatalf("second flush: %v", err)
		}
		if n := checkBatches(); n != 0 {
			t.Fatalf("the refused use was written again (%d statements)", n)
		}
	})
}

// refuseUpdates makes the database of dsn refuse any update of key id, as
// it would a row it cannot take.
func refuseUpdates(t *testing.T, dsn, id string) {
	t.Helper()
	db, err := store.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{`CREATE TRIGGER refuse_update BEFORE UPDATE ON api_keys WHEN (OLD.id = '` + id + `') BEGIN SELECT RAISE(ABORT, 'refused'); END`}
	if store.IsPostgres(dsn) {
		stmts = []string{
			`CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$`,
			`CREATE TRIGGER refuse_update BEFORE UPDATE ON api_keys FOR EACH ROW WHEN (OLD.id = '` + id + `') EXECUTE FUNCTION refuse_update()`,
		}
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}
