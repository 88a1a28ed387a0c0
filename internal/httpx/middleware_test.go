package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// answer is a handler that answers with its content type (none: JSON) and,
// when csp is set, its own Content-Security-Policy.
func answer(contentType, csp string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if csp != "" {
			w.Header().Set("Content-Security-Policy", csp)
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(http.StatusOK)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{})
	})
}

func TestSecurityHeaders(t *testing.T) {
	const apiCSP, pageCSP = "default-src 'none'; frame-ancestors 'none'", "frame-ancestors 'none'"
	for _, tc := range []struct {
		name string
		h    http.Handler
		csp  string
	}{
		{"json", answer("", ""), apiCSP},
		{"html without a policy", answer("text/html; charset=utf-8", ""), pageCSP},
		{"html with its own policy", answer("text/html", "default-src 'self'; frame-ancestors 'none'"), "default-src 'self'; frame-ancestors 'none'"},
		{"plain text", answer("text/plain", ""), apiCSP},
		{"nothing written", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), apiCSP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(httpx.SecurityHeaders(tc.h))
			defer srv.Close()
			res, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			for name, want := range map[string]string{
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"X-Frame-Options":         "DENY",
				"Content-Security-Policy": tc.csp,
			} {
				if got := res.Header.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestCORS(t *testing.T) {
	const allowed = "https://app.example.com"
	for _, tc := range []struct {
		name    string
		origins []string
		method  string
		headers map[string]string
		status  int
		want    map[string]string // headers of the answer; "" means absent
		reached bool              // the handler ran
	}{
		{name: "no origins configured", origins: nil, method: "GET", headers: map[string]string{"Origin": allowed},
			status: 200, reached: true, want: map[string]string{"Access-Control-Allow-Origin": "", "Vary": ""}},
		{name: "no Origin header", origins: []string{allowed}, method: "GET",
			status: 200, reached: true, want: map[string]string{"Access-Control-Allow-Origin": "", "Vary": ""}},
		{name: "other origin", origins: []string{allowed}, method: "GET", headers: map[string]string{"Origin": "https://evil.example"},
			status: 200, reached: true, want: map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin"}},
		{name: "wildcard is never allowed", origins: []string{"*"}, method: "GET", headers: map[string]string{"Origin": allowed},
			status: 200, reached: true, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "allowed origin", origins: []string{" " + allowed + " "}, method: "GET", headers: map[string]string{"Origin": allowed},
			status: 200, reached: true, want: map[string]string{
				"Access-Control-Allow-Origin":      allowed,
				"Access-Control-Expose-Headers":    "Location, Retry-After, X-Auth-User-Id, X-Auth-Org-Id, X-Auth-Key-Id, X-Auth-Scopes",
				"Access-Control-Allow-Credentials": "",
				"Access-Control-Allow-Methods":     "",
				"Vary":                             "Origin",
			}},
		{name: "preflight", origins: []string{allowed}, method: "OPTIONS",
			headers: map[string]string{"Origin": allowed, "Access-Control-Request-Method": "PATCH"},
			status:  204, want: map[string]string{
				"Access-Control-Allow-Origin":      allowed,
				"Access-Control-Allow-Methods":     "GET, POST, PATCH, DELETE",
				"Access-Control-Allow-Headers":     "Authorization, Content-Type, X-Api-Key",
				"Access-Control-Max-Age":           "600",
				"Access-Control-Allow-Credentials": "",
				"Vary":                             "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
			}},
		{name: "preflight from another origin", origins: []string{allowed}, method: "OPTIONS",
			headers: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"},
			status:  200, reached: true, want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""}},
		{name: "OPTIONS that is no preflight", origins: []string{allowed}, method: "OPTIONS", headers: map[string]string{"Origin": allowed},
			status: 200, reached: true, want: map[string]string{"Access-Control-Allow-Origin": allowed, "Access-Control-Allow-Methods": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached := false
			h := httpx.CORS(tc.origins, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
			r := httptest.NewRequest(tc.method, "/auth/api-keys", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.status || reached != tc.reached {
				t.Fatalf("status %d, handler reached %v; want %d, %v", rec.Code, reached, tc.status, tc.reached)
			}
			for name, want := range tc.want {
				if got := strings.Join(rec.Header().Values(name), ", "); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestNoStore(t *testing.T) {
	h := httpx.NoStore([]string{"/auth/", "/graphql"}, answer("", ""))
	for path, want := range map[string]string{
		"/auth/api-keys":   "no-store",
		"/auth/":           "no-store",
		"/auth/verify":     "no-store",
		"/graphql":         "no-store",
		"/graphql/x":       "",
		"/auth":            "",
		"/healthz":         "",
		"/authentication/": "",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if got := rec.Header().Get("Cache-Control"); got != want {
			t.Errorf("%s: Cache-Control %q, want %q", path, got, want)
		}
	}

	// Error answers too: a refusal depends on who asks.
	log, _ := testLog()
	rec := httptest.NewRecorder()
	httpx.NoStore([]string{"/auth/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, log, apperr.New(apperr.MissingAuth, "no credential"))
	})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/auth/api-keys", nil))
	if rec.Code != 401 || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("a 401 answered %d with Cache-Control %q", rec.Code, rec.Header().Get("Cache-Control"))
	}
}

func TestRecover(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		status  int
		body    string // part of the body
		logline bool
	}{
		{"panic before answering", func(http.ResponseWriter, *http.Request) { panic("boom at 0xdead") }, 500, `"code":"INTERNAL"`, true},
		{"panic after answering", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte("partial"))
			panic("boom at 0xdead")
		}, 202, "partial", true},
		{"no panic", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }, 204, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := testLog()
			h := httpx.Observe(httpx.Recover(log, tc.h), nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("answered %d %q", rec.Code, rec.Body)
			}
			if strings.Contains(rec.Body.String(), "0xdead") {
				t.Errorf("the panic reached the client: %s", rec.Body)
			}
			if logged := strings.Contains(buf.String(), "panic serving request") && strings.Contains(buf.String(), "stack="); logged != tc.logline {
				t.Errorf("logged %v: %s", logged, buf)
			}
		})
	}

	t.Run("abort handler passes through", func(t *testing.T) {
		log, _ := testLog()
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler", v)
			}
		}()
		httpx.Recover(log, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })).
			ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	})
}
