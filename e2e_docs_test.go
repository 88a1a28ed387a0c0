package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	keyPattern       = regexp.MustCompile(`^atiru_[0-9A-Za-z]{38}$`)
	timestampPattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	uuidPattern      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// TestDocumentedFlow follows the public API key documentation: its curl
// examples, with the host changed, behave exactly as documented.
func TestDocumentedFlow(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		jwt := e.token("alice")

		// Create with a name: 201 with id, key, key_prefix, name, created_at.
		res := e.do("POST", "/auth/api-keys", bearer(jwt), str(`{"name":"Production server"}`))
		if res.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", res.Status, res.Body)
		}
		body := res.JSON(t)
		for _, f := range []string{"id", "key", "key_prefix", "name", "created_at", "expires_at"} {
			if _, ok := body[f]; !ok {
				t.Errorf("create answer lacks %q: %s", f, res.Body)
			}
		}
		key, _ := body["key"].(string)
		id, _ := body["id"].(string)
		if !keyPattern.MatchString(key) || !uuidPattern.MatchString(id) {
			t.Fatalf("key %q / id %q have the wrong shape", key, id)
		}
		if body["key_prefix"] != key[:10] || body["name"] != "Production server" || body["expires_at"] != nil {
			t.Errorf("create answer %s", res.Body)
		}
		if !timestampPattern.MatchString(body["created_at"].(string)) {
			t.Errorf("created_at %v", body["created_at"])
		}
		if loc := res.Header.Get("Location"); loc != "/auth/api-keys/"+id {
			t.Errorf("Location %q", loc)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}

		// Create without a name (name is optional), and with no body at all.
		unnamed := e.create(jwt, str(`{}`))
		if unnamed.Name != nil {
			t.Errorf("unnamed key has name %q", *unnamed.Name)
		}
		bare := e.create(jwt, nil)
		if bare.Name != nil || unnamed.Key == bare.Key {
			t.Errorf("bodyless create: %+v", bare)
		}

		// List: newest first, never the key.
		res = e.do("GET", "/auth/api-keys", bearer(jwt), nil)
		if res.Status != http.StatusOK || strings.Contains(string(res.Body), key) || strings.Contains(string(res.Body), `"key"`) {
			t.Fatalf("list: %d %s", res.Status, res.Body)
		}
		keys := e.list(jwt)
		if len(keys) != 3 || keys[0].ID != bare.ID || keys[1].ID != unnamed.ID || keys[2].ID != id {
			t.Fatalf("list %+v, want newest first", keys)
		}
		if keys[2].KeyPrefix != key[:10] || keys[2].LastUsedAt != nil || *keys[2].Name != "Production server" {
			t.Errorf("listed %+v", keys[2])
		}

		// The key authenticates, and its use shows in last_used_at.
		res = e.do("GET", "/auth/verify", hdr("X-Api-Key", key), nil)
		if res.Status != http.StatusOK || res.Header.Get("X-Auth-User-Id") != "alice" || res.Header.Get("X-Auth-Key-Id") != id {
			t.Fatalf("verify: %d %v %s", res.Status, res.Header, res.Body)
		}
		if m := res.JSON(t); m["user_id"] != "alice" || m["auth_method"] != "api_key" || m["key_id"] != id {
			t.Errorf("verify body %s", res.Body)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if k := e.list(jwt)[2]; k.LastUsedAt != nil {
				if !timestampPattern.MatchString(*k.LastUsedAt) {
					t.Errorf("last_used_at %q", *k.LastUsedAt)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("last_used_at not set within 5 s of the first use")
			}
			time.Sleep(100 * time.Millisecond)
		}

		// An API key on any management route: 403 JWT_REQUIRED, nothing changes.
		for _, h := range []http.Header{bearer(key), hdr("X-Api-Key", key)} {
			wantError(t, e.do("POST", "/auth/api-keys", h, str(`{"name":"x"}`)), 403, "JWT_REQUIRED")
			wantError(t, e.do("GET", "/auth/api-keys", h, nil), 403, "JWT_REQUIRED")
			wantError(t, e.do("DELETE", "/auth/api-keys/"+id, h, nil), 403, "JWT_REQUIRED")
		}
		if n := len(e.list(jwt)); n != 3 {
			t.Fatalf("%d keys after API-key management attempts, want 3", n)
		}

		// Revoke: 204 with no body; again: 404.
		res = e.do("DELETE", "/auth/api-keys/"+id, bearer(jwt), nil)
		if res.Status != http.StatusNoContent || len(res.Body) != 0 {
			t.Fatalf("revoke: %d %q", res.Status, res.Body)
		}
		wantError(t, e.do("DELETE", "/auth/api-keys/"+id, bearer(jwt), nil), 404, "NOT_FOUND")

		// The revoked key is refused at once and gone from the list.
		wantError(t, e.do("GET", "/auth/verify", bearer(key), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
		for _, k := range e.list(jwt) {
			if k.ID == id {
				t.Fatal("revoked key still listed")
			}
		}
	})
}
