// Package web serves apikeyd's browser pages from files embedded in the
// binary: the dashboard at / (sign in, then create, list and revoke API keys
// over GraphQL, your own or an organisation's, manage an organisation's
// members and invitations, and chart the keys' usage in SVG drawn by its
// script) and the GraphQL playground at /playground (GraphiQL, its
// JavaScript and CSS vendored under static/vendor, so no CDN is needed).
//
// Nothing is built: the pages are plain HTML, CSS and JavaScript as written.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/internal/httpx"
)

//go:embed pages static
var files embed.FS

// Content-Security-Policy of the pages. Scripts and styles come only from
// apikeyd itself and never from inline code; GraphiQL's CSS inlines its fonts
// as data: URLs. The dashboard needs no inline style at all. GraphiQL sets
// style attributes (CodeMirror, React), hence 'unsafe-inline' for styles,
// and for styles only, on the playground.
const (
	cspCommon = "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self' data:; " +
		"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	DashboardCSP  = cspCommon + "; style-src 'self'"
	PlaygroundCSP = cspCommon + "; style-src 'self' 'unsafe-inline'"
)

// Options configures the pages.
type Options struct {
	// Playground serves the GraphQL IDE at /playground; when false that path
	// answers 404 like any unknown route.
	Playground bool
	// Authenticate is how the pages' routes authenticate: the wrapper of
	// each handler. nil: not at all.
	Authenticate func(http.Handler) http.Handler
}

// Register mounts the pages and their assets on mux: GET / (the dashboard),
// GET /playground when enabled, and GET /static/…. Other methods on these
// paths answer 405, and unknown files 404, in the API's error shape.
func Register(mux *http.ServeMux, log *slog.Logger, o Options) {
	authenticate := o.Authenticate
	if authenticate == nil {
		authenticate = func(h http.Handler) http.Handler { return h }
	}
	route := func(pattern string, h http.Handler) { mux.Handle(pattern, httpx.Route(pattern, authenticate(h))) }
	notAllowed := httpx.MethodNotAllowed(log, "GET, HEAD")

	route("GET /{$}", page("pages/index.html", DashboardCSP))
	route("/{$}", notAllowed)
	if o.Playground {
		route("GET /playground", page("pages/playground.html", PlaygroundCSP))
		route("/playground", notAllowed)
	}
	route("GET /static/", http.StripPrefix("/static/", staticFiles(httpx.NotFound(log))))
	route("/static/", notAllowed)
}

// page serves one embedded HTML page with the security headers.
func page(name, csp string) http.Handler {
	a := mustAsset(name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		a.serve(w, r)
	})
}

// staticFiles serves the files under static/ by their path. Vendored files
// sit in folders named for their version, so browsers may keep them for a
// year; the others are revalidated with their ETag on each use.
func staticFiles(notFound http.Handler) http.Handler {
	assets := map[string]*asset{}
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		assets[strings.TrimPrefix(p, "static/")] = mustAsset(p)
		return nil
	})
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok {
			notFound.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "vendor/") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		a.serve(w, r)
	})
}

// asset is one embedded file, ready to serve.
type asset struct {
	name  string
	body  []byte
	ctype string
	etag  string

	gzOnce sync.Once
	gz     []byte // body gzipped, when that is smaller
}

func mustAsset(name string) *asset {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("web: embedded file %s: %v", name, err)) // fixed at build time
	}
	sum := sha256.Sum256(b)
	return &asset{
		name:  name,
		body:  b,
		ctype: contentType(name),
		etag:  `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
	}
}

// contentType names the media type of the files the pages use.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	}
	return "text/plain; charset=utf-8" // LICENSE, SHA256SUMS
}

// serve answers with the file, gzipped when the client accepts it and it
// pays; ServeContent handles HEAD, ranges and If-None-Match.
func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept-Encoding")
	body, etag := a.body, a.etag
	if acceptsGzip(r) {
		if gz := a.gzipped(); gz != nil {
			h.Set("Content-Encoding", "gzip")
			body, etag = gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
		}
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(body))
}

// gzipped compresses the file on first use; nil when that saves little.
func (a *asset) gzipped() []byte {
	a.gzOnce.Do(func() {
		if len(a.body) < 1024 || strings.HasPrefix(a.ctype, "image/png") {
			return
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(a.body)
		_ = zw.Close()
		if buf.Len() < len(a.body)*9/10 {
			a.gz = buf.Bytes()
		}
	})
	return a.gz
}

// acceptsGzip reports whether r's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
