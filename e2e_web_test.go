package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/web"
)

// TestWebPages checks the dashboard and playground pages as served: their
// security headers, that every file they name is served from apikeyd itself,
// and the caching and error answers of the asset routes.
func TestWebPages(t *testing.T) {
	e := newEnv(t, "sqlite")

	pages := []struct {
		path, csp string
	}{
		{"/", web.DashboardCSP},
		{"/playground", web.PlaygroundCSP},
	}
	for _, p := range pages {
		t.Run("Headers"+p.path, func(t *testing.T) {
			res := e.do("GET", p.path, nil, nil)
			if res.Status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", p.path, res.Status, res.Body)
			}
			want := map[string]string{
				"Content-Type":            "text/html; charset=utf-8",
				"Content-Security-Policy": p.csp,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"X-Frame-Options":         "DENY",
				"Cache-Control":           "no-cache",
			}
			for k, v := range want {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			csp := map[string]string{}
			for d, sources := range parseCSP(res.Header.Get("Content-Security-Policy")) {
				csp[d] = strings.Join(sources, " ")
			}
			for d, v := range map[string]string{
				"default-src":     "'self'",
				"script-src":      "'self'",
				"connect-src":     "'self'",
				"img-src":         "'self' data:",
				"frame-ancestors": "'none'",
				"base-uri":        "'none'",
				"form-action":     "'self'",
			} {
				if csp[d] != v {
					t.Errorf("CSP %s is %q, want %q", d, csp[d], v)
				}
			}
			if s := csp["style-src"]; s != "'self'" && s != "'self' 'unsafe-inline'" {
				t.Errorf("CSP style-src is %q", s)
			}
		})

		t.Run("Assets"+p.path, func(t *testing.T) {
			html := string(e.do("GET", p.path, nil, nil).Body)
			if strings.Contains(html, "<script>") || regexp.MustCompile(`(?i)\son[a-z]+=`).MatchString(html) {
				t.Errorf("%s has inline script, which its CSP refuses", p.path)
			}
			refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(html, -1)
			if len(refs) < 3 {
				t.Fatalf("%s names only %d files", p.path, len(refs))
			}
			for _, m := range refs {
				ref := m[1]
				if ref == "/" || ref == "/playground" {
					continue
				}
				if !strings.HasPrefix(ref, "/static/") {
					t.Errorf("%s names %q, which apikeyd does not serve (no CDN)", p.path, ref)
					continue
				}
				res := e.do("GET", ref, nil, nil)
				if res.Status != http.StatusOK || len(res.Body) == 0 {
					t.Errorf("GET %s (named by %s): %d", ref, p.path, res.Status)
				}
				if res.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("GET %s: no X-Content-Type-Options: nosniff", ref)
				}
			}
		})
	}

	t.Run("ContentTypes", func(t *testing.T) {
		for path, ct := range map[string]string{
			"/static/app.js":      "text/javascript; charset=utf-8",
			"/static/app.css":     "text/css; charset=utf-8",
			"/static/favicon.svg": "image/svg+xml",
			"/static/vendor/graphiql-3.9.0/graphiql.min.js": "text/javascript; charset=utf-8",
			"/static/vendor/graphiql-3.9.0/LICENSE":         "text/plain; charset=utf-8",
		} {
			if got := e.do("GET", path, nil, nil).Header.Get("Content-Type"); got != ct {
				t.Errorf("GET %s: Content-Type %q, want %q", path, got, ct)
			}
		}
	})

	t.Run("Caching", func(t *testing.T) {
		app := e.do("GET", "/static/app.js", nil, nil)
		if cc := app.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("app.js Cache-Control %q, want no-cache", cc)
		}
		etag := app.Header.Get("ETag")
		if etag == "" {
			t.Fatal("app.js has no ETag")
		}
		again := e.do("GET", "/static/app.js", hdr("If-None-Match", etag), nil)
		if again.Status != http.StatusNotModified || len(again.Body) != 0 {
			t.Errorf("revalidation: %d with %d bytes, want 304 and none", again.Status, len(again.Body))
		}
		vendor := e.do("GET", "/static/vendor/react-18.3.1/react.production.min.js", nil, nil)
		if cc := vendor.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("vendored file Cache-Control %q", cc)
		}
	})

	t.Run("Gzip", func(t *testing.T) {
		// A request of its own: the default client asks for gzip and
		// decompresses silently, which would hide what was sent.
		req, _ := http.NewRequest("GET", e.URL+"/static/vendor/graphiql-3.9.0/graphiql.min.js", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		res, err := contractClient(t, &http.Transport{DisableCompression: true}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding %q, want gzip", res.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		ident := e.do("GET", "/static/vendor/graphiql-3.9.0/graphiql.min.js", hdr("Accept-Encoding", "identity"), nil)
		if !bytes.Equal(plain, ident.Body) || len(raw) >= len(plain)/2 {
			t.Errorf("gzip body: %d bytes inflating to %d; identity %d", len(raw), len(plain), len(ident.Body))
		}
		if !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Vary %q", res.Header.Get("Vary"))
		}
	})

	t.Run("Errors", func(t *testing.T) {
		wantError(t, e.do("GET", "/static/nope.js", nil, nil), http.StatusNotFound, "NOT_FOUND")
		wantError(t, e.do("GET", "/static/", nil, nil), http.StatusNotFound, "NOT_FOUND")
		wantError(t, e.do("GET", "/static/../server.go", nil, nil), http.StatusNotFound, "NOT_FOUND")
		wantError(t, e.do("GET", "/index.html", nil, nil), http.StatusNotFound, "NOT_FOUND")
		wantError(t, e.do("GET", "/no/such/page", nil, nil), http.StatusNotFound, "NOT_FOUND")
		for _, path := range []string{"/", "/playground", "/static/app.js"} {
			res := e.do("POST", path, nil, str(`{}`))
			wantError(t, res, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
			if allow := res.Header.Get("Allow"); allow != "GET, HEAD" {
				t.Errorf("POST %s: Allow %q", path, allow)
			}
		}
		if res := e.do("HEAD", "/", nil, nil); res.Status != http.StatusOK {
			t.Errorf("HEAD /: %d", res.Status)
		}
	})
}

// TestPlaygroundOff checks that GRAPHQL_INTROSPECTION=false takes the
// playground away (404 in the error shape) and leaves the dashboard.
func TestPlaygroundOff(t *testing.T) {
	e := newEnvDSN(t, dbtest.DSN(t, "sqlite"), func(c *config.Config) { c.Introspection = false })
	wantError(t, e.do("GET", "/playground", nil, nil), http.StatusNotFound, "NOT_FOUND")
	if res := e.do("GET", "/", nil, nil); res.Status != http.StatusOK {
		t.Errorf("GET / without introspection: %d", res.Status)
	}
}
