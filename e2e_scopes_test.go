package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/config"
)

// scopesOf decodes the "scopes" member of a JSON object exactly: null, [] and
// a list stay apart (nil, empty and non-empty slices), and a missing member
// fails the test.
func scopesOf(t testing.TB, body []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	raw, ok := m["scopes"]
	if !ok {
		t.Fatalf("body %s has no scopes", body)
	}
	if string(raw) == "null" {
		return nil
	}
	out := []string{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("scopes %s: %v", raw, err)
	}
	return out
}

// sameScopes compares scopes exactly, telling nil (unrestricted) from empty.
func sameScopes(got, want []string) bool {
	return (got == nil) == (want == nil) && slices.Equal(got, want)
}

// listedScopes returns the scopes of key id as GET /auth/api-keys lists them.
func (e *testEnv) listedScopes(tok, id string) []string {
	e.t.Helper()
	return scopesOf(e.t, e.listedRaw(tok, id))
}

// createScoped creates a key with the raw JSON scopes value (or no scopes
// member when scopes is "") and returns it with the scopes it was answered.
func (e *testEnv) createScoped(tok, scopes string) (createdKey, []string) {
	e.t.Helper()
	body := `{"name":"scoped"}`
	if scopes != "" {
		body = `{"name":"scoped","scopes":` + scopes + `}`
	}
	res := e.do("POST", "/auth/api-keys", bearer(tok), &body)
	if res.Status != http.StatusCreated {
		e.t.Fatalf("create with scopes %s: %d %s", scopes, res.Status, res.Body)
	}
	var k createdKey
	if err := json.Unmarshal(res.Body, &k); err != nil {
		e.t.Fatal(err)
	}
	e.remember(k.Key)
	return k, scopesOf(e.t, res.Body)
}

// verifyScoped asks /auth/verify for the given query with key.
func (e *testEnv) verifyScoped(key, query string) response {
	e.t.Helper()
	path := "/auth/verify"
	if query != "" {
		path += "?" + query
	}
	return e.do("GET", path, hdr("X-Api-Key", key), nil)
}

// TestScopesCreateAndList: scopes round-trip exactly through create, list
// and verify; unrestricted (null, or absent) and empty ([]) stay apart; the
// documented create body without scopes answers as it always did.
func TestScopesCreateAndList(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		for _, c := range []struct {
			body string
			want []string
		}{
			{"", nil},
			{"null", nil},
			{"[]", []string{}},
			{`["reports:read"]`, []string{"reports:read"}},
			{`["orders:write","orders:read","orders:write"]`, []string{"orders:read", "orders:write"}},
		} {
			k, got := e.createScoped(tok, c.body)
			if !sameScopes(got, c.want) {
				t.Errorf("create %s: scopes %#v, want %#v", c.body, got, c.want)
			}
			if got := e.listedScopes(tok, k.ID); !sameScopes(got, c.want) {
				t.Errorf("list after create %s: scopes %#v, want %#v", c.body, got, c.want)
			}
			res := e.verifyScoped(k.Key, "")
			if res.Status != http.StatusOK || !sameScopes(scopesOf(t, res.Body), c.want) {
				t.Errorf("verify after create %s: %d %s", c.body, res.Status, res.Body)
			}
		}

		// The walk-through's body (docs/walk-through.md) and no body at all:
		// unrestricted, as before.
		for _, body := range []*string{nil, str(`{"name": "Production server"}`)} {
			res := e.do("POST", "/auth/api-keys", bearer(tok), body)
			if res.Status != http.StatusCreated || !strings.Contains(string(res.Body), `"scopes":null`) {
				t.Errorf("create %v: %d %s", body, res.Status, res.Body)
			}
			e.remember(e.created(res).Key)
		}
	})
}

// TestScopesRefused: every bad scopes value is 400 INVALID_REQUEST naming
// what is wrong, and creates nothing.
func TestScopesRefused(t *testing.T) {
	tooMany := make([]string, 51)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf(`"s%02d"`, i)
	}
	eachDBWith(t, func(c *config.Config) { c.Scopes = []string{"orders:read", "orders:write", "reports:read"} }, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		e.create(tok, nil)
		for body, mention := range map[string]string{
			`{"scopes":"orders:read"}`:                  "scopes must be an array",
			`{"scopes":{"orders:read":true}}`:           "scopes must be an array",
			`{"scopes":["orders:read",1]}`:              "scopes[1] must be a string",
			`{"scopes":[null]}`:                         "scopes[0] must be a string",
			`{"scopes":[["orders:read"]]}`:              "scopes[0] must be a string",
			`{"scopes":["orders:read","Orders:Write"]}`: `"Orders:Write"`,
			`{"scopes":["orders:delete"]}`:              `"orders:delete" is not in`,
			`{"scopes":[""]}`:                           `scope "" is malformed`,
			`{"scopes":["orders read"]}`:                `"orders read" is malformed`,
			`{"scopes":["a\u0000b"]}`:                   `"a\x00b" is malformed`,
		} {
			res := e.do("POST", "/auth/api-keys", bearer(tok), &body)
			wantError(t, res, http.StatusBadRequest, "INVALID_REQUEST")
			if msg, _ := res.JSON(t)["error"].(string); !strings.Contains(msg, mention) {
				t.Errorf("%.60s: message %q does not say %q", body, msg, mention)
			}
		}
		if n := len(e.list(tok)); n != 1 {
			t.Fatalf("%d keys after refused creates, want the 1 made before", n)
		}
	})
	// Free-form: more than 50 distinct well-formed names is still too many.
	e := newEnv(t, "sqlite")
	body := `{"scopes":[` + strings.Join(tooMany, ",") + `]}`
	res := e.do("POST", "/auth/api-keys", bearer(e.token("bob")), &body)
	wantError(t, res, http.StatusBadRequest, "INVALID_REQUEST")
	if msg, _ := res.JSON(t)["error"].(string); !strings.Contains(msg, `at most 50 scopes, not 51 (scope "s50"`) {
		t.Errorf("51 scopes: message %q", msg)
	}
}

// TestScopesVerify: /auth/verify?scope= requires every named scope of an
// API key; an unrestricted key and a login token pass every check; the
// X-Auth-Scopes header tells a proxy what the caller holds.
func TestScopesVerify(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		scoped, _ := e.createScoped(tok, `["reports:read","orders:read"]`)
		empty, _ := e.createScoped(tok, `[]`)
		free, _ := e.createScoped(tok, "")

		for _, c := range []struct {
			key, query string
			status     int
			header     string // X-Auth-Scopes of a 200; the message of a 403
		}{
			{scoped.Key, "", 200, "orders:read reports:read"},
			{scoped.Key, "scope=reports:read", 200, "orders:read reports:read"},
			{scoped.Key, "scope=reports:read&scope=orders:read", 200, "orders:read reports:read"},
			{scoped.Key, "scope=reports:read,orders:read", 200, "orders:read reports:read"},
			{scoped.Key, "scope=reports:read&scope=orders:write", 403, "lacks the scope orders:write"},
			{scoped.Key, "scope=orders:write,reports:write,reports:read", 403, "lacks the scopes orders:write, reports:write"},
			{empty.Key, "", 200, ""},
			{empty.Key, "scope=reports:read", 403, "lacks the scope reports:read"},
			{free.Key, "scope=reports:read,anything:at-all", 200, "*"},
			{scoped.Key, "scope=reports:read&other=ignored", 200, "orders:read reports:read"},
		} {
			res := e.verifyScoped(c.key, c.query)
			switch c.status {
			case 200:
				if res.Status != 200 {
					t.Errorf("%s: %d %s, want 200", c.query, res.Status, res.Body)
				} else if got, ok := res.Header["X-Auth-Scopes"]; !ok || got[0] != c.header {
					t.Errorf("%s: X-Auth-Scopes %q, want %q", c.query, got, c.header)
				}
			default:
				wantError(t, res, c.status, "INSUFFICIENT_SCOPE")
				if msg, _ := res.JSON(t)["error"].(string); !strings.Contains(msg, c.header) || strings.Contains(c.query, "reports:read,") && strings.Contains(msg, "reports:read") {
					t.Errorf("%s: message %q, want one naming only what is missing (%q)", c.query, msg, c.header)
				}
			}
		}

		// A login token is the user themself: every check passes.
		res := e.do("GET", "/auth/verify?scope=orders:write", bearer(tok), nil)
		if res.Status != 200 || res.Header.Get("X-Auth-Scopes") != "*" || scopesOf(t, res.Body) != nil {
			t.Errorf("login token: %d %q %s", res.Status, res.Header.Get("X-Auth-Scopes"), res.Body)
		}

		// A malformed scope parameter is the caller's mistake, whoever calls.
		for _, q := range []string{"scope=", "scope=Reports", "scope=reports:read,,orders:read", "scope=reports:read&scope=", "scope=" + url.QueryEscape("a b"), "scope=" + strings.Repeat("a", 65)} {
			for _, h := range []http.Header{hdr("X-Api-Key", scoped.Key), bearer(tok), nil} {
				res := e.do("GET", "/auth/verify?"+q, h, nil)
				wantError(t, res, http.StatusBadRequest, "INVALID_REQUEST")
				if msg, _ := res.JSON(t)["error"].(string); !strings.Contains(msg, "scope") {
					t.Errorf("%s: message %q", q, msg)
				}
			}
		}

		// No credential, or a bad one, is still the 401 it always was.
		wantError(t, e.do("GET", "/auth/verify?scope=reports:read", nil, nil), http.StatusUnauthorized, "MISSING_AUTH")
		wantError(t, e.verifyScoped(apikeytest.BadChecksum(scoped.Key), "scope=reports:read"), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")

		// A refusal is no use of the key: neither a missing scope nor a
		// malformed scope parameter moves last_used_at; a check that passes
		// does.
		lastUsed := func(k createdKey) *string {
			t.Helper()
			if err := e.App.Keys.FlushUsage(context.Background()); err != nil {
				t.Fatal(err)
			}
			l, ok := findListed(e.list(tok), k.ID)
			if !ok {
				t.Fatalf("key %s is not listed", k.ID)
			}
			return l.LastUsedAt
		}
		unused, _ := e.createScoped(tok, `["reports:read"]`)
		wantError(t, e.verifyScoped(unused.Key, "scope=orders:read"), http.StatusForbidden, "INSUFFICIENT_SCOPE")
		wantError(t, e.verifyScoped(unused.Key, "scope=Bad"), http.StatusBadRequest, "INVALID_REQUEST")
		if at := lastUsed(unused); at != nil {
			t.Errorf("refused requests recorded a use at %s", *at)
		}
		if res := e.verifyScoped(unused.Key, "scope=reports:read"); res.Status != http.StatusOK {
			t.Fatalf("verify: %d %s", res.Status, res.Body)
		}
		if lastUsed(unused) == nil {
			t.Error("a verification that passed recorded no use")
		}

		// Management stays JWT-only, whatever a key holds.
		for _, k := range []string{scoped.Key, free.Key} {
			wantError(t, e.do("POST", "/auth/api-keys", hdr("X-Api-Key", k), nil), http.StatusForbidden, "JWT_REQUIRED")
			wantError(t, e.do("GET", "/auth/scopes", hdr("X-Api-Key", k), nil), http.StatusForbidden, "JWT_REQUIRED")
		}
	})
}

// TestScopesCatalogue: GET /auth/scopes answers the SCOPES catalogue, or
// null when names are free-form; a key may only draw from the catalogue.
func TestScopesCatalogue(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		res := e.do("GET", "/auth/scopes", bearer(e.token("alice")), nil)
		if res.Status != 200 || string(res.Body) != `{"scopes":null}`+"\n" {
			t.Fatalf("free-form catalogue: %d %s", res.Status, res.Body)
		}
		wantError(t, e.do("GET", "/auth/scopes", nil, nil), http.StatusUnauthorized, "MISSING_AUTH")
	})
	t.Setenv("SCOPES", "reports:read, orders:write,orders:read,reports:read")
	cfg, err := parseConfig()
	if err != nil || !slices.Equal(cfg.Scopes, []string{"orders:read", "orders:write", "reports:read"}) {
		t.Fatalf("SCOPES: %#v, %v", cfg.Scopes, err)
	}
	e := newEnv(t, "sqlite", func(c *config.Config) { c.Scopes = cfg.Scopes })
	tok := e.token("alice")
	res := e.do("GET", "/auth/scopes", bearer(tok), nil)
	if res.Status != 200 || !sameScopes(scopesOf(t, res.Body), cfg.Scopes) {
		t.Fatalf("catalogue: %d %s", res.Status, res.Body)
	}
	if _, got := e.createScoped(tok, `["orders:read"]`); !sameScopes(got, []string{"orders:read"}) {
		t.Fatalf("scopes %v", got)
	}
	for _, bad := range []string{"Orders", "a,,b", "a b", ","} {
		t.Setenv("SCOPES", bad)
		if _, err := parseConfig(); err == nil || !strings.Contains(err.Error(), "SCOPES") {
			t.Errorf("SCOPES=%q: %v", bad, err)
		}
	}
	t.Setenv("SCOPES", "")
	if cfg, err := parseConfig("-scopes", "b,a"); err != nil || !slices.Equal(cfg.Scopes, []string{"a", "b"}) {
		t.Errorf("-scopes: %#v, %v", cfg.Scopes, err)
	}
}

// TestScopesMetrics: a verification refused for a missing scope is counted
// once, under its own outcome; a malformed scope parameter is refused before
// any verification; and a cached key's scope checks are all cache hits.
func TestScopesMetrics(t *testing.T) {
	e := newEnv(t, "sqlite")
	tok := e.token("alice")
	k, _ := e.createScoped(tok, `["reports:read"]`)
	if res := e.verifyScoped(k.Key, ""); res.Status != 200 || !e.App.Keys.Cached(k.Key) {
		t.Fatalf("warm-up: %d, cached %v", res.Status, e.App.Keys.Cached(k.Key))
	}
	s := newMetricsScript(t, e)
	before := e.scrape()
	const verify = "/auth/verify"
	s.send("GET", verify+"?scope=reports:read", verify, hdr("X-Api-Key", k.Key), nil, 200, "api_key/ok")
	s.send("GET", verify+"?scope=orders:read", verify, hdr("X-Api-Key", k.Key), nil, 403, "api_key/insufficient_scope")
	s.send("GET", verify+"?scope=orders:read", verify, bearer(tok), nil, 200, "jwt/ok")
	s.send("GET", verify+"?scope=Bad", verify, hdr("X-Api-Key", k.Key), nil, 400) // refused before any verification
	after := e.scrape()
	s.check(before, after)
	// The key was verified (and cached) before: every scope check above was
	// answered from the cache, without a query.
	if hit, miss := after.value("apikeyd_verify_cache_lookups_total", "result", "hit")-before.value("apikeyd_verify_cache_lookups_total", "result", "hit"),
		after.value("apikeyd_verify_cache_lookups_total", "result", "miss")-before.value("apikeyd_verify_cache_lookups_total", "result", "miss"); hit != 2 || miss != 0 {
		t.Errorf("cache lookups: %v hits, %v misses; want 2 hits, no miss", hit, miss)
	}
}

// gqlScopes reads a [String!] answer exactly: nil for null, empty for [].
func gqlScopes(t testing.TB, v any) []string {
	t.Helper()
	if v == nil {
		return nil
	}
	items, ok := v.([]any)
	if !ok {
		t.Fatalf("scopes %#v is not a list", v)
	}
	out := []string{}
	for _, it := range items {
		out = append(out, it.(string))
	}
	return out
}

// TestScopesGraphQL: the same scopes through GraphQL: on createApiKey's
// input and answer, apiKeys, viewer, and availableScopes.
func TestScopesGraphQL(t *testing.T) {
	eachDBWith(t, func(c *config.Config) { c.Scopes = []string{"orders:read", "reports:read"} }, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		const create = `mutation($s: [String!]) { createApiKey(input: {name: "g", scopes: $s}) { key apiKey { id scopes } } }`
		keys := map[string]string{}
		for name, c := range map[string]struct {
			vars map[string]any
			want []string
		}{
			"absent": {map[string]any{}, nil},
			"null":   {map[string]any{"s": nil}, nil},
			"empty":  {map[string]any{"s": []string{}}, []string{}},
			"two":    {map[string]any{"s": []string{"reports:read", "orders:read", "reports:read"}}, []string{"orders:read", "reports:read"}},
		} {
			_, res := e.gql(bearer(tok), create, c.vars)
			if len(res.Errors) != 0 {
				t.Fatalf("%s: %v", name, res.Errors)
			}
			out := res.Data["createApiKey"].(map[string]any)
			e.remember(out["key"].(string))
			keys[name] = out["key"].(string)
			if got := gqlScopes(t, out["apiKey"].(map[string]any)["scopes"]); !sameScopes(got, c.want) {
				t.Errorf("%s: created with %#v, want %#v", name, got, c.want)
			}
			// The same key through REST: the edges never diverge.
			if got := e.listedScopes(tok, out["apiKey"].(map[string]any)["id"].(string)); !sameScopes(got, c.want) {
				t.Errorf("%s: REST lists %#v, want %#v", name, got, c.want)
			}
			_, v := e.gql(hdr("X-Api-Key", keys[name]), `{ viewer { scopes apiKey { scopes } } }`, nil)
			viewer := v.Data["viewer"].(map[string]any)
			if got := gqlScopes(t, viewer["scopes"]); !sameScopes(got, c.want) {
				t.Errorf("%s: viewer scopes %#v, want %#v", name, got, c.want)
			}
			if got := gqlScopes(t, viewer["apiKey"].(map[string]any)["scopes"]); !sameScopes(got, c.want) {
				t.Errorf("%s: viewer.apiKey scopes %#v, want %#v", name, got, c.want)
			}
		}
		_, res := e.gql(bearer(tok), `{ apiKeys { scopes } viewer { scopes } availableScopes }`, nil)
		if len(res.Errors) != 0 || len(res.Data["apiKeys"].([]any)) != 4 {
			t.Fatalf("apiKeys: %v %v", res.Data, res.Errors)
		}
		if res.Data["viewer"].(map[string]any)["scopes"] != nil {
			t.Errorf("a login token's viewer scopes %v, want null", res.Data["viewer"])
		}
		if got := gqlScopes(t, res.Data["availableScopes"]); !slices.Equal(got, []string{"orders:read", "reports:read"}) {
			t.Errorf("availableScopes %#v", got)
		}
		_, res = e.gql(hdr("X-Api-Key", keys["two"]), `{ availableScopes }`, nil)
		if !slices.Equal(res.codes(), []string{"JWT_REQUIRED"}) {
			t.Errorf("availableScopes with a key: %v", res.Errors)
		}

		for vars, mention := range map[string]string{
			`["orders:read","Orders"]`: `"Orders"`,
			`["billing:read"]`:         `"billing:read" is not in`,
		} {
			var s []string
			_ = json.Unmarshal([]byte(vars), &s)
			_, res := e.gql(bearer(tok), create, map[string]any{"s": s})
			if !slices.Equal(res.codes(), []string{"INVALID_REQUEST"}) || !strings.Contains(res.Errors[0].Message, mention) {
				t.Errorf("%s: %v, want INVALID_REQUEST naming %s", vars, res.Errors, mention)
			}
		}
		_, res = e.gql(bearer(tok), create, map[string]any{"s": []any{"orders:read", 7}})
		if len(res.Errors) == 0 {
			t.Error("a number among the scopes was accepted")
		}
		if n := len(e.list(tok)); n != 4 {
			t.Errorf("%d keys after refused creates, want 4", n)
		}
	})
}

// TestNginxScope runs examples/nginx/apikeyd.conf in a real nginx and shows
// that its /reports/ location lets through only credentials holding
// reports:read: a key without it gets apikeyd's 403 and the service never
// sees the request, whatever the client puts in its own query string or
// headers.
func TestNginxScope(t *testing.T) {
	e := newEnv(t, "sqlite", trustNginx)
	n := startNginxFront(t, e)
	client := clientFrom("127.0.0.1")

	tok := e.token("alice")
	reports, _ := e.createScoped(tok, `["reports:read","orders:read"]`)
	orders, _ := e.createScoped(tok, `["orders:read"]`)
	none, _ := e.createScoped(tok, `[]`)
	free, _ := e.createScoped(tok, "")

	passes := func(t *testing.T, path string, h http.Header, keyID, scopes string) {
		t.Helper()
		got, _ := n.passes(t, client, "GET", path, h, "", "alice", keyID)
		if v := got.Header.Values("X-Auth-Scopes"); strings.Join(v, "|") != scopes {
			t.Errorf("the service saw X-Auth-Scopes %q, want %q", v, scopes)
		}
	}
	refused := func(t *testing.T, path string, h http.Header, status int, code string) {
		t.Helper()
		n.refused(t, client, path, h, status, code)
	}

	t.Run("WithTheScope", func(t *testing.T) {
		passes(t, "/reports/q1", hdr("X-Api-Key", reports.Key), reports.ID, "orders:read reports:read")
		passes(t, "/reports/q1", bearer(reports.Key), reports.ID, "orders:read reports:read")
	})
	t.Run("Unrestricted", func(t *testing.T) {
		passes(t, "/reports/q1", hdr("X-Api-Key", free.Key), free.ID, "*")
		passes(t, "/reports/q1", bearer(tok), "", "*")
	})
	t.Run("WithoutTheScope", func(t *testing.T) {
		refused(t, "/reports/q1", hdr("X-Api-Key", orders.Key), http.StatusForbidden, "INSUFFICIENT_SCOPE")
		refused(t, "/reports/q1", hdr("X-Api-Key", none.Key), http.StatusForbidden, "INSUFFICIENT_SCOPE")
		// The client's query string and headers change nothing.
		refused(t, "/reports/q1?scope=orders:read", hdr("X-Api-Key", orders.Key, "X-Auth-Scopes", "*"), http.StatusForbidden, "INSUFFICIENT_SCOPE")
		refused(t, "/reports/q1", nil, http.StatusUnauthorized, "MISSING_AUTH")
		refused(t, "/reports/q1", hdr("X-Api-Key", apikeytest.BadChecksum(orders.Key)), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
	})
	t.Run("OtherPathsNeedNoScope", func(t *testing.T) {
		passes(t, "/private/data", hdr("X-Api-Key", orders.Key, "X-Auth-Scopes", "*"), orders.ID, "orders:read")
		// A key that holds no scope sends an empty X-Auth-Scopes, which
		// nginx drops, the client's forged one with it.
		passes(t, "/private/data", hdr("X-Api-Key", none.Key, "X-Auth-Scopes", "*"), none.ID, "")
	})
}
