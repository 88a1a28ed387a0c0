package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/app"
	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// BenchmarkHandler measures the whole HTTP handler in process (no sockets):
// access log (JSON, discarded), authentication, the route and the database.
// bench/load measures the same routes over loopback under concurrency.
func BenchmarkHandler(b *testing.B) {
	for _, db := range dbtest.Names {
		b.Run(db, func(b *testing.B) {
			a, cfg := benchApp(b, db)
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
			// An organisation's key, alike but for its owner (see
			// BenchmarkVerifyOwner).
			ofOrg := orgKeyFor(b, a, signedIn)

			const gql = `{"query":"{ apiKeys { id keyPrefix name createdAt lastUsedAt expiresAt } }"}`
			cases := []struct {
				name, method, path, body string
				header                   http.Header
			}{
				{"Healthz", "GET", "/healthz", "", nil},
				{"VerifyAPIKey", "GET", "/auth/verify", "", hdr("X-Api-Key", key)},
				{"VerifyAPIKeyScope", "GET", "/auth/verify?scope=reports:read", "", hdr("X-Api-Key", key)},
				{"VerifyAPIKeyOrg", "GET", "/auth/verify", "", hdr("X-Api-Key", ofOrg)},
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

// benchApp opens apikeyd's handler on a new database of db for a benchmark,
// logging to nowhere, and returns it with its configuration.
func benchApp(b *testing.B, db string) (*app.App, config.Config) {
	b.Helper()
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
	return a, cfg
}

// orgKeyFor creates, as the JWT principal of signedIn, an organisation and
// a key of it with the scopes of BenchmarkHandler's keys, and returns the
// key.
func orgKeyFor(b *testing.B, a *app.App, signedIn context.Context) string {
	b.Helper()
	o, err := a.Orgs.Create(signedIn, "Bench")
	if err != nil {
		b.Fatal(err)
	}
	k, err := a.Keys.Create(apikey.WithOrg(signedIn, o.ID), apikey.CreateInput{Scopes: []string{"orders:read", "reports:read"}})
	if err != nil {
		b.Fatal(err)
	}
	return k.Secret
}

// BenchmarkVerifyOwner is what answering for an organisation costs a
// verification over HTTP (in process, SQLite, cache hits): a personal key
// and an organisation key, alike but for their owner, verified in turns of
// chunk requests each, the order swapped every turn, so that a machine
// whose load moves (a shared one) weighs on both alike. It reports each
// one's ns per verification and the median turn's ratio of their rates
// (organisation / personal; 1 is the same cost). BENCHMARKS.md,
// "Organisation keys".
func BenchmarkVerifyOwner(b *testing.B) {
	const chunk = 2000
	a, _ := benchApp(b, "sqlite")
	signedIn := apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: "alice", Method: apikey.MethodJWT})
	personal, err := a.Keys.Create(signedIn, apikey.CreateInput{Scopes: []string{"orders:read", "reports:read"}})
	if err != nil {
		b.Fatal(err)
	}
	keys := [2]string{personal.Secret, orgKeyFor(b, a, signedIn)}
	run := func(key string) time.Duration {
		start := time.Now()
		for range chunk {
			r := httptest.NewRequest("GET", "/auth/verify", nil)
			r.Header.Set("X-Api-Key", key)
			w := httptest.NewRecorder()
			a.Handler.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("verify: %d %s", w.Code, w.Body)
			}
		}
		return time.Since(start)
	}
	run(keys[0])
	run(keys[1])
	var total [2]time.Duration
	var ratios []float64
	for b.Loop() {
		var d [2]time.Duration
		first := len(ratios) % 2
		d[first] = run(keys[first])
		d[1-first] = run(keys[1-first])
		total[0] += d[0]
		total[1] += d[1]
		ratios = append(ratios, float64(d[0])/float64(d[1]))
	}
	n := float64(len(ratios) * chunk)
	b.ReportMetric(float64(total[0].Nanoseconds())/n, "ns/verify-personal")
	b.ReportMetric(float64(total[1].Nanoseconds())/n, "ns/verify-org")
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "rate-ratio")
}
