package graph

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// FuzzGraphQLHandler: any body POSTed (or query sent by GET) to the real
// GraphQL handler, over a real service on SQLite, as a signed-in user, gets
// a JSON answer and never a 5xx other than 503; it never panics.
// Seeds: f.Add below and testdata/fuzz/FuzzGraphQLHandler.
func FuzzGraphQLHandler(f *testing.F) {
	db := dbtest.Open(f, "sqlite")
	svc := apikey.NewService(store.New(db, store.Config{}), apikey.Config{MaxKeysPerUser: 5})
	log := slog.New(slog.DiscardHandler)
	gql := NewHandler(Options{Keys: svc, Logger: log, Introspection: true})
	user := apikey.Principal{UserID: "fuzzer", Method: apikey.MethodJWT}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gql.ServeHTTP(w, r.WithContext(apikey.WithPrincipal(r.Context(), user)))
	})

	body := func(q string, vars string) string {
		b, _ := json.Marshal(map[string]any{"query": q, "variables": json.RawMessage(vars)})
		return string(b)
	}
	for _, s := range []struct {
		body string
		mode uint8 // 0: POST application/json; 1: GET ?query=body; 2: POST text/plain
	}{
		{body(`{ viewer { userId authMethod apiKey { id } } }`, `null`), 0},
		{body(`{ apiKeys { id keyPrefix name createdAt lastUsedAt expiresAt } }`, `{}`), 0},
		{body(`mutation($i: CreateApiKeyInput) { createApiKey(input: $i) { key apiKey { id } } }`, `{"i":{"name":"n","expiresAt":"2099-01-01T00:00:00Z"}}`), 0},
		{body(`mutation($i: CreateApiKeyInput) { createApiKey(input: $i) { key } }`, `{"i":{"name":42}}`), 0},
		{body(`mutation { revokeApiKey(id: "0190a5e5-7c1e-7d3a-8c5e-2b9f4e6a1d20") { id revokedAt } }`, `null`), 0},
		{body(`{ __schema { types { name fields { name type { name ofType { name } } } } } }`, `null`), 0},
		{body(`query Q { ...F } fragment F on Query { ...F }`, `null`), 0},
		{body(`{ a: viewer { userId } b: viewer { userId } }`, `null`), 0},
		{`[{"query":"{ viewer { userId } }"}]`, 0},
		{`{"query":"{ viewer { userId } }","query":"x"}`, 0},
		{`{"query":42}`, 0},
		{`{"query":"`, 0},
		{`{ viewer { userId } }`, 1},
		{`mutation { createApiKey { key } }`, 1},
		{`{"query":"{ viewer { userId } }"}`, 2},
	} {
		f.Add([]byte(s.body), s.mode)
	}
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		var req *http.Request
		switch mode % 3 {
		case 0:
			req = httptest.NewRequest("POST", "/graphql", strings.NewReader(string(b)))
			req.Header.Set("Content-Type", "application/json")
		case 1:
			req = httptest.NewRequest("GET", "/graphql?query="+url.QueryEscape(string(b)), nil)
		case 2:
			req = httptest.NewRequest("POST", "/graphql", strings.NewReader(string(b)))
			req.Header.Set("Content-Type", "text/plain")
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))
		res := rec.Result()
		out, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d: %s", res.StatusCode, out)
		}
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("status %d, the answer is not a JSON object: %q", res.StatusCode, out)
		}
		if errs, ok := v["errors"].([]any); ok {
			for _, e := range errs {
				m, _ := e.(map[string]any)
				msg, _ := m["message"].(string)
				ext, _ := m["extensions"].(map[string]any)
				if code, _ := ext["code"].(string); code == "INTERNAL" || strings.Contains(msg, "graphql.RawParams") {
					t.Fatalf("status %d, error %v", res.StatusCode, m)
				}
			}
		}
	})
}
