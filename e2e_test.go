package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/app"
	"github.com/apikeyd/apikeyd/internal/clocktest"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// testEnv is a real apikeyd on a loopback listener over a real database,
// with a real JWT signer. Every secret it hands out is remembered, and when
// the test ends the server's whole log output is checked to contain none.
type testEnv struct {
	t      testing.TB
	URL    string
	DSN    string
	App    *app.App
	Secret []byte
	Logs   *syncBuffer
	// Clock is the server's clock: the wall clock until a test advances
	// it past a deadline (an expiry, the end of a grace) rather than
	// sleeping until the deadline comes.
	Clock *clocktest.Clock
	// client sends the harness's requests; its transport checks each
	// exchange against the OpenAPI document (see openapi_test.go).
	client *http.Client

	mu      sync.Mutex
	secrets []string
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// parseConfig reads the configuration as `apikeyd serve` does, from args and
// the environment.
func parseConfig(args ...string) (config.Config, error) {
	return config.Parse(flag.NewFlagSet("test", flag.ContinueOnError), config.Serve, args, os.LookupEnv)
}

// mustURL parses a URL the test built.
func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// newEnv starts apikeyd on the named database ("sqlite" or "postgres");
// configure may change the configuration first.
func newEnv(t testing.TB, db string, configure ...func(*config.Config)) *testEnv {
	t.Helper()
	return newEnvDSN(t, dbtest.DSN(t, db), configure...)
}

func newEnvDSN(t testing.TB, dsn string, configure ...func(*config.Config)) *testEnv {
	t.Helper()
	return newEnvStore(t, dsn, nil, configure...)
}

// newEnvStore is newEnvDSN with the API keys kept by wrap(the real store)
// when wrap is not nil: a store that fails in a way the test chose, behind
// the whole real handler.
func newEnvStore(t testing.TB, dsn string, wrap func(apikey.Store) apikey.Store, configure ...func(*config.Config)) *testEnv {
	t.Helper()
	return startEnv(t, envSpec{dsn: dsn, wrap: wrap}, configure...)
}

// envSpec is what a test server is built around.
type envSpec struct {
	dsn   string
	wrap  func(apikey.Store) apikey.Store // nil: the real store
	clock *clocktest.Clock                // nil: a new running clock
	// onDB, when not nil, is given the database before the server is
	// built on it (to add a query hook, say).
	onDB func(*bun.DB)
}

// startEnv starts apikeyd as spec says; configure may change the
// configuration first.
func startEnv(t testing.TB, spec envSpec, configure ...func(*config.Config)) *testEnv {
	t.Helper()
	dsn, wrap, clock := spec.dsn, spec.wrap, spec.clock
	if clock == nil {
		clock = clocktest.Running()
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	cfg, err := parseConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = dsn
	cfg.JWTSecret = hex.EncodeToString(secret)
	for _, f := range configure {
		f(&cfg)
	}
	e := &testEnv{t: t, DSN: dsn, Secret: []byte(cfg.JWTSecret), Logs: &syncBuffer{}, Clock: clock}
	e.client = &http.Client{Transport: &contractTransport{t: t, base: http.DefaultTransport, c: mustContract(t)}}
	e.remember(cfg.JWTSecret)
	log := slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deps := app.Deps{Log: log, Now: clock.Now}
	var a *app.App
	if wrap == nil && spec.onDB == nil {
		a, err = app.Open(context.Background(), cfg, deps)
	} else {
		deps.DB = dbtest.OpenDSN(t, dsn)
		if spec.onDB != nil {
			spec.onDB(deps.DB)
		}
		if wrap != nil {
			deps.Keys = wrap(store.New(deps.DB, store.Config{}))
		}
		a, err = app.New(context.Background(), cfg, deps)
	}
	if err != nil {
		t.Fatal(err)
	}
	e.App = a
	srv := httptest.NewServer(a.Handler)
	e.URL = srv.URL
	flushCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.Keys.RunUsageFlusher(flushCtx, log) })
	t.Cleanup(func() {
		srv.Close()
		stop()
		wg.Wait()
		a.Close()
		e.assertNoSecretsLogged()
		assertLogsClean(t, e.Logs.String())
	})
	return e
}

// remember records a secret that must never appear in the logs, nor its
// SHA-256 (the stored form of a key).
func (e *testEnv) remember(s string) {
	if s == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, s, hashOf(s))
}

func (e *testEnv) assertNoSecretsLogged() {
	logs := e.Logs.String()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.secrets {
		if s != "" && strings.Contains(logs, s) {
			e.t.Errorf("a secret (%.10s…) appears in the server log", s)
		}
	}
}

// token mints a login token for sub, valid for an hour (and remembered).
func (e *testEnv) token(sub string) string {
	e.t.Helper()
	return e.sign(sub)
}

// response is an answered request.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// hdr builds request headers from name, value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func bearer(tok string) http.Header { return hdr("Authorization", "Bearer "+tok) }

// do sends a request; a non-nil body string is sent as application/json
// unless h sets a Content-Type. The exchange is checked against the OpenAPI
// document.
func (e *testEnv) do(method, path string, h http.Header, body *string) response {
	e.t.Helper()
	res, err := e.send(method, path, h, body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// send is do returning transport errors instead of failing the test, so
// that any goroutine may call it.
func (e *testEnv) send(method, path string, h http.Header, body *string) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(*body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		return response{}, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.roundTrip(req)
}

// roundTrip sends req exactly as built, checked against the OpenAPI
// document, and reads the whole answer.
func (e *testEnv) roundTrip(req *http.Request) (response, error) {
	res, err := e.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	e.rememberMinted(b)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

func str(s string) *string { return &s }

// createdKey is the answer to a create.
type createdKey struct {
	ID        string  `json:"id"`
	Key       string  `json:"key"`
	KeyPrefix string  `json:"key_prefix"`
	Name      *string `json:"name"`
	CreatedAt string  `json:"created_at"`
	ExpiresAt *string `json:"expires_at"`
}

// create makes a key through REST with body (nil: no body) and fails the
// test unless it is created.
func (e *testEnv) create(tok string, body *string) createdKey {
	e.t.Helper()
	res := e.do("POST", "/auth/api-keys", bearer(tok), body)
	if res.Status != http.StatusCreated {
		e.t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	var k createdKey
	if err := json.Unmarshal(res.Body, &k); err != nil {
		e.t.Fatal(err)
	}
	return k
}

// listedKey is a key as listed.
type listedKey struct {
	ID         string  `json:"id"`
	KeyPrefix  string  `json:"key_prefix"`
	Name       *string `json:"name"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
	ExpiresAt  *string `json:"expires_at"`
}

func (e *testEnv) list(tok string) []listedKey {
	e.t.Helper()
	res := e.do("GET", "/auth/api-keys", bearer(tok), nil)
	if res.Status != http.StatusOK {
		e.t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	var out struct {
		APIKeys []listedKey `json:"api_keys"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.APIKeys
}

// gql runs a GraphQL operation over POST and returns the decoded answer.
func (e *testEnv) gql(h http.Header, query string, vars map[string]any) (int, gqlResponse) {
	e.t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	res := e.do("POST", "/graphql", h, str(string(b)))
	var out gqlResponse
	if err := json.Unmarshal(res.Body, &out); err != nil {
		e.t.Fatalf("GraphQL answer %q: %v", res.Body, err)
	}
	return res.Status, out
}

type gqlResponse struct {
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// codes lists the extensions.code of every error.
func (g gqlResponse) codes() []string {
	var out []string
	for _, e := range g.Errors {
		c, _ := e.Extensions["code"].(string)
		out = append(out, c)
	}
	return out
}

// eachDB runs fn against a fresh server on each database.
func eachDB(t *testing.T, fn func(t *testing.T, e *testEnv)) {
	eachDBWith(t, nil, fn)
}

// eachDBWith is eachDB with configure (when not nil) applied to each
// server's configuration.
func eachDBWith(t *testing.T, configure func(*config.Config), fn func(t *testing.T, e *testEnv)) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			if configure == nil {
				fn(t, newEnv(t, db))
				return
			}
			fn(t, newEnv(t, db, configure))
		})
	}
}

// wantError checks a REST error answer: status, code and the error shape.
func wantError(t testing.TB, res response, status int, code string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d; body %s", res.Status, status, res.Body)
	}
	m := res.JSON(t)
	if m["code"] != code || m["statusCode"] != float64(status) {
		t.Fatalf("body %s, want code %s and statusCode %d", res.Body, code, status)
	}
	if msg, _ := m["error"].(string); msg == "" {
		t.Fatalf("body %s has no error message", res.Body)
	}
	if len(m) != 3 {
		t.Fatalf("body %s has fields beyond error, statusCode, code", res.Body)
	}
	if status == http.StatusUnauthorized {
		want := `Bearer realm="apikeyd"`
		if code == "INVALID_OR_EXPIRED_TOKEN" {
			want += `, error="invalid_token"` // RFC 6750: a credential was presented and refused
		}
		if got := res.Header.Get("WWW-Authenticate"); got != want {
			t.Errorf("WWW-Authenticate: %q, want %q", got, want)
		}
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
}

func hashOf(key string) string { return apikey.Hash(key) }
