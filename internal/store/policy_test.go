package store_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun/migrate"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
	"github.com/apikeyd/apikeyd/migrations"
)

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// policies are the shapes of policy a key may have, each with its name.
var policies = []struct {
	name   string
	policy apikey.Policy
}{
	{"None", apikey.Policy{}},
	{"Disabled", apikey.Policy{Disabled: true}},
	{"RateLimit", apikey.Policy{RateLimit: &apikey.RateLimit{Limit: 100, Period: time.Minute}}},
	{"CreditsWithoutRefill", apikey.Policy{Credits: &apikey.Credits{Remaining: 0}}},
	{"DailyRefill", apikey.Policy{Credits: &apikey.Credits{Remaining: apikey.MaxCredits,
		Refill: &apikey.Refill{Amount: 5, Interval: apikey.RefillDaily}}}},
	{"MonthlyRefill", apikey.Policy{Credits: &apikey.Credits{Remaining: 7,
		Refill: &apikey.Refill{Amount: 10, Interval: apikey.RefillMonthly, DayOfMonth: 31}}}},
	{"AllowedIPs", apikey.Policy{AllowedIPs: prefixes("10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "::1/128")}},
	{"NoAddressAllowed", apikey.Policy{AllowedIPs: []netip.Prefix{}}},
	{"Meta", apikey.Policy{Meta: json.RawMessage(`{"plan":"pro","seats":[1,2],"note":"a \"quoted\" word"}`)}},
	{"Everything", apikey.Policy{
		Disabled:   true,
		RateLimit:  &apikey.RateLimit{Limit: apikey.MaxRateLimit, Period: apikey.MaxRateLimitPeriod},
		Credits:    &apikey.Credits{Remaining: 3, Refill: &apikey.Refill{Amount: 1000, Interval: apikey.RefillMonthly, DayOfMonth: 1}},
		AllowedIPs: prefixes("203.0.113.0/24"),
		Meta:       json.RawMessage(`{}`),
	}},
}

// TestPolicyRoundTrip: every shape of policy CreateKey stores, ListKeys and
// FindKeyByHash read back exactly (nil and empty allowed addresses differ),
// with the lineage's balance and its refill, and the key's lineage.
func TestPolicyRoundTrip(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	dbtest.Each(t, func(t *testing.T, dsn string) {
		s := mustStore(t, dsn)
		for _, c := range policies {
			t.Run(c.name, func(t *testing.T) {
				user := "policy-" + c.name
				k, _ := newKey(t, user, base)
				k.Policy, k.Lineage = c.policy, k.ID
				if err := s.CreateKey(ctx, k, 100); err != nil {
					t.Fatal(err)
				}
				k.Credits = refillingAt(k.Credits, base)
				found, err := s.FindKeyByHash(ctx, k.Hash)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(found.Policy, k.Policy) || found.Lineage != k.ID {
					t.Errorf("FindKeyByHash: policy %s, lineage %s; want %s, %s", show(found.Policy), found.Lineage, show(k.Policy), k.ID)
				}
				if c := found.Credits; c != nil && !c.RefillAt.Equal(k.Credits.RefillAt) {
					t.Errorf("FindKeyByHash: next refill %v, want %v", c.RefillAt, k.Credits.RefillAt)
				}
				listed, err := s.ListKeys(ctx, apikey.UserOwner(user))
				if err != nil {
					t.Fatal(err)
				}
				if len(listed) != 1 || !reflect.DeepEqual(listed[0], k.APIKey) {
					t.Errorf("ListKeys:\n got %+v\nwant [%+v]", listed, k.APIKey)
				}
			})
		}
	})
}

// refillingAt is c as the store reads back a balance it set at at: with
// its next refill time, when it has a refill.
func refillingAt(c *apikey.Credits, at time.Time) *apikey.Credits {
	if c == nil || c.Refill == nil {
		return c
	}
	read := *c
	read.RefillAt = c.Refill.Next(at)
	return &read
}

// show prints a policy with what its pointers point at.
func show(p apikey.Policy) string {
	b, _ := json.Marshal(p)
	return string(b)
}

// TestPolicyMigration: a key stored before the usage policy's migration
// comes out of it as it was, enabled, without limits, its own lineage; the
// migration rolls back and applies again with keys in the table.
func TestPolicyMigration(t *testing.T) {
	ctx := context.Background()
	const policyMigration = "20261201000008"
	base := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db, err := store.Open(dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		all, err := migrations.For(db.Dialect().Name())
		if err != nil {
			t.Fatal(err)
		}
		before := migrate.NewMigrations()
		for _, m := range all.Sorted() {
			if m.Name < policyMigration {
				before.Add(m)
			}
		}
		m := migrate.NewMigrator(db, before)
		if err := m.Init(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		k, _ := newKey(t, "legacy", base)
		exp := base.Add(time.Hour)
		k.ExpiresAt, k.Scopes = &exp, []string{"orders:read"}
		if _, err := db.ExecContext(ctx,
			"INSERT INTO api_keys (id, user_id, key_hash, key_prefix, name, created_at, expires_at, scopes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			k.ID, k.UserID, k.Hash, k.KeyPrefix, k.Name, k.CreatedAt, k.ExpiresAt, `["orders:read"]`); err != nil {
			t.Fatal(err)
		}
		want := k.APIKey
		want.Lineage = k.ID

		check := func(t *testing.T) {
			t.Helper()
			s := store.New(db, store.Config{})
			listed, err := s.ListKeys(ctx, apikey.UserOwner("legacy"))
			if err != nil {
				t.Fatal(err)
			}
			if len(listed) != 1 || !reflect.DeepEqual(listed[0], want) {
				t.Errorf("ListKeys:\n got %+v\nwant [%+v]", listed, want)
			}
			found, err := s.FindKeyByHash(ctx, k.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(found.Policy, apikey.Policy{}) || found.Lineage != k.ID || found.ID != k.ID {
				t.Errorf("FindKeyByHash: %+v, want key %s, no policy, its own lineage", found, k.ID)
			}
		}
		g, err := store.MigrateUp(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Migrations) == 0 || !strings.HasPrefix(g.Migrations[0].Name, policyMigration) {
			t.Fatalf("migrated %v, want the policy's migration first", g.Migrations)
		}
		check(t)

		if _, err := store.MigrateDown(ctx, db); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.NewRaw("SELECT count(*) FROM api_keys WHERE key_hash = ?", k.Hash).Scan(ctx, &n); err != nil || n != 1 {
			t.Fatalf("after rolling the migration back: %d keys, %v; want the key kept", n, err)
		}
		if _, err := store.MigrateUp(ctx, db); err != nil {
			t.Fatal(err)
		}
		check(t)
	})
}
