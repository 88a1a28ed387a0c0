package main

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/clocktest"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// policyFields are the usage policy's members of created and listed keys.
var policyFields = []string{"allowed_ips", "credits", "enabled", "meta", "rate_limit"}

// policyOf returns the policy's members of a key answer, as raw JSON.
func policyOf(t testing.TB, body []byte) map[string]string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	out := map[string]string{}
	for _, f := range policyFields {
		raw, ok := m[f]
		if !ok {
			t.Fatalf("%s lacks %s", body, f)
		}
		out[f] = string(raw)
	}
	return out
}

// verifyWith sends GET /auth/verify with key and query.
func (e *testEnv) verifyWith(key, query string, h http.Header) response {
	e.t.Helper()
	if h == nil {
		h = http.Header{}
	}
	h.Set("X-Api-Key", key)
	return e.do("GET", "/auth/verify"+query, h, nil)
}

// wantRefusal checks a refused verification: the error and its code in
// X-Auth-Error-Code, for reverse proxies.
func wantRefusal(t testing.TB, res response, status int, code string) {
	t.Helper()
	wantError(t, res, status, code)
	if got := res.Header.Get("X-Auth-Error-Code"); got != code {
		t.Errorf("X-Auth-Error-Code %q, want %q", got, code)
	}
}

func TestPolicyCreateListUpdate(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		res := e.do("POST", "/auth/api-keys", bearer(tok), str(`{"name": "partner",
			"enabled": false,
			"rate_limit": {"limit": 100, "period_seconds": 60},
			"credits": {"remaining": 1000, "refill": {"amount": 1000, "interval": "month", "day_of_month": 31}},
			"allowed_ips": ["10.9.8.7/8", "::ffff:192.0.2.1", "2001:db8::1"],
			"meta": {"plan": "pro", "customer": 42}}`))
		if res.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", res.Status, res.Body)
		}
		k := e.created(res)
		want := map[string]string{
			"enabled":     `false`,
			"rate_limit":  `{"limit":100,"period_seconds":60}`,
			"credits":     `{"remaining":1000,"refill":{"amount":1000,"interval":"month","day_of_month":31}}`,
			"allowed_ips": `["10.0.0.0/8","192.0.2.1/32","2001:db8::1/128"]`,
			"meta":        `{"plan":"pro","customer":42}`,
		}
		for what, body := range map[string][]byte{"created": res.Body, "listed": e.listedRaw(tok, k.ID)} {
			if got := policyOf(t, body); !mapsEqual(got, want) {
				t.Errorf("%s policy %v\nwant %v", what, got, want)
			}
		}
		// A key created as before has the defaults.
		plain := e.create(tok, nil)
		if got := policyOf(t, e.listedRaw(tok, plain.ID)); !mapsEqual(got, map[string]string{
			"enabled": "true", "rate_limit": "null", "credits": "null", "allowed_ips": "null", "meta": "null",
		}) {
			t.Errorf("a key without a policy lists %v", got)
		}

		// PATCH: a subset; null clears; absent is left alone.
		patch := "/auth/api-keys/" + k.ID
		res = e.do("PATCH", patch, bearer(tok), str(`{"enabled": true, "rate_limit": null, "credits": {"remaining": 5, "refill": {"amount": 10, "interval": "day"}}, "meta": null}`))
		if res.Status != http.StatusOK {
			t.Fatalf("patch: %d %s", res.Status, res.Body)
		}
		want["enabled"], want["rate_limit"], want["meta"] = "true", "null", "null"
		want["credits"] = `{"remaining":5,"refill":{"amount":10,"interval":"day","day_of_month":null}}`
		for what, body := range map[string][]byte{"patched": res.Body, "listed": e.listedRaw(tok, k.ID)} {
			if got := policyOf(t, body); !mapsEqual(got, want) {
				t.Errorf("%s policy %v\nwant %v", what, got, want)
			}
		}
		ev := only(t, e.eventsOf(tok), "api_key.updated")
		details, _ := json.Marshal(ev.Details)
		const wantDetails = `{"credits":{"new":{"refill":{"amount":10,"day_of_month":null,"interval":"day"},"remaining":5},"old":{"refill":{"amount":1000,"day_of_month":31,"interval":"month"},"remaining":1000}},` +
			`"enabled":{"new":true,"old":false},"meta":{"new":null,"old":{"customer":42,"plan":"pro"}},"rate_limit":{"new":null,"old":{"limit":100,"period_seconds":60}}}`
		if string(details) != wantDetails {
			t.Errorf("event details %s\nwant          %s", details, wantDetails)
		}

		// Bad input is refused, naming the field, and changes nothing.
		before := e.listedRaw(tok, k.ID)
		for body, field := range map[string]string{
			`{"enabled": null}`:                                                          "enabled",
			`{"enabled": "false"}`:                                                       "enabled",
			`{"name": "x", "scopes": ["a"]}`:                                             `"scopes"`,
			`{"rate_limit": {"limit": 0, "period_seconds": 1}}`:                          "rate_limit.limit",
			`{"rate_limit": {"limit": 1, "period_seconds": 1.5}}`:                        "rate_limit.period_seconds",
			`{"rate_limit": {"limit": 1, "period_seconds": 86401}}`:                      "rate_limit.period_seconds",
			`{"rate_limit": {"limit": 1}}`:                                               "rate_limit",
			`{"rate_limit": {"limit": 1, "period_seconds": 1, "burst": 2}}`:              "rate_limit",
			`{"rate_limit": [1, 60]}`:                                                    "rate_limit",
			`{"credits": {"remaining": -1}}`:                                             "credits.remaining",
			`{"credits": {"remaining": 1000000000001}}`:                                  "credits.remaining",
			`{"credits": {"remaining": 1, "refill": {"amount": 1, "interval": "week"}}}`: "credits.refill.interval",
			`{"credits": {"remaining": 1, "refill": {"amount": 1, "interval": "month", "day_of_month": 0}}}`: "credits.refill.day_of_month",
			`{"credits": {"remaining": 1, "refill": {"amount": 1, "interval": "day", "day_of_month": 1}}}`:   "credits.refill.day_of_month",
			`{"allowed_ips": ["10.0.0.0/33"]}`:                     "allowed_ips[0]",
			`{"allowed_ips": "10.0.0.0/8"}`:                        "allowed_ips",
			`{"allowed_ips": [10]}`:                                "allowed_ips[0]",
			`{"allowed_ips": []}`:                                  "allowed_ips",
			`{"meta": [1]}`:                                        "meta",
			`{"meta": "x"}`:                                        "meta",
			`{"meta": {"a": "` + strings.Repeat("x", 4096) + `"}}`: "meta",
			`{"name": "ok", "meta": 1}`:                            "meta",
			`{}`:                                                   "at least one",
		} {
			res := e.do("PATCH", patch, bearer(tok), str(body))
			wantError(t, res, http.StatusBadRequest, "INVALID_REQUEST")
			if msg, _ := res.JSON(t)["error"].(string); !strings.Contains(msg, field) {
				t.Errorf("PATCH %.60s: message %q does not name %s", body, msg, field)
			}
		}
		many := `["` + strings.Repeat(`10.0.0.1", "`, 50) + `10.0.0.2"]`
		wantError(t, e.do("POST", "/auth/api-keys", bearer(tok), str(`{"allowed_ips": `+many+`}`)), http.StatusBadRequest, "INVALID_REQUEST")
		wantError(t, e.do("POST", "/auth/api-keys", bearer(tok), str(`{"rate_limit": {"limit": 1000001, "period_seconds": 1}}`)), http.StatusBadRequest, "INVALID_REQUEST")
		if after := e.listedRaw(tok, k.ID); string(after) != string(before) {
			t.Fatalf("refused changes changed the key:\n%s\n%s", before, after)
		}
		if n := len(e.list(tok)); n != 2 {
			t.Fatalf("refused creates made keys: %d listed", n)
		}
		if evs := e.eventsOf(tok); len(evs) != 3 { // two created, one updated
			t.Fatalf("refused changes were recorded: %v", actions(evs))
		}
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestPolicyVerify(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		k := e.create(tok, str(`{"rate_limit": {"limit": 10, "period_seconds": 60}, "credits": {"remaining": 100}, "meta": {"plan": "pro"}}`))
		res := e.verifyWith(k.Key, "?cost=7", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("verify: %d %s", res.Status, res.Body)
		}
		m := res.JSON(t)
		b, _ := json.Marshal(map[string]any{"meta": m["meta"], "credits": m["credits"], "rate_limit": m["rate_limit"]})
		if want := `{"credits":{"remaining":93},"meta":{"plan":"pro"},"rate_limit":{"limit":10,"remaining":9,"reset_seconds":6}}`; string(b) != want {
			t.Errorf("verify body adds %s, want %s", b, want)
		}
		for h, want := range map[string]string{
			"X-Auth-Credits-Remaining": "93", "RateLimit-Policy": `"key";q=10;w=60`, "RateLimit": `"key";r=9;t=6`, "X-Auth-Key-Id": k.ID,
		} {
			if got := res.Header.Get(h); got != want {
				t.Errorf("%s: %q, want %q", h, got, want)
			}
		}
		// cost=0 checks without spending; the default cost is 1.
		if res := e.verifyWith(k.Key, "?cost=0", nil); res.Header.Get("X-Auth-Credits-Remaining") != "93" {
			t.Errorf("cost=0: %d, credits %q", res.Status, res.Header.Get("X-Auth-Credits-Remaining"))
		}
		if res := e.verifyWith(k.Key, "", nil); res.Header.Get("X-Auth-Credits-Remaining") != "92" {
			t.Errorf("no cost: %d, credits %q", res.Status, res.Header.Get("X-Auth-Credits-Remaining"))
		}
		// Above the balance: 429, no refill so no Retry-After.
		res = e.verifyWith(k.Key, "?cost=93", nil)
		wantRefusal(t, res, http.StatusTooManyRequests, "USAGE_EXCEEDED")
		if res.Header.Get("Retry-After") != "" || res.Header.Get("RateLimit") == "" {
			t.Errorf("USAGE_EXCEEDED without a refill: Retry-After %q, RateLimit %q", res.Header.Get("Retry-After"), res.Header.Get("RateLimit"))
		}

		// A bad cost is refused before the credential is looked at.
		for _, q := range []string{"?cost=-1", "?cost=1001", "?cost=1.5", "?cost=", "?cost=x", "?cost=1&cost=2"} {
			wantRefusal(t, e.verifyWith(e.unknownKey(), q, nil), http.StatusBadRequest, "INVALID_REQUEST")
		}

		// A key without a policy answers as before: no policy members.
		plain := e.create(tok, nil)
		res = e.verifyWith(plain.Key, "?cost=5", nil)
		var fields []string
		for f := range res.JSON(t) {
			fields = append(fields, f)
		}
		slices.Sort(fields)
		if want := []string{"auth_method", "key_id", "scopes", "user_id"}; !slices.Equal(fields, want) || res.Header.Get("RateLimit") != "" || res.Header.Get("X-Auth-Credits-Remaining") != "" {
			t.Errorf("a key without a policy: fields %v, headers %v", fields, res.Header)
		}

		// A disabled key, and one used from elsewhere.
		disabled := e.create(tok, str(`{"enabled": false, "meta": {}}`))
		wantRefusal(t, e.verifyWith(disabled.Key, "", nil), http.StatusForbidden, "KEY_DISABLED")
		elsewhere := e.create(tok, str(`{"allowed_ips": ["192.0.2.0/24"]}`))
		wantRefusal(t, e.verifyWith(elsewhere.Key, "", nil), http.StatusForbidden, "IP_NOT_ALLOWED")
		wantRefusal(t, e.verifyWith(e.unknownKey(), "", nil), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
		// Enabled again by PATCH: verifies at once.
		if res := e.do("PATCH", "/auth/api-keys/"+disabled.ID, bearer(tok), str(`{"enabled": true}`)); res.Status != http.StatusOK {
			t.Fatalf("enable: %d %s", res.Status, res.Body)
		}
		res = e.verifyWith(disabled.Key, "", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("enabled again: %d %s", res.Status, res.Body)
		}
		if got := res.JSON(t); got["credits"] != nil || got["rate_limit"] != nil || got["meta"] == nil {
			t.Errorf("a key with meta only: %s", res.Body)
		}
		// A disabled key is refused on every route an API key reaches, and
		// is no failed authentication.
		if res := e.do("PATCH", "/auth/api-keys/"+disabled.ID, bearer(tok), str(`{"enabled": false}`)); res.Status != http.StatusOK {
			t.Fatalf("disable: %d %s", res.Status, res.Body)
		}
		for range 40 { // more than the address's failure budget
			wantError(t, e.do("GET", "/auth/api-keys", hdr("X-Api-Key", disabled.Key), nil), http.StatusForbidden, "KEY_DISABLED")
		}
		if res := e.verifyWith(plain.Key, "", nil); res.Status != http.StatusOK {
			t.Fatalf("after 40 refusals of a disabled key, a good key gets %d", res.Status)
		}
	})
}

// trustLoopback trusts X-Forwarded-For from loopback, as behind nginx.
func trustLoopback(c *config.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

func TestPolicyAllowedIPs(t *testing.T) {
	t.Parallel()
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			behind := newEnv(t, db, trustLoopback)
			direct := newEnv(t, db)
			allowlist := str(`{"allowed_ips": ["203.0.113.0/24", "2001:db8::/32"]}`)
			k := behind.create(behind.token("alice"), allowlist)
			from := func(e *testEnv, key, xff string) int {
				t.Helper()
				h := http.Header{}
				if xff != "" {
					h.Set("X-Forwarded-For", xff)
				}
				res := e.verifyWith(key, "", h)
				if res.Status != http.StatusOK {
					wantRefusal(t, res, http.StatusForbidden, "IP_NOT_ALLOWED")
				}
				return res.Status
			}
			for xff, want := range map[string]int{
				"203.0.113.9":               200,
				"::ffff:203.0.113.9":        200, // IPv4-mapped is IPv4
				"2001:db8:1::5":             200,
				"198.51.100.1, 203.0.113.9": 200, // the right-most untrusted hop
				"203.0.113.9, 198.51.100.1": 403, // the client's own claim is not believed
				"203.0.113.9, 127.0.0.1":    200, // trusted hops are skipped
				"198.51.100.1":              403,
				"2001:db9::1":               403,
				"::ffff:198.51.100.1":       403,
				"":                          403, // the proxy itself
			} {
				if got := from(behind, k.Key, xff); got != want {
					t.Errorf("behind a trusted proxy, X-Forwarded-For %q: %d, want %d", xff, got, want)
				}
			}
			// From a peer that is no trusted proxy, X-Forwarded-For is a
			// forgery: the peer's own address is checked.
			tok := direct.token("alice")
			forged := direct.create(tok, allowlist)
			if got := from(direct, forged.Key, "203.0.113.9"); got != http.StatusForbidden {
				t.Errorf("a forged X-Forwarded-For from an untrusted peer was believed: %d", got)
			}
			loop := direct.create(tok, str(`{"allowed_ips": ["127.0.0.1"]}`))
			if got := from(direct, loop.Key, "198.51.100.1"); got != http.StatusOK {
				t.Errorf("the peer's own address: %d", got)
			}
		})
	}
}

// stoppedEnv starts apikeyd on db with its clock stopped at at.
func stoppedEnv(t *testing.T, db string, at time.Time) *testEnv {
	t.Helper()
	return startEnv(t, envSpec{dsn: dbtest.DSN(t, db), clock: clocktest.Stopped(at)})
}

func TestPolicyCreditsRefill(t *testing.T) {
	t.Parallel()
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			e := stoppedEnv(t, db, time.Date(2026, 1, 31, 23, 59, 30, 0, time.UTC))
			tok := e.token("alice")
			daily := e.create(tok, str(`{"credits": {"remaining": 2, "refill": {"amount": 5, "interval": "day"}}}`))
			monthly := e.create(tok, str(`{"credits": {"remaining": 1, "refill": {"amount": 3, "interval": "month", "day_of_month": 31}}}`))
			credits := func(key, cost string, status int) string {
				t.Helper()
				res := e.verifyWith(key, "?cost="+cost, nil)
				if res.Status != status {
					t.Fatalf("cost %s: %d %s, want %d", cost, res.Status, res.Body, status)
				}
				return res.Header.Get("X-Auth-Credits-Remaining")
			}
			if got := credits(daily.Key, "2", 200); got != "0" {
				t.Fatalf("after spending 2 of 2: %s", got)
			}
			res := e.verifyWith(daily.Key, "", nil)
			wantRefusal(t, res, http.StatusTooManyRequests, "USAGE_EXCEEDED")
			if got := res.Header.Get("Retry-After"); got != "31" {
				t.Errorf("Retry-After %q, want 31 (30 s to 00:00 UTC)", got)
			}
			credits(monthly.Key, "1", 200)
			e.Clock.Advance(30 * time.Second) // 2026-02-01T00:00:00Z
			if got := credits(daily.Key, "1", 200); got != "4" {
				t.Fatalf("after the daily refill: %s, want 5 - 1", got)
			}
			// February is shorter: the monthly refill is on the 28th.
			res = e.verifyWith(monthly.Key, "", nil)
			wantRefusal(t, res, http.StatusTooManyRequests, "USAGE_EXCEEDED")
			if got, want := res.Header.Get("Retry-After"), "2332801"; got != want { // 27 days
				t.Errorf("monthly Retry-After %q, want %q", got, want)
			}
			e.Clock.Advance(27 * 24 * time.Hour)
			if got := credits(monthly.Key, "3", 200); got != "0" {
				t.Fatalf("after the monthly refill: %s", got)
			}
			// A refill resets to the amount; it does not add.
			if got := credits(daily.Key, "0", 200); got != "5" {
				t.Fatalf("daily balance after 27 refills: %s, want 5", got)
			}
		})
	}
}

// TestPolicyRateLimitBurst: of a burst of parallel requests, exactly the
// limit pass (the clock stands still: nothing refills meanwhile).
func TestPolicyRateLimitBurst(t *testing.T) {
	t.Parallel()
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			e := stoppedEnv(t, db, time.Now())
			tok := e.token("alice")
			const limit, n = 7, 40
			k := e.create(tok, str(`{"rate_limit": {"limit": 7, "period_seconds": 3600}}`))
			rs := e.sendAll(t, n, func(int) (string, string, http.Header, *string) {
				return "GET", "/auth/verify", hdr("X-Api-Key", k.Key), nil
			})
			if got := statuses(rs); got[200] != limit || got[429] != n-limit {
				t.Fatalf("answers %v, want %d × 200 and %d × 429", got, limit, n-limit)
			}
			for _, r := range rs {
				if r.Status != http.StatusTooManyRequests {
					continue
				}
				wantRefusal(t, r, http.StatusTooManyRequests, "RATE_LIMITED")
				if r.Header.Get("Retry-After") != "515" || r.Header.Get("RateLimit") != `"key";r=0;t=3600` || r.Header.Get("RateLimit-Policy") != `"key";q=7;w=3600` {
					t.Fatalf("refusal headers %v", r.Header)
				}
			}
		})
	}
}

// TestPolicyRoll: a roll's new key copies the policy and takes over the
// balance; during the grace both keys spend from one balance and are
// limited by one bucket.
func TestPolicyRoll(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		old := e.create(tok, str(`{"rate_limit": {"limit": 3, "period_seconds": 3600}, "credits": {"remaining": 5}, "allowed_ips": ["127.0.0.1"], "meta": {"plan": "pro"}}`))
		spend := func(key, cost string, status int, credits, ratelimit string) {
			t.Helper()
			res := e.verifyWith(key, "?cost="+cost, nil)
			if res.Status != status {
				t.Fatalf("cost %s: %d %s, want %d", cost, res.Status, res.Body, status)
			}
			if got := res.Header.Get("X-Auth-Credits-Remaining"); status == http.StatusOK && got != credits {
				t.Errorf("credits %q, want %s", got, credits)
			}
			if got := res.Header.Get("RateLimit"); !strings.HasPrefix(got, `"key";r=`+ratelimit+";") {
				t.Errorf("RateLimit %q, want %s tokens left", got, ratelimit)
			}
		}
		spend(old.Key, "1", http.StatusOK, "4", "2")
		res := e.do("POST", "/auth/api-keys/"+old.ID+"/roll", bearer(tok), str(`{"grace_period_seconds": 3600}`))
		if res.Status != http.StatusCreated {
			t.Fatalf("roll: %d %s", res.Status, res.Body)
		}
		want := map[string]string{
			"enabled":     "true",
			"rate_limit":  `{"limit":3,"period_seconds":3600}`,
			"credits":     `{"remaining":4,"refill":null}`,
			"allowed_ips": `["127.0.0.1/32"]`,
			"meta":        `{"plan":"pro"}`,
		}
		if got := policyOf(t, res.Body); !mapsEqual(got, want) {
			t.Errorf("rolled key's policy %v\nwant %v", got, want)
		}
		next := e.created(res)
		spend(next.Key, "2", http.StatusOK, "2", "1")
		spend(old.Key, "1", http.StatusOK, "1", "0")
		spend(next.Key, "0", http.StatusTooManyRequests, "", "0") // the shared bucket is empty
	})
}
