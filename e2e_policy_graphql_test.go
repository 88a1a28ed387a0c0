package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// gqlPolicyFields selects a key's usage policy.
const gqlPolicyFields = `id name enabled rateLimit { limit periodSeconds }
  credits { remaining refill { amount interval dayOfMonth } } allowedIps meta`

const (
	gqlCreatePolicy = `mutation($input: CreateApiKeyInput) {
  createApiKey(input: $input) { key apiKey { ` + gqlPolicyFields + ` } }
}`
	gqlUpdatePolicy = `mutation($id: ID!, $input: UpdateApiKeyInput!) {
  updateApiKey(id: $id, input: $input) { ` + gqlPolicyFields + ` }
}`
	gqlListPolicy = `{ apiKeys { ` + gqlPolicyFields + ` } }`
)

// TestGraphQLPolicy: createApiKey and updateApiKey set a key's usage policy
// (see docs/graphql.md): every field as given, listed the same, credits
// beyond Int's 32 bits exact; in an update a field left out is left alone
// and a null clears; bad input is INVALID_REQUEST and changes nothing.
func TestGraphQLPolicy(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		policy := func(res gqlResponse, field string) map[string]any {
			t.Helper()
			if len(res.Errors) != 0 {
				t.Fatalf("%s: %+v", field, res.Errors)
			}
			k := res.Data[field].(map[string]any)
			if field == "createApiKey" {
				e.remember(k["key"].(string))
				k = k["apiKey"].(map[string]any)
			}
			return k
		}
		// want checks the policy fields of k (numbers as JSON decodes them).
		want := func(what string, k map[string]any, fields map[string]any) {
			t.Helper()
			for f, v := range fields {
				if got := k[f]; !reflect.DeepEqual(got, v) {
					t.Errorf("%s: %s is %#v, want %#v", what, f, got, v)
				}
			}
		}
		jsonOf := func(s string) any {
			var v any
			if err := json.Unmarshal([]byte(s), &v); err != nil {
				t.Fatal(err)
			}
			return v
		}

		_, res := e.gql(bearer(tok), gqlCreatePolicy, map[string]any{"input": map[string]any{"name": "plain"}})
		plain := policy(res, "createApiKey")
		want("a key without a policy", plain, map[string]any{
			"enabled": true, "rateLimit": nil, "credits": nil, "allowedIps": nil, "meta": nil,
		})

		full := map[string]any{
			"name":       "metered",
			"rateLimit":  map[string]any{"limit": 100, "periodSeconds": 60},
			"credits":    map[string]any{"remaining": json.Number("1000000000000"), "refill": map[string]any{"amount": 5000, "interval": "month", "dayOfMonth": 31}},
			"allowedIps": []string{"10.1.2.3", "2001:db8::/32", "::ffff:192.0.2.1", "10.0.0.0/8"},
			"meta":       `{ "plan": "pro", "customer": 42 }`,
		}
		_, res = e.gql(bearer(tok), gqlCreatePolicy, map[string]any{"input": full})
		k := policy(res, "createApiKey")
		fullWant := map[string]any{
			"rateLimit":  map[string]any{"limit": 100.0, "periodSeconds": 60.0},
			"credits":    map[string]any{"remaining": 1e12, "refill": map[string]any{"amount": 5000.0, "interval": "month", "dayOfMonth": 31.0}},
			"allowedIps": []any{"10.1.2.3/32", "2001:db8::/32", "192.0.2.1/32", "10.0.0.0/8"},
		}
		want("created", k, fullWant)
		want("created", k, map[string]any{"enabled": true})
		if m, _ := k["meta"].(string); !reflect.DeepEqual(jsonOf(m), map[string]any{"plan": "pro", "customer": 42.0}) {
			t.Errorf("created: meta is %q", k["meta"])
		}
		id := k["id"].(string)
		listed := func() map[string]any {
			t.Helper()
			_, res := e.gql(bearer(tok), gqlListPolicy, nil)
			if len(res.Errors) != 0 {
				t.Fatalf("apiKeys: %+v", res.Errors)
			}
			for _, k := range res.Data["apiKeys"].([]any) {
				if k := k.(map[string]any); k["id"] == id {
					return k
				}
			}
			t.Fatalf("key %s not listed", id)
			return nil
		}
		want("listed", listed(), fullWant)

		t.Run("UpdateLeavesOutLeavesAlone", func(t *testing.T) {
			_, res := e.gql(bearer(tok), gqlUpdatePolicy, map[string]any{"id": id, "input": map[string]any{"enabled": false}})
			k := policy(res, "updateApiKey")
			want("disabled", k, fullWant)
			want("disabled", k, map[string]any{"enabled": false, "name": "metered"})
			if k["meta"] == nil {
				t.Error("disabling cleared meta")
			}
			want("listed", listed(), map[string]any{"enabled": false})

			_, res = e.gql(bearer(tok), gqlUpdatePolicy, map[string]any{"id": id, "input": map[string]any{"enabled": true, "name": "renamed"}})
			want("enabled again", policy(res, "updateApiKey"), map[string]any{"enabled": true, "name": "renamed", "rateLimit": fullWant["rateLimit"]})
		})

		t.Run("UpdateNullClears", func(t *testing.T) {
			_, res := e.gql(bearer(tok), gqlUpdatePolicy, map[string]any{"id": id, "input": map[string]any{"rateLimit": nil, "allowedIps": nil}})
			k := policy(res, "updateApiKey")
			want("cleared", k, map[string]any{"rateLimit": nil, "allowedIps": nil, "credits": fullWant["credits"], "name": "renamed"})

			_, res = e.gql(bearer(tok), gqlUpdatePolicy, map[string]any{"id": id, "input": map[string]any{
				"credits": map[string]any{"remaining": 7, "refill": map[string]any{"amount": 10, "interval": "day"}},
				"meta":    nil,
			}})
			k = policy(res, "updateApiKey")
			want("credits set", k, map[string]any{
				"credits": map[string]any{"remaining": 7.0, "refill": map[string]any{"amount": 10.0, "interval": "day", "dayOfMonth": nil}},
				"meta":    nil,
			})

			_, res = e.gql(bearer(tok), gqlUpdatePolicy, map[string]any{"id": id, "input": map[string]any{
				"credits": map[string]any{"remaining": 7, "refill": map[string]any{"amount": 10, "interval": "month"}},
			}})
			want("monthly on no day", policy(res, "updateApiKey"), map[string]any{
				"credits": map[string]any{"remaining": 7.0, "refill": map[string]any{"amount": 10.0, "interval": "month", "dayOfMonth": 1.0}},
			})

			_, res = e.gql(bearer(tok), gqlUpdatePolicy, map[string]any{"id": id, "input": map[string]any{"credits": nil, "name": nil}})
			want("unlimited", policy(res, "updateApiKey"), map[string]any{"credits": nil, "name": nil, "enabled": true})
			want("listed", listed(), map[string]any{"credits": nil, "rateLimit": nil, "allowedIps": nil, "meta": nil, "enabled": true})
		})

		t.Run("BadInput", func(t *testing.T) {
			before := listed()
			credits := func(remaining any) map[string]any {
				return map[string]any{"credits": map[string]any{"remaining": remaining}}
			}
			for name, c := range map[string]struct {
				input map[string]any
				code  string
			}{
				"MetaNotJSON":       {map[string]any{"meta": "{plan: pro}"}, "INVALID_REQUEST"},
				"MetaNotAnObject":   {map[string]any{"meta": `["pro"]`}, "INVALID_REQUEST"},
				"MetaTooLarge":      {map[string]any{"meta": `{"a": "` + strings.Repeat("x", 4096) + `"}`}, "INVALID_REQUEST"},
				"CreditsAsString":   {credits("12"), "INVALID_REQUEST"},
				"CreditsFraction":   {credits(1.5), "INVALID_REQUEST"},
				"CreditsOverMax":    {credits(json.Number("1000000000001")), "INVALID_REQUEST"},
				"CreditsNotSafe":    {credits(json.Number("9007199254740992")), "INVALID_REQUEST"},
				"CreditsNegative":   {credits(-1), "INVALID_REQUEST"},
				"RateLimitZero":     {map[string]any{"rateLimit": map[string]any{"limit": 0, "periodSeconds": 60}}, "INVALID_REQUEST"},
				"PeriodOverADay":    {map[string]any{"rateLimit": map[string]any{"limit": 1, "periodSeconds": 86401}}, "INVALID_REQUEST"},
				"BadCIDR":           {map[string]any{"allowedIps": []string{"10.0.0.0/33"}}, "INVALID_REQUEST"},
				"TooManyAddresses":  {map[string]any{"allowedIps": slices.Repeat([]string{"10.0.0.1"}, 51)}, "INVALID_REQUEST"},
				"DayOfDailyRefill":  {map[string]any{"credits": map[string]any{"remaining": 1, "refill": map[string]any{"amount": 1, "interval": "day", "dayOfMonth": 2}}}, "INVALID_REQUEST"},
				"NoAddresses":       {map[string]any{"allowedIps": []string{}}, "INVALID_REQUEST"},
				"RefillBadDay":      {map[string]any{"credits": map[string]any{"remaining": 1, "refill": map[string]any{"amount": 1, "interval": "month", "dayOfMonth": 32}}}, "INVALID_REQUEST"},
				"RefillZeroAmount":  {map[string]any{"credits": map[string]any{"remaining": 1, "refill": map[string]any{"amount": 0, "interval": "day"}}}, "INVALID_REQUEST"},
				"RefillUnknown":     {map[string]any{"credits": map[string]any{"remaining": 1, "refill": map[string]any{"amount": 1, "interval": "week"}}}, "GRAPHQL_VALIDATION_FAILED"},
				"EnabledNotBoolean": {map[string]any{"enabled": "yes"}, "GRAPHQL_VALIDATION_FAILED"},
			} {
				t.Run(name, func(t *testing.T) {
					_, res := e.gql(bearer(tok), gqlCreatePolicy, map[string]any{"input": c.input})
					if !slices.Equal(res.codes(), []string{c.code}) {
						t.Errorf("create: codes %v (%v)", res.codes(), res.messages())
					}
					_, res = e.gql(bearer(tok), gqlUpdatePolicy, map[string]any{"id": id, "input": c.input})
					if !slices.Equal(res.codes(), []string{c.code}) {
						t.Errorf("update: codes %v (%v)", res.codes(), res.messages())
					}
				})
			}
			t.Run("EnabledNull", func(t *testing.T) {
				_, res := e.gql(bearer(tok), gqlUpdatePolicy, map[string]any{"id": id, "input": map[string]any{"enabled": nil}})
				if !slices.Equal(res.codes(), []string{"INVALID_REQUEST"}) {
					t.Errorf("codes %v", res.codes())
				}
			})
			if after := listed(); !reflect.DeepEqual(after, before) {
				t.Errorf("bad input changed the key: %+v, was %+v", after, before)
			}
			if n := len(e.gqlList(tok)); n != 2 {
				t.Errorf("%d keys after bad input, want the 2 made before", n)
			}
		})

		t.Run("DocumentedExample", func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join("docs", "graphql.md"))
			if err != nil {
				t.Fatal(err)
			}
			_, section, _ := strings.Cut(string(doc), "## Usage policy")
			_, example, _ := strings.Cut(section, "```graphql\n")
			example, _, ok := strings.Cut(example, "```")
			if !ok {
				t.Fatal("no GraphQL example under Usage policy in docs/graphql.md")
			}
			_, res := e.gql(bearer(tok), example, nil)
			k := policy(res, "createApiKey")
			want("the documented example", k, map[string]any{
				"enabled": true, "rateLimit": map[string]any{"limit": 100.0, "periodSeconds": 60.0},
				"credits": map[string]any{"remaining": 10000.0}, "allowedIps": []any{"10.0.0.0/8", "2001:db8::1/128"},
				"meta": `{"plan":"pro"}`,
			})
		})

		t.Run("ForAnotherUserNotFound", func(t *testing.T) {
			_, res := e.gql(bearer(e.token("mallory")), gqlUpdatePolicy, map[string]any{"id": id, "input": map[string]any{"enabled": false}})
			if !slices.Equal(res.codes(), []string{"NOT_FOUND"}) {
				t.Errorf("codes %v", res.codes())
			}
			want("untouched", listed(), map[string]any{"enabled": true})
		})
	})
}

// TestGraphQLDisabledKey: a key disabled through GraphQL is refused by
// verification with KEY_DISABLED, and works again once enabled.
func TestGraphQLDisabledKey(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		_, res := e.gql(bearer(tok), gqlCreatePolicy, map[string]any{"input": map[string]any{"enabled": false}})
		if len(res.Errors) != 0 {
			t.Fatalf("create: %+v", res.Errors)
		}
		created := res.Data["createApiKey"].(map[string]any)
		key, id := created["key"].(string), created["apiKey"].(map[string]any)["id"]
		e.remember(key)
		wantError(t, e.do("GET", "/auth/verify", hdr("X-Api-Key", key), nil), http.StatusForbidden, "KEY_DISABLED")

		_, res = e.gql(bearer(tok), gqlUpdatePolicy, map[string]any{"id": id, "input": map[string]any{"enabled": true}})
		if len(res.Errors) != 0 {
			t.Fatalf("enable: %+v", res.Errors)
		}
		if s := e.verifyKey(key); s != http.StatusOK {
			t.Fatalf("verify once enabled: %d", s)
		}
	})
}
