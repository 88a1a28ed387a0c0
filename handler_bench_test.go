package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/app"
	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// BenchmarkHandler measures the whole HTTP handler in process (no sockets):
// access log (JSON, discarded), authentication, the route and the database.
// bench/load measures the same routes over loopback under concurrency.
func BenchmarkHandler(b *testing.B) {
	for _, db := range dbtest.Names {
		b.Run(db, func(b *testing.B) {
			cfg, err := parseConfig()
			if err != nil {
				b.Fatal(err)
			}
			cfg.DatabaseURL = dbtest.DSN(b, db)
			cfg.JWTSecret = "a-benchmark-secret-of-at-least-32-bytes"
			a, err := app.Open(context.Background(), cfg, app.Deps{Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { a.Close() })
			tok, err := auth.MintToken([]byte(cfg.JWTSecret), "alice", time.Hour, "", "")
			if err != nil {
				b.Fatal(err)
			}
			signedIn := apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: "alice", Method: apikey.MethodJWT})
			var key string
			for range 10 {
				// Scoped, so that both verify cases answer with the
				// scopes and VerifyAPIKeyScope has one to check.
				k, err := a.Keys.Create(signedIn, apikey.CreateInput{Scopes: []string{"orders:read", "reports:read"}})
				if err != nil {
					b.Fatal(err)
				}
				key = k.Secret
			}
			// Keys with a usage policy: what a rate limit (in memory) and
			// credits (a statement per verification) add to VerifyAPIKey.
			policyKey := func(in apikey.CreateInput) string {
				k, err := a.Keys.Create(signedIn, in)
				if err != nil {
					b.Fatal(err)
				}
				return k.Secret
			}
			limited := policyKey(apikey.CreateInput{RateLimit: &apikey.RateLimit{Limit: apikey.MaxRateLimit, Period: time.Second}})
			credited := policyKey(apikey.CreateInput{Credits: &apikey.Credits{Remaining: apikey.MaxCredits}})

			const gql = `{"query":"{ apiKeys { id keyPrefix name createdAt lastUsedAt expiresAt } }"}`
			cases := []struct {
				name, method, path, body string
				header                   http.Header
			}{
				{"Healthz", "GET", "/healthz", "", nil},
				{"VerifyAPIKey", "GET", "/auth/verify", "", hdr("X-Api-Key", key)},
				{"VerifyAPIKeyScope", "GET", "/auth/verify?scope=reports:read", "", hdr("X-Api-Key", key)},
				{"VerifyAPIKeyRateLimited", "GET", "/auth/verify", "", hdr("X-Api-Key", limited)},
				{"VerifyAPIKeyCredited", "GET", "/auth/verify", "", hdr("X-Api-Key", credited)},
				{"VerifyJWT", "GET", "/auth/verify", "", bearer(tok)},
				{"GraphQLAPIKeys", "POST", "/graphql", gql, hdr("Authorization", "Bearer "+tok, "Content-Type", "application/json")},
				{"RESTList", "GET", "/auth/api-keys", "", bearer(tok)},
			}
			for _, c := range cases {
				serve := func() {
					r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
					for k, v := range c.header {
						r.Header[k] = v
					}
					w := httptest.NewRecorder()
					a.Handler.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatalf("%s: %d %s", c.name, w.Code, w.Body)
					}
				}
				b.Run(c.name, func(b *testing.B) {
					serve()
					// On PostgreSQL nothing is cached until the revocation
					// listener is connected.
					for deadline := time.Now().Add(10 * time.Second); strings.HasPrefix(c.name, "VerifyAPIKey") && !a.Keys.Cached(c.header.Get("X-Api-Key")); serve() {
						if time.Now().After(deadline) {
							b.Fatal("the key is not cached")
						}
						time.Sleep(10 * time.Millisecond)
					}
					b.ReportAllocs()
					for b.Loop() {
						serve()
					}
				})
			}
		})
	}
}
