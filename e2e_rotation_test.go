package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/config"
)

// rolledKey is the answer to a roll: a create's, plus rolled_from.
type rolledKey struct {
	createdKey
	RolledFrom string `json:"rolled_from"`
}

// rotatedKey is a key as listed, with replaced_by.
type rotatedKey struct {
	listedKey
	ReplacedBy *string `json:"replaced_by"`
}

// roll rolls key id with body (nil: none) and fails the test unless it
// answers 201.
func (e *testEnv) roll(tok, id string, body *string) rolledKey {
	e.t.Helper()
	res := e.do("POST", "/auth/api-keys/"+id+"/roll", bearer(tok), body)
	if res.Status != http.StatusCreated {
		e.t.Fatalf("roll: %d %s", res.Status, res.Body)
	}
	var k rolledKey
	if err := json.Unmarshal(res.Body, &k); err != nil {
		e.t.Fatal(err)
	}
	e.remember(k.Key)
	if loc := res.Header.Get("Location"); loc != "/auth/api-keys/"+k.ID {
		e.t.Errorf("Location %q, want /auth/api-keys/%s", loc, k.ID)
	}
	if k.RolledFrom != id {
		e.t.Errorf("rolled_from %q, want %s", k.RolledFrom, id)
	}
	return k
}

// rotatedList lists tok's keys with replaced_by.
func (e *testEnv) rotatedList(tok string) map[string]rotatedKey {
	e.t.Helper()
	res := e.do("GET", "/auth/api-keys", bearer(tok), nil)
	if res.Status != http.StatusOK {
		e.t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	var out struct {
		APIKeys []rotatedKey `json:"api_keys"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		e.t.Fatal(err)
	}
	m := map[string]rotatedKey{}
	for _, k := range out.APIKeys {
		m[k.ID] = k
	}
	return m
}

// advancePastTimestamp moves the server's clock past the timestamp ts (as
// the API writes it).
func (e *testEnv) advancePastTimestamp(ts string) {
	e.t.Helper()
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.advancePast(at)
}

// TestRollWithGrace: the new key copies the old one's settings; the old key
// keeps working, listed with replaced_by and expires_at at the end of the
// grace; a second roll is 409; a DELETE during the grace revokes it at once.
func TestRollWithGrace(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(apitime.Layout)
		old := e.create(tok, str(`{"name": "Production server", "expires_at": "`+expires+`"}`))
		before := time.Now()
		k := e.roll(tok, old.ID, str(`{"grace_period_seconds": 3600}`))
		if k.ID == old.ID || k.Key == old.Key {
			t.Fatal("the roll did not issue a new key")
		}
		if k.Name == nil || *k.Name != "Production server" || k.ExpiresAt == nil || *k.ExpiresAt != expires {
			t.Fatalf("the new key does not copy the old one's settings: %+v", k)
		}
		for _, key := range []string{old.Key, k.Key} {
			if s := e.verifyKey(key); s != http.StatusOK {
				t.Fatalf("verify during the grace: %d", s)
			}
		}

		keys := e.rotatedList(tok)
		if len(keys) != 2 {
			t.Fatalf("%d keys listed, want 2", len(keys))
		}
		if r := keys[k.ID].ReplacedBy; r != nil {
			t.Errorf("the new key has replaced_by %q", *r)
		}
		o := keys[old.ID]
		if o.ReplacedBy == nil || *o.ReplacedBy != k.ID {
			t.Fatalf("the old key's replaced_by: %v, want %s", o.ReplacedBy, k.ID)
		}
		end, err := time.Parse(time.RFC3339Nano, *o.ExpiresAt)
		if err != nil {
			t.Fatal(err)
		}
		if end.Before(before.Add(time.Hour).Add(-time.Second)) || end.After(time.Now().Add(time.Hour)) {
			t.Fatalf("the old key expires at %s, want an hour after the roll", *o.ExpiresAt)
		}

		wantError(t, e.do("POST", "/auth/api-keys/"+old.ID+"/roll", bearer(tok), nil), http.StatusConflict, "KEY_ALREADY_ROLLED")

		e.revokeKey(tok, old.ID)
		if s := e.verifyKey(old.Key); s != http.StatusUnauthorized {
			t.Fatalf("a key revoked during its grace answered %d", s)
		}
		if s := e.verifyKey(k.Key); s != http.StatusOK {
			t.Fatalf("the new key answered %d after the old one was revoked", s)
		}
	})
}

// TestRollGraceNeverExtendsExpiry: an old key that expires before the end
// of the grace keeps its own expiry.
func TestRollGraceNeverExtendsExpiry(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		expires := time.Now().Add(time.Hour).UTC().Format(apitime.Layout)
		old := e.create(tok, str(`{"expires_at": "`+expires+`"}`))
		k := e.roll(tok, old.ID, str(`{"grace_period_seconds": 604800}`))
		if k.ExpiresAt == nil || *k.ExpiresAt != expires {
			t.Fatalf("the new key expires %v, want %s", k.ExpiresAt, expires)
		}
		if o := e.rotatedList(tok)[old.ID]; o.ExpiresAt == nil || *o.ExpiresAt != expires {
			t.Fatalf("the old key expires %v, want its own %s", o.ExpiresAt, expires)
		}
	})
}

// TestRollExpiredKey: an expired key cannot be rolled, on either face, since
// its successor would copy the expiry and be born expired; the refusal
// changes nothing and records nothing.
func TestRollExpiredKey(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		k, exp := e.createExpiring(tok)
		e.advancePast(exp)
		wantError(t, e.do("POST", "/auth/api-keys/"+k.ID+"/roll", bearer(tok), str(`{"grace_period_seconds": 3600}`)), http.StatusConflict, "KEY_EXPIRED")
		_, res := e.gql(bearer(tok), `mutation($id: ID!) { rollApiKey(id: $id) { key } }`, map[string]any{"id": k.ID})
		if !slices.Equal(res.codes(), []string{"KEY_EXPIRED"}) {
			t.Fatalf("GraphQL: codes %v", res.codes())
		}
		keys := e.rotatedList(tok)
		if got, ok := keys[k.ID]; len(keys) != 1 || !ok || got.ReplacedBy != nil || got.ExpiresAt == nil || *got.ExpiresAt != apitime.Format(exp) {
			t.Fatalf("a refused roll changed the keys: %+v", keys)
		}
		for _, ev := range e.eventsOf(tok) {
			if ev.Action != "api_key.created" {
				t.Errorf("a refused roll recorded %s", ev.Action)
			}
		}
	})
}

// TestRollWithoutGraceRevokes: the default grace is 0, which revokes the
// old key at once, exactly as DELETE does.
func TestRollWithoutGraceRevokes(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		old := e.create(tok, str(`{"name": "ci"}`))
		e.waitCached(old.Key)
		k := e.roll(tok, old.ID, nil)
		if s := e.verifyKey(old.Key); s != http.StatusUnauthorized {
			t.Fatalf("the old key answered %d right after a roll without grace", s)
		}
		if s := e.verifyKey(k.Key); s != http.StatusOK {
			t.Fatalf("the new key answered %d", s)
		}
		keys := e.rotatedList(tok)
		if _, ok := keys[old.ID]; ok || len(keys) != 1 {
			t.Fatalf("listed after the roll: %+v", keys)
		}
		wantError(t, e.do("DELETE", "/auth/api-keys/"+old.ID, bearer(tok), nil), http.StatusNotFound, "NOT_FOUND")
		wantError(t, e.do("POST", "/auth/api-keys/"+old.ID+"/roll", bearer(tok), str(`{"grace_period_seconds": 0}`)), http.StatusConflict, "KEY_ALREADY_ROLLED")
	})
}

// TestRollGraceEnds: at MAX_KEYS_PER_USER a roll succeeds; once the grace
// ends the old key is refused, leaves the list and the count, and a DELETE
// of it is 404.
func TestRollGraceEnds(t *testing.T) {
	eachDBWith(t, func(c *config.Config) { c.MaxKeysPerUser = 1 }, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		old := e.create(tok, nil)
		e.waitCached(old.Key)
		k := e.roll(tok, old.ID, str(`{"grace_period_seconds": 1}`))
		o := e.rotatedList(tok)[old.ID]
		if o.ExpiresAt == nil {
			t.Fatal("the old key has no expires_at during its grace")
		}
		wantError(t, e.do("POST", "/auth/api-keys", bearer(tok), nil), http.StatusForbidden, "KEY_LIMIT_REACHED")

		e.advancePastTimestamp(*o.ExpiresAt)
		if s := e.verifyKey(old.Key); s != http.StatusUnauthorized {
			t.Fatalf("the old key answered %d after its grace", s)
		}
		if s := e.verifyKey(k.Key); s != http.StatusOK {
			t.Fatalf("the new key answered %d", s)
		}
		keys := e.rotatedList(tok)
		if _, ok := keys[old.ID]; ok || len(keys) != 1 {
			t.Fatalf("listed after the grace: %+v", keys)
		}
		wantError(t, e.do("DELETE", "/auth/api-keys/"+old.ID, bearer(tok), nil), http.StatusNotFound, "NOT_FOUND")
		wantError(t, e.do("POST", "/auth/api-keys", bearer(tok), nil), http.StatusForbidden, "KEY_LIMIT_REACHED")
		e.revokeKey(tok, k.ID)
		e.create(tok, nil) // the old key no longer counts
	})
}

// TestConcurrentRollsOneWins: of twelve concurrent rolls of one key exactly
// one answers 201, the others 409 KEY_ALREADY_ROLLED, and the audit log has
// exactly one api_key.rolled.
func TestConcurrentRollsOneWins(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		old := e.create(tok, nil)
		answers := e.sendAll(t, 12, func(int) (string, string, http.Header, *string) {
			return "POST", "/auth/api-keys/" + old.ID + "/roll", bearer(tok), str(`{"grace_period_seconds": 60}`)
		})
		created := 0
		for _, res := range answers {
			switch res.Status {
			case http.StatusCreated:
				created++
				var k rolledKey
				if err := json.Unmarshal(res.Body, &k); err != nil {
					t.Fatal(err)
				}
				e.remember(k.Key)
			default:
				wantError(t, res, http.StatusConflict, "KEY_ALREADY_ROLLED")
			}
		}
		if created != 1 {
			t.Fatalf("%d rolls answered 201, want exactly 1", created)
		}
		if n := len(e.rotatedList(tok)); n != 2 {
			t.Fatalf("%d keys listed, want the old one and one new", n)
		}
		only(t, e.eventsOf(tok), "api_key.rolled")
	})
}

// TestRollAndRenameBadInput: bad input is a 400 or 404 and changes nothing.
func TestRollAndRenameBadInput(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		k := e.create(tok, str(`{"name": "kept"}`))
		mallory := e.token("mallory")
		roll := "/auth/api-keys/" + k.ID + "/roll"
		for _, body := range []string{
			`{"grace_period_seconds": "60"}`, `{"grace_period_seconds": -1}`, `{"grace_period_seconds": 604801}`,
			`{"grace_period_seconds": 1.5}`, `{"grace_period_seconds": 1e3}`, `{"grace_period_seconds": null}`,
			`{"grace_period_seconds": 60} {}`, `[]`, `{"grace_period_seconds": tru}`,
		} {
			wantError(t, e.do("POST", roll, bearer(tok), str(body)), http.StatusBadRequest, "INVALID_REQUEST")
		}
		patch := "/auth/api-keys/" + k.ID
		for _, body := range []string{
			`{"name": "x", "expires_at": null}`, `{"scopes": []}`, `{}`, `{"name": 5}`,
			fmt.Sprintf(`{"name": %q}`, string(make([]rune, 101))), `{"name": "a\u0007b"}`,
		} {
			wantError(t, e.do("PATCH", patch, bearer(tok), str(body)), http.StatusBadRequest, "INVALID_REQUEST")
		}
		wantError(t, e.do("PATCH", patch, bearer(tok), nil), http.StatusBadRequest, "INVALID_REQUEST")
		wantError(t, e.do("PATCH", patch, bearer(tok), str("name=x")), http.StatusBadRequest, "INVALID_REQUEST")
		// Another user's key, an unknown or malformed id: 404.
		wantError(t, e.do("POST", roll, bearer(mallory), nil), http.StatusNotFound, "NOT_FOUND")
		wantError(t, e.do("PATCH", patch, bearer(mallory), str(`{"name": "mine"}`)), http.StatusNotFound, "NOT_FOUND")
		for _, id := range []string{"00000000-0000-7000-8000-000000000000", "nope"} {
			wantError(t, e.do("POST", "/auth/api-keys/"+id+"/roll", bearer(tok), nil), http.StatusNotFound, "NOT_FOUND")
			wantError(t, e.do("PATCH", "/auth/api-keys/"+id, bearer(tok), str(`{"name": "x"}`)), http.StatusNotFound, "NOT_FOUND")
		}
		// Keys never manage keys.
		wantError(t, e.do("POST", roll, hdr("X-Api-Key", k.Key), nil), http.StatusForbidden, "JWT_REQUIRED")
		wantError(t, e.do("PATCH", patch, hdr("X-Api-Key", k.Key), str(`{"name": "x"}`)), http.StatusForbidden, "JWT_REQUIRED")
		wantError(t, e.do("GET", roll, bearer(tok), nil), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")

		keys := e.rotatedList(tok)
		if got := keys[k.ID]; len(keys) != 1 || got.Name == nil || *got.Name != "kept" || got.ReplacedBy != nil || got.ExpiresAt != nil {
			t.Fatalf("bad input changed the keys: %+v", keys)
		}
		if s := e.verifyKey(k.Key); s != http.StatusOK {
			t.Fatalf("the key answered %d after bad input", s)
		}
	})
}

// TestRename: PATCH changes the name only, and answers the key as listed.
func TestRename(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		k := e.create(tok, str(`{"name": "old name"}`))
		res := e.do("PATCH", "/auth/api-keys/"+k.ID, bearer(tok), str(`{"name": "  new name  "}`))
		if res.Status != http.StatusOK {
			t.Fatalf("rename: %d %s", res.Status, res.Body)
		}
		var got rotatedKey
		if err := json.Unmarshal(res.Body, &got); err != nil {
			t.Fatal(err)
		}
		if got.ID != k.ID || got.Name == nil || *got.Name != "new name" || got.CreatedAt != k.CreatedAt || got.KeyPrefix != k.KeyPrefix {
			t.Fatalf("renamed: %+v", got)
		}
		if l := e.rotatedList(tok)[k.ID]; l.Name == nil || *l.Name != "new name" {
			t.Fatalf("listed: %+v", l)
		}
		for _, body := range []string{`{"name": null}`, `{"name": ""}`} {
			res = e.do("PATCH", "/auth/api-keys/"+k.ID, bearer(tok), str(body))
			if res.Status != http.StatusOK || res.JSON(t)["name"] != nil {
				t.Fatalf("clearing with %s: %d %s", body, res.Status, res.Body)
			}
		}
		if s := e.verifyKey(k.Key); s != http.StatusOK {
			t.Fatalf("the renamed key answered %d", s)
		}
	})
}

// TestRollCopiesScopes: the new key holds exactly the old key's scopes, and
// an unrestricted key's successor is unrestricted.
func TestRollCopiesScopes(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		for _, c := range []struct{ body, want string }{
			{`{"scopes": ["orders:write", "orders:read"]}`, `["orders:read","orders:write"]`},
			{`{"scopes": []}`, `[]`},
			{`{}`, `null`},
		} {
			old := e.create(tok, str(c.body))
			res := e.do("POST", "/auth/api-keys/"+old.ID+"/roll", bearer(tok), str(`{"grace_period_seconds": 60}`))
			if res.Status != http.StatusCreated {
				t.Fatalf("roll: %d %s", res.Status, res.Body)
			}
			var k struct {
				Key    string          `json:"key"`
				Scopes json.RawMessage `json:"scopes"`
			}
			if err := json.Unmarshal(res.Body, &k); err != nil {
				t.Fatal(err)
			}
			e.remember(k.Key)
			if string(k.Scopes) != c.want {
				t.Fatalf("created with %s, the new key has scopes %s, want %s", c.body, k.Scopes, c.want)
			}
			v := e.do("GET", "/auth/verify", hdr("X-Api-Key", k.Key), nil)
			if v.Status != http.StatusOK || string(mustRaw(t, v.Body, "scopes")) != c.want {
				t.Fatalf("verify of the new key: %d %s", v.Status, v.Body)
			}
		}
	})
}

// mustRaw returns the raw JSON of field in the object body.
func mustRaw(t testing.TB, body []byte, field string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m[field]
}
