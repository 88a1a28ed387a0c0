package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Hostile input at the GraphQL endpoint (SECURITY.md, "GraphQL"): each
// refusal has a stable code, reveals nothing of the implementation, and
// changes nothing.

// wantGQLRequestError checks a GraphQL request refused as a whole before it
// reached the executor: the status, one error with the code, no data, and
// nothing in the answer that names gqlgen's Go types or echoes the request.
func wantGQLRequestError(t testing.TB, res response, status int, code string, sent ...string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d; body %s", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(res.Body, &out); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", res.Body, err)
	}
	if _, ok := out["data"]; ok {
		t.Errorf("a refused request has data: %s", res.Body)
	}
	var g gqlResponse
	_ = json.Unmarshal(res.Body, &g)
	if len(g.Errors) != 1 || g.codes()[0] != code || g.Errors[0].Message == "" {
		t.Fatalf("errors %s, want one with code %s", res.Body, code)
	}
	for _, s := range append([]string{"graphql.", "RawParams", "json:", "Go value", "struct field"}, sent...) {
		if s != "" && strings.Contains(string(res.Body), s) {
			t.Errorf("the answer reveals %q: %s", s, res.Body)
		}
	}
}

// TestGraphQLStrictStrings: a String input takes a JSON string and nothing
// else, as REST's name does. A number in a variable fails the variable's
// coercion: a request error, before anything runs.
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
				wantGQLError(t, status, res, "GRAPHQL_VALIDATION_FAILED")
			})
		}
		// Any String argument, not only the key name.
		t.Run("IntrospectionArgument", func(t *testing.T) {
			e := e.subEnv(t)
			status, res := e.gql(bearer(tok), `query($n: String!) { __type(name: $n) { name } }`, map[string]any{"n": 7})
			wantGQLError(t, status, res, "GRAPHQL_VALIDATION_FAILED")
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

// TestGraphQLNoStore: GraphQL answers carry keys and depend on who asks:
// no cache may keep them, whatever the method or outcome.
func TestGraphQLNoStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	tok := e.token("cache")
	for _, c := range []struct {
		name, method, path string
		body               *string
	}{
		{"Create", "POST", "/graphql", str(gqlBody(`mutation { createApiKey { key } }`))},
		{"GETQuery", "GET", "/graphql?query=" + url.QueryEscape(`{ apiKeys { id } }`), nil},
		{"GETMutation", "GET", "/graphql?query=" + url.QueryEscape(`mutation { createApiKey { key } }`), nil},
		{"Refused", "POST", "/graphql", str(`[]`)},
		{"MethodNotAllowed", "PUT", "/graphql", nil},
	} {
		res := e.do(c.method, c.path, bearer(tok), c.body)
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: %d, Cache-Control %q, want no-store", c.name, res.Status, cc)
		}
	}
}

// TestGraphQLFrontDoor: what is not a GraphQL-over-HTTP request is refused
// before gqlgen parses it, with a coded error and no echo.
func TestGraphQLFrontDoor(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("front-door")
		const marker = "MARKER-7f3a"
		mutation := `mutation { createApiKey(input: {name: "` + marker + `"}) { key } }`
		body := gqlBody(mutation)

		t.Run("BadBodies", func(t *testing.T) {
			for _, tc := range []struct{ name, body string }{
				{"Batch", "[" + body + "," + body + "]"},
				{"BatchOfOne", "[" + body + "]"},
				{"BatchAfterWhitespace", " \n\t[" + body + "]"},
				{"Empty", ""},
				{"Whitespace", "  \n"},
				{"Truncated", `{"query":"` + marker},
				{"NotJSON", `query=` + marker},
				{"Null", `null`},
				{"String", `"` + marker + `"`},
				{"Number", `42`},
				{"QueryNumber", `{"query":42,"x":"` + marker + `"}`},
				{"QueryObject", `{"query":{"q":"` + marker + `"}}`},
				{"QueryNull", `{"query":null,"x":"` + marker + `"}`},
				{"OperationNameNumber", `{"query":"{ viewer { userId } }","operationName":1,"x":"` + marker + `"}`},
				{"VariablesString", `{"query":"{ viewer { userId } }","variables":"` + marker + `"}`},
				{"VariablesArray", `{"query":"{ viewer { userId } }","variables":["` + marker + `"]}`},
				{"ExtensionsNumber", `{"query":"{ viewer { userId } }","extensions":7,"x":"` + marker + `"}`},
				{"DuplicateQuery", `{"query":"{ viewer { userId } }","query":` + strings.TrimPrefix(body, `{"query":`)},
				{"TrailingObject", body + body},
				{"TrailingGarbage", body + marker},
				{"InvalidUTF8", `{"query":"{ viewer { userId } }","x":"` + marker + "\xff\xfe\"}"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := e.subEnv(t)
					res := e.sendRaw(rawRequest{Method: "POST", Path: "/graphql", Header: hdr("Authorization", "Bearer "+tok, "Content-Type", "application/json"), Body: tc.body})
					wantGQLRequestError(t, res, http.StatusBadRequest, "INVALID_REQUEST", marker)
					e.wantKeysHeld(tok, 0)
				})
			}
		})

		t.Run("MediaTypes", func(t *testing.T) {
			for _, ct := range []string{
				"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
				"multipart/form-data; boundary=b", "application/graphql", "application/jsonx",
				"text/json", "application/json-patch+json", "application/json; charset", "*/*",
			} {
				t.Run(ct, func(t *testing.T) {
					e := e.subEnv(t)
					h := bearer(tok)
					if ct != "" {
						h.Set("Content-Type", ct)
					}
					res := e.sendRaw(rawRequest{Method: "POST", Path: "/graphql", Header: h, Body: body})
					wantGQLRequestError(t, res, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", marker)
					e.wantKeysHeld(tok, 0)
				})
			}
		})

		t.Run("GETMutation", func(t *testing.T) {
			for _, tc := range []struct{ name, query string }{
				{"Anonymous", "query=" + url.QueryEscape(mutation)},
				{"Named", "query=" + url.QueryEscape(strings.Replace(mutation, "mutation", "mutation M", 1)) + "&operationName=M"},
				{"SelectedAmongQueries", "query=" + url.QueryEscape(`query Q { viewer { userId } } `+strings.Replace(mutation, "mutation", "mutation M", 1)) + "&operationName=M"},
			} {
				for _, method := range []string{"GET", "HEAD"} {
					t.Run(method+tc.name, func(t *testing.T) {
						e := e.subEnv(t)
						res := e.do(method, "/graphql?"+tc.query, bearer(tok), nil)
						if res.Status != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
							t.Fatalf("%d Allow %q, want 405 with Allow: POST; %s", res.Status, res.Header.Get("Allow"), res.Body)
						}
						if method == "GET" {
							wantGQLRequestError(t, res, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
						}
						e.wantKeysHeld(tok, 0)
					})
				}
			}
			// The query of a document that also holds a mutation runs.
			q := "query=" + url.QueryEscape(`query Q { viewer { userId } } mutation M { createApiKey { key } }`) + "&operationName=Q"
			if res := e.do("GET", "/graphql?"+q, bearer(tok), nil); res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"userId":"front-door"`) {
				t.Fatalf("GET query: %d %s", res.Status, res.Body)
			}
			e.wantKeysHeld(tok, 0)
		})

		t.Run("GETBadVariables", func(t *testing.T) {
			for _, v := range []string{marker, `"` + marker + `"`, `[1]`, `{"a":`} {
				q := "query=" + url.QueryEscape(`query($n: String!) { __type(name: $n) { name } }`) + "&variables=" + url.QueryEscape(v)
				wantGQLRequestError(t, e.do("GET", "/graphql?"+q, nil, nil), http.StatusBadRequest, "INVALID_REQUEST", marker)
			}
		})

		t.Run("HEADQuery", func(t *testing.T) {
			res := e.do("HEAD", "/graphql?query="+url.QueryEscape(`{ viewer { userId } }`), bearer(tok), nil)
			if res.Status != http.StatusOK || len(res.Body) != 0 {
				t.Fatalf("HEAD: %d %q", res.Status, res.Body)
			}
		})

		t.Run("WebSocketUpgrade", func(t *testing.T) {
			for _, method := range []string{"GET", "POST"} {
				h := hdr("Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13",
					"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol", "graphql-transport-ws",
					"Content-Type", "application/json", "Authorization", "Bearer "+tok)
				res := e.sendRaw(rawRequest{Method: method, Path: "/graphql?query=" + url.QueryEscape(`{ viewer { userId } }`), Header: h, Body: body})
				wantGQLRequestError(t, res, http.StatusBadRequest, "INVALID_REQUEST")
			}
			e.wantKeysHeld(tok, 0)
		})

		// A well-formed request still runs after all the refusals.
		if k, _ := e.gqlCreate(tok, map[string]any{"name": "after"}); k.Name == nil {
			t.Fatal("create after refusals")
		}
		e.wantKeysHeld(tok, 1)
	})
}
