package leak_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/clocktest"
	"github.com/apikeyd/apikeyd/internal/leak"
	"github.com/apikeyd/apikeyd/internal/leak/leaktest"
)

func TestVerifierFile(t *testing.T) {
	s := leaktest.NewSigner(t, "key-1")
	v, err := leak.NewVerifier(leak.VerifierConfig{File: leaktest.KeySetFile(t, s)})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`[{"token":"x","type":"t","url":"u","source":"commit"}]`)
	other := leaktest.NewSigner(t, "key-1")
	for _, tc := range []struct {
		name, id, sig string
		body          []byte
		want          apperr.Code
	}{
		{"Good", "key-1", s.Sign(t, body), body, ""},
		{"Unsigned", "key-1", "", body, apperr.InvalidSignature},
		{"NoIdentifier", "", s.Sign(t, body), body, apperr.InvalidSignature},
		{"NotBase64", "key-1", "%%%", body, apperr.InvalidSignature},
		{"WrongKey", "key-1", other.Sign(t, body), body, apperr.InvalidSignature},
		{"UnknownIdentifier", "key-2", s.Sign(t, body), body, apperr.InvalidSignature},
		{"BodyAltered", "key-1", s.Sign(t, body), []byte(strings.Replace(string(body), "commit", "issue", 1)), apperr.InvalidSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := apperr.CodeOf(v.Verify(context.Background(), tc.id, tc.sig, tc.body)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestVerifierFileRefusesBadKeySets(t *testing.T) {
	dir := t.TempDir()
	rsaOnly := `{"public_keys":[{"key_identifier":"a","key":"-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAK\n-----END PUBLIC KEY-----\n"}]}`
	for name, content := range map[string]string{"empty": `{"public_keys":[]}`, "garbage": `{`, "rsa": rsaOnly} {
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, []byte(content), 0o600)
		if _, err := leak.NewVerifier(leak.VerifierConfig{File: p}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := leak.NewVerifier(leak.VerifierConfig{File: filepath.Join(dir, "missing")}); err == nil {
		t.Error("a missing file was accepted")
	}
	if _, err := leak.NewVerifier(leak.VerifierConfig{}); err == nil {
		t.Error("no source was accepted")
	}
}

// keyServer serves a key set that the test may change, counting fetches.
type keyServer struct {
	mu      sync.Mutex
	doc     []byte
	status  int
	fetches atomic.Int32
}

func (k *keyServer) set(status int, doc []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.status, k.doc = status, doc
}

func (k *keyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.fetches.Add(1)
	k.mu.Lock()
	defer k.mu.Unlock()
	w.WriteHeader(k.status)
	_, _ = w.Write(k.doc)
}

// TestVerifierURL checks the fetched key set: fetched on first need, kept,
// fetched again for an unknown identifier at most once a minute, and kept
// serving when the URL fails.
func TestVerifierURL(t *testing.T) {
	ctx := context.Background()
	k1, k2 := leaktest.NewSigner(t, "k1"), leaktest.NewSigner(t, "k2")
	ks := &keyServer{}
	ks.set(http.StatusOK, leaktest.KeySet(t, k1))
	srv := httptest.NewServer(ks)
	t.Cleanup(srv.Close)
	clk := clocktest.Stopped(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	v, err := leak.NewVerifier(leak.VerifierConfig{URL: srv.URL, Now: clk.Now, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if n := ks.fetches.Load(); n != 0 {
		t.Fatalf("%d fetches before any report", n)
	}
	body := []byte(`[]`)
	verify := func(s leaktest.Signer) apperr.Code { return apperr.CodeOf(v.Verify(ctx, s.ID, s.Sign(t, body), body)) }
	for range 3 {
		if c := verify(k1); c != "" {
			t.Fatalf("k1: %s", c)
		}
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}

	// The code host rotates its key: the new identifier is fetched for,
	// but not more than once a minute.
	ks.set(http.StatusOK, leaktest.KeySet(t, k1, k2))
	if c := verify(k2); c != apperr.InvalidSignature || ks.fetches.Load() != 1 {
		t.Fatalf("k2 within a minute of the last fetch: %q after %d fetches", c, ks.fetches.Load())
	}
	clk.Advance(time.Minute)
	if c := verify(k2); c != "" || ks.fetches.Load() != 2 {
		t.Fatalf("k2: %q after %d fetches", c, ks.fetches.Load())
	}
	k3 := leaktest.NewSigner(t, "k3")
	for range 3 {
		if c := verify(k3); c != apperr.InvalidSignature {
			t.Fatalf("k3: %q", c)
		}
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches for one unknown identifier within a minute, want 1", n-1)
	}
	// While the key set cannot be fetched, an unknown identifier may be a
	// new key of the code host: SERVER_BUSY, so that it sends the report
	// again, never a refusal. Keys fetched before keep serving.
	clk.Advance(time.Minute)
	ks.set(http.StatusInternalServerError, nil)
	for range 3 {
		if c := verify(k3); c != apperr.ServerBusy || ks.fetches.Load() != 3 {
			t.Fatalf("k3 with the URL failing: %q after %d fetches, want SERVER_BUSY after 3", c, ks.fetches.Load())
		}
	}
	if c := verify(k1); c != "" {
		t.Fatalf("k1 with the URL failing: %q; fetched keys must keep serving", c)
	}
	// The key set is back: at the next fetch the new key verifies.
	ks.set(http.StatusOK, leaktest.KeySet(t, k1, k3))
	clk.Advance(time.Minute)
	if c := verify(k3); c != "" || ks.fetches.Load() != 4 {
		t.Fatalf("k3 once the key set is back: %q after %d fetches", c, ks.fetches.Load())
	}
}

// TestVerifierURLHangs: a caller waiting for a fetch that hangs gives up
// when its context ends, with SERVER_BUSY; the fetch goes on for the others
// until its own time-out.
func TestVerifierURLHangs(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	v, err := leak.NewVerifier(leak.VerifierConfig{URL: srv.URL, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	s := leaktest.NewSigner(t, "k1")
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan apperr.Code)
	go func() { got <- apperr.CodeOf(v.Verify(ctx, s.ID, s.Sign(t, nil), nil)) }()
	<-arrived
	cancel()
	select {
	case c := <-got:
		if c != apperr.ServerBusy {
			t.Fatalf("got %q, want SERVER_BUSY", c)
		}
	case <-time.After(5 * time.Second): // the fetch's own time-out is 10 s
		t.Fatal("Verify waited for a hanging fetch after its context ended")
	}
}

// TestVerifierURLDown checks that a key set that was never fetched is
// SERVER_BUSY, not a refusal: the code host retries later.
func TestVerifierURLDown(t *testing.T) {
	ks := &keyServer{}
	ks.set(http.StatusServiceUnavailable, nil)
	srv := httptest.NewServer(ks)
	t.Cleanup(srv.Close)
	v, _ := leak.NewVerifier(leak.VerifierConfig{URL: srv.URL, Client: srv.Client()})
	s := leaktest.NewSigner(t, "k1")
	if c := apperr.CodeOf(v.Verify(context.Background(), s.ID, s.Sign(t, nil), nil)); c != apperr.ServerBusy {
		t.Fatalf("got %q, want SERVER_BUSY", c)
	}
}

// TestVerifierURLNeverLogged: a key set URL may carry credentials; a failed
// fetch, answered or not, logs neither the URL nor them.
func TestVerifierURLNeverLogged(t *testing.T) {
	ks := &keyServer{}
	ks.set(http.StatusServiceUnavailable, nil)
	srv := httptest.NewServer(ks)
	t.Cleanup(srv.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens there any more
	for _, base := range []string{srv.URL, closed.URL} {
		u, _ := url.Parse(base + "/keys?token=query-secret")
		u.User = url.UserPassword("user", "password-secret")
		var log bytes.Buffer
		v, err := leak.NewVerifier(leak.VerifierConfig{URL: u.String(), Log: slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		s := leaktest.NewSigner(t, "k1")
		if c := apperr.CodeOf(v.Verify(context.Background(), s.ID, s.Sign(t, nil), nil)); c != apperr.ServerBusy {
			t.Fatalf("%s: got %q, want SERVER_BUSY", base, c)
		}
		if !strings.Contains(log.String(), "key set fetch failed") {
			t.Fatalf("%s: nothing logged: %q", base, log.String())
		}
		for _, secret := range []string{"password-secret", "query-secret"} {
			if strings.Contains(log.String(), secret) {
				t.Errorf("%s: the log holds %q: %s", base, secret, log.String())
			}
		}
	}
}

func TestParseReport(t *testing.T) {
	got, err := leak.ParseReport([]byte(`[{"token":"a","type":"apikeyd_api_key","url":"https://github.com/o/r/blob/x/f","source":"Commit","extra":1},{"token":"b","type":null}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []leak.Token{{"a", "apikeyd_api_key", "https://github.com/o/r/blob/x/f", "Commit"}, {Token: "b"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v", got)
	}
	if got, err := leak.ParseReport([]byte(" [] ")); err != nil || len(got) != 0 {
		t.Fatalf("empty report: %v %v", got, err)
	}
	many := "[" + strings.Repeat(`{"token":"x"},`, leak.MaxTokens) + `{"token":"x"}]`
	for name, body := range map[string]string{
		"Empty":       "",
		"Object":      `{"token":"a"}`,
		"Unclosed":    `[{"token":"a"}`,
		"Trailing":    `[{"token":"a"}] []`,
		"NoToken":     `[{"type":"a"}]`,
		"EmptyToken":  `[{"token":""}]`,
		"NumberToken": `[{"token":1}]`,
		"NullEntry":   `[null]`,
		"StringEntry": `["a"]`,
		"BadURL":      `[{"token":"a","url":2}]`,
		"BadUTF8":     "[{\"token\":\"\xff\"}]",
		"TooMany":     many,
	} {
		if _, err := leak.ParseReport([]byte(body)); apperr.CodeOf(err) != apperr.InvalidRequest {
			t.Errorf("%s: %v, want INVALID_REQUEST", name, err)
		}
	}
}

func TestParseGitLabRequest(t *testing.T) {
	got, err := leak.ParseGitLabRequest([]byte(`[{"type":"apikeyd_api_key","token":"a","location":"https://gitlab.example/o/r/-/blob/x/f"}]`))
	want := leak.Token{"a", "apikeyd_api_key", "https://gitlab.example/o/r/-/blob/x/f", "gitlab"}
	if err != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// FuzzParseReport checks that the report parser never panics, refuses what
// it does not return, and returns only well-formed tokens, never more
// than MaxTokens.
func FuzzParseReport(f *testing.F) {
	for _, s := range []string{
		`[{"token":"atiru_x","type":"apikeyd_api_key","url":"https://x","source":"commit"}]`,
		`[]`, `[null]`, `[{"token":""}]`, `[{"token":"a","token":"b"}]`, `{"token":"a"}`, "[{\"token\":\"\xff\"}]",
		`[{"token":"a"},`, `[{"token":"a","url":{"x":1}}] x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) ([]leak.Token, error){leak.ParseReport, leak.ParseGitLabRequest} {
			ts, err := parse(b)
			if err != nil {
				if ts != nil || apperr.CodeOf(err) != apperr.InvalidRequest {
					t.Fatalf("error %v with %d tokens", err, len(ts))
				}
				continue
			}
			if len(ts) > leak.MaxTokens {
				t.Fatalf("%d tokens", len(ts))
			}
			for _, tk := range ts {
				if tk.Token == "" {
					t.Fatal("an empty token")
				}
			}
		}
	})
}
