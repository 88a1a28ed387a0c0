package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/config"
)

// Response headers as a browser or a reverse proxy reads them (SECURITY.md,
// "Transport and browsers" and "Login tokens"): security headers on every answer, CORS only for
// listed origins, and a user id header that cannot be forged or split.

// wantSecurityHeaders checks the headers every answer carries.
func wantSecurityHeaders(t testing.TB, what string, res response) {
	t.Helper()
	for name, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
	} {
		if got := res.Header.Values(name); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: %s %q, want %q", what, name, got, want)
		}
	}
	csps := res.Header.Values("Content-Security-Policy")
	if len(csps) != 1 {
		t.Fatalf("%s: Content-Security-Policy %q, want one", what, csps)
	}
	csp := parseCSP(csps[0])
	if !slices.Equal(csp["frame-ancestors"], []string{"'none'"}) {
		t.Errorf("%s: Content-Security-Policy %q: frame-ancestors is not 'none'", what, csps[0])
	}
	html := strings.HasPrefix(res.Header.Get("Content-Type"), "text/html")
	if !html && !slices.Equal(csp["default-src"], []string{"'none'"}) {
		t.Errorf("%s: an API answer's Content-Security-Policy %q lacks default-src 'none'", what, csps[0])
	}
	// Scripts follow script-src, else default-src.
	scripts, ok := csp["script-src"]
	if !ok {
		scripts = csp["default-src"]
	}
	if slices.Contains(scripts, "'unsafe-inline'") || slices.Contains(scripts, "'unsafe-eval'") || slices.Contains(scripts, "*") {
		t.Errorf("%s: Content-Security-Policy %q lets inline or foreign scripts run", what, csps[0])
	}
	// A page says where its scripts may come from.
	if html && len(scripts) == 0 {
		t.Errorf("%s: a page's Content-Security-Policy %q does not restrict scripts", what, csps[0])
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", func(c *config.Config) { c.AuthFailBurst = 1 })
	alice := e.token("alice")
	k := e.create(alice, nil)
	for _, c := range []struct {
		name, method, path string
		h                  http.Header
		body               *string
		status             int
	}{
		{"Create", "POST", "/auth/api-keys", bearer(alice), str(`{"name":"h"}`), 201},
		{"List", "GET", "/auth/api-keys", bearer(alice), nil, 200},
		{"Verify", "GET", "/auth/verify", hdr("X-Api-Key", k.Key), nil, 200},
		{"HeadVerify", "HEAD", "/auth/verify", bearer(alice), nil, 200},
		{"Revoke", "DELETE", "/auth/api-keys/" + k.ID, bearer(alice), nil, 204},
		{"Healthz", "GET", "/healthz", nil, nil, 200},
		{"Readyz", "GET", "/readyz", nil, nil, 200},
		{"MissingAuth", "GET", "/auth/verify", nil, nil, 401},
		{"BadRequest", "POST", "/auth/api-keys", bearer(alice), str(`{`), 400},
		{"NotFound", "GET", "/nope", nil, nil, 404},
		{"MethodNotAllowed", "PUT", "/auth/verify", nil, nil, 405},
		{"GraphQL", "POST", "/graphql", bearer(alice), str(gqlBody(`{ viewer { userId } }`)), 200},
		{"GraphQLGET", "GET", "/graphql?query={__typename}", nil, nil, 200},
		{"GraphQLRefused", "POST", "/graphql", nil, str(`[]`), 400},
		{"Playground", "GET", "/playground", nil, nil, 200},
		{"Dashboard", "GET", "/", nil, nil, 200},
		{"Script", "GET", "/static/app.js", nil, nil, 200},
		{"Register", "POST", "/auth/register", nil, str(`{"email":"h@example.com","password":"correct horse battery"}`), 201},
		{"Metrics", "GET", "/metrics", nil, nil, 200},
		{"OpenAPI", "GET", "/openapi.json", nil, nil, 200},
		{"RevokedKey", "GET", "/auth/api-keys", hdr("X-Api-Key", k.Key), nil, 401},
		{"RateLimited", "GET", "/auth/verify", bearer("garbage"), nil, 429}, // the 401 above spent the burst
	} {
		t.Run(c.name, func(t *testing.T) {
			res := e.do(c.method, c.path, c.h, c.body)
			if res.Status != c.status {
				t.Fatalf("status %d, want %d: %s", res.Status, c.status, res.Body)
			}
			wantSecurityHeaders(t, c.name, res)
		})
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	const app, dev = "https://app.example", "http://localhost:3000"
	preflight := func(e *testEnv, origin, path, method string) response {
		return e.do("OPTIONS", path, hdr("Origin", origin, "Access-Control-Request-Method", method,
			"Access-Control-Request-Headers", "authorization, content-type"), nil)
	}
	noCORS := func(t *testing.T, what string, res response) {
		t.Helper()
		for name := range res.Header {
			if strings.HasPrefix(name, "Access-Control-") {
				t.Errorf("%s: %s: %q", what, name, res.Header.Values(name))
			}
		}
	}

	t.Run("Off", func(t *testing.T) {
		e := newEnv(t, "sqlite")
		alice := e.token("alice")
		for _, origin := range []string{app, "null", "https://evil.example"} {
			res := e.do("GET", "/auth/verify", hdr("Origin", origin, "Authorization", "Bearer "+alice), nil)
			if res.Status != http.StatusOK {
				t.Fatalf("verify: %d %s", res.Status, res.Body)
			}
			noCORS(t, "GET from "+origin, res)
			// A preflight is just an OPTIONS request: 405, no permission.
			res = preflight(e, origin, "/auth/api-keys", "POST")
			wantError(t, res, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
			noCORS(t, "preflight from "+origin, res)
		}
	})

	t.Run("ListedOrigins", func(t *testing.T) {
		e := newEnv(t, "sqlite", func(c *config.Config) { c.CORSOrigins = []string{app, dev} })
		alice := e.token("alice")
		for _, origin := range []string{app, dev} {
			res := e.do("GET", "/auth/api-keys", hdr("Origin", origin, "Authorization", "Bearer "+alice), nil)
			if res.Status != http.StatusOK {
				t.Fatalf("list: %d %s", res.Status, res.Body)
			}
			if got := res.Header.Values("Access-Control-Allow-Origin"); !slices.Equal(got, []string{origin}) {
				t.Errorf("Access-Control-Allow-Origin %q, want exactly %q", got, origin)
			}
			if !slices.Contains(res.Header.Values("Vary"), "Origin") {
				t.Errorf("Vary %q lacks Origin", res.Header.Values("Vary"))
			}
			// Credentials are headers, never cookies: nothing to allow.
			if v := res.Header.Values("Access-Control-Allow-Credentials"); v != nil {
				t.Errorf("Access-Control-Allow-Credentials %q", v)
			}
			res = preflight(e, origin, "/auth/api-keys", "POST")
			if res.Status != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != origin {
				t.Fatalf("preflight: %d %v", res.Status, res.Header)
			}
			if m := res.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") || strings.Contains(m, "*") {
				t.Errorf("Access-Control-Allow-Methods %q", m)
			}
			// A rename (PATCH) is a management call like any other.
			if m := preflight(e, origin, "/auth/api-keys/x", "PATCH").Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "PATCH") {
				t.Errorf("preflight for PATCH: Access-Control-Allow-Methods %q", m)
			}
			if h := strings.ToLower(res.Header.Get("Access-Control-Allow-Headers")); !strings.Contains(h, "authorization") || strings.Contains(h, "*") {
				t.Errorf("Access-Control-Allow-Headers %q", h)
			}
			if v := res.Header.Values("Access-Control-Allow-Credentials"); v != nil {
				t.Errorf("preflight Access-Control-Allow-Credentials %q", v)
			}
		}
		// Anything but an exact, listed origin gets no permission.
		for _, origin := range []string{
			"https://evil.example", "null", "https://app.example.evil.example", "https://evil.example/https://app.example",
			"https://APP.example", "https://app.example:443", "https://app.example/", "http://app.example",
			"https://app.example:8443", "http://localhost:3001", "https://sub.app.example",
		} {
			res := e.do("GET", "/auth/api-keys", hdr("Origin", origin, "Authorization", "Bearer "+alice), nil)
			if res.Status != http.StatusOK {
				t.Fatalf("list: %d %s", res.Status, res.Body)
			}
			noCORS(t, "GET from "+origin, res)
			if !slices.Contains(res.Header.Values("Vary"), "Origin") {
				t.Errorf("GET from %q: Vary %q lacks Origin (a cache could serve it to a listed origin)", origin, res.Header.Values("Vary"))
			}
			res = preflight(e, origin, "/auth/api-keys", "DELETE")
			wantError(t, res, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
			noCORS(t, "preflight from "+origin, res)
		}
	})

	t.Run("Configuration", func(t *testing.T) {
		for _, bad := range []string{
			"*", "null", app + ",*", "https://app.example/", "app.example", "https://App.example",
			"https://app.example:443", "http://app.example:80", "https://user@app.example",
			"https://app.example/path", "https://app.example?x", "ftp://app.example", "https://",
		} {
			if _, err := parseConfig("-cors-origins", bad); err == nil || !strings.Contains(err.Error(), "CORS_ORIGINS") {
				t.Errorf("CORS_ORIGINS=%q: %v, want a CORS_ORIGINS error", bad, err)
			}
		}
		for _, good := range []string{"", app, app + ", " + dev, "https://app.example:8443", "http://[::1]:3000"} {
			if _, err := parseConfig("-cors-origins", good); err != nil {
				t.Errorf("CORS_ORIGINS=%q: %v", good, err)
			}
		}
	})
}

// TestHostHeaderIgnored: the Host a client sends never makes it into an
// answer (no absolute URLs are built from it).
func TestHostHeaderIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	alice := e.token("alice")
	const evil = "evil.example"
	for _, c := range []struct{ method, path, wire string }{
		{"POST", "/auth/api-keys", "Authorization: Bearer " + alice + "\r\nContent-Length: 0\r\n"},
		{"GET", "/nope", ""},
		{"GET", "/auth/verify", "X-Forwarded-Host: " + evil + "\r\n"},
		{"GET", "/playground", "X-Forwarded-Host: " + evil + "\r\n"},
	} {
		res := e.sendRaw(rawRequest{Method: c.method, Path: c.path, Host: evil, Lines: c.wire})
		if res.Status >= 500 {
			t.Fatalf("%s %s: %d", c.method, c.path, res.Status)
		}
		if c.method == "POST" {
			if res.Status != http.StatusCreated || !strings.HasPrefix(res.Header.Get("Location"), "/auth/api-keys/") {
				t.Fatalf("create: %d Location %q", res.Status, res.Header.Get("Location"))
			}
			e.created(res)
		}
		for name, vs := range res.Header {
			for _, v := range vs {
				if strings.Contains(v, evil) {
					t.Errorf("%s %s: header %s: %q", c.method, c.path, name, v)
				}
			}
		}
		if strings.Contains(string(res.Body), evil) {
			t.Errorf("%s %s: the body names the Host: %s", c.method, c.path, res.Body)
		}
	}
}

// TestSubjectInHeaders: the user id travels in X-Auth-User-Id to reverse
// proxies, so a subject that would split, break or disguise that header is
// refused, and any other arrives byte for byte.
func TestSubjectInHeaders(t *testing.T) {
	t.Parallel()
	eachDBWith(t, noFailLimit, func(t *testing.T, e *testEnv) {
		now := time.Now()
		tokenFor := func(sub string) string { return e.sign(sub, issuedAt(now)) }
		for _, sub := range []string{
			"alice\r\nX-Injected: 1", "alice\nX-Injected: 1", "alice\r", "alice\x00", "alice\x7f", "alice\u0085",
			" alice", "alice ", "\talice", "alice\u00a0", "\u2003alice",
		} {
			res := e.do("GET", "/auth/verify", bearer(tokenFor(sub)), nil)
			wantError(t, res, http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
			if res.Header.Get("X-Injected") != "" || res.Header.Get("X-Auth-User-Id") != "" {
				t.Errorf("sub %q: headers %v", sub, res.Header)
			}
		}
		for _, sub := range []string{"ünïcödé", "用户", "a b", "idp|alice", `"quoted"`, "a,b;c=d", "alice\u2028bob"} {
			tok := tokenFor(sub)
			res := e.do("GET", "/auth/verify", bearer(tok), nil)
			if res.Status != http.StatusOK || res.JSON(t)["user_id"] != sub {
				t.Fatalf("sub %q: %d %s", sub, res.Status, res.Body)
			}
			if got := res.Header.Values("X-Auth-User-Id"); !slices.Equal(got, []string{sub}) {
				t.Errorf("sub %q: X-Auth-User-Id %q", sub, got)
			}
			// The same through one of the user's keys.
			k := e.create(tok, nil)
			res = e.do("GET", "/auth/verify", hdr("X-Api-Key", k.Key), nil)
			if got := res.Header.Values("X-Auth-User-Id"); res.Status != http.StatusOK || !slices.Equal(got, []string{sub}) {
				t.Errorf("sub %q through a key: %d X-Auth-User-Id %q", sub, res.Status, got)
			}
		}
	})
}
