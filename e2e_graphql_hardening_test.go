package main

import (
	"encoding/json"
	"testing"
)

// Hostile input at the GraphQL endpoint (SECURITY.md, "GraphQL"): each
// refusal has a stable code, reveals nothing of the implementation, and
// changes nothing.

// TestGraphQLStrictStrings: a String input takes a JSON string and nothing
// else, as REST's name does.
func TestGraphQLStrictStrings(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("strict")
		for _, tc := range []struct {
			name string
			v    any
		}{
			{"Integer", 42},
			{"Float", 4.2},
			{"HugeNumber", json.Number("1e400")},
			{"NegativeZero", json.Number("-0")},
		} {
			t.Run("Name"+tc.name, func(t *testing.T) {
				e := e.subEnv(t)
				status, res := e.gql(bearer(tok), gqlCreateMutation, map[string]any{"input": map[string]any{"name": tc.v}})
				wantGQLError(t, status, res, "INVALID_REQUEST")
			})
		}
		// Any String argument, not only the key name.
		t.Run("IntrospectionArgument", func(t *testing.T) {
			e := e.subEnv(t)
			status, res := e.gql(bearer(tok), `query($n: String!) { __type(name: $n) { name } }`, map[string]any{"n": 7})
			wantGQLError(t, status, res, "INVALID_REQUEST")
		})
		// Wrongly typed values that never reach the scalar are refused by
		// validation, as before.
		for _, v := range []any{true, []any{"a"}, map[string]any{"a": "b"}} {
			status, res := e.gql(bearer(tok), gqlCreateMutation, map[string]any{"input": map[string]any{"name": v}})
			if len(res.Errors) == 0 || res.Data["createApiKey"] != nil || status >= 500 {
				t.Errorf("name %v: %d %+v", v, status, res)
			}
		}
		e.wantKeysHeld(tok, 0)
		// A string still works.
		if k, _ := e.gqlCreate(tok, map[string]any{"name": "42"}); k.Name == nil || *k.Name != "42" {
			t.Fatalf("name %v", strOrNil(k.Name))
		}
	})
}
