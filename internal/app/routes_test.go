package app

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// TestRouteAuthentication: each route says how it authenticates. Most
// verify the credential a request brings, so a bad one is a failed
// authentication wherever it is sent, and an address out of failure budget
// is refused with 429 before the handler, the refusal named after its route
// (unmatched for an unknown path) and in the error shape of its face; the
// leak routes, which check their own credential, never look at it.
func TestRouteAuthentication(t *testing.T) {
	cfg := testConfig(t)
	cfg.AuthFailBurst = 1
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}
	var logs bytes.Buffer
	a, err := Open(context.Background(), cfg, Deps{Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })

	const badKey = "Bearer not-a-login-token"
	for i, tc := range []struct {
		method, path string
		route        string // of the refusal; empty: never refused
		graphQL      bool   // refused in the GraphQL error shape
	}{
		{"GET", "/auth/api-keys", "GET /auth/api-keys", false},
		{"PUT", "/auth/api-keys", "/auth/api-keys", false},
		{"GET", "/auth/verify", "GET /auth/verify", false}, // refused by Forward itself
		{"GET", "/auth/scopes", "GET /auth/scopes", false},
		{"GET", "/auth/audit-events", "GET /auth/audit-events", false},
		{"POST", "/auth/login", "POST /auth/login", false},
		{"GET", "/auth/register", "/auth/register", false},
		{"GET", "/healthz", "GET /healthz", false},
		{"GET", "/openapi.json", "GET /openapi.json", false},
		{"POST", "/graphql", "/graphql", true},
		{"GET", "/", "GET /{$}", false},
		{"GET", "/static/app.js", "GET /static/", false},
		{"GET", "/metrics", "/metrics", false},
		{"GET", "/no/such/route", "unmatched", false},
		{"POST", "/auth/leaks", "", false},
		{"GET", "/auth/leaks/gitlab/revocable_token_types", "", false},
		{"GET", "/auth/leaks/no-such-route", "", false},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			client := netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}).String() // a fresh budget
			var res *httptest.ResponseRecorder
			for range 2 { // the first fails, and uses up the budget
				r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{"query":"{viewer{userId}}"}`))
				r.RemoteAddr = "192.0.2.1:1234"
				r.Header.Set("X-Forwarded-For", client)
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Authorization", badKey)
				logs.Reset()
				res = httptest.NewRecorder()
				a.Handler.ServeHTTP(res, r)
			}
			if tc.route == "" {
				if res.Code == http.StatusTooManyRequests {
					t.Fatalf("a route that checks its own credential was refused for a bearer token: %s", res.Body)
				}
				return
			}
			if res.Code != http.StatusTooManyRequests || res.Header().Get("Retry-After") == "" {
				t.Fatalf("answered %d (Retry-After %q), want 429: %s", res.Code, res.Header().Get("Retry-After"), res.Body)
			}
			var body map[string]any
			if err := json.Unmarshal(res.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", res.Body, err)
			}
			if _, ok := body["errors"]; ok != tc.graphQL {
				t.Errorf("body %s: GraphQL error shape %v, want %v", res.Body, ok, tc.graphQL)
			}
			if !tc.graphQL && body["code"] != "RATE_LIMITED" {
				t.Errorf("body %s, want the error shape with RATE_LIMITED", res.Body)
			}
			var line struct{ Route string }
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line.Route != tc.route {
				t.Errorf("access log %q: route %q, want %q", logs.String(), line.Route, tc.route)
			}
		})
	}
}
