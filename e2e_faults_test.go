package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// Faults (SECURITY.md, "Faults"): a database that goes away and comes back,
// and a panic in a handler, through the real middleware chain.

// tcpProxy forwards loopback connections to a target and can be switched
// off (its listener closed and every connection cut: the database is
// unreachable) and on again at the same address.
type tcpProxy struct {
	target, addr string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	if err := p.up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.down()
		p.wg.Wait()
	})
	return p
}

// up listens again, at the address of the first listener.
func (p *tcpProxy) up() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.forward(c) })
		}
	})
	return nil
}

func (p *tcpProxy) forward(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, u) {
		return
	}
	var wg sync.WaitGroup
	for _, pair := range [][2]net.Conn{{u, c}, {c, u}} {
		wg.Go(func() {
			_, _ = io.Copy(pair[0], pair[1])
			pair[0].Close()
			pair[1].Close()
		})
	}
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// track records live connections, or closes them if the proxy is down.
func (p *tcpProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

// down closes the listener and cuts every connection.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// TestDatabaseOutageAndRecovery: with PostgreSQL gone, every route that
// needs it answers 503 SERVER_BUSY, revealing nothing; when it is back, the
// same server answers as before, without a restart.
func TestDatabaseOutageAndRecovery(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.DSN(t, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.addr
	e := newEnvDSN(t, u.String(), noFailLimit)
	password, _ := u.User.Password()
	e.remember(password)

	alice := e.token("alice")
	k := e.create(alice, str(`{"name":"before"}`))
	doomed := e.create(alice, nil)
	if !e.keyVerifies(k.Key) {
		t.Fatal("the key does not verify before the outage")
	}
	// Never verified before the outage, so no cache of verified keys can
	// answer for it: only the database can.
	fresh := e.create(alice, str(`{"name":"fresh"}`))

	type call struct {
		name, method, path string
		h                  http.Header
		body               *string
	}
	needDB := []call{
		{"VerifyAPIKey", "GET", "/auth/verify", hdr("X-Api-Key", fresh.Key), nil},
		{"VerifyAPIKeyBearer", "GET", "/auth/verify", bearer(fresh.Key), nil},
		{"List", "GET", "/auth/api-keys", bearer(alice), nil},
		{"Create", "POST", "/auth/api-keys", bearer(alice), str(`{"name":"during"}`)},
		{"Revoke", "DELETE", "/auth/api-keys/" + doomed.ID, bearer(alice), nil},
		{"Readyz", "GET", "/readyz", nil, nil},
	}

	proxy.down()
	for _, c := range needDB {
		t.Run("Down"+c.name, func(t *testing.T) {
			res := e.do(c.method, c.path, c.h, c.body)
			wantError(t, res, http.StatusServiceUnavailable, "SERVER_BUSY")
			for _, s := range []string{proxy.addr, u.Port(), dbName, "postgres", "dial", "refused", "goroutine", ".go:"} {
				if strings.Contains(string(res.Body), s) {
					t.Errorf("the answer reveals %q: %s", s, res.Body)
				}
			}
		})
	}
	t.Run("DownGraphQL", func(t *testing.T) {
		e := e.subEnv(t)
		res, out := e.gqlRaw(bearer(alice), gqlBody(gqlListQuery))
		wantGQLError(t, res.Status, out, "SERVER_BUSY")
		if strings.Contains(string(res.Body), proxy.addr) || strings.Contains(string(res.Body), dbName) {
			t.Errorf("the answer reveals the database: %s", res.Body)
		}
	})
	t.Run("DownNoDatabaseNeeded", func(t *testing.T) {
		for _, c := range []call{
			{"Healthz", "GET", "/healthz", nil, nil},
			{"VerifyJWT", "GET", "/auth/verify", bearer(alice), nil},
		} {
			if res := e.do(c.method, c.path, c.h, c.body); res.Status != http.StatusOK {
				t.Errorf("%s: %d %s", c.name, res.Status, res.Body)
			}
		}
		wantError(t, e.do("GET", "/auth/verify", bearer(apikeytest.BadChecksum(k.Key)), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
	})
	logs := e.Logs.String()
	if !strings.Contains(logs, "SERVER_BUSY") {
		t.Error("the outage is not logged for operators")
	}
	if strings.Contains(logs, "goroutine ") || password != "" && strings.Contains(logs, password) {
		t.Error("the outage log holds a stack trace or the database password")
	}

	if err := proxy.up(); err != nil {
		t.Fatal(err)
	}
	// The pool notices the new connections by itself: no restart.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := e.do("GET", "/readyz", nil, nil)
		if res.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d %s 10 s after the database came back", res.Status, res.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range needDB {
		t.Run("Up"+c.name, func(t *testing.T) {
			res := e.do(c.method, c.path, c.h, c.body)
			switch {
			case c.name == "Create" && res.Status == http.StatusCreated:
				e.created(res)
			case c.name == "Revoke" && res.Status == http.StatusNoContent:
			case res.Status == http.StatusOK:
			default:
				t.Fatalf("%d %s", res.Status, res.Body)
			}
		})
	}
	// Nothing was half-done during the outage: "during" was never created,
	// the revoke took effect only after.
	names := map[string]bool{}
	for _, l := range e.list(alice) {
		names[strOrNil(l.Name)] = true
	}
	if len(names) != 3 || !names["before"] || !names["fresh"] || !names["during"] {
		t.Errorf("keys after recovery: %v, want before, fresh and the one created after", names)
	}
	if !e.keyVerifies(k.Key) || e.keyVerifies(doomed.Key) {
		t.Error("after recovery the keys do not verify as they should")
	}
}

// panicHook panics in any query that mentions trigger.
type panicHook struct{ trigger string }

func (h panicHook) BeforeQuery(ctx context.Context, q *bun.QueryEvent) context.Context {
	if strings.Contains(q.Query, h.trigger) {
		panic(errors.New("query exploded: detail-4711"))
	}
	return ctx
}

func (panicHook) AfterQuery(context.Context, *bun.QueryEvent) {}

// TestHandlerPanic: a panic deep in a request (here in the store, under the
// real middleware chain app.New builds) answers 500 INTERNAL with nothing of
// the panic, is logged with its stack but without credentials, and the
// server keeps serving. The panic comes from a bun query hook, so it strikes
// the queries bun runs: creating and revoking (the lookup and the listing
// are prepared statements, which bun's hooks do not see).
func TestHandlerPanic(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice, unlucky := e.token("alice"), e.token("unlucky-user")
		k := e.create(alice, nil)
		// The revocation finds the key's owner first, by the key's id: the
		// unlucky user's own key reaches the revoking query, which names them.
		unluckys := e.create(unlucky, nil)
		e.App.DB.AddQueryHook(panicHook{trigger: "unlucky-user"}) //nolint:staticcheck // the App's own DB must panic, not a clone

		for _, c := range []struct {
			name, method, path string
			body               *string
		}{
			{"Create", "POST", "/auth/api-keys", str(`{"name":"x"}`)},
			{"CreateNoBody", "POST", "/auth/api-keys", nil},
			{"Revoke", "DELETE", "/auth/api-keys/" + unluckys.ID, nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				res := e.do(c.method, c.path, bearer(unlucky), c.body)
				wantError(t, res, http.StatusInternalServerError, "INTERNAL")
				if msg := res.JSON(t)["error"]; msg != "internal error" {
					t.Errorf("message %q", msg)
				}
				for _, s := range []string{"detail-4711", "exploded", "panic", "goroutine", ".go:"} {
					if strings.Contains(string(res.Body), s) {
						t.Errorf("the answer reveals %q: %s", s, res.Body)
					}
				}
				wantNoStore(t, res)
				wantSecurityHeaders(t, c.name, res)
			})
		}
		t.Run("GraphQL", func(t *testing.T) {
			e := e.subEnv(t)
			res, out := e.gqlRaw(bearer(unlucky), gqlBody(`mutation { createApiKey { key } }`))
			if msg := wantGQLError(t, res.Status, out, "INTERNAL"); msg != "internal error" || strings.Contains(string(res.Body), "detail-4711") {
				t.Errorf("%s", res.Body)
			}
		})

		// Logged for operators, with the stack, without the credential
		// (the harness checks the whole log again at cleanup).
		logs := e.Logs.String()
		if !strings.Contains(logs, "detail-4711") || !strings.Contains(logs, "goroutine ") {
			t.Error("the panic is not logged with its stack")
		}
		if strings.Contains(logs, unlucky) {
			t.Error("the panic log holds the caller's token")
		}
		// The process lives on, for everyone.
		if keys := e.list(alice); len(keys) != 1 {
			t.Fatalf("alice's keys after the panics: %+v", keys)
		}
		if !e.keyVerifies(k.Key) {
			t.Fatal("the key no longer verifies")
		}
	})
}

// TestIdentityProviderDown: an identity provider that fails or is gone
// costs apikeyd only the login tokens that need its key set (an unknown
// kid): they get 503 SERVER_BUSY, never a 401, and are not charged to the
// client's failure budget, so an outage never rate-limits a legitimate
// client. Keys already fetched keep serving. apikeyd starts, is ready,
// verifies API keys, and asks the provider at most once a minute however
// many tokens with unknown kids arrive.
func TestIdentityProviderDown(t *testing.T) {
	t.Parallel()
	var fetches atomic.Int32
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		http.Error(w, "identity provider exploded", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_, _ = io.WriteString(w, "<html>down for maintenance</html>")
	}))
	t.Cleanup(garbage.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// unknownKid signs a token under a kid no key set holds.
	unknownKid := func(e *testEnv, i int) string {
		return e.sign("mallory", signedWith(jwt.SigningMethodES256, key), withKid(fmt.Sprintf("kid-%d", i)))
	}

	for _, idp := range []struct{ name, url string }{{"Failing", failing.URL}, {"Garbage", garbage.URL}, {"Gone", gone.URL}} {
		t.Run(idp.name, func(t *testing.T) {
			fetches.Store(0)
			var burst int // AUTH_FAIL_BURST at its default
			e := newEnv(t, "sqlite", func(c *config.Config) { c.JWTSecret, c.JWKSURL, burst = "", mustURL(idp.url), c.AuthFailBurst })
			if burst == 0 {
				t.Fatal("the failure limit is off; this test needs the default")
			}
			for _, path := range []string{"/healthz", "/readyz"} {
				if res := e.do("GET", path, nil, nil); res.Status != http.StatusOK {
					t.Fatalf("%s: %d %s", path, res.Status, res.Body)
				}
			}
			// A key made before the outage (straight through the service).
			ctx := apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: "alice", Method: apikey.MethodJWT})
			k, err := e.App.Keys.Create(ctx, apikey.CreateInput{})
			if err != nil {
				t.Fatal(err)
			}
			e.remember(k.Secret)

			// More than the failure burst from one address: every one is
			// 503, none is 429.
			for i := range burst + 10 {
				tok := unknownKid(e, i)
				wantError(t, e.do("GET", "/auth/verify", bearer(tok), nil), http.StatusServiceUnavailable, "SERVER_BUSY")
				status, out := e.gql(bearer(tok), gqlViewerQuery, nil)
				wantGQLError(t, status, out, "SERVER_BUSY")
			}
			if n := fetches.Load(); n > 1 {
				t.Errorf("the identity provider was asked %d times, want at most once", n)
			}
			res := e.do("GET", "/auth/verify", hdr("X-Api-Key", k.Secret), nil)
			if res.Status != http.StatusOK || res.JSON(t)["user_id"] != "alice" {
				t.Fatalf("API key during the outage: %d %s", res.Status, res.Body)
			}
			if !strings.Contains(e.Logs.String(), "JWKS fetch failed") {
				t.Error("the provider's failure is not logged for operators")
			}
		})
	}

	// An outage after the key set was fetched: tokens whose kid is known
	// keep working, as many as come.
	for _, outage := range []struct {
		name  string
		start func(*identityProvider)
	}{
		{"FailingAfterFetch", func(idp *identityProvider) { idp.failing.Store(true) }},
		{"GoneAfterFetch", func(idp *identityProvider) { idp.Close() }},
	} {
		t.Run(outage.name, func(t *testing.T) {
			idp := newIdentityProvider(t)
			var burst int
			e := newEnv(t, "sqlite", func(c *config.Config) {
				c.JWTSecret, c.JWKSURL, c.JWTIssuer, c.JWTAudience = "", mustURL(idp.URL), idpIssuer, idpAudience
				burst = c.AuthFailBurst
			})
			tok := idp.sign(e, "idp|alice")
			if res := e.do("GET", "/auth/verify", bearer(tok), nil); res.Status != http.StatusOK {
				t.Fatalf("verify before the outage: %d %s", res.Status, res.Body)
			}
			outage.start(idp)
			for range burst + 10 {
				if res := e.do("GET", "/auth/verify", bearer(tok), nil); res.Status != http.StatusOK {
					t.Fatalf("verify during the outage: %d %s", res.Status, res.Body)
				}
			}
			if keys := e.list(tok); len(keys) != 0 {
				t.Errorf("list during the outage: %+v", keys)
			}
			if n := idp.fetches.Load(); n != 1 {
				t.Errorf("the identity provider was asked %d times, want once", n)
			}
		})
	}
}
