package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/config"
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

// sum adds up every bucket's counts.
func (u usageReport) sum() usageCounts {
	var s usageCounts
	for _, b := range u.Buckets {
		s.Valid += b.Valid
		s.Disabled += b.Disabled
		s.IPNotAllowed += b.IPNotAllowed
		s.InsufficientScope += b.InsufficientScope
		s.RateLimited += b.RateLimited
		s.UsageExceeded += b.UsageExceeded
		s.CreditsSpent += b.CreditsSpent
	}
	return s
}

// waitUsage polls the usage of key id until it sums to want, failing after
// five seconds: the documented delay.
func (e *testEnv) waitUsage(tok, id string, want usageCounts) usageReport {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		u := e.usage(tok, "/auth/api-keys/"+id+"/usage", "")
		if u.sum() == want {
			return u
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("usage of %s after 5s: %+v, want %+v", id, u.sum(), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUsage: a known mix of verifications shows in both reports, REST and
// GraphQL, within five seconds, hour by hour and day by day.
func TestUsage(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice := e.token("alice")
		busy := e.create(alice, str(`{"name": "busy", "scopes": ["orders:read"]}`))
		quiet := e.create(alice, str(`{"name": "quiet"}`))
		for range 3 {
			if s := e.verifyKey(busy.Key); s != http.StatusOK {
				t.Fatalf("verify: %d", s)
			}
		}
		for range 2 {
			if res := e.verifyScoped(busy.Key, "scope=orders:write"); res.Status != http.StatusForbidden {
				t.Fatalf("verify without the scope: %d", res.Status)
			}
		}
		e.verifyKey(e.unknownKey()) // nobody's usage
		u := e.waitUsage(alice, busy.ID, usageCounts{Valid: 3, InsufficientScope: 2})

		t.Run("EveryHourZerosIncluded", func(t *testing.T) {
			if u.Granularity != "hour" || len(u.Buckets) != 24 {
				t.Fatalf("%s, %d buckets; want 24 hourly", u.Granularity, len(u.Buckets))
			}
			now := e.Clock.Now().UTC().Truncate(time.Hour)
			for i, b := range u.Buckets {
				if want := now.Add(time.Duration(i-23) * time.Hour).Format("2006-01-02T15:04:05.000Z"); b.Start != want {
					t.Errorf("bucket %d starts at %s, want %s", i, b.Start, want)
				}
				if i < 23 && b.usageCounts != (usageCounts{}) {
					t.Errorf("bucket %d counts %+v, want zeros", i, b.usageCounts)
				}
			}
			d := e.usage(alice, "/auth/api-keys/"+busy.ID+"/usage", "granularity=day")
			if d.Granularity != "day" || len(d.Buckets) != 30 || d.sum() != u.sum() || !strings.HasSuffix(d.Buckets[29].Start, "T00:00:00.000Z") {
				t.Errorf("by day: %s, %d buckets, %+v, last %s", d.Granularity, len(d.Buckets), d.sum(), d.Buckets[len(d.Buckets)-1].Start)
			}
			if q := e.usage(alice, "/auth/api-keys/"+quiet.ID+"/usage", ""); len(q.Buckets) != 24 || q.sum() != (usageCounts{}) {
				t.Errorf("an unused key: %d buckets, %+v", len(q.Buckets), q.sum())
			}
		})

		t.Run("Summary", func(t *testing.T) {
			s := e.usage(alice, "/auth/usage", "")
			if len(s.Buckets) != 24 || s.sum() != (usageCounts{Valid: 3, InsufficientScope: 2}) {
				t.Errorf("together: %d buckets, %+v", len(s.Buckets), s.sum())
			}
			if len(s.Keys) != 2 || s.Keys[0].KeyID != busy.ID || s.Keys[1].KeyID != quiet.ID {
				t.Fatalf("keys %+v, want busy then quiet", s.Keys)
			}
			if k := s.Keys[0]; k.KeyPrefix != busy.KeyPrefix || k.Name == nil || *k.Name != "busy" || k.usageCounts != (usageCounts{Valid: 3, InsufficientScope: 2}) {
				t.Errorf("busy: %+v", k)
			}
			if b := e.usage(e.token("bob"), "/auth/usage", ""); len(b.Keys) != 0 || b.sum() != (usageCounts{}) {
				t.Errorf("bob sees %+v", b)
			}
		})

		t.Run("GraphQL", func(t *testing.T) {
			_, g := e.gql(bearer(alice), `{
  apiKeys { id usage { valid insufficientScope } days: usage(granularity: DAY) { valid } }
  usage { buckets { valid } keys { keyId valid insufficientScope creditsSpent } }
}`, nil)
			if len(g.Errors) != 0 {
				t.Fatalf("errors: %+v", g.Errors)
			}
			sum := func(buckets any, field string) (n float64) {
				for _, b := range buckets.([]any) {
					n += b.(map[string]any)[field].(float64)
				}
				return n
			}
			for _, k := range g.Data["apiKeys"].([]any) {
				k := k.(map[string]any)
				want := map[bool]float64{true: 3, false: 0}[k["id"] == busy.ID]
				if v, d := sum(k["usage"], "valid"), sum(k["days"], "valid"); v != want || d != want {
					t.Errorf("key %s: %v valid by hour, %v by day; want %v", k["id"], v, d, want)
				}
			}
			s := g.Data["usage"].(map[string]any)
			if v := sum(s["buckets"], "valid"); v != 3 {
				t.Errorf("usage.buckets: %v valid, want 3", v)
			}
			first := s["keys"].([]any)[0].(map[string]any)
			if first["keyId"] != busy.ID || first["valid"] != 3.0 || first["insufficientScope"] != 2.0 {
				t.Errorf("usage.keys[0]: %v", first)
			}
		})

		t.Run("RolledKeyStaysReadable", func(t *testing.T) {
			e.roll(alice, busy.ID, nil) // grace 0: revoked at once
			if u := e.usage(alice, "/auth/api-keys/"+busy.ID+"/usage", ""); u.sum() != (usageCounts{Valid: 3, InsufficientScope: 2}) {
				t.Errorf("the rolled key's usage: %+v", u.sum())
			}
		})
	})
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
				// From 01:00 UTC: never a day's start, whatever the hour of the run.
				{"granularity=day&from=" + ts(hour.Truncate(24*time.Hour).Add(-23*time.Hour)) + "&to=" + ts(hour.Truncate(24*time.Hour).Add(24*time.Hour)), "from"},
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
				if u := e.usage(alice, "/auth/usage", "granularity=day"); len(u.Keys) != keys || u.sum().Valid != int64(keys) {
					t.Fatalf("%d keys with %d uses, want %d and %d", len(u.Keys), u.sum().Valid, keys, keys)
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

// call sends method path to a server process with the headers h (as pairs)
// and body, and returns the status and the decoded JSON answer.
func (p serverProcess) call(t testing.TB, method, path, body string, h ...string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// TestUsageCountedByEveryServerUntilSIGTERM runs real apikeyd processes
// (two on one PostgreSQL, whose counts add up; one on SQLite), sends each
// a known mix of verifications, and stops them with SIGTERM right after the
// last answer, before their writer's next tick: the counts read afterwards
// are exact, the last second's included.
func TestUsageCountedByEveryServerUntilSIGTERM(t *testing.T) {
	bin := buildServer(t)
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			dsn := dbtest.DSN(t, db)
			secret := strings.Repeat("u", 40)
			env := []string{"DATABASE_URL=" + dsn, "JWT_SECRET=" + secret}
			servers := []serverProcess{startServer(t, bin, env...)}
			if db == "postgres" {
				servers = append(servers, startServer(t, bin, env...))
			}
			tok, err := auth.MintToken([]byte(secret), "frank", time.Hour, "", "")
			if err != nil {
				t.Fatal(err)
			}
			jwt := "Bearer " + tok
			keys := map[string]struct{ id, key string }{}
			for name, body := range usageMix {
				status, k := servers[0].call(t, "POST", "/auth/api-keys", body, "Authorization", jwt)
				if status != http.StatusCreated {
					t.Fatalf("create %s: %d %v", name, status, k)
				}
				keys[name] = struct{ id, key string }{k["id"].(string), k["key"].(string)}
			}
			const rounds = 20 // per server and key
			for i := range rounds * len(servers) {
				srv := servers[i%len(servers)]
				for name, k := range keys {
					status, _ := srv.call(t, "GET", "/auth/verify?scope=orders:read&cost=2", "", "X-Api-Key", k.key)
					if want := usageMixStatus(name, i/len(servers), i); status != want {
						t.Fatalf("verify %s, verification %d: %d, want %d", name, i, status, want)
					}
				}
			}
			for _, srv := range servers {
				if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
			}
			for _, srv := range servers {
				if err := srv.Wait(); err != nil {
					t.Fatalf("the server's exit: %v", err)
				}
			}
			e := newEnvDSN(t, dsn, func(c *config.Config) { c.JWTSecret = secret })
			for name, k := range keys {
				u := e.usage(tok, "/auth/api-keys/"+k.id+"/usage", "")
				if want := usageMixCounts(name, rounds, len(servers)); u.sum() != want {
					t.Errorf("%s: %+v, want %+v", name, u.sum(), want)
				}
			}
		})
	}
}

// usageMix are the keys of TestUsageCountedByEveryServerUntilSIGTERM, each
// verified with ?scope=orders:read&cost=2, rounds times on each server:
// rate-limited keys have a bucket per server (no REDIS_URL), and a balance
// is one for all servers.
var usageMix = map[string]string{
	"valid":     `{"scopes": ["orders:read"]}`,
	"unscoped":  `{"scopes": ["orders:write"]}`,
	"disabled":  `{"enabled": false}`,
	"elsewhere": `{"allowed_ips": ["192.0.2.0/24"]}`,
	"limited":   `{"rate_limit": {"limit": 3, "period_seconds": 86400}}`,
	"credited":  `{"credits": {"remaining": 11}}`,
}

// usageMixStatus is the answer to the verification of the key name in
// round i (from 0) on a server, of the total-th verification of the key of
// all servers (from 0).
func usageMixStatus(name string, i, total int) int {
	switch name {
	case "unscoped", "disabled", "elsewhere":
		return http.StatusForbidden
	case "limited":
		if i >= 3 {
			return http.StatusTooManyRequests
		}
	case "credited":
		if total >= 5 { // 11 credits: five verifications of cost 2
			return http.StatusTooManyRequests
		}
	}
	return http.StatusOK
}

// usageMixCounts is what the key name counts after rounds rounds on each
// of servers.
func usageMixCounts(name string, rounds, servers int) usageCounts {
	n := int64(rounds * servers)
	switch name {
	case "unscoped":
		return usageCounts{InsufficientScope: n}
	case "disabled":
		return usageCounts{Disabled: n}
	case "elsewhere":
		return usageCounts{IPNotAllowed: n}
	case "limited":
		return usageCounts{Valid: int64(3 * servers), RateLimited: n - int64(3*servers)}
	case "credited":
		return usageCounts{Valid: 5, UsageExceeded: n - 5, CreditsSpent: 10}
	}
	return usageCounts{Valid: n}
}
