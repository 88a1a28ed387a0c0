package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// gqlKeyFields selects every field of an ApiKey.
const gqlKeyFields = `id keyPrefix name createdAt lastUsedAt expiresAt`

const (
	gqlCreateMutation = `mutation Create($input: CreateApiKeyInput) {
  createApiKey(input: $input) { apiKey { ` + gqlKeyFields + ` } key }
}`
	gqlListQuery      = `{ apiKeys { ` + gqlKeyFields + ` } }`
	gqlRevokeMutation = `mutation Revoke($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }`
	gqlViewerQuery    = `{ viewer { userId authMethod apiKey { id keyPrefix } } }`
	gqlBodyMax        = 64 << 10
	gqlMaxDepth       = 15
)

// gqlKey is an ApiKey as GraphQL shows it.
type gqlKey struct {
	ID         string  `json:"id"`
	KeyPrefix  string  `json:"keyPrefix"`
	Name       *string `json:"name"`
	CreatedAt  string  `json:"createdAt"`
	LastUsedAt *string `json:"lastUsedAt"`
	ExpiresAt  *string `json:"expiresAt"`
}

// subEnv returns e bound to the subtest t: the harness helpers report failures
// to t, and the secrets remembered through it are checked against e's log
// when e's own test ends.
func (e *testEnv) subEnv(t testing.TB) *testEnv {
	c := &testEnv{t: t, URL: e.URL, DSN: e.DSN, App: e.App, Clock: e.Clock, Secret: e.Secret, Logs: e.Logs, client: e.client}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.secrets {
			e.remember(s)
		}
	})
	return c
}

// decodeField decodes data.name into v.
func (g gqlResponse) decodeField(t testing.TB, name string, v any) {
	t.Helper()
	raw, ok := g.Data[name]
	if !ok {
		t.Fatalf("no data.%s in %+v", name, g)
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("data.%s = %s: %v", name, b, err)
	}
}

// messages lists the message of every error.
func (g gqlResponse) messages() []string {
	var out []string
	for _, e := range g.Errors {
		out = append(out, e.Message)
	}
	return out
}

// gqlCreate creates a key through GraphQL with input (nil: no variables at
// all) and fails the test unless it is created.
func (e *testEnv) gqlCreate(tok string, input map[string]any) (gqlKey, string) {
	e.t.Helper()
	var vars map[string]any
	if input != nil {
		vars = map[string]any{"input": input}
	}
	status, res := e.gql(bearer(tok), gqlCreateMutation, vars)
	if status != http.StatusOK || len(res.Errors) > 0 {
		e.t.Fatalf("createApiKey: %d %+v", status, res)
	}
	var out struct {
		APIKey gqlKey `json:"apiKey"`
		Key    string `json:"key"`
	}
	res.decodeField(e.t, "createApiKey", &out)
	return out.APIKey, out.Key
}

// gqlList lists the caller's keys through GraphQL.
func (e *testEnv) gqlList(tok string) []gqlKey {
	e.t.Helper()
	status, res := e.gql(bearer(tok), gqlListQuery, nil)
	if status != http.StatusOK || len(res.Errors) > 0 {
		e.t.Fatalf("apiKeys: %d %+v", status, res)
	}
	var keys []gqlKey
	res.decodeField(e.t, "apiKeys", &keys)
	return keys
}

// gqlRaw posts body to /graphql as application/json and decodes the answer.
func (e *testEnv) gqlRaw(h http.Header, body string) (response, gqlResponse) {
	e.t.Helper()
	res := e.do("POST", "/graphql", h, &body)
	var out gqlResponse
	if err := json.Unmarshal(res.Body, &out); err != nil {
		e.t.Fatalf("GraphQL answer %d %q: %v", res.Status, res.Body, err)
	}
	return res, out
}

// gqlBody is the JSON body of a request for query.
func gqlBody(query string) string {
	b, _ := json.Marshal(map[string]any{"query": query})
	return string(b)
}

// wantGQLError checks a GraphQL answer that failed because of what the
// caller may do: HTTP 200 (the request itself was fine), exactly one error
// with extensions.code code and a message, no data for the field. It returns
// the message.
func wantGQLError(t testing.TB, status int, res gqlResponse, code string) string {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d, want 200; %+v", status, res)
	}
	if len(res.Errors) != 1 || res.codes()[0] != code {
		t.Fatalf("errors %+v, want one with code %s", res.Errors, code)
	}
	for k, v := range res.Data {
		if v != nil {
			t.Errorf("data.%s = %v alongside the error", k, v)
		}
	}
	if res.Errors[0].Message == "" {
		t.Error("error without a message")
	}
	return res.Errors[0].Message
}

// wantGQLRefused checks that the GraphQL request was refused as a whole: a 4xx
// and no data.
func wantGQLRefused(t testing.TB, res response) {
	t.Helper()
	if res.Status < 400 || res.Status > 499 {
		t.Fatalf("status %d, want a 4xx; body %s", res.Status, res.Body)
	}
	var m map[string]any
	if json.Unmarshal(res.Body, &m) == nil && m["data"] != nil {
		t.Fatalf("refused request has data: %s", res.Body)
	}
}

// wantKeysHeld fails unless user tok holds n keys.
func (e *testEnv) wantKeysHeld(tok string, n int) {
	e.t.Helper()
	if keys := e.list(tok); len(keys) != n {
		e.t.Fatalf("%d keys, want %d: %+v", len(keys), n, keys)
	}
}

// keyVerifies reports whether key passes GET /auth/verify.
func (e *testEnv) keyVerifies(key string) bool {
	e.t.Helper()
	res := e.do("GET", "/auth/verify", hdr("X-Api-Key", key), nil)
	switch res.Status {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		wantError(e.t, res, 401, "INVALID_OR_EXPIRED_TOKEN")
		return false
	}
	e.t.Fatalf("verify: %d %s", res.Status, res.Body)
	return false
}

func wantGQLKeyShape(t testing.TB, k gqlKey, key string) {
	t.Helper()
	if !uuidPattern.MatchString(k.ID) || !keyPattern.MatchString(key) || k.KeyPrefix != key[:10] {
		t.Errorf("id %q, key %q, keyPrefix %q have the wrong shape", k.ID, key, k.KeyPrefix)
	}
	if !timestampPattern.MatchString(k.CreatedAt) {
		t.Errorf("createdAt %q is not YYYY-MM-DDTHH:MM:SS.mmmZ", k.CreatedAt)
	}
	if at, err := time.Parse(time.RFC3339, k.CreatedAt); err != nil || time.Since(at).Abs() > time.Minute {
		t.Errorf("createdAt %q is not now", k.CreatedAt)
	}
	if k.LastUsedAt != nil {
		t.Errorf("new key has lastUsedAt %q", *k.LastUsedAt)
	}
	if k.ExpiresAt != nil && !timestampPattern.MatchString(*k.ExpiresAt) {
		t.Errorf("expiresAt %q is not YYYY-MM-DDTHH:MM:SS.mmmZ", *k.ExpiresAt)
	}
}

// sameGQLAndRESTKey compares a key as GraphQL shows it with the same key as REST lists it.
func sameGQLAndRESTKey(g gqlKey, r listedKey) bool {
	eq := func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return g.ID == r.ID && g.KeyPrefix == r.KeyPrefix && g.CreatedAt == r.CreatedAt &&
		eq(g.Name, r.Name) && eq(g.LastUsedAt, r.LastUsedAt) && eq(g.ExpiresAt, r.ExpiresAt)
}

func strOrNil(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestGraphQLManagesKeys: createApiKey, apiKeys and revokeApiKey over the
// real listener, and REST and GraphQL agreeing because both are one service.
func TestGraphQLManagesKeys(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		t.Run("CreateWithoutInput", func(t *testing.T) {
			e := e.subEnv(t)
			jwt := e.token("no-input")
			for _, tc := range []struct {
				name, query string
				vars        map[string]any
			}{
				{"NoArgument", `mutation { createApiKey { apiKey { ` + gqlKeyFields + ` } key } }`, nil},
				{"NullInput", gqlCreateMutation, map[string]any{"input": nil}},
				{"EmptyInput", gqlCreateMutation, map[string]any{"input": map[string]any{}}},
				{"BlankName", gqlCreateMutation, map[string]any{"input": map[string]any{"name": "   ", "expiresAt": nil}}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := e.subEnv(t)
					status, res := e.gql(bearer(jwt), tc.query, tc.vars)
					if status != http.StatusOK || len(res.Errors) > 0 {
						t.Fatalf("%d %+v", status, res)
					}
					var out struct {
						APIKey gqlKey `json:"apiKey"`
						Key    string `json:"key"`
					}
					res.decodeField(t, "createApiKey", &out)
					wantGQLKeyShape(t, out.APIKey, out.Key)
					if out.APIKey.Name != nil || out.APIKey.ExpiresAt != nil {
						t.Errorf("name %s, expiresAt %s: want both null", strOrNil(out.APIKey.Name), strOrNil(out.APIKey.ExpiresAt))
					}
				})
			}
			e.wantKeysHeld(jwt, 4)
		})

		t.Run("CreateWithNameAndExpiry", func(t *testing.T) {
			e := e.subEnv(t)
			jwt := e.token("named")
			expires := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
			for _, tc := range []struct {
				name, sentName, wantName, sentExpiry, wantExpiry string
			}{
				{"UTC", "Production server", "Production server", expires.Format(time.RFC3339), expires.Format(apitime.Layout)},
				{"TrimmedAndOffset", "  Staging  ", "Staging",
					expires.In(time.FixedZone("", 2*3600)).Add(123456789 * time.Nanosecond).Format(time.RFC3339Nano),
					expires.Add(123 * time.Millisecond).Format(apitime.Layout)},
				{"HundredCodePoints", strings.Repeat("é", 100), strings.Repeat("é", 100), expires.Format(time.RFC3339), expires.Format(apitime.Layout)},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := e.subEnv(t)
					k, key := e.gqlCreate(jwt, map[string]any{"name": tc.sentName, "expiresAt": tc.sentExpiry})
					wantGQLKeyShape(t, k, key)
					if strOrNil(k.Name) != tc.wantName || strOrNil(k.ExpiresAt) != tc.wantExpiry {
						t.Errorf("name %q expiresAt %q, want %q %q", strOrNil(k.Name), strOrNil(k.ExpiresAt), tc.wantName, tc.wantExpiry)
					}
				})
			}
			// Inline arguments, not only variables.
			status, res := e.gql(bearer(jwt), `mutation { createApiKey(input: {name: "inline", expiresAt: "`+expires.Format(time.RFC3339)+`"}) { apiKey { name expiresAt } key } }`, nil)
			if status != http.StatusOK || len(res.Errors) > 0 {
				t.Fatalf("inline create: %d %+v", status, res)
			}
			var out struct {
				APIKey gqlKey `json:"apiKey"`
				Key    string `json:"key"`
			}
			res.decodeField(t, "createApiKey", &out)
			if strOrNil(out.APIKey.Name) != "inline" || strOrNil(out.APIKey.ExpiresAt) != expires.Format(apitime.Layout) {
				t.Errorf("inline create: %+v", out.APIKey)
			}
		})

		t.Run("KeyVerifiesOverREST", func(t *testing.T) {
			e := e.subEnv(t)
			k, key := e.gqlCreate(e.token("verifier"), map[string]any{"name": "ci"})
			for _, h := range []http.Header{hdr("X-Api-Key", key), bearer(key)} {
				res := e.do("GET", "/auth/verify", h, nil)
				if res.Status != http.StatusOK || res.Header.Get("X-Auth-Key-Id") != k.ID {
					t.Fatalf("verify: %d %s", res.Status, res.Body)
				}
				if m := res.JSON(t); m["user_id"] != "verifier" || m["auth_method"] != "api_key" || m["key_id"] != k.ID {
					t.Errorf("verify body %s", res.Body)
				}
			}
		})

		t.Run("BothFacesAgree", func(t *testing.T) {
			e := e.subEnv(t)
			jwt := e.token("two-faces")
			viaGQL, _ := e.gqlCreate(jwt, map[string]any{"name": "from GraphQL", "expiresAt": "2099-01-01T00:00:00Z"})
			viaREST := e.create(jwt, str(`{"name":"from REST"}`))

			rest, gql := e.list(jwt), e.gqlList(jwt)
			if len(rest) != 2 || len(gql) != 2 {
				t.Fatalf("REST lists %d keys, GraphQL %d; want 2 each", len(rest), len(gql))
			}
			for i := range rest {
				if !sameGQLAndRESTKey(gql[i], rest[i]) {
					t.Errorf("key %d: GraphQL %+v, REST %+v", i, gql[i], rest[i])
				}
			}
			if gql[0].ID != viaREST.ID || gql[1].ID != viaGQL.ID {
				t.Errorf("GraphQL lists %s, %s; want the REST-created key first", gql[0].ID, gql[1].ID)
			}
			if gql[0].CreatedAt != viaREST.CreatedAt || strOrNil(gql[0].Name) != "from REST" {
				t.Errorf("REST-created key as GraphQL lists it: %+v", gql[0])
			}
			if rest[1].CreatedAt != viaGQL.CreatedAt || strOrNil(rest[1].ExpiresAt) != "2099-01-01T00:00:00.000Z" {
				t.Errorf("GraphQL-created key as REST lists it: %+v", rest[1])
			}

			// A key revoked on one face is gone from the other.
			status, res := e.gql(bearer(jwt), gqlRevokeMutation, map[string]any{"id": viaREST.ID})
			if status != http.StatusOK || len(res.Errors) > 0 {
				t.Fatalf("revoke: %d %+v", status, res)
			}
			wantError(t, e.do("DELETE", "/auth/api-keys/"+viaREST.ID, bearer(jwt), nil), 404, "NOT_FOUND")
			if res := e.do("DELETE", "/auth/api-keys/"+viaGQL.ID, bearer(jwt), nil); res.Status != http.StatusNoContent {
				t.Fatalf("REST revoke: %d %s", res.Status, res.Body)
			}
			if keys := e.gqlList(jwt); len(keys) != 0 {
				t.Errorf("GraphQL still lists %+v", keys)
			}
		})

		t.Run("ApiKeysNewestFirstOnlyCallers", func(t *testing.T) {
			e := e.subEnv(t)
			bob, carol := e.token("bob"), e.token("carol")
			var want []string
			for i := range 4 {
				if i%2 == 0 {
					k, _ := e.gqlCreate(bob, map[string]any{"name": fmt.Sprint("bob ", i)})
					want = append(want, k.ID)
				} else {
					want = append(want, e.create(bob, nil).ID)
				}
				e.gqlCreate(carol, nil)
			}
			slices.Reverse(want)
			var got []string
			for _, k := range e.gqlList(bob) {
				got = append(got, k.ID)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("bob's keys %v, want %v (newest first, his only)", got, want)
			}
			if n := len(e.gqlList(carol)); n != 4 {
				t.Errorf("carol has %d keys, want 4", n)
			}
			if keys := e.gqlList(e.token("dave")); keys == nil || len(keys) != 0 {
				t.Errorf("a user without keys gets %#v, want []", keys)
			}
		})

		t.Run("Revoke", func(t *testing.T) {
			e := e.subEnv(t)
			jwt := e.token("revoker")
			k, key := e.gqlCreate(jwt, nil)
			keep, keepKey := e.gqlCreate(jwt, nil)
			if !e.keyVerifies(key) {
				t.Fatal("a new key does not verify")
			}
			before := time.Now().Add(-time.Second)
			status, res := e.gql(bearer(jwt), gqlRevokeMutation, map[string]any{"id": k.ID})
			if status != http.StatusOK || len(res.Errors) > 0 {
				t.Fatalf("revoke: %d %+v", status, res)
			}
			var out struct {
				ID        string `json:"id"`
				RevokedAt string `json:"revokedAt"`
			}
			res.decodeField(t, "revokeApiKey", &out)
			if out.ID != k.ID || !timestampPattern.MatchString(out.RevokedAt) {
				t.Errorf("revokeApiKey answered %+v", out)
			}
			if at, err := time.Parse(time.RFC3339, out.RevokedAt); err != nil || at.Before(before) || at.After(time.Now().Add(time.Second)) {
				t.Errorf("revokedAt %q is not now", out.RevokedAt)
			}
			if e.keyVerifies(key) {
				t.Error("a revoked key still keyVerifies")
			}
			if !e.keyVerifies(keepKey) {
				t.Error("revoking one key broke another")
			}
			if keys := e.gqlList(jwt); len(keys) != 1 || keys[0].ID != keep.ID {
				t.Errorf("after revoking, apiKeys = %+v", keys)
			}
		})

		t.Run("RevokeNotFound", func(t *testing.T) {
			e := e.subEnv(t)
			jwt := e.token("owner")
			revoked, _ := e.gqlCreate(jwt, nil)
			if status, res := e.gql(bearer(jwt), gqlRevokeMutation, map[string]any{"id": revoked.ID}); status != 200 || len(res.Errors) > 0 {
				t.Fatalf("revoke: %d %+v", status, res)
			}
			mine, myKey := e.gqlCreate(jwt, nil)
			theirs, theirKey := e.gqlCreate(e.token("stranger"), nil)

			var message string
			for _, tc := range []struct{ name, id string }{
				{"AlreadyRevoked", revoked.ID},
				{"Unknown", "0190a5e5-7c1e-7d3a-8c5e-2b9f4e6a1d20"},
				{"AnotherUsers", theirs.ID},
				{"Malformed", "not-a-key-id"},
				{"Empty", ""},
				{"URNForm", "urn:uuid:" + mine.ID},
				{"BracedForm", "{" + mine.ID + "}"},
				{"SQLish", "' OR 1=1 --"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := e.subEnv(t)
					status, res := e.gql(bearer(jwt), gqlRevokeMutation, map[string]any{"id": tc.id})
					msg := wantGQLError(t, status, res, "NOT_FOUND")
					if message == "" {
						message = msg
					} else if msg != message {
						t.Errorf("message %q differs from %q: the answer tells which case it is", msg, message)
					}
					if strings.Contains(msg, tc.id) && tc.id != "" {
						t.Errorf("message %q echoes the id", msg)
					}
				})
			}
			if !e.keyVerifies(theirKey) || !e.keyVerifies(myKey) {
				t.Error("a failed revoke revoked a key")
			}
			if n := len(e.gqlList(jwt)); n != 1 {
				t.Errorf("owner has %d keys, want 1", n)
			}
		})
	})
}

// TestGraphQLViewer: viewer answers for any credential, and null for none.
func TestGraphQLViewer(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		jwt := e.token("vera")
		created := e.create(jwt, str(`{"name":"viewer key"}`))

		t.Run("Anonymous", func(t *testing.T) {
			e := e.subEnv(t)
			status, res := e.gql(nil, gqlViewerQuery, nil)
			if status != http.StatusOK || len(res.Errors) != 0 {
				t.Fatalf("%d %+v", status, res)
			}
			if v, ok := res.Data["viewer"]; !ok || v != nil {
				t.Fatalf("data %+v, want viewer: null", res.Data)
			}
		})

		t.Run("JWT", func(t *testing.T) {
			e := e.subEnv(t)
			status, res := e.gql(bearer(jwt), gqlViewerQuery, nil)
			if status != http.StatusOK || len(res.Errors) != 0 {
				t.Fatalf("%d %+v", status, res)
			}
			v, _ := res.Data["viewer"].(map[string]any)
			if v["userId"] != "vera" || v["authMethod"] != "JWT" || v["apiKey"] != nil {
				t.Errorf("viewer %v", v)
			}
			if _, ok := v["apiKey"]; !ok {
				t.Error("viewer lacks apiKey")
			}
		})

		for _, tc := range []struct {
			name string
			h    http.Header
		}{
			{"APIKeyBearer", bearer(created.Key)},
			{"APIKeyHeader", hdr("X-Api-Key", created.Key)},
			{"APIKeyLowerCaseScheme", hdr("Authorization", "bearer "+created.Key)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := e.subEnv(t)
				status, res := e.gql(tc.h, gqlViewerQuery, nil)
				if status != http.StatusOK || len(res.Errors) != 0 {
					t.Fatalf("%d %+v", status, res)
				}
				var v struct {
					UserID     string  `json:"userId"`
					AuthMethod string  `json:"authMethod"`
					APIKey     *gqlKey `json:"apiKey"`
				}
				res.decodeField(t, "viewer", &v)
				if v.UserID != "vera" || v.AuthMethod != "API_KEY" || v.APIKey == nil ||
					v.APIKey.ID != created.ID || v.APIKey.KeyPrefix != created.KeyPrefix {
					t.Errorf("viewer %+v, want vera by API_KEY with key %s %s", v, created.ID, created.KeyPrefix)
				}
			})
		}

		for _, tc := range []struct {
			name, code string
			h          http.Header
		}{
			{"BadJWT", "INVALID_OR_EXPIRED_TOKEN", bearer("eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl")},
			{"ExpiredJWT", "INVALID_OR_EXPIRED_TOKEN", bearer(e.sign("vera", issuedAt(time.Now().Add(-2*time.Hour))))},
			{"UnknownKey", "INVALID_OR_EXPIRED_TOKEN", hdr("X-Api-Key", apikey.NewFormat(apikey.DefaultPrefix).Generate())},
			{"OtherScheme", "MISSING_AUTH", hdr("Authorization", "Basic dmVyYTpwdw==")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := e.subEnv(t)
				status, res := e.gql(tc.h, gqlViewerQuery, nil)
				wantGQLError(t, status, res, tc.code)
				if v, ok := res.Data["viewer"]; !ok || v != nil {
					t.Errorf("data %+v, want viewer: null", res.Data)
				}
			})
		}

		t.Run("RevokedKey", func(t *testing.T) {
			e := e.subEnv(t)
			k := e.create(jwt, nil)
			if res := e.do("DELETE", "/auth/api-keys/"+k.ID, bearer(jwt), nil); res.Status != http.StatusNoContent {
				t.Fatalf("revoke: %d %s", res.Status, res.Body)
			}
			status, res := e.gql(bearer(k.Key), gqlViewerQuery, nil)
			wantGQLError(t, status, res, "INVALID_OR_EXPIRED_TOKEN")
		})
	})
}

// TestGraphQLCredentialProblems: a field that needs a login token answers
// the REST code in extensions.code, over HTTP 200, and changes nothing.
func TestGraphQLCredentialProblems(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		jwt := e.token("victim")
		target := e.create(jwt, str(`{"name":"target"}`))
		wrongKey := apikeytest.BadChecksum(target.Key)

		creds := []struct {
			name, code string
			h          http.Header
		}{
			{"NoCredential", "MISSING_AUTH", nil},
			{"EmptyBearer", "MISSING_AUTH", hdr("Authorization", "Bearer ")},
			{"BothHeaders", "MISSING_AUTH", hdr("Authorization", "Bearer "+jwt, "X-Api-Key", target.Key)},
			{"BadJWT", "INVALID_OR_EXPIRED_TOKEN", bearer("not.a.jwt")},
			{"ExpiredJWT", "INVALID_OR_EXPIRED_TOKEN", bearer(e.sign("victim", issuedAt(time.Now().Add(-2*time.Hour))))},
			{"BadKey", "INVALID_OR_EXPIRED_TOKEN", hdr("X-Api-Key", wrongKey)},
			{"APIKey", "JWT_REQUIRED", bearer(target.Key)},
			{"APIKeyHeader", "JWT_REQUIRED", hdr("X-Api-Key", target.Key)},
		}
		ops := []struct {
			name, query string
			vars        map[string]any
		}{
			{"apiKeys", gqlListQuery, nil},
			{"createApiKey", gqlCreateMutation, map[string]any{"input": map[string]any{"name": "should not exist"}}},
			{"revokeApiKey", gqlRevokeMutation, map[string]any{"id": target.ID}},
		}
		for _, c := range creds {
			t.Run(c.name, func(t *testing.T) {
				for _, op := range ops {
					t.Run(op.name, func(t *testing.T) {
						e := e.subEnv(t)
						status, res := e.gql(c.h, op.query, op.vars)
						wantGQLError(t, status, res, c.code)
						if p := res.Errors[0].Path; len(p) != 1 || p[0] != op.name {
							t.Errorf("error path %v, want [%s]", p, op.name)
						}
					})
				}
			})
		}
		if keys := e.list(jwt); len(keys) != 1 || keys[0].ID != target.ID {
			t.Fatalf("after refused operations the victim holds %+v", keys)
		}
		if !e.keyVerifies(target.Key) {
			t.Fatal("the target key was revoked by a refused operation")
		}
	})
}

// TestGraphQLValidation: invalid input answers INVALID_REQUEST (or a
// GraphQL validation error) and creates nothing.
func TestGraphQLValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		jwt := e.token("validator")
		past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		for _, tc := range []struct {
			name  string
			input map[string]any
		}{
			{"Name101Chars", map[string]any{"name": strings.Repeat("a", 101)}},
			{"Name101CodePoints", map[string]any{"name": strings.Repeat("é", 101)}},
			{"NameNewline", map[string]any{"name": "line\nbreak"}},
			{"NameNUL", map[string]any{"name": "nul\x00byte"}},
			{"NameEscape", map[string]any{"name": "esc\x1b[31m"}},
			{"NameBidiOverride", map[string]any{"name": "evil\u202egnp.exe"}},
			{"ExpiresNow", map[string]any{"expiresAt": time.Now().UTC().Format(time.RFC3339Nano)}},
			{"ExpiresInPast", map[string]any{"expiresAt": past}},
			{"ExpiresGarbage", map[string]any{"expiresAt": "garbage"}},
			{"ExpiresDateOnly", map[string]any{"expiresAt": "2099-01-01"}},
			{"ExpiresNoZone", map[string]any{"expiresAt": "2099-01-01T00:00:00"}},
			{"ExpiresNumber", map[string]any{"expiresAt": 4102444800}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := e.subEnv(t)
				status, res := e.gql(bearer(jwt), gqlCreateMutation, map[string]any{"input": tc.input})
				wantGQLError(t, status, res, "INVALID_REQUEST")
			})
		}

		// A bad scalar written into the query text fails the same way.
		for _, tc := range []struct{ name, literal string }{
			{"InlineGarbage", `"garbage"`},
			{"InlinePast", `"` + past + `"`},
			{"InlineNumber", `4102444800`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := e.subEnv(t)
				status, res := e.gql(bearer(jwt), `mutation { createApiKey(input: {expiresAt: `+tc.literal+`}) { key } }`, nil)
				wantGQLError(t, status, res, "INVALID_REQUEST")
			})
		}

		// Wrongly typed input is a GraphQL validation error of the request.
		for _, tc := range []struct {
			name  string
			input any
		}{
			{"NameBoolean", map[string]any{"name": true}},
			{"InputString", "name"},
			{"UnknownField", map[string]any{"nam": "x"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := e.subEnv(t)
				status, res := e.gql(bearer(jwt), gqlCreateMutation, map[string]any{"input": tc.input})
				if len(res.Errors) == 0 || res.Data["createApiKey"] != nil {
					t.Fatalf("%d %+v, want an error and no key", status, res)
				}
				if status != http.StatusOK && (status < 400 || status > 499) {
					t.Errorf("status %d", status)
				}
			})
		}
		e.wantKeysHeld(jwt, 0)
	})
}

// TestGraphQLKeyLimit: createApiKey refuses the key beyond MAX_KEYS_PER_USER.
func TestGraphQLKeyLimit(t *testing.T) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			e := newEnv(t, db, func(c *config.Config) { c.MaxKeysPerUser = 2 })
			jwt := e.token("hoarder")
			first, _ := e.gqlCreate(jwt, nil)
			e.gqlCreate(jwt, map[string]any{"expiresAt": time.Now().Add(time.Hour).Format(time.RFC3339)})
			status, res := e.gql(bearer(jwt), gqlCreateMutation, map[string]any{"input": map[string]any{"name": "third"}})
			wantGQLError(t, status, res, "KEY_LIMIT_REACHED")
			e.wantKeysHeld(jwt, 2)

			// The limit is per user; revoking frees a place.
			e.gqlCreate(e.token("someone else"), nil)
			if status, res := e.gql(bearer(jwt), gqlRevokeMutation, map[string]any{"id": first.ID}); status != 200 || len(res.Errors) > 0 {
				t.Fatalf("revoke: %d %+v", status, res)
			}
			e.gqlCreate(jwt, map[string]any{"name": "third"})
			e.wantKeysHeld(jwt, 2)
		})
	}
}

// TestGraphQLTransport: what reaches the executor, and how.
func TestGraphQLTransport(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		jwt := e.token("csrf-victim")
		mutation := `mutation { createApiKey(input: {name: "forged"}) { key } }`

		t.Run("GETQuery", func(t *testing.T) {
			e := e.subEnv(t)
			for _, path := range []string{
				"/graphql?query={viewer{userId}}",
				"/graphql?query=" + url.QueryEscape(`query Me { viewer { userId } }`) + "&operationName=Me",
			} {
				res := e.do("GET", path, bearer(jwt), nil)
				if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `{"data":{"viewer":{"userId":"csrf-victim"}}}`) {
					t.Errorf("GET %s: %d %s", path, res.Status, res.Body)
				}
			}
		})

		t.Run("GETMutationRefused", func(t *testing.T) {
			e := e.subEnv(t)
			for _, path := range []string{
				"/graphql?query=" + url.QueryEscape(mutation),
				"/graphql?query=" + url.QueryEscape(`query Q { viewer { userId } } `+strings.Replace(mutation, "mutation", "mutation M", 1)) + "&operationName=M",
			} {
				wantGQLRefused(t, e.do("GET", path, bearer(jwt), nil))
			}
			e.wantKeysHeld(jwt, 0)
		})

		// Each of these is a request a foreign web page can send without a
		// CORS preflight (or a body type apikeyd does not speak).
		body := gqlBody(mutation)
		for _, tc := range []struct{ name, contentType, body string }{
			{"TextPlain", "text/plain", body},
			{"TextPlainCharset", "text/plain;charset=UTF-8", body},
			{"FormURLEncoded", "application/x-www-form-urlencoded", "query=" + url.QueryEscape(mutation)},
			{"FormURLEncodedJSON", "application/x-www-form-urlencoded", body},
			{"Multipart", "multipart/form-data; boundary=b0undary",
				"--b0undary\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n" + body + "\r\n--b0undary\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{}\r\n--b0undary--\r\n"},
			{"NoContentType", "", body},
			{"ApplicationGraphQL", "application/graphql", mutation},
			{"JSONLookalike", "application/jsonx", body},
		} {
			t.Run("POST"+tc.name+"Refused", func(t *testing.T) {
				e := e.subEnv(t)
				h := bearer(jwt)
				if tc.contentType != "" {
					h.Set("Content-Type", tc.contentType)
				}
				wantGQLRefused(t, e.sendRaw(rawRequest{Method: "POST", Path: "/graphql", Header: h, Body: tc.body}))
				e.wantKeysHeld(jwt, 0)
			})
		}

		t.Run("BatchRefused", func(t *testing.T) {
			e := e.subEnv(t)
			for _, b := range []string{
				"[" + body + "," + body + "]",
				"[" + body + "]",
				" \n[" + gqlBody(`{ viewer { userId } }`) + "," + body + "]",
			} {
				res, _ := e.gqlRaw(bearer(jwt), b)
				wantGQLRefused(t, res)
			}
			e.wantKeysHeld(jwt, 0)
		})

		t.Run("JSONWithCharsetAccepted", func(t *testing.T) {
			e := e.subEnv(t)
			victim := e.token("charset")
			res := e.sendRaw(rawRequest{Method: "POST", Path: "/graphql", Header: hdr("Authorization", "Bearer "+victim, "Content-Type", "application/json; charset=utf-8"), Body: body})
			if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"key":"atiru_`) {
				t.Fatalf("%d %s", res.Status, res.Body)
			}
			e.wantKeysHeld(victim, 1)
		})

		t.Run("BodyCap", func(t *testing.T) {
			e := e.subEnv(t)
			owner := e.token("big-bodies")
			// Padding after the JSON object makes the body exactly n bytes.
			bodyOf := func(n int) string { return body + strings.Repeat(" ", n-len(body)) }
			res, out := e.gqlRaw(bearer(owner), bodyOf(gqlBodyMax))
			if res.Status != http.StatusOK || len(out.Errors) > 0 {
				t.Fatalf("a body of exactly 64 KiB: %d %s", res.Status, res.Body)
			}
			e.wantKeysHeld(owner, 1)
			res, out = e.gqlRaw(bearer(owner), bodyOf(gqlBodyMax+1))
			if res.Status != http.StatusRequestEntityTooLarge || len(out.Errors) != 1 || out.codes()[0] != "PAYLOAD_TOO_LARGE" {
				t.Fatalf("a body of 64 KiB + 1: %d %s", res.Status, res.Body)
			}
			res, _ = e.gqlRaw(bearer(owner), bodyOf(1<<20))
			if res.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("a body of 1 MiB: %d", res.Status)
			}
			e.wantKeysHeld(owner, 1)
		})

		for _, method := range []string{"PUT", "DELETE", "PATCH"} {
			t.Run(method+"NotAllowed", func(t *testing.T) {
				e := e.subEnv(t)
				res := e.do(method, "/graphql", bearer(jwt), &body)
				wantGQLRequestError(t, res, 405, "METHOD_NOT_ALLOWED")
				allow := res.Header.Get("Allow")
				if !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") || strings.Contains(allow, method) {
					t.Errorf("Allow %q", allow)
				}
				e.wantKeysHeld(jwt, 0)
			})
		}
	})
}

// nestOfType nests n ofType selections around leaf.
func nestOfType(n int, leaf string) string {
	return strings.Repeat("ofType { ", n) + leaf + strings.Repeat(" }", n)
}

// aliased selects sel n times under distinct aliases.
func aliased(n int, sel string) string { return aliasedFrom(0, n, sel) }

// aliasedFrom is aliased with the aliases numbered from start, so that two
// runs in one selection set do not collide.
func aliasedFrom(start, n int, sel string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "a%d: %s ", start+i, sel)
	}
	return b.String()
}

// standardIntrospectionQuery is graphql-js's getIntrospectionQuery (v16) with every
// option on (descriptions, specifiedByURL, directive isRepeatable, schema
// description, input value deprecation, oneOf): what GraphiQL and most tools
// send. typeRefDepth is how many ofType levels TypeRef nests (graphql-js 16:
// 7; graphql-js 17: 9).
func standardIntrospectionQuery(typeRefDepth int) string {
	var typeRef strings.Builder
	typeRef.WriteString("kind\n  name\n")
	for range typeRefDepth {
		typeRef.WriteString("  ofType {\n    kind\n    name\n")
	}
	typeRef.WriteString(strings.Repeat("  }\n", typeRefDepth))
	return `
    query IntrospectionQuery {
      __schema {
        description
        queryType { name kind }
        mutationType { name kind }
        subscriptionType { name kind }
        types {
          ...FullType
        }
        directives {
          name
          description
          isRepeatable
          locations
          args(includeDeprecated: true) {
            ...InputValue
          }
        }
      }
    }

    fragment FullType on __Type {
      kind
      name
      description
      specifiedByURL
      isOneOf
      fields(includeDeprecated: true) {
        name
        description
        args(includeDeprecated: true) {
          ...InputValue
        }
        type {
          ...TypeRef
        }
        isDeprecated
        deprecationReason
      }
      inputFields(includeDeprecated: true) {
        ...InputValue
      }
      interfaces {
        ...TypeRef
      }
      enumValues(includeDeprecated: true) {
        name
        description
        isDeprecated
        deprecationReason
      }
      possibleTypes {
        ...TypeRef
      }
    }

    fragment InputValue on __InputValue {
      name
      description
      type { ...TypeRef }
      defaultValue
      isDeprecated
      deprecationReason
    }

    fragment TypeRef on __Type {
  ` + typeRef.String() + `}
  `
}

// TestGraphQLLimits: depth, complexity and parser tokens are limited, and the
// standard introspection query fits.
func TestGraphQLLimits(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		jwt := e.token("limits")
		deepAt := func(depth int) string { // __schema types fields type + ofType… + name
			return `{ __schema { types { fields { type { ` + nestOfType(depth-5, "name") + ` } } } } }`
		}

		for _, tc := range []struct {
			name, query string
			ok          bool
		}{
			{"Depth15", deepAt(gqlMaxDepth), true},
			{"Depth16", deepAt(gqlMaxDepth + 1), false},
			{"Depth40", deepAt(40), false},
			{"Depth16ThroughFragment", `query { __schema { types { fields { type { ...Deep } } } } }
				fragment Deep on __Type { ` + nestOfType(gqlMaxDepth-4, "name") + ` }`, false},
			{"Depth16ThroughNestedFragments", `query { __schema { ...S } }
				fragment S on __Schema { types { fields { type { ...T } } } }
				fragment T on __Type { ofType { ...U } }
				fragment U on __Type { ` + nestOfType(gqlMaxDepth-5, "name") + ` }`, false},
			{"Depth16ThroughInlineFragment", `{ __schema { types { fields { type { ... on __Type { ` + nestOfType(gqlMaxDepth-4, "name") + ` } } } } } }`, false},
			{"Depth16UnderTypeName", `{ __type(name: "Query") { fields { type { ` + nestOfType(gqlMaxDepth-3, "name") + ` } } } }`, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := e.subEnv(t)
				res, out := e.gqlRaw(bearer(jwt), gqlBody(tc.query))
				if tc.ok {
					if res.Status != http.StatusOK || len(out.Errors) > 0 || out.Data["__schema"] == nil {
						t.Fatalf("%d %s", res.Status, res.Body)
					}
					return
				}
				if len(out.Errors) == 0 || out.Data["__schema"] != nil || out.Data["__type"] != nil {
					t.Fatalf("not refused: %d %.300s", res.Status, res.Body)
				}
				if !slices.Contains(out.codes(), "DEPTH_LIMIT_EXCEEDED") {
					t.Errorf("refused with %v %v, want DEPTH_LIMIT_EXCEEDED", out.codes(), out.messages())
				}
			})
		}

		// Each field counts 1, nested ones and aliased ones included:
		// viewer { userId } costs 2.
		for _, tc := range []struct {
			name, query string
			ok          bool
		}{
			{"Complexity1000", "{ " + aliased(500, "viewer { userId }") + "}", true},
			{"Complexity1001", "{ " + aliased(499, "viewer { userId }") + "last: viewer { userId authMethod } }", false},
			{"Complexity1001Aliases", "{ " + aliased(1001, "viewer { userId }") + "}", false},
			{"Complexity1001ThroughFragments", "{ ...V ...V } fragment V on Query { " + aliased(250, "viewer { userId }") + "x: viewer { userId } }", false},
			{"ComplexityMutations", "mutation { " + aliased(501, "createApiKey { key }") + "}", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := e.subEnv(t)
				res, out := e.gqlRaw(bearer(jwt), gqlBody(tc.query))
				if tc.ok {
					if res.Status != http.StatusOK || len(out.Errors) > 0 || len(out.Data) != 500 {
						t.Fatalf("%d %.300s", res.Status, res.Body)
					}
					return
				}
				if len(out.Errors) == 0 || len(out.Data) != 0 {
					t.Fatalf("not refused: %d %.300s", res.Status, res.Body)
				}
				if !slices.Contains(out.codes(), "COMPLEXITY_LIMIT_EXCEEDED") {
					t.Errorf("refused with %v %v, want COMPLEXITY_LIMIT_EXCEEDED", out.codes(), out.messages())
				}
			})
		}
		e.wantKeysHeld(jwt, 0)

		// n aliased __typename selections are 3n+2 tokens: the query of
		// 10,001 tokens is refused by the parser, the one of 9,998 only
		// later, for its complexity.
		t.Run("Tokens", func(t *testing.T) {
			e := e.subEnv(t)
			res, out := e.gqlRaw(bearer(jwt), gqlBody("{ "+aliased(3333, "__typename")+"}"))
			// A parse error: 200 under application/json (GraphQL over HTTP).
			if len(out.Errors) != 1 || res.Status != http.StatusOK || !strings.Contains(out.Errors[0].Message, "token limit") {
				t.Fatalf("10,001 tokens: %d %.300s", res.Status, res.Body)
			}
			_, out = e.gqlRaw(bearer(jwt), gqlBody("{ "+aliased(3332, "__typename")+"}"))
			if len(out.Errors) == 0 || strings.Contains(out.Errors[0].Message, "token limit") {
				t.Fatalf("9,998 tokens: refused for its tokens: %v", out.messages())
			}
			// A small query still runs after the refusals.
			if status, out := e.gql(bearer(jwt), `{ viewer { userId } }`, nil); status != 200 || len(out.Errors) > 0 {
				t.Fatalf("%d %+v", status, out)
			}
		})

		for _, depth := range []int{7, 9} {
			t.Run(fmt.Sprintf("StandardIntrospectionQueryTypeRef%d", depth), func(t *testing.T) {
				e := e.subEnv(t)
				for _, h := range []http.Header{nil, bearer(jwt)} {
					b, _ := json.Marshal(map[string]any{"query": standardIntrospectionQuery(depth), "operationName": "IntrospectionQuery"})
					res, out := e.gqlRaw(h, string(b))
					if res.Status != http.StatusOK || len(out.Errors) > 0 {
						t.Fatalf("%d %.500s", res.Status, res.Body)
					}
					var schema struct {
						QueryType    struct{ Name string } `json:"queryType"`
						MutationType struct{ Name string } `json:"mutationType"`
						Types        []struct {
							Name   string
							Fields []struct {
								Name string
								Type struct {
									Kind   string
									OfType struct {
										Kind   string
										OfType struct {
											Kind   string
											OfType struct{ Kind, Name string }
										}
									}
								}
							}
						}
					}
					out.decodeField(t, "__schema", &schema)
					if schema.QueryType.Name != "Query" || schema.MutationType.Name != "Mutation" {
						t.Errorf("root types %+v %+v", schema.QueryType, schema.MutationType)
					}
					found := false
					for _, ty := range schema.Types {
						for _, f := range ty.Fields {
							if ty.Name == "Query" && f.Name == "apiKeys" {
								found = true
								tr := f.Type // [ApiKey!]!
								if tr.Kind != "NON_NULL" || tr.OfType.Kind != "LIST" || tr.OfType.OfType.Kind != "NON_NULL" || tr.OfType.OfType.OfType.Name != "ApiKey" {
									t.Errorf("Query.apiKeys has type %+v", tr)
								}
							}
						}
					}
					if !found {
						t.Error("the schema has no Query.apiKeys")
					}
				}
			})
		}
	})
}

// TestGraphQLIntrospection: on by default with the playground and field
// suggestions; GRAPHQL_INTROSPECTION=false switches all three off.
func TestGraphQLIntrospection(t *testing.T) {
	suggestions := []struct{ name, query, suggestion string }{
		{"Field", `{ apiKeyz { id } }`, `Did you mean "apiKeys"?`},
		{"NestedField", `{ viewer { userld } }`, `Did you mean "userId"?`},
		{"Argument", `mutation { revokeApiKey(idd: "x") { id } }`, `Did you mean "id"?`},
		{"InputField", `mutation { createApiKey(input: {nam: "x"}) { key } }`, `Did you mean "name"?`},
	}
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("Introspection=%v", on), func(t *testing.T) {
			for _, db := range dbtest.Names {
				t.Run(db, func(t *testing.T) {
					e := newEnv(t, db, func(c *config.Config) { c.Introspection = on })
					jwt := e.token("introspector")

					for _, q := range []string{
						`{ __schema { queryType { name } } }`,
						`{ __type(name: "ApiKey") { name } }`,
						`{ viewer { userId } ...Sneaky } fragment Sneaky on Query { ... on Query { __type(name: "ApiKey") { name } } }`,
					} {
						for _, h := range []http.Header{nil, bearer(jwt)} {
							res, out := e.gqlRaw(h, gqlBody(q))
							if on {
								if res.Status != http.StatusOK || len(out.Errors) > 0 || !strings.Contains(string(res.Body), `"name":`) {
									t.Errorf("%s: %d %s", q, res.Status, res.Body)
								}
								continue
							}
							if len(out.Errors) == 0 || out.Data["__schema"] != nil || out.Data["__type"] != nil || strings.Contains(string(res.Body), "ApiKey\"") {
								t.Errorf("%s not refused: %d %s", q, res.Status, res.Body)
							}
							if slices.Contains(out.codes(), "INTERNAL") || !strings.Contains(out.Errors[0].Message, "introspection") {
								t.Errorf("%s: refused with %s, want a message saying introspection is off (and no internal error)", q, res.Body)
							}
						}
					}
					// __typename is not introspection.
					if status, out := e.gql(nil, `{ __typename }`, nil); status != http.StatusOK || out.Data["__typename"] != "Query" {
						t.Errorf("__typename: %d %+v", status, out)
					}

					res := e.do("GET", "/playground", nil, nil)
					if on {
						if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(res.Body), "/graphql") {
							t.Errorf("playground: %d %q %.200s", res.Status, res.Header.Get("Content-Type"), res.Body)
						}
					} else {
						wantError(t, res, 404, "NOT_FOUND")
					}

					for _, s := range suggestions {
						status, out := e.gql(bearer(jwt), s.query, nil)
						if len(out.Errors) == 0 || status == http.StatusOK && len(out.Data) > 0 {
							t.Errorf("%s: not refused: %d %+v", s.name, status, out)
							continue
						}
						msgs := strings.Join(out.messages(), "\n")
						if got := strings.Contains(msgs, s.suggestion); got != on {
							t.Errorf("%s suggestion present = %v, want %v: %s", s.name, got, on, msgs)
						}
						if !on && strings.Contains(msgs, "Did you mean") {
							t.Errorf("%s: a suggestion reveals the schema: %s", s.name, msgs)
						}
					}
				})
			}
		})
	}
}

// TestGraphQLErrorsHideInternals: database failures and panics reach the
// client as a code and a plain message, nothing more.
func TestGraphQLErrorsHideInternals(t *testing.T) {
	leaks := func(t *testing.T, body []byte, forbidden ...string) {
		t.Helper()
		for _, s := range append(forbidden, "dial", "connect", "refused", "goroutine", "runtime", ".go:") {
			if strings.Contains(strings.ToLower(string(body)), strings.ToLower(s)) {
				t.Errorf("the answer reveals %q: %s", s, body)
			}
		}
	}

	// The SQLite database's directory is there when the server starts
	// (it holds the file's lock beside it) and gone when requests come.
	gone := filepath.Join(t.TempDir(), "missing", "dir")
	for _, tc := range []struct{ name, dsn string }{
		{"PostgresUnreachable", "postgres://postgres:pw-should-not-leak@127.0.0.1:1/x?sslmode=disable"},
		{"SQLiteUnreachable", "file:" + filepath.Join(gone, "apikeyd.db")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.MkdirAll(gone, 0o700); err != nil {
				t.Fatal(err)
			}
			e := newEnvDSN(t, tc.dsn, func(c *config.Config) { c.Migrate = false })
			if err := os.RemoveAll(gone); err != nil {
				t.Fatal(err)
			}
			e.remember("pw-should-not-leak")
			jwt := e.token("stranded")
			for _, op := range []struct{ name, query string }{
				{"apiKeys", gqlListQuery},
				{"createApiKey", `mutation { createApiKey { key } }`},
				{"revokeApiKey", `mutation { revokeApiKey(id: "0190a5e5-7c1e-7d3a-8c5e-2b9f4e6a1d20") { id } }`},
			} {
				res, out := e.gqlRaw(bearer(jwt), gqlBody(op.query))
				wantGQLError(t, res.Status, out, "SERVER_BUSY")
				leaks(t, res.Body, tc.dsn, "127.0.0.1:1", "pw-should-not-leak", "missing/dir", "sqlite", "postgres")
			}
			// An API key cannot be checked either: viewer says so.
			key := apikey.NewFormat(apikey.DefaultPrefix).Generate()
			res, out := e.gqlRaw(bearer(key), gqlBody(gqlViewerQuery))
			wantGQLError(t, res.Status, out, "SERVER_BUSY")
			leaks(t, res.Body, tc.dsn, "127.0.0.1:1")
		})
	}

	t.Run("Unmigrated", func(t *testing.T) {
		for _, db := range dbtest.Names {
			t.Run(db, func(t *testing.T) {
				e := newEnv(t, db, func(c *config.Config) { c.Migrate = false })
				res, out := e.gqlRaw(bearer(e.token("early")), gqlBody(gqlListQuery))
				if msg := wantGQLError(t, res.Status, out, "INTERNAL"); msg != "internal error" {
					t.Errorf("message %q, want \"internal error\"", msg)
				}
				leaks(t, res.Body, "api_keys", "table", "relation", "SQL", "exist")
			})
		}
	})

	t.Run("PanicRecovered", func(t *testing.T) {
		e := newPanickingEnv(t)
		jwt := e.token("unlucky")
		res, out := e.gqlRaw(bearer(jwt), gqlBody(`{ apiKeys { id } viewer { userId } }`))
		if res.Status != http.StatusOK || len(out.Errors) != 1 || out.codes()[0] != "INTERNAL" || out.Errors[0].Message != "internal error" {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		leaks(t, res.Body, "store exploded", "detail-4711", "panic")
		if !strings.Contains(e.Logs.String(), "detail-4711") {
			t.Error("the panic was not logged")
		}
		// The server lives on.
		if status, out := e.gql(bearer(jwt), `{ viewer { userId } }`, nil); status != http.StatusOK || len(out.Errors) > 0 {
			t.Fatalf("after the panic: %d %+v", status, out)
		}
	})
}

// panickingStore is a Store whose every listing panics.
type panickingStore struct{ apikey.Store }

func (panickingStore) ListKeys(context.Context, apikey.Owner) ([]apikey.APIKey, error) {
	panic("store exploded: detail-4711")
}

// newPanickingEnv is apikeyd on SQLite whose key listings panic.
func newPanickingEnv(t *testing.T) *testEnv {
	return newEnvStore(t, dbtest.DSN(t, "sqlite"), func(st apikey.Store) apikey.Store { return panickingStore{st} })
}
