package main

import (
	"net/http"
	"slices"
	"testing"
)

// TestGraphQLRollAndUpdate: rollApiKey and updateApiKey do what the REST
// routes do, with the same error codes.
func TestGraphQLRollAndUpdate(t *testing.T) {
	const roll = `mutation($id: ID!, $grace: Int) {
		rollApiKey(id: $id, gracePeriodSeconds: $grace) {
			apiKey { id name expiresAt replacedBy }
			key
			previous { id replacedBy expiresAt }
		}
	}`
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		old := e.create(tok, str(`{"name": "web"}`))

		for _, grace := range []int{-1, 604801, 1 << 40} {
			_, res := e.gql(bearer(tok), roll, map[string]any{"id": old.ID, "grace": grace})
			if !slices.Equal(res.codes(), []string{"INVALID_REQUEST"}) {
				t.Fatalf("grace %d: codes %v", grace, res.codes())
			}
		}
		_, res := e.gql(hdr("X-Api-Key", old.Key), roll, map[string]any{"id": old.ID})
		if !slices.Equal(res.codes(), []string{"JWT_REQUIRED"}) {
			t.Fatalf("with an API key: codes %v", res.codes())
		}
		_, res = e.gql(bearer(e.token("mallory")), roll, map[string]any{"id": old.ID})
		if !slices.Equal(res.codes(), []string{"NOT_FOUND"}) {
			t.Fatalf("another user's key: codes %v", res.codes())
		}

		status, res := e.gql(bearer(tok), roll, map[string]any{"id": old.ID, "grace": 3600})
		if status != http.StatusOK || len(res.Errors) != 0 {
			t.Fatalf("roll: %d %+v", status, res.Errors)
		}
		p := res.Data["rollApiKey"].(map[string]any)
		next, prev := p["apiKey"].(map[string]any), p["previous"].(map[string]any)
		key, _ := p["key"].(string)
		e.remember(key)
		if next["name"] != "web" || next["replacedBy"] != nil || prev["id"] != old.ID || prev["replacedBy"] != next["id"] || prev["expiresAt"] == nil {
			t.Fatalf("roll payload: %+v", p)
		}
		for _, k := range []string{key, old.Key} {
			if s := e.verifyKey(k); s != http.StatusOK {
				t.Fatalf("verify during the grace: %d", s)
			}
		}
		_, res = e.gql(bearer(tok), `{ apiKeys { id replacedBy } }`, nil)
		listed := map[any]any{}
		for _, k := range res.Data["apiKeys"].([]any) {
			m := k.(map[string]any)
			listed[m["id"]] = m["replacedBy"]
		}
		if len(listed) != 2 || listed[old.ID] != next["id"] || listed[next["id"]] != nil {
			t.Fatalf("apiKeys: %+v", listed)
		}
		_, res = e.gql(bearer(tok), roll, map[string]any{"id": old.ID})
		if !slices.Equal(res.codes(), []string{"KEY_ALREADY_ROLLED"}) {
			t.Fatalf("second roll: codes %v", res.codes())
		}

		const update = `mutation($id: ID!, $input: UpdateApiKeyInput!) { updateApiKey(id: $id, input: $input) { id name } }`
		_, res = e.gql(bearer(tok), update, map[string]any{"id": next["id"], "input": map[string]any{"name": " renamed "}})
		if len(res.Errors) != 0 || res.Data["updateApiKey"].(map[string]any)["name"] != "renamed" {
			t.Fatalf("update: %+v %+v", res.Data, res.Errors)
		}
		_, res = e.gql(bearer(tok), update, map[string]any{"id": next["id"], "input": map[string]any{"expiresAt": nil}})
		if len(res.Errors) == 0 {
			t.Fatal("updateApiKey took a field other than name")
		}
		_, res = e.gql(bearer(tok), update, map[string]any{"id": next["id"], "input": map[string]any{"name": nil}})
		if len(res.Errors) != 0 || res.Data["updateApiKey"].(map[string]any)["name"] != nil {
			t.Fatalf("clearing the name: %+v %+v", res.Data, res.Errors)
		}
	})
}
