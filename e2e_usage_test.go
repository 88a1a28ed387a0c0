package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// usageCounts is a bucket's or a key's counts, as REST writes them.
type usageCounts struct {
	Valid             int64 `json:"valid"`
	Disabled          int64 `json:"disabled"`
	IPNotAllowed      int64 `json:"ip_not_allowed"`
	InsufficientScope int64 `json:"insufficient_scope"`
	RateLimited       int64 `json:"rate_limited"`
	UsageExceeded     int64 `json:"usage_exceeded"`
	CreditsSpent      int64 `json:"credits_spent"`
}

type usageBucket struct {
	Start string `json:"start"`
	usageCounts
}

type usageReport struct {
	Granularity string        `json:"granularity"`
	Buckets     []usageBucket `json:"buckets"`
	Keys        []struct {
		KeyID     string  `json:"key_id"`
		KeyPrefix string  `json:"key_prefix"`
		Name      *string `json:"name"`
		usageCounts
	} `json:"keys"`
}

// usage GETs a usage route with tok and query, failing unless it answers 200.
func (e *testEnv) usage(tok, path, query string) usageReport {
	e.t.Helper()
	if query != "" {
		path += "?" + query
	}
	res := e.do("GET", path, bearer(tok), nil)
	if res.Status != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, res.Status, res.Body)
	}
	var u usageReport
	if err := json.Unmarshal(res.Body, &u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// TestUsageRanges: every bucket of the range, zeros included, and each bad
// range refused with 400 naming the parameter, on both routes; the usage of
// another user's key is 404, as everything of theirs.
func TestUsageRanges(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice := e.token("alice")
		busy := e.create(alice, str(`{"name": "busy"}`))
		quiet := e.create(alice, nil)

		t.Run("ZerosIncluded", func(t *testing.T) {
			hour := e.Clock.Now().UTC().Truncate(time.Hour)
			from := hour.Add(-5 * time.Hour).Format(time.RFC3339)
			u := e.usage(alice, "/auth/api-keys/"+busy.ID+"/usage", "from="+from)
			if u.Granularity != "hour" || len(u.Buckets) != 6 {
				t.Fatalf("%s, %d buckets; want 6 hourly", u.Granularity, len(u.Buckets))
			}
			for i, b := range u.Buckets {
				if want := hour.Add(time.Duration(i-5) * time.Hour).Format("2006-01-02T15:04:05.000Z"); b.Start != want || b.usageCounts != (usageCounts{}) {
					t.Errorf("bucket %d: %+v, want zeros from %s", i, b, want)
				}
			}
			s := e.usage(alice, "/auth/usage", "granularity=day")
			if s.Granularity != "day" || len(s.Buckets) != 30 || len(s.Keys) != 2 || !strings.HasSuffix(s.Buckets[29].Start, "T00:00:00.000Z") {
				t.Errorf("summary: %s, %d buckets, %d keys", s.Granularity, len(s.Buckets), len(s.Keys))
			}
			// Unused keys, newest first.
			if s.Keys[0].KeyID != quiet.ID || s.Keys[1].KeyID != busy.ID || *s.Keys[1].Name != "busy" || s.Keys[1].KeyPrefix != busy.KeyPrefix {
				t.Errorf("keys %+v", s.Keys)
			}
		})

		t.Run("BadRanges", func(t *testing.T) {
			hour := e.Clock.Now().UTC().Truncate(time.Hour)
			ts := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339)) }
			for _, c := range []struct{ query, names string }{
				{"granularity=minute", "granularity"},
				{"granularity=HOUR", "granularity"},
				{"granularity=", "granularity"},
				{"from=yesterday", "from"},
				{"to=2026-13-01T00:00:00Z", "to"},
				{"from=" + ts(hour.Add(-time.Hour+time.Second)), "from"},
				{"to=" + ts(hour.Add(30*time.Minute)), "to"},
				{"granularity=day&from=" + ts(hour.Add(-24*time.Hour)) + "&to=" + ts(hour.Truncate(24*time.Hour).Add(24*time.Hour)), "from"},
				{"from=" + ts(hour) + "&to=" + ts(hour.Add(-time.Hour)), "from"},
				{"from=" + ts(hour.Add(-745*time.Hour)) + "&to=" + ts(hour), "744"},
				{"granularity=day&from=" + ts(hour.Truncate(24*time.Hour).AddDate(0, 0, -367)), "366"},
				{"from=" + ts(hour.Add(-time.Hour)) + "&from=" + ts(hour.Add(-2*time.Hour)), "from"},
			} {
				for _, path := range []string{"/auth/api-keys/" + busy.ID + "/usage", "/auth/usage"} {
					res := e.do("GET", path+"?"+c.query, bearer(alice), nil)
					wantError(t, res, http.StatusBadRequest, "INVALID_REQUEST")
					if msg := res.JSON(t)["error"].(string); !strings.Contains(msg, c.names) {
						t.Errorf("%s?%s: %q does not name %s", path, c.query, msg, c.names)
					}
				}
			}
			// The longest ranges are fine.
			e.usage(alice, "/auth/usage", "from="+ts(hour.Add(-743*time.Hour)))
			e.usage(alice, "/auth/usage", "granularity=day&from="+ts(hour.Truncate(24*time.Hour).AddDate(0, 0, -365)))
		})

		t.Run("OwnerOnly", func(t *testing.T) {
			path := "/auth/api-keys/" + busy.ID + "/usage"
			wantError(t, e.do("GET", path, bearer(e.token("bob")), nil), http.StatusNotFound, "NOT_FOUND")
			wantError(t, e.do("GET", "/auth/api-keys/not-a-key/usage", bearer(alice), nil), http.StatusNotFound, "NOT_FOUND")
			wantError(t, e.do("GET", path, hdr("X-Api-Key", quiet.Key), nil), http.StatusForbidden, "JWT_REQUIRED")
			wantError(t, e.do("GET", "/auth/usage", nil, nil), http.StatusUnauthorized, "MISSING_AUTH")
			res := e.do("POST", path, bearer(alice), nil)
			wantError(t, res, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
			if res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow: %q", res.Header.Get("Allow"))
			}
			wantError(t, e.do("DELETE", "/auth/usage", bearer(alice), nil), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		})

		t.Run("GraphQL", func(t *testing.T) {
			_, g := e.gql(bearer(alice), `{ apiKeys { id usage { start valid } days: usage(granularity: DAY) { start } } usage { buckets { start } keys { keyId keyPrefix name valid creditsSpent } } }`, nil)
			if len(g.Errors) != 0 {
				t.Fatalf("errors: %+v", g.Errors)
			}
			for _, k := range g.Data["apiKeys"].([]any) {
				k := k.(map[string]any)
				if h, d := len(k["usage"].([]any)), len(k["days"].([]any)); h != 24 || d != 30 {
					t.Errorf("%d hours, %d days; want 24 and 30", h, d)
				}
			}
			if keys := g.Data["usage"].(map[string]any)["keys"].([]any); len(keys) != 2 {
				t.Errorf("usage.keys: %v", keys)
			}
			_, g = e.gql(bearer(alice), `query($from: Time) { usage(from: $from) { buckets { start } } }`, map[string]any{"from": "2026-01-01T00:30:00Z"})
			if codes := g.codes(); !reflect.DeepEqual(codes, []string{"INVALID_REQUEST"}) {
				t.Errorf("an unaligned from: %v", codes)
			}
			_, g = e.gql(hdr("X-Api-Key", quiet.Key), `{ usage { buckets { start } } }`, nil)
			if codes := g.codes(); !reflect.DeepEqual(codes, []string{"JWT_REQUIRED"}) {
				t.Errorf("with an API key: %v", codes)
			}
		})
	})
}

// TestUsageOfManyKeysInFixedQueries: listing one key or a hundred, each used,
// with their usage costs the same statements, through REST and GraphQL.
func TestUsageOfManyKeysInFixedQueries(t *testing.T) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			var count dbtest.Statements
			e := startEnv(t, envSpec{dsn: dbtest.DSN(t, db), onDB: func(db *bun.DB) { db.AddQueryHook(&count) }})
			alice := e.token("alice")
			measure := func(keys int) (rest, graphQL int64) {
				t.Helper()
				before := count.Count()
				if u := e.usage(alice, "/auth/usage", "granularity=day"); len(u.Keys) != keys {
					t.Fatalf("%d keys, want %d", len(u.Keys), keys)
				}
				rest = count.Count() - before
				before = count.Count()
				_, g := e.gql(bearer(alice), `{ apiKeys { id usage { valid } days: usage(granularity: DAY) { valid } } }`, nil)
				if n := len(g.Data["apiKeys"].([]any)); len(g.Errors) != 0 || n != keys {
					t.Fatalf("%d keys, %+v", n, g.Errors)
				}
				return rest, count.Count() - before
			}
			use := func(n int) {
				t.Helper()
				for range n {
					k := e.create(alice, nil)
					if s := e.verifyKey(k.Key); s != http.StatusOK {
						t.Fatalf("verify: %d", s)
					}
				}
				// Nothing left for the background writer, which would
				// count here.
				if err := e.App.Keys.FlushCounts(context.Background()); err != nil {
					t.Fatal(err)
				}
				if err := e.App.Keys.FlushUsage(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			use(1)
			rest1, gql1 := measure(1)
			use(99)
			rest100, gql100 := measure(100)
			if rest1 != rest100 || gql1 != gql100 {
				t.Errorf("statements for 1 key and for 100: REST %d and %d, GraphQL %d and %d", rest1, rest100, gql1, gql100)
			}
			// One for the counts, REST; one per range asked, GraphQL (the
			// listing itself is a prepared statement, run outside bun).
			if rest100 != 1 || gql100 != 2 {
				t.Errorf("REST %d statements, GraphQL %d; want 1 and 2", rest100, gql100)
			}
		})
	}
}
