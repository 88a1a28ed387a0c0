package auth

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/clocktest"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/httpx"
	"github.com/apikeyd/apikeyd/internal/store"
)

// policyServer serves, on loopback, /verify (Forward, with ?cost=2) and
// every other path behind Optional, over keys of a real database, with an
// address failure budget of one.
func policyServer(t *testing.T) (*httptest.Server, *apikey.Service, *clocktest.Clock) {
	t.Helper()
	clock := clocktest.Stopped(time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC))
	keys := apikey.NewService(store.New(dbtest.Open(t, "sqlite"), store.Config{}), apikey.Config{Now: clock.Now})
	limiter, _ := newTestLimiter[netip.Addr](1, 0.001)
	a := NewAuthenticator(nil, keys, &AddressLimiter{l: limiter}, nil, nil)
	log := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	mux.HandleFunc("/verify", func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.Forward(w, r, nil, 2); err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle("/", a.Optional(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := apikey.AuthOf(r.Context()).Require(); err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	}), func(w http.ResponseWriter, r *http.Request, err error) { httpx.WriteError(w, r, log, err) }))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, keys, clock
}

func get(t *testing.T, url, key string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Api-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// TestPolicyRefusalsAreNotFailures: a valid key that its policy refuses
// (disabled, from another address, out of tokens or of credits) is no
// failed authentication: however often it is refused, the address keeps
// its failure budget (of one), which a key that does not verify uses up.
func TestPolicyRefusalsAreNotFailures(t *testing.T) {
	srv, keys, _ := policyServer(t)
	alice := apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: "alice", Method: apikey.MethodJWT})
	create := func(in apikey.CreateInput) string {
		k, err := keys.Create(alice, in)
		if err != nil {
			t.Fatal(err)
		}
		return k.Secret
	}
	no := false
	good := create(apikey.CreateInput{})
	refused := map[string]struct {
		key    string
		status int
	}{
		"Disabled":      {create(apikey.CreateInput{Enabled: &no}), 403},
		"IPNotAllowed":  {create(apikey.CreateInput{AllowedIPs: []string{"10.0.0.0/8"}}), 403},
		"RateLimited":   {create(apikey.CreateInput{RateLimit: &apikey.RateLimit{Limit: 1, Period: time.Hour}}), 429},
		"UsageExceeded": {create(apikey.CreateInput{Credits: &apikey.Credits{Remaining: 1}}), 429}, // /verify costs 2
	}
	for name, c := range refused {
		for _, path := range []string{"/verify", "/graphql"} {
			for range 3 {
				res := get(t, srv.URL+path, c.key)
				if res.StatusCode == http.StatusOK && (name == "RateLimited" || name == "UsageExceeded") {
					continue // its one token, its one credit
				}
				if res.StatusCode != c.status {
					t.Fatalf("%s on %s: %d, want %d", name, path, res.StatusCode, c.status)
				}
			}
		}
		if res := get(t, srv.URL+"/verify", good); res.StatusCode != http.StatusOK {
			t.Fatalf("after %s refusals, a good key got %d: they were charged as failures", name, res.StatusCode)
		}
	}
	// The budget is real: one key that does not verify uses it up.
	if res := get(t, srv.URL+"/verify", keys.Format().Generate()); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown key: %d", res.StatusCode)
	}
	if res := get(t, srv.URL+"/verify", good); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after a failure, %d: the budget of one is not enforced", res.StatusCode)
	}
}

// TestPolicyHeaders: the rate limit, credits and Retry-After reach the
// client on every route, on success and on refusal.
func TestPolicyHeaders(t *testing.T) {
	srv, keys, clock := policyServer(t)
	alice := apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: "alice", Method: apikey.MethodJWT})
	k, err := keys.Create(alice, apikey.CreateInput{
		RateLimit: &apikey.RateLimit{Limit: 2, Period: time.Minute},
		Credits:   &apikey.Credits{Remaining: 5, Refill: &apikey.Refill{Amount: 5, Interval: apikey.RefillDaily}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := func(res *http.Response, status int, headers map[string]string) {
		t.Helper()
		if res.StatusCode != status {
			t.Fatalf("status %d, want %d", res.StatusCode, status)
		}
		for h, v := range headers {
			if got := res.Header.Get(h); got != v {
				t.Errorf("%s: %q, want %q", h, got, v)
			}
		}
	}
	want(get(t, srv.URL+"/verify", k.Secret), 200, map[string]string{
		"RateLimit-Policy": `"key";q=2;w=60`, "RateLimit": `"key";r=1;t=30`, "X-Auth-Credits-Remaining": "3", "Retry-After": "",
	})
	want(get(t, srv.URL+"/graphql", k.Secret), 200, map[string]string{
		"RateLimit": `"key";r=0;t=60`, "X-Auth-Credits-Remaining": "2",
	})
	want(get(t, srv.URL+"/graphql", k.Secret), 429, map[string]string{
		"RateLimit-Policy": `"key";q=2;w=60`, "RateLimit": `"key";r=0;t=60`, "Retry-After": "31", "X-Auth-Credits-Remaining": "",
	})
	clock.Advance(time.Minute) // the bucket is full again
	want(get(t, srv.URL+"/verify", k.Secret), 200, map[string]string{
		"RateLimit": `"key";r=1;t=30`, "X-Auth-Credits-Remaining": "0",
	})
	// Credits below the cost: until the next refill, at 00:00 UTC.
	want(get(t, srv.URL+"/verify", k.Secret), 429, map[string]string{
		"RateLimit": `"key";r=0;t=60`, "X-Auth-Credits-Remaining": "0", "Retry-After": "43141",
	})
}
