package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/testenv"
)

// TestBrowser runs the browser tests of web/e2e (node:test driving Debian's
// chromium through playwright-core) against a real apikeyd on a loopback
// port over a fresh SQLite database: register, sign in, create, copy, list
// and revoke a key on the dashboard, organisations walked by two people (an
// invitation, an organisation key, a member removed), and the playground
// offline. Screenshots of each screen land in artifacts/screenshots/.
//
// It needs node, chromium (CHROMIUM_PATH, else chromium on PATH) and
// web/e2e/node_modules (npm ci in web/e2e); ./scripts/test installs them.
// Without them it skips, except under CI=true, where it fails.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	node, chromium := browserTools(t)

	root, err := os.Getwd() // go test runs in the package directory: the repository root
	if err != nil {
		t.Fatal(err)
	}
	tests, _ := filepath.Glob(filepath.Join(root, "web", "e2e", "*.test.mjs"))
	if len(tests) == 0 {
		t.Fatal("no browser tests in web/e2e")
	}
	sort.Strings(tests)
	shots := filepath.Join(root, "artifacts", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	leakToken := "glrt-" + rand.Text() // a self-managed GitLab's, to report a key as leaked
	e := newEnv(t, "sqlite", func(c *config.Config) { c.LeakRevocation = leakToken })
	// A second server with a scope catalogue (web/e2e/scopes.test.mjs).
	scoped := newEnv(t, "sqlite", func(c *config.Config) { c.Scopes = []string{"orders:read", "orders:write", "reports:read"} })
	password := "pw-" + rand.Text() // the dashboard user's; must never be logged
	e.remember(password)
	e.remember(leakToken)
	scoped.remember(password)
	// The browser talks to apikeyd through proxies that check each of its
	// exchanges against the OpenAPI document and remember the keys and
	// login tokens it is handed, as the harness's own client does.
	proxy, scopedProxy := e.checkingProxy(), scoped.checkingProxy()

	// The files run one after the other; about two minutes on an idle
	// machine, and several times that on a busy one.
	const limit = 12 * time.Minute
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	args := append([]string{"--test", "--test-reporter=spec", "--test-concurrency=1"}, tests...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = filepath.Join(root, "web", "e2e")
	cmd.Env = append(os.Environ(),
		"APIKEYD_URL="+proxy,
		"APIKEYD_SCOPES_URL="+scopedProxy,
		"CHROMIUM_PATH="+chromium,
		"SCREENSHOT_DIR="+shots,
		"APIKEYD_E2E_PASSWORD="+password,
		"APIKEYD_E2E_LEAK_TOKEN="+leakToken,
		"NO_COLOR=1",
	)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("node --test web/e2e (screenshots in %s):\n%s", shots, out)
	if ctx.Err() != nil {
		t.Fatalf("the browser tests did not finish within %s", limit)
	}
	if err != nil {
		t.Fatalf("the browser tests failed: %v (output above)", err)
	}
	// Besides the keys and tokens remembered on the way, look for anything
	// shaped like one in the servers' logs.
	logs := e.Logs.String() + scoped.Logs.String()
	for what, re := range map[string]*regexp.Regexp{
		"an API key":    regexp.MustCompile(`atiru_[0-9A-Za-z]{38}`),
		"a login token": regexp.MustCompile(`eyJ[\w-]+\.[\w-]+\.[\w-]+`),
	} {
		if m := re.FindString(logs); m != "" {
			t.Errorf("%s (%.12s…) appears in the server log", what, m)
		}
	}
}

// checkingProxy serves e through a reverse proxy that checks each exchange
// against the OpenAPI document and remembers the keys and login tokens it
// hands out, and returns its URL: for clients, such as a browser, that the
// harness cannot give its own client.
func (e *testEnv) checkingProxy() string {
	target, err := url.Parse(e.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: &contractTransport{t: e.t, base: http.DefaultTransport, c: mustContract(e.t)},
		ModifyResponse: func(res *http.Response) error {
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			res.Body = io.NopCloser(bytes.NewReader(b))
			e.rememberMinted(b)
			return err
		},
	})
	e.t.Cleanup(proxy.Close)
	return proxy.URL
}

// browserTools finds node and chromium and checks that playwright-core is
// installed, skipping the test (failing it under CI) when one is missing.
func browserTools(t *testing.T) (node, chromium string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "node not found", "install Node.js (apt-get install nodejs npm)")
	}
	chromium = os.Getenv("CHROMIUM_PATH")
	if chromium == "" {
		chromium = "chromium"
	}
	if chromium, err = exec.LookPath(chromium); err != nil {
		testenv.Missing(t, "chromium not found (set CHROMIUM_PATH or put chromium on PATH)", "apt-get install chromium")
	}
	if _, err := os.Stat(filepath.Join("web", "e2e", "node_modules", "playwright-core", "package.json")); err != nil {
		testenv.Missing(t, "playwright-core is not installed in web/e2e", "run npm ci in web/e2e")
	}
	return node, chromium
}
