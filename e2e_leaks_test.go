package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/leak/leaktest"
)

// keySetFile configures c to read signers' key set from a file.
func keySetFile(t testing.TB, signers ...leaktest.Signer) func(*config.Config) {
	path := leaktest.KeySetFile(t, signers...)
	return func(c *config.Config) { c.LeakKeysFile = path }
}

// keySetURL configures c to fetch signers' key set from a loopback server.
func keySetURL(t testing.TB, signers ...leaktest.Signer) func(*config.Config) {
	doc := leaktest.KeySet(t, signers...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	return func(c *config.Config) { c.LeakKeysURL = mustURL(srv.URL) }
}

// leakEntry is one token of a report.
type leakEntry struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

func reportBody(tokens ...string) string {
	entries := make([]leakEntry, len(tokens))
	for i, tok := range tokens {
		entries[i] = leakEntry{tok, "apikeyd_api_key", "https://github.com/octo/app/blob/abc123/.env", "Commit"}
	}
	b, _ := json.Marshal(entries)
	return string(b)
}

// report posts body to /auth/leaks with the given identifier and signature
// headers (none when empty).
func (e *testEnv) report(id, sig, body string) response {
	e.t.Helper()
	h := hdr()
	if id != "" {
		h.Set("Github-Public-Key-Identifier", id)
	}
	if sig != "" {
		h.Set("Github-Public-Key-Signature", sig)
	}
	return e.do("POST", "/auth/leaks", h, &body)
}

// signedReport posts body signed by s.
func (e *testEnv) signedReport(s leaktest.Signer, body string) response {
	e.t.Helper()
	return e.report(s.ID, s.Sign(e.t, []byte(body)), body)
}

type feedback struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// TestLeakReportRefused sends reports that must be refused, each with its
// documented status, on each database: none revokes anything.
func TestLeakReportRefused(t *testing.T) {
	gh := leaktest.NewSigner(t, "gh-1")
	eachDBWith(t, keySetFile(t, gh), func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		k := e.create(tok, nil)
		body := reportBody(k.Key)
		stranger := leaktest.NewSigner(t, "gh-1") // the right identifier, another key
		tooBig := reportBody(k.Key)
		tooBig = tooBig[:len(tooBig)-1] + `,{"token":"x","url":"` + strings.Repeat("a", 1<<20) + `"}]`

		for _, tc := range []struct {
			name   string
			res    func() response
			status int
			code   string
		}{
			{"Unsigned", func() response { return e.report("", "", body) }, 401, "INVALID_SIGNATURE"},
			{"NoIdentifier", func() response { return e.report("", gh.Sign(t, []byte(body)), body) }, 401, "INVALID_SIGNATURE"},
			{"WronglySigned", func() response { return e.report(gh.ID, stranger.Sign(t, []byte(body)), body) }, 401, "INVALID_SIGNATURE"},
			{"NotBase64", func() response { return e.report(gh.ID, "not base64!", body) }, 401, "INVALID_SIGNATURE"},
			{"UnknownIdentifier", func() response { return e.report("gh-2", gh.Sign(t, []byte(body)), body) }, 401, "INVALID_SIGNATURE"},
			{"AlteredAfterSigning", func() response {
				return e.report(gh.ID, gh.Sign(t, []byte(body)), strings.Replace(body, "Commit", "commit", 1))
			}, 401, "INVALID_SIGNATURE"},
			{"Oversized", func() response { return e.signedReport(gh, tooBig) }, 413, "PAYLOAD_TOO_LARGE"},
			{"MalformedJSON", func() response { return e.signedReport(gh, body[:len(body)-1]) }, 400, "INVALID_REQUEST"},
			{"NotAnArray", func() response { return e.signedReport(gh, `{"token":"`+k.Key+`"}`) }, 400, "INVALID_REQUEST"},
			{"TooManyTokens", func() response {
				return e.signedReport(gh, "["+strings.Repeat(`{"token":"x"},`, 1000)+`{"token":"`+k.Key+`"}]`)
			}, 400, "INVALID_REQUEST"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, tc.res(), tc.status, tc.code)
				if s := e.verifyKey(k.Key); s != http.StatusOK {
					t.Fatalf("the key was revoked: verify answers %d", s)
				}
			})
		}
		// The signature is checked before the media type.
		res := e.do("POST", "/auth/leaks", hdr("Content-Type", "text/plain"), &body)
		wantError(t, res, 401, "INVALID_SIGNATURE")
		res = e.do("POST", "/auth/leaks", hdr("Content-Type", "text/plain", "Github-Public-Key-Identifier", gh.ID, "Github-Public-Key-Signature", gh.Sign(t, []byte(body))), &body)
		wantError(t, res, 415, "UNSUPPORTED_MEDIA_TYPE")
		if s := e.verifyKey(k.Key); s != http.StatusOK {
			t.Fatalf("the key was revoked: verify answers %d", s)
		}
	})
}

// TestLeakReportRevokes sends a good report, with the key set from a file
// and from a URL, on each database: exactly the active keys among its
// tokens are revoked, each token is labelled, and a replay changes nothing.
func TestLeakReportRevokes(t *testing.T) {
	gh := leaktest.NewSigner(t, "gh-1")
	for name, source := range map[string]func(testing.TB, ...leaktest.Signer) func(*config.Config){"File": keySetFile, "URL": keySetURL} {
		t.Run(name, func(t *testing.T) {
			eachDBWith(t, source(t, gh), func(t *testing.T, e *testEnv) { testLeakReportRevokes(t, e, gh) })
		})
	}
}

func testLeakReportRevokes(t *testing.T, e *testEnv, gh leaktest.Signer) {
	alice, bob := e.token("alice"), e.token("bob")
	leaked, kept, revoked, bobs := e.create(alice, nil), e.create(alice, nil), e.create(alice, nil), e.create(bob, nil)
	e.revokeKey(alice, revoked.ID)
	e.waitCached(leaked.Key)
	other := "ghp_" + strings.Repeat("x", 36)
	tokens := []string{leaked.Key, revoked.Key, apikeytest.BadChecksum(kept.Key), other, bobs.Key, leaked.Key}
	body := reportBody(tokens...)

	res := e.signedReport(gh, body)
	if res.Status != http.StatusOK {
		t.Fatalf("report: %d %s", res.Status, res.Body)
	}
	var got []feedback
	if err := json.Unmarshal(res.Body, &got); err != nil || len(got) != len(tokens) {
		t.Fatalf("feedback %s: %v", res.Body, err)
	}
	labels := []string{"true_positive", "false_positive", "false_positive", "false_positive", "true_positive", "true_positive"}
	for i, f := range got {
		sum := sha256.Sum256([]byte(tokens[i]))
		if f.TokenHash != hex.EncodeToString(sum[:]) || f.TokenType != "apikeyd_api_key" || f.Label != labels[i] {
			t.Errorf("token %d: %+v, want label %s", i, f, labels[i])
		}
	}
	for key, want := range map[string]int{leaked.Key: 401, bobs.Key: 401, kept.Key: 200, revoked.Key: 401} {
		if s := e.verifyKey(key); s != want {
			t.Errorf("verify %s…: %d, want %d", key[:10], s, want)
		}
	}
	if ks := e.list(alice); len(ks) != 1 || ks[0].ID != kept.ID {
		t.Fatalf("alice's keys after the report: %+v", ks)
	}
	// Revoked by the report, a key is gone as after a DELETE.
	wantError(t, e.do("DELETE", "/auth/api-keys/"+leaked.ID, bearer(alice), nil), 404, "NOT_FOUND")

	notices := e.leakNotices(alice)
	if len(notices) != 1 || notices[0]["id"] != leaked.ID || notices[0]["url"] != "https://github.com/octo/app/blob/abc123/.env" || notices[0]["source"] != "commit" {
		t.Fatalf("alice's leak notices: %v", notices)
	}

	// A replay, signed anew: the same answer, and nothing changes.
	again := e.signedReport(gh, body)
	if again.Status != http.StatusOK || string(again.Body) != string(res.Body) {
		t.Fatalf("replay: %d %s, want %s", again.Status, again.Body, res.Body)
	}
	if n := e.leakNotices(alice); len(n) != 1 || n[0]["revokedAt"] != notices[0]["revokedAt"] {
		t.Fatalf("a replay changed the notice: %v, was %v", n, notices)
	}
	if s := e.verifyKey(kept.Key); s != http.StatusOK {
		t.Fatalf("the kept key: %d", s)
	}
}

// leakNotices lists the user's leak notices over GraphQL, as the dashboard does.
func (e *testEnv) leakNotices(tok string) []map[string]any {
	e.t.Helper()
	status, res := e.gql(bearer(tok), `{ leakedApiKeys { id keyPrefix name url source revokedAt } }`, nil)
	if status != http.StatusOK || len(res.Errors) > 0 {
		e.t.Fatalf("leakedApiKeys: %d %v", status, res.Errors)
	}
	var out []map[string]any
	for _, n := range res.Data["leakedApiKeys"].([]any) {
		out = append(out, n.(map[string]any))
	}
	return out
}

// TestLeakNotice checks the owner's side over GraphQL: the notice lists
// where and when, only to its owner with a login token, until dismissed.
func TestLeakNotice(t *testing.T) {
	gh := leaktest.NewSigner(t, "gh-1")
	eachDBWith(t, keySetFile(t, gh), func(t *testing.T, e *testEnv) {
		alice, bob := e.token("alice"), e.token("bob")
		k, other := e.create(alice, str(`{"name":"CI"}`)), e.create(alice, nil)
		if res := e.signedReport(gh, reportBody(k.Key)); res.Status != http.StatusOK {
			t.Fatalf("report: %d %s", res.Status, res.Body)
		}
		n := e.leakNotices(alice)
		if len(n) != 1 || n[0]["id"] != k.ID || n[0]["keyPrefix"] != k.KeyPrefix || n[0]["name"] != "CI" {
			t.Fatalf("notices: %v", n)
		}
		if at, err := time.Parse(time.RFC3339, n[0]["revokedAt"].(string)); err != nil || time.Since(at) > time.Minute {
			t.Fatalf("revokedAt %v: %v", n[0]["revokedAt"], err)
		}
		if n := e.leakNotices(bob); len(n) != 0 {
			t.Fatalf("bob sees alice's notices: %v", n)
		}
		_, res := e.gql(bearer(other.Key), `{ leakedApiKeys { id } }`, nil)
		if c := res.codes(); len(c) != 1 || c[0] != "JWT_REQUIRED" {
			t.Fatalf("with an API key: %v", c)
		}

		dismiss := `mutation($id: ID!) { dismissLeakNotice(id: $id) }`
		for name, tc := range map[string]struct{ tok, id, code string }{
			"OtherUser": {bob, k.ID, "NOT_FOUND"}, "NotLeaked": {alice, other.ID, "NOT_FOUND"},
			"APIKey": {other.Key, k.ID, "JWT_REQUIRED"},
		} {
			_, res := e.gql(bearer(tc.tok), dismiss, map[string]any{"id": tc.id})
			if c := res.codes(); len(c) != 1 || c[0] != tc.code {
				t.Errorf("%s: %v, want %s", name, c, tc.code)
			}
		}
		_, res = e.gql(bearer(alice), dismiss, map[string]any{"id": k.ID})
		if len(res.Errors) > 0 || res.Data["dismissLeakNotice"] != k.ID {
			t.Fatalf("dismiss: %v %v", res.Data, res.Errors)
		}
		if n := e.leakNotices(alice); len(n) != 0 {
			t.Fatalf("dismissed, still listed: %v", n)
		}
	})
}

// TestLeakNoticeREST checks the owner's side over REST: GET
// /auth/leak-notices answers what GraphQL's leakedApiKeys does, and DELETE
// dismisses a notice for both faces, with the same refusals.
func TestLeakNoticeREST(t *testing.T) {
	gh := leaktest.NewSigner(t, "gh-1")
	eachDBWith(t, keySetFile(t, gh), func(t *testing.T, e *testEnv) {
		alice, bob := e.token("alice"), e.token("bob")
		k, other := e.create(alice, str(`{"name":"CI"}`)), e.create(alice, nil)
		body := `[{"token":"` + k.Key + `","type":"apikeyd_api_key","url":"https://github.com/o/r/blob/main/ci.yml","source":"commit"}]`
		if res := e.signedReport(gh, body); res.Status != http.StatusOK {
			t.Fatalf("report: %d %s", res.Status, res.Body)
		}
		list := func(h http.Header) response {
			t.Helper()
			return e.do("GET", "/auth/leak-notices", h, nil)
		}
		res := list(bearer(alice))
		if res.Status != http.StatusOK {
			t.Fatalf("list: %d %s", res.Status, res.Body)
		}
		var out struct {
			LeakNotices []map[string]any `json:"leak_notices"`
		}
		if err := json.Unmarshal(res.Body, &out); err != nil {
			t.Fatal(err)
		}
		g := e.leakNotices(alice)
		if n := out.LeakNotices; len(n) != 1 || len(g) != 1 || n[0]["id"] != k.ID || n[0]["key_prefix"] != k.KeyPrefix || n[0]["name"] != "CI" ||
			n[0]["url"] != "https://github.com/o/r/blob/main/ci.yml" || n[0]["source"] != "commit" ||
			n[0]["url"] != g[0]["url"] || n[0]["source"] != g[0]["source"] || n[0]["revoked_at"] != g[0]["revokedAt"] {
			t.Fatalf("REST %v, GraphQL %v", n, g)
		}
		if res := list(bearer(bob)); res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"leak_notices":[]`) {
			t.Fatalf("bob: %d %s", res.Status, res.Body)
		}
		wantError(t, list(hdr("X-Api-Key", other.Key)), http.StatusForbidden, "JWT_REQUIRED")
		wantError(t, list(nil), http.StatusUnauthorized, "MISSING_AUTH")

		dismiss := func(h http.Header, id string) response {
			t.Helper()
			return e.do("DELETE", "/auth/leak-notices/"+id, h, nil)
		}
		wantError(t, dismiss(bearer(bob), k.ID), http.StatusNotFound, "NOT_FOUND")
		wantError(t, dismiss(bearer(alice), other.ID), http.StatusNotFound, "NOT_FOUND")
		wantError(t, dismiss(bearer(alice), "nope"), http.StatusNotFound, "NOT_FOUND")
		wantError(t, dismiss(hdr("X-Api-Key", other.Key), k.ID), http.StatusForbidden, "JWT_REQUIRED")
		wantError(t, e.do("POST", "/auth/leak-notices", bearer(alice), nil), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		if n := e.leakNotices(alice); len(n) != 1 {
			t.Fatalf("refused dismissals changed the notices: %v", n)
		}
		if res := dismiss(bearer(alice), k.ID); res.Status != http.StatusNoContent {
			t.Fatalf("dismiss: %d %s", res.Status, res.Body)
		}
		wantError(t, dismiss(bearer(alice), k.ID), http.StatusNotFound, "NOT_FOUND")
		if n := e.leakNotices(alice); len(n) != 0 {
			t.Fatalf("dismissed over REST, still listed over GraphQL: %v", n)
		}
	})
}

// TestLeakRoutesOff checks that without the settings the leak routes answer
// 404, and a report revokes nothing.
func TestLeakRoutesOff(t *testing.T) {
	e := newEnv(t, "sqlite")
	k := e.create(e.token("alice"), nil)
	body := reportBody(k.Key)
	wantError(t, e.do("POST", "/auth/leaks", nil, &body), 404, "NOT_FOUND")
	wantError(t, e.do("GET", "/auth/leaks/gitlab/revocable_token_types", hdr("Authorization", "x"), nil), 404, "NOT_FOUND")
	wantError(t, e.do("POST", "/auth/leaks/gitlab/revoke_tokens", hdr("Authorization", "x"), &body), 404, "NOT_FOUND")
	if s := e.verifyKey(k.Key); s != http.StatusOK {
		t.Fatalf("verify: %d", s)
	}
}

// TestGitLabRevocation checks the token revocation service of a
// self-managed GitLab: only the exact pre-shared token is accepted, and a
// code host calling it often is never rate limited for it (the
// authentication middleware does not read its Authorization header as a
// malformed credential).
func TestGitLabRevocation(t *testing.T) {
	const secret = "glrt-0123456789abcdef0123456789abcdef"
	eachDBWith(t, func(c *config.Config) { c.LeakRevocation = secret; c.AuthFailBurst = 10 }, func(t *testing.T, e *testEnv) {
		e.remember(secret)
		tok := e.token("alice")
		k, kept := e.create(tok, nil), e.create(tok, nil)
		right := hdr("Authorization", secret)
		for range 20 { // twice the failure budget
			res := e.do("GET", "/auth/leaks/gitlab/revocable_token_types", right, nil)
			if res.Status != http.StatusOK || string(res.Body) != `{"types":["apikeyd_api_key"]}`+"\n" {
				t.Fatalf("types: %d %s", res.Status, res.Body)
			}
		}
		body := `[{"type":"apikeyd_api_key","token":"` + k.Key + `","location":"https://gitlab.example/o/r/-/blob/main/ci.yml"},{"type":"x","token":"nope"}]`
		wantError(t, e.do("POST", "/auth/leaks/gitlab/revoke_tokens", right, str(`{"token":"x"}`)), 400, "INVALID_REQUEST")
		wantError(t, e.do("POST", "/auth/leaks/gitlab/revoke_tokens", right, str(`[{"token":1}]`)), 400, "INVALID_REQUEST")
		res := e.do("POST", "/auth/leaks/gitlab/revoke_tokens", right, &body)
		if res.Status != http.StatusNoContent || len(res.Body) != 0 {
			t.Fatalf("revoke: %d %s", res.Status, res.Body)
		}
		if s := e.verifyKey(k.Key); s != http.StatusUnauthorized {
			t.Fatalf("the reported key verifies: %d", s)
		}
		if s := e.verifyKey(kept.Key); s != http.StatusOK {
			t.Fatalf("another key: %d", s)
		}
		if n := e.leakNotices(tok); len(n) != 1 || n[0]["url"] != "https://gitlab.example/o/r/-/blob/main/ci.yml" || n[0]["source"] != "gitlab" {
			t.Fatalf("notices: %v", n)
		}
		for name, h := range map[string]http.Header{
			"Missing": nil, "Wrong": hdr("Authorization", secret+"x"), "Bearer": bearer(secret),
			"Twice": hdr("Authorization", secret, "Authorization", secret),
		} {
			wantError(t, e.do("POST", "/auth/leaks/gitlab/revoke_tokens", h, &body), 401, "INVALID_OR_EXPIRED_TOKEN")
			if s := e.verifyKey(kept.Key); s != http.StatusOK {
				t.Fatalf("%s: a key was revoked (%d)", name, s)
			}
		}
		wantError(t, e.do("GET", "/auth/leaks/gitlab/revocable_token_types", hdr("Authorization", "nope"), nil), 401, "INVALID_OR_EXPIRED_TOKEN")

		// Wrong tokens draw on the address's failure budget (10 here): guessing
		// the token is rate limited like any credential.
		limited := false
		for range 20 {
			res := e.do("POST", "/auth/leaks/gitlab/revoke_tokens", hdr("Authorization", "guess"), &body)
			if res.Status == http.StatusTooManyRequests {
				limited = true
				break
			}
			wantError(t, res, 401, "INVALID_OR_EXPIRED_TOKEN")
		}
		if !limited {
			t.Fatal("20 wrong tokens in a row were not rate limited")
		}
	})
}

// TestLeakReportReachesReplicas runs two servers on one PostgreSQL
// database: a key a report revokes through one is refused by the other
// within a second.
func TestLeakReportReachesReplicas(t *testing.T) {
	gh := leaktest.NewSigner(t, "gh-1")
	keys := keySetFile(t, gh)
	a, b := replicas(t, keys)
	tok := a.token("alice")
	k := b.keep(a.create(tok, nil))
	b.waitCached(k.Key)

	if res := a.signedReport(gh, reportBody(k.Key)); res.Status != http.StatusOK || !strings.Contains(string(res.Body), "true_positive") {
		t.Fatalf("report: %d %s", res.Status, res.Body)
	}
	if s := a.verifyKey(k.Key); s != http.StatusUnauthorized {
		t.Fatalf("the reporting server answered %d right after the report", s)
	}
	took := b.refusedWithin(k.Key, time.Second)
	t.Logf("the other server refused the key %s after the report", took)
}

// TestLeakReportKeySetDown: a genuine report signed with a key the server
// has not fetched yet, while the key set cannot be fetched, is 503
// SERVER_BUSY (the code host sends it again), not 401, and is no failed
// authentication; once the key set is back (and the minute between fetches
// has passed), the same report revokes the key.
func TestLeakReportKeySetDown(t *testing.T) {
	old, rotated := leaktest.NewSigner(t, "gh-1"), leaktest.NewSigner(t, "gh-2")
	var (
		mu     sync.Mutex
		status = http.StatusOK
		doc    = leaktest.KeySet(t, old)
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	serve := func(s int, d []byte) {
		mu.Lock()
		defer mu.Unlock()
		status, doc = s, d
	}
	configure := func(c *config.Config) {
		c.LeakKeysURL = mustURL(srv.URL)
		c.AuthFailBurst = 1 // a single failure would show as a 429
	}
	eachDBWith(t, configure, func(t *testing.T, e *testEnv) {
		serve(http.StatusOK, leaktest.KeySet(t, old))
		k := e.create(e.token("alice"), nil)
		body := reportBody(k.Key)
		if res := e.signedReport(old, reportBody()); res.Status != http.StatusOK {
			t.Fatalf("a report with the key set up: %d %s", res.Status, res.Body)
		}
		serve(http.StatusInternalServerError, nil)
		e.Clock.Advance(time.Minute)
		for range 3 {
			wantError(t, e.signedReport(rotated, body), http.StatusServiceUnavailable, "SERVER_BUSY")
		}
		if res := e.signedReport(old, reportBody()); res.Status != http.StatusOK {
			t.Fatalf("a key fetched before, with the key set down: %d %s", res.Status, res.Body)
		}
		serve(http.StatusOK, leaktest.KeySet(t, old, rotated))
		e.Clock.Advance(time.Minute)
		res := e.signedReport(rotated, body)
		if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"true_positive"`) {
			t.Fatalf("the report once the key set is back: %d %s", res.Status, res.Body)
		}
	})
}
