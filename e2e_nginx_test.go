package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/testenv"
)

// nginxBinary is where Debian's nginx (package nginx-light, or nginx)
// installs the server; scripts/test installs it when it is missing.
const nginxBinary = "/usr/sbin/nginx"

// nginxWrapper is the smallest main configuration around the example: every
// path nginx writes to is inside the test's directory, and it runs in the
// foreground as one process, so the test can stop it by its pid.
const nginxWrapper = `daemon off;
master_process off;
worker_processes 1;
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 256; }
http {
    access_log {{DIR}}/access.log;
    client_body_temp_path {{DIR}}/client_body;
    proxy_temp_path {{DIR}}/proxy;
    fastcgi_temp_path {{DIR}}/fastcgi;
    uwsgi_temp_path {{DIR}}/uwsgi;
    scgi_temp_path {{DIR}}/scgi;
    include {{DIR}}/apikeyd.conf;
}
`

// upstreamRecorder is the protected service: it answers 200 and records
// what it receives.
type upstreamRecorder struct {
	mu   sync.Mutex
	seen []seenRequest
}

// seenRequest is a request as the protected service received it.
type seenRequest struct {
	Method, Path string
	Header       http.Header
	Body         string
}

func (u *upstreamRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.seen = append(u.seen, seenRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)})
	u.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "upstream saw %s %s with %d body bytes\n", r.Method, r.URL.Path, len(body))
}

// count returns how many requests reached the service.
func (u *upstreamRecorder) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// last returns the last request the service received.
func (u *upstreamRecorder) last() seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[len(u.seen)-1]
}

// startNginx renders examples/nginx/apikeyd.conf with the given ports (the
// only templated part) into a temporary directory, starts nginx on a free
// loopback port and returns that port. nginx is stopped when the test ends.
func startNginx(t *testing.T, apikeydPort, upstreamPort int) int {
	t.Helper()
	if _, err := os.Stat(nginxBinary); err != nil {
		testenv.Missing(t, nginxBinary+" is missing", "install Debian's nginx-light")
	}
	example, err := os.ReadFile(filepath.Join("examples", "nginx", "apikeyd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wrapper := strings.ReplaceAll(nginxWrapper, "{{DIR}}", dir)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(wrapper), 0o644); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 5 { // the free port may be taken before nginx binds it
		port := freePort(t)
		conf := strings.NewReplacer(
			"{{LISTEN_PORT}}", strconv.Itoa(port),
			"{{APIKEYD_PORT}}", strconv.Itoa(apikeydPort),
			"{{UPSTREAM_PORT}}", strconv.Itoa(upstreamPort),
		).Replace(string(example))
		if strings.Contains(conf, "{{") {
			t.Fatalf("the example has a placeholder besides the three ports: %s", conf[strings.Index(conf, "{{"):][:40])
		}
		if err := os.WriteFile(filepath.Join(dir, "apikeyd.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if lastErr = runNginx(t, dir, port); lastErr == nil {
			return port
		}
	}
	t.Fatalf("nginx did not start: %v", lastErr)
	return 0
}

// runNginx starts nginx with the configuration in dir and waits until it
// accepts connections on port.
func runNginx(t *testing.T, dir string, port int) error {
	// -e: the error log from the start, before the configuration names one
	// (the compiled-in /var/log/nginx may not be writable).
	cmd := exec.Command(nginxBinary, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt) // SIGINT: fast shutdown
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return fmt.Errorf("nginx exited (%v): %s%s", err, out.String(), log)
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
					t.Logf("nginx error log:\n%s", log)
				}
			})
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("nginx did not listen on %d within 10 s: %s", port, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// portOf returns the port of a URL such as http://127.0.0.1:1234.
func portOf(t *testing.T, url string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip: Linux routes all of 127.0.0.0/8 to the loopback
// interface, so each address is a different client to nginx.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// nginxFront is examples/nginx/apikeyd.conf running in a real nginx, with
// apikeyd (e) behind it and a recording service as the upstream.
type nginxFront struct {
	e    *testEnv
	up   *upstreamRecorder
	base string // nginx's URL
}

// startNginxFront starts the protected service and nginx in front of it
// and of e, which must trust 127.0.0.1 (nginx) as a proxy.
func startNginxFront(t *testing.T, e *testEnv) *nginxFront {
	t.Helper()
	up := &upstreamRecorder{}
	upstream := httptest.NewServer(up)
	t.Cleanup(upstream.Close)
	port := startNginx(t, portOf(t, e.URL), portOf(t, upstream.URL))
	return &nginxFront{e: e, up: up, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
}

// trustNginx has apikeyd believe the client address nginx (127.0.0.1)
// forwards in X-Forwarded-For.
func trustNginx(c *config.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

// send goes through nginx: an answer is the protected service's, which
// the OpenAPI document does not describe, or nginx's relay of apikeyd's
// refusal, which refused checks against it.
func (n *nginxFront) send(t *testing.T, c *http.Client, method, path string, h http.Header, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// passes sends a request that must reach the service as user (and key id
// keyID, "" for none) and returns what the service received and what the
// client got.
func (n *nginxFront) passes(t *testing.T, c *http.Client, method, path string, h http.Header, body, user, keyID string) (seenRequest, response) {
	t.Helper()
	return n.reaches(t, c, method, path, h, body, caller{user: user, key: keyID})
}

// caller is who the service must see a request come from: the values of
// X-Auth-User-Id, X-Auth-Org-Id and X-Auth-Key-Id, "" for a header that
// must be absent.
type caller struct{ user, org, key string }

// reaches sends a request that must reach the service from who and returns
// what the service received and what the client got.
func (n *nginxFront) reaches(t *testing.T, c *http.Client, method, path string, h http.Header, body string, who caller) (seenRequest, response) {
	t.Helper()
	before := n.up.count()
	res := n.send(t, c, method, path, h, body)
	if res.Status != http.StatusOK || !strings.HasPrefix(string(res.Body), "upstream saw "+method+" "+path) {
		t.Fatalf("%s %s through nginx: %d %s", method, path, res.Status, res.Body)
	}
	if n.up.count() != before+1 {
		t.Fatalf("the service got %d requests, want 1", n.up.count()-before)
	}
	got := n.up.last()
	for _, w := range []struct{ name, value string }{
		{"X-Auth-User-Id", who.user}, {"X-Auth-Org-Id", who.org}, {"X-Auth-Key-Id", who.key},
	} {
		var want []string
		if w.value != "" {
			want = []string{w.value}
		}
		if v := got.Header.Values(w.name); !slices.Equal(v, want) {
			t.Errorf("the service saw %s %q, want %q", w.name, v, want)
		}
	}
	for name := range got.Header {
		n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if n == "authorization" || n == "x-api-key" {
			t.Errorf("the service saw the credential header %s", name)
		}
		if (n == "x-auth-user-id" || n == "x-auth-org-id" || n == "x-auth-key-id") && name != http.CanonicalHeaderKey(n) {
			t.Errorf("the service saw the client's header %s: %q", name, got.Header[name])
		}
	}
	return got, res
}

// refused sends a request for path that nginx must answer with apikeyd's
// error, the service seeing nothing. Under /reports/ nginx asks apikeyd
// for the scope reports:read.
func (n *nginxFront) refused(t *testing.T, c *http.Client, path string, h http.Header, status int, code string) response {
	t.Helper()
	before := n.up.count()
	res := n.send(t, c, "GET", path, h, "")
	if n.up.count() != before {
		t.Errorf("a refused request reached the service")
	}
	if res.Status != status {
		t.Fatalf("status %d, want %d; body %s", res.Status, status, res.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(res.Body, &m); err != nil || m["code"] != code || m["statusCode"] != float64(status) {
		t.Fatalf("body %q, want apikeyd's %s error", res.Body, code)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	if status == http.StatusUnauthorized {
		want := `Bearer realm="apikeyd"`
		if code == "INVALID_OR_EXPIRED_TOKEN" {
			want += `, error="invalid_token"`
		}
		if got := res.Header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != want {
			t.Errorf("WWW-Authenticate %q, want [%q]", got, want)
		}
	}
	// What nginx answers stands for apikeyd's answer to its
	// GET /auth/verify, and must keep to the document as that does.
	verifyPath := "/auth/verify"
	if strings.HasPrefix(path, "/reports/") {
		verifyPath += "?scope=reports:read"
	}
	verify, err := http.NewRequest("GET", n.e.URL+verifyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		verify.Header[k] = v
	}
	mustContract(t).verify(t, verify, nil, &http.Response{StatusCode: res.Status, Header: res.Header}, res.Body)
	return res
}

// TestNginxForwardAuth runs examples/nginx/apikeyd.conf in a real nginx,
// with apikeyd behind it and a recording service as the upstream, and shows
// that only good credentials reach the service, that the service learns who
// is calling and cannot be lied to, that refusals carry apikeyd's answer,
// and that the failure rate limit counts each client, not nginx.
func TestNginxForwardAuth(t *testing.T) {
	const burst = 20 // AUTH_FAIL_BURST: failed authentications per client address
	e := newEnv(t, "sqlite", trustNginx, func(c *config.Config) { c.AuthFailBurst = burst })
	n := startNginxFront(t, e)

	tok := e.token("alice")
	key := e.create(tok, str(`{"name":"behind nginx"}`))
	revoked := e.create(tok, nil)
	if res := e.do("DELETE", "/auth/api-keys/"+revoked.ID, bearer(tok), nil); res.Status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	expiry := e.Clock.Now().Add(time.Minute)
	expiring := e.create(tok, str(`{"expires_at":"`+apitime.Format(expiry)+`"}`))

	client := clientFrom("127.0.0.1")
	const path = "/private/data"

	t.Run("ValidKey", func(t *testing.T) {
		n.passes(t, client, "GET", path, hdr("X-Api-Key", key.Key), "", "alice", key.ID)
		_, res := n.passes(t, client, "GET", path, bearer(key.Key), "", "alice", key.ID)
		// A key without a policy: no rate limit or credits to tell.
		for _, h := range []string{"RateLimit", "RateLimit-Policy", "X-Auth-Credits-Remaining"} {
			if v, ok := res.Header[h]; ok {
				t.Errorf("the client got %s %q for a key without a policy", h, v)
			}
		}
		// The body and method reach the service; apikeyd got a bodiless GET.
		got, _ := n.passes(t, client, "POST", "/private/upload", hdr("X-Api-Key", key.Key, "Content-Type", "text/plain"), "payload", "alice", key.ID)
		if got.Body != "payload" {
			t.Errorf("the service got body %q", got.Body)
		}
	})
	t.Run("LoginToken", func(t *testing.T) {
		n.passes(t, client, "GET", path, bearer(tok), "", "alice", "")
	})
	t.Run("ClientCannotClaimIdentity", func(t *testing.T) {
		forged := hdr("X-Api-Key", key.Key,
			"X-Auth-User-Id", "someone-else", "X-Auth-Key-Id", revoked.ID,
			"x-auth-user-id", "someone-else-again", "X_Auth_User_Id", "someone-else")
		n.passes(t, client, "GET", path, forged, "", "alice", key.ID)
		forged = hdr("Authorization", "Bearer "+tok, "X-Auth-Key-Id", key.ID, "X_Auth_Key_Id", key.ID)
		n.passes(t, client, "GET", path, forged, "", "alice", "")
		// Without a credential the claim gets nowhere at all.
		n.refused(t, client, path, hdr("X-Auth-User-Id", "someone-else"), http.StatusUnauthorized, "MISSING_AUTH")
	})
	t.Run("Refused", func(t *testing.T) {
		unknown := apikey.NewFormat(apikey.DefaultPrefix).Generate()
		forgedKey := apikeytest.BadChecksum(key.Key)
		n.refused(t, client, path, nil, http.StatusUnauthorized, "MISSING_AUTH")
		n.refused(t, client, path, hdr("Authorization", "Basic YWxpY2U6cHc="), http.StatusUnauthorized, "MISSING_AUTH")
		n.refused(t, client, path, hdr("X-Api-Key", forgedKey), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
		n.refused(t, client, path, bearer(unknown), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
		n.refused(t, client, path, hdr("X-Api-Key", revoked.Key), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
		n.refused(t, client, path, bearer("not.a.token"), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
		e.advancePast(expiry)
		n.refused(t, client, path, hdr("X-Api-Key", expiring.Key), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
	})
	t.Run("RateLimitPerClient", func(t *testing.T) {
		// 127.0.0.2 guesses keys until apikeyd refuses it. nginx connects
		// to apikeyd from 127.0.0.1, a trusted proxy, and passes the
		// client's address in X-Forwarded-For: the limit is 127.0.0.2's.
		guesser, other := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
		guess := hdr("X-Api-Key", apikey.NewFormat(apikey.DefaultPrefix).Generate())
		limited := false
		for i := 0; i < 3*burst && !limited; i++ {
			before := n.up.count()
			res := n.send(t, guesser, "GET", path, guess, "")
			if n.up.count() != before {
				t.Fatal("a guess reached the service")
			}
			switch res.Status {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				limited = true
			default:
				t.Fatalf("guess %d: %d %s", i, res.Status, res.Body)
			}
		}
		if !limited {
			t.Fatalf("no 429 after %d failed guesses", 3*burst)
		}
		res := n.refused(t, guesser, path, hdr("X-Api-Key", key.Key), http.StatusTooManyRequests, "RATE_LIMITED")
		if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("Retry-After %q", res.Header.Get("Retry-After"))
		}
		if m := res.JSON(t); !strings.Contains(m["error"].(string), "address") {
			t.Errorf("body %s: want the address's limit, not a key's", res.Body)
		}
		// Claiming another address in X-Forwarded-For does not help: nginx
		// appends the real one, and apikeyd believes only that.
		n.refused(t, guesser, path, hdr("X-Api-Key", key.Key, "X-Forwarded-For", "127.0.0.9"), http.StatusTooManyRequests, "RATE_LIMITED")
		// Other clients, and nginx's own address, are not limited.
		n.passes(t, other, "GET", path, hdr("X-Api-Key", key.Key), "", "alice", key.ID)
		n.passes(t, client, "GET", path, bearer(key.Key), "", "alice", key.ID)
	})
}

// TestNginxUsagePolicy runs examples/nginx/apikeyd.conf in a real nginx
// and shows that each refusal of a key's usage policy reaches the client
// as apikeyd gave it, although auth_request passes on only 2xx, 401 and
// 403: 429 with Retry-After for a key's rate limit and for credits run
// out, 403 with the code for a disabled key and for an address outside
// the key's allowed_ips (the client's, which nginx forwards; not nginx's).
// On success the client sees its rate limit and remaining credits.
func TestNginxUsagePolicy(t *testing.T) {
	e := newEnv(t, "sqlite", trustNginx)
	n := startNginxFront(t, e)
	tok := e.token("alice")
	client := clientFrom("127.0.0.1")
	const path = "/private/data"

	t.Run("RateLimited", func(t *testing.T) {
		k := e.create(tok, str(`{"rate_limit":{"limit":2,"period_seconds":60}}`))
		for i := range 2 {
			_, res := n.passes(t, client, "GET", path, hdr("X-Api-Key", k.Key), "", "alice", k.ID)
			if got := res.Header.Get("RateLimit-Policy"); got != `"key";q=2;w=60` {
				t.Errorf("RateLimit-Policy %q", got)
			}
			if got, want := res.Header.Get("RateLimit"), fmt.Sprintf(`"key";r=%d;`, 1-i); !strings.HasPrefix(got, want) {
				t.Errorf("RateLimit %q, want %s…", got, want)
			}
		}
		res := n.refused(t, client, path, hdr("X-Api-Key", k.Key), http.StatusTooManyRequests, "RATE_LIMITED")
		// One token of 2 a minute is back in 30 s at most.
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 1 || s > 30 {
			t.Errorf("Retry-After %q, want 1…30", res.Header.Get("Retry-After"))
		}
		if got := res.Header.Get("RateLimit-Policy"); got != `"key";q=2;w=60` {
			t.Errorf("RateLimit-Policy %q on the 429", got)
		}
		if got := res.Header.Get("RateLimit"); !strings.HasPrefix(got, `"key";r=0;`) {
			t.Errorf("RateLimit %q on the 429", got)
		}
		if m := res.JSON(t); strings.Contains(m["error"].(string), "address") {
			t.Errorf("body %s: the key's limit, not the address's", res.Body)
		}
		// On /reports/ the same bucket answers.
		n.refused(t, client, "/reports/q1", hdr("X-Api-Key", k.Key), http.StatusTooManyRequests, "RATE_LIMITED")
	})
	t.Run("UsageExceeded", func(t *testing.T) {
		k := e.create(tok, str(`{"credits":{"remaining":2}}`))
		for _, left := range []string{"1", "0"} {
			_, res := n.passes(t, client, "GET", path, bearer(k.Key), "", "alice", k.ID)
			if got := res.Header.Get("X-Auth-Credits-Remaining"); got != left {
				t.Errorf("X-Auth-Credits-Remaining %q, want %s", got, left)
			}
		}
		res := n.refused(t, client, path, bearer(k.Key), http.StatusTooManyRequests, "USAGE_EXCEEDED")
		if v, ok := res.Header["Retry-After"]; ok {
			t.Errorf("Retry-After %q for credits that are never refilled", v)
		}
	})
	t.Run("UsageExceededUntilRefill", func(t *testing.T) {
		k := e.create(tok, str(`{"credits":{"remaining":1,"refill":{"amount":5,"interval":"day"}}}`))
		n.passes(t, client, "GET", path, bearer(k.Key), "", "alice", k.ID)
		res := n.refused(t, client, path, bearer(k.Key), http.StatusTooManyRequests, "USAGE_EXCEEDED")
		now := e.Clock.Now().UTC()
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		s, err := strconv.Atoi(res.Header.Get("Retry-After"))
		if want := midnight.Sub(now).Seconds(); err != nil || s < 1 || float64(s) > want+2 || float64(s) < want-60 {
			t.Errorf("Retry-After %q, want the %.0f s until 00:00 UTC", res.Header.Get("Retry-After"), want)
		}
	})
	t.Run("Disabled", func(t *testing.T) {
		k := e.create(tok, str(`{"enabled":false,"scopes":["orders:read"]}`))
		n.refused(t, client, path, hdr("X-Api-Key", k.Key), http.StatusForbidden, "KEY_DISABLED")
		// Disabled comes before the scope the key lacks.
		n.refused(t, client, "/reports/q1", hdr("X-Api-Key", k.Key), http.StatusForbidden, "KEY_DISABLED")
		if res := e.do("PATCH", "/auth/api-keys/"+k.ID, bearer(tok), str(`{"enabled":true}`)); res.Status != http.StatusOK {
			t.Fatalf("enable: %d %s", res.Status, res.Body)
		}
		n.passes(t, client, "GET", path, hdr("X-Api-Key", k.Key), "", "alice", k.ID)
		n.refused(t, client, "/reports/q1", hdr("X-Api-Key", k.Key), http.StatusForbidden, "INSUFFICIENT_SCOPE")
	})
	t.Run("IPNotAllowed", func(t *testing.T) {
		k := e.create(tok, str(`{"allowed_ips":["127.0.0.2"]}`))
		allowed, other := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
		n.passes(t, allowed, "GET", path, hdr("X-Api-Key", k.Key), "", "alice", k.ID)
		n.refused(t, other, path, hdr("X-Api-Key", k.Key), http.StatusForbidden, "IP_NOT_ALLOWED")
		// nginx's own address is not the client's, and a client cannot
		// claim the allowed one: nginx appends the real address.
		n.refused(t, client, path, hdr("X-Api-Key", k.Key), http.StatusForbidden, "IP_NOT_ALLOWED")
		n.refused(t, other, path, hdr("X-Api-Key", k.Key, "X-Forwarded-For", "127.0.0.2"), http.StatusForbidden, "IP_NOT_ALLOWED")
	})
}

// TestNginxOrgKey runs examples/nginx/apikeyd.conf in a real nginx and
// shows that an organisation's key reaches the service with X-Auth-Org-Id
// and without X-Auth-User-Id, on both locations, and that no client can
// claim an organisation: its own X-Auth-Org-Id never reaches the service,
// whatever credential it brings.
func TestNginxOrgKey(t *testing.T) {
	e := newEnv(t, "sqlite", trustNginx)
	n := startNginxFront(t, e)
	tok := e.token("alice")
	client := clientFrom("127.0.0.1")
	const path = "/private/data"

	org := e.createOrg(tok, "Acme").ID
	orgKey := e.orgKey(tok, org, str(`{"name":"CI"}`))
	personal := e.create(tok, nil)

	t.Run("OrgKey", func(t *testing.T) {
		who := caller{org: org, key: orgKey.ID}
		n.reaches(t, client, "GET", path, hdr("X-Api-Key", orgKey.Key), "", who)
		n.reaches(t, client, "GET", path, bearer(orgKey.Key), "", who)
		// A key without scopes passes the scope check of /reports/, with
		// the same headers.
		n.reaches(t, client, "GET", "/reports/q1", bearer(orgKey.Key), "", who)
	})
	t.Run("ClientCannotClaimOrg", func(t *testing.T) {
		n.reaches(t, client, "GET", path, hdr("X-Api-Key", orgKey.Key,
			"X-Auth-User-Id", "alice", "X-Auth-Org-Id", "another-org", "X_Auth_Org_Id", "another-org"), "",
			caller{org: org, key: orgKey.ID})
		n.reaches(t, client, "GET", path, hdr("X-Api-Key", personal.Key, "X-Auth-Org-Id", org), "",
			caller{user: "alice", key: personal.ID})
		n.reaches(t, client, "GET", "/reports/q1", hdr("Authorization", "Bearer "+tok, "X-Auth-Org-Id", org), "",
			caller{user: "alice"})
		n.refused(t, client, path, hdr("X-Auth-Org-Id", org), http.StatusUnauthorized, "MISSING_AUTH")
	})
	t.Run("Revoked", func(t *testing.T) {
		if res := e.do("DELETE", orgURL(org, "api-keys", orgKey.ID), bearer(tok), nil); res.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", res.Status, res.Body)
		}
		n.refused(t, client, path, hdr("X-Api-Key", orgKey.Key), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
	})
}

// TestDocsShowNginxConfig keeps the copy of the nginx example in
// docs/proxies.md identical to the file the nginx test runs.
func TestDocsShowNginxConfig(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("docs", "proxies.md"))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join("examples", "nginx", "apikeyd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```nginx\n"+string(conf)+"```\n") {
		t.Error("docs/proxies.md does not show examples/nginx/apikeyd.conf as it is: copy the file into its nginx block")
	}
}
