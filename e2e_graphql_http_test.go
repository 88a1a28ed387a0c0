package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/testenv"
)

// GraphQL over HTTP, to the letter (docs/graphql.md): the media type of
// every answer follows Accept, and a request error (a document that does not
// parse or validate, variables that fail coercion, an operation over a
// limit) is 200 with errors under application/json, 400 under
// application/graphql-response+json, and never has a data member.

const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

// TestGraphQLOverHTTPAudit runs graphql-http's server audit (serverAudits,
// through web/e2e/graphql-http-audit.mjs) against a real apikeyd, without a
// credential and with a login token: every audit, MUST, SHOULD and MAY
// alike, must be ok.
//
// It needs node and web/e2e/node_modules (npm ci in web/e2e, which
// ./scripts/test runs); without them it skips, except under CI=true, where
// it fails.
func TestGraphQLOverHTTPAudit(t *testing.T) {
	node := auditTools(t)
	eachDB(t, func(t *testing.T, e *testEnv) {
		jwt := e.token("auditor")
		for _, tc := range []struct {
			name    string
			headers []string
		}{
			{"Anonymous", nil},
			{"LoginToken", []string{"Authorization: Bearer " + jwt}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
				defer cancel()
				args := append([]string{"graphql-http-audit.mjs", e.URL + "/graphql"}, tc.headers...)
				cmd := exec.CommandContext(ctx, node, args...)
				cmd.Dir = filepath.Join("web", "e2e")
				cmd.Env = append(os.Environ(), "NO_COLOR=1")
				cmd.WaitDelay = 10 * time.Second
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("the audit did not pass (%v):\n%s", err, out)
				}
				// The script exits 0 only when every audit is ok; check its
				// lines too, so that an audit that ran nothing cannot pass.
				if m := regexp.MustCompile(`(?m)^(\d+) audits: (\d+) ok, 0 not ok$`).FindSubmatch(out); m == nil || string(m[1]) != string(m[2]) || string(m[1]) == "0" {
					t.Fatalf("no summary of passed audits in:\n%s", out)
				}
				if bad := regexp.MustCompile(`(?m)^(ERROR|WARN|NOTICE) .*`).FindAll(out, -1); len(bad) > 0 {
					t.Fatalf("audits not ok:\n%s", out)
				}
				t.Logf("graphql-http audit:\n%s", out)
			})
		}
	})
}

// auditTools finds node and checks that graphql-http is installed in
// web/e2e, skipping the test (failing it under CI) when one is missing.
func auditTools(t *testing.T) (node string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "node not found", "install Node.js (apt-get install nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join("web", "e2e", "node_modules", "graphql-http", "package.json")); err != nil {
		testenv.Missing(t, "graphql-http is not installed in web/e2e", "run npm ci in web/e2e")
	}
	return node
}

// gqlAccept posts body to /graphql with Accept: accept (none when empty).
func (e *testEnv) gqlAccept(h http.Header, accept, body string) response {
	e.t.Helper()
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	if accept != "" {
		h.Set("Accept", accept)
	}
	return e.do("POST", "/graphql", h, &body)
}

// wantMediaType fails unless res is in media type mt.
func wantMediaType(t testing.TB, res response, mt string) {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != mt && !strings.HasPrefix(ct, mt+";") {
		t.Errorf("Content-Type %q, want %s", ct, mt)
	}
}

// wantRequestError checks the answer to a GraphQL request error: status,
// errors (one of them with code, when code is set) and no data member.
func wantRequestError(t testing.TB, res response, status int, code string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d; body %s", res.Status, status, res.Body)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(res.Body, &out); err != nil {
		t.Fatalf("body %q: %v", res.Body, err)
	}
	if _, ok := out["data"]; ok {
		t.Errorf("a request error has a data member: %s", res.Body)
	}
	var g gqlResponse
	_ = json.Unmarshal(res.Body, &g)
	if len(g.Errors) == 0 || g.Errors[0].Message == "" {
		t.Fatalf("no error in %s", res.Body)
	}
	if code != "" && !slices.Contains(g.codes(), code) {
		t.Errorf("codes %v, want %s; body %s", g.codes(), code, res.Body)
	}
}

// TestGraphQLResponseMediaType: Accept chooses the media type, and with it
// the status of a request error.
func TestGraphQLResponseMediaType(t *testing.T) {
	e := newEnv(t, "sqlite", func(c *config.Config) { c.MaxKeysPerUser = 100 })
	jwt := e.token("media")

	t.Run("Negotiation", func(t *testing.T) {
		e := e.subEnv(t)
		for _, tc := range []struct{ accept, want string }{
			{"", mediaJSON},
			{"application/json", mediaJSON},
			{"*/*", mediaJSON},
			{"application/*", mediaJSON},
			{"text/html, application/xhtml+xml, */*;q=0.8", mediaJSON},
			{"application/graphql-response+json", mediaGraphQLResponse},
			{"application/graphql-response+json, application/json;q=0.9", mediaGraphQLResponse},
			{"application/json;q=0.5, application/graphql-response+json", mediaGraphQLResponse},
			{"application/json, application/graphql-response+json", mediaJSON},
			{"application/graphql-response+json;q=0, */*", mediaJSON},
			{"text/html", mediaJSON}, // nothing supported: the default, not 406
			{"application/graphql-response+json;q=nonsense, application/json", mediaJSON},
		} {
			res := e.gqlAccept(bearer(jwt), tc.accept, gqlBody(`{ viewer { userId } }`))
			if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"userId":"media"`) {
				t.Errorf("Accept %q: %d %s", tc.accept, res.Status, res.Body)
			}
			wantMediaType(t, res, tc.want)
		}
	})

	// Each request error, under both media types.
	for _, tc := range []struct {
		name, body, code string
	}{
		{"ParseFailure", gqlBody(`{`), "GRAPHQL_PARSE_FAILED"},
		{"ValidationFailure", gqlBody(`{ noSuchField }`), "GRAPHQL_VALIDATION_FAILED"},
		{"UnknownOperationName", `{"query":"query A { viewer { userId } }","operationName":"B"}`, "GRAPHQL_VALIDATION_FAILED"},
		{"VariableCoercion", `{"query":"mutation R($id: ID!) { revokeApiKey(id: $id) { id } }","variables":{"id":null}}`, "GRAPHQL_VALIDATION_FAILED"},
		{"VariableWrongType", `{"query":"mutation C($input: CreateApiKeyInput) { createApiKey(input: $input) { key } }","variables":{"input":{"name":true}}}`, "GRAPHQL_VALIDATION_FAILED"},
		// A number is no String, at any depth: GraphQL's String input
		// coercion refuses it (an ID may be one).
		{"VariableNumberAsString", `{"query":"mutation C($input: CreateApiKeyInput) { createApiKey(input: $input) { key } }","variables":{"input":{"name":42}}}`, "GRAPHQL_VALIDATION_FAILED"},
		{"VariableNumberInStringList", `{"query":"mutation C($input: CreateApiKeyInput) { createApiKey(input: $input) { key } }","variables":{"input":{"scopes":["reports:read",7]}}}`, "GRAPHQL_VALIDATION_FAILED"},
		{"VariableNumberAsStringArgument", `{"query":"query A($after: String) { auditEvents(after: $after) { pageInfo { hasNextPage } } }","variables":{"after":5}}`, "GRAPHQL_VALIDATION_FAILED"},
		{"VariableNumberAsStringItem", `{"query":"mutation C($scopes: [String!]) { createApiKey(input: {scopes: $scopes}) { key } }","variables":{"scopes":1}}`, "GRAPHQL_VALIDATION_FAILED"},
		{"TokenLimit", gqlBody("{ " + aliased(3334, "__typename") + "}"), "GRAPHQL_PARSE_FAILED"},
		{"DepthLimit", gqlBody(`{ __schema { types { fields { type { ` + nestOfType(gqlMaxDepth-4, "name") + ` } } } } }`), "DEPTH_LIMIT_EXCEEDED"},
		{"ComplexityLimit", gqlBody("{ " + aliased(1001, "__typename") + "}"), "COMPLEXITY_LIMIT_EXCEEDED"},
		{"MutationLimit", gqlBody("mutation { " + aliased(11, "createApiKey { key }") + "}"), "MUTATION_LIMIT_EXCEEDED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.subEnv(t)
			for _, accept := range []string{"", mediaJSON, "*/*"} {
				res := e.gqlAccept(bearer(jwt), accept, tc.body)
				wantRequestError(t, res, http.StatusOK, tc.code)
				wantMediaType(t, res, mediaJSON)
			}
			res := e.gqlAccept(bearer(jwt), mediaGraphQLResponse, tc.body)
			wantRequestError(t, res, http.StatusBadRequest, tc.code)
			wantMediaType(t, res, mediaGraphQLResponse)
			e.wantKeysHeld(jwt, 0)
		})
	}

	// A field error is not a request error: 200 with data under both.
	t.Run("FieldErrorIs200", func(t *testing.T) {
		e := e.subEnv(t)
		for _, accept := range []string{mediaJSON, mediaGraphQLResponse} {
			res := e.gqlAccept(nil, accept, gqlBody(`{ apiKeys { id } }`))
			if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"MISSING_AUTH"`) || !strings.Contains(string(res.Body), `"data":`) {
				t.Errorf("Accept %s: %d %s", accept, res.Status, res.Body)
			}
			wantMediaType(t, res, accept)
		}
	})

	// Requests that are not GraphQL-over-HTTP requests at all are 4xx under
	// both media types, in the media type asked for.
	t.Run("MalformedRequests", func(t *testing.T) {
		e := e.subEnv(t)
		for _, tc := range []struct {
			name, contentType, body, code string
			status                        int
		}{
			{"NotJSON", "application/json", `{ "not a JSON`, "INVALID_REQUEST", 400},
			{"NoBody", "application/json", ``, "INVALID_REQUEST", 400},
			{"NoQuery", "application/json", `{"qeury":"{ __typename }"}`, "INVALID_REQUEST", 400},
			{"QueryInOtherCase", "application/json", `{"QUERY":"{ __typename }"}`, "INVALID_REQUEST", 400},
			{"QueryNotString", "application/json", `{"query":0}`, "INVALID_REQUEST", 400},
			{"Batch", "application/json", `[` + gqlBody(`{ __typename }`) + `]`, "INVALID_REQUEST", 400},
			{"TextPlain", "text/plain", gqlBody(`{ __typename }`), "UNSUPPORTED_MEDIA_TYPE", 415},
		} {
			for _, accept := range []string{"", mediaJSON, mediaGraphQLResponse} {
				h := hdr("Content-Type", tc.contentType)
				if accept != "" {
					h.Set("Accept", accept)
				}
				res := e.sendRaw(rawRequest{Method: "POST", Path: "/graphql", Header: h, Body: tc.body})
				t.Run(tc.name+"Accept"+map[string]string{"": "None", mediaJSON: "JSON", mediaGraphQLResponse: "GraphQLResponse"}[accept], func(t *testing.T) {
					wantRequestError(t, res, tc.status, tc.code)
					wantMediaType(t, res, map[string]string{"": mediaJSON, mediaJSON: mediaJSON, mediaGraphQLResponse: mediaGraphQLResponse}[accept])
				})
			}
		}
	})

	t.Run("GET", func(t *testing.T) {
		e := e.subEnv(t)
		get := func(accept string, q url.Values) response {
			h := bearer(jwt)
			if accept != "" {
				h.Set("Accept", accept)
			}
			return e.do("GET", "/graphql?"+q.Encode(), h, nil)
		}
		ok := url.Values{"query": {`query T($n: String!) { __type(name: $n) { name } viewer { userId } }`}, "variables": {`{"n":"ApiKey"}`}}
		for _, accept := range []string{mediaJSON, mediaGraphQLResponse} {
			res := get(accept, ok)
			if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `{"data":{"__type":{"name":"ApiKey"},"viewer":{"userId":"media"}}}`) {
				t.Errorf("Accept %s: %d %s", accept, res.Status, res.Body)
			}
			wantMediaType(t, res, accept)
		}
		parse := url.Values{"query": {`{`}}
		wantRequestError(t, get(mediaJSON, parse), http.StatusOK, "GRAPHQL_PARSE_FAILED")
		wantRequestError(t, get(mediaGraphQLResponse, parse), http.StatusBadRequest, "GRAPHQL_PARSE_FAILED")
		wantRequestError(t, get(mediaJSON, url.Values{}), http.StatusBadRequest, "INVALID_REQUEST")
		res := get(mediaGraphQLResponse, url.Values{"query": {`mutation { createApiKey { key } }`}})
		wantRequestError(t, res, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		wantMediaType(t, res, mediaGraphQLResponse)
		e.wantKeysHeld(jwt, 0)
	})
}

// TestGraphQLMutationLimit: one request runs at most 10 mutation fields,
// aliases and fragments included; more is refused before any runs.
func TestGraphQLMutationLimit(t *testing.T) {
	eachDBWith(t, func(c *config.Config) { c.MaxKeysPerUser = 500 }, func(t *testing.T, e *testEnv) {
		const create = `createApiKey(input: {name: "batch"}) { key }`
		creates := func(n int) string { return aliased(n, create) }
		for _, tc := range []struct {
			name, query string
		}{
			{"Aliases11", "mutation { " + creates(11) + "}"},
			{"Aliases200", "mutation { " + creates(200) + "}"},
			{"Fragment", "mutation { ...Many } fragment Many on Mutation { " + creates(11) + "}"},
			{"FragmentsAndInline", "mutation { ...Six ... on Mutation { ...Five } } fragment Six on Mutation { " + creates(6) + "} fragment Five on Mutation { " + aliasedFrom(100, 5, create) + "}"},
			{"Mixed", `mutation { ` + creates(10) + ` r: revokeApiKey(id: "00000000-0000-0000-0000-000000000000") { id } }`},
		} {
			t.Run(tc.name+"Refused", func(t *testing.T) {
				e := e.subEnv(t)
				jwt := e.token("limit-" + tc.name)
				res, out := e.gqlRaw(bearer(jwt), gqlBody(tc.query))
				wantRequestError(t, res, http.StatusOK, "MUTATION_LIMIT_EXCEEDED")
				if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Message, "limit of 10") {
					t.Errorf("errors %v, want one naming the limit", out.messages())
				}
				e.wantKeysHeld(jwt, 0)
			})
		}

		t.Run("TenRun", func(t *testing.T) {
			e := e.subEnv(t)
			jwt := e.token("limit-ten")
			query := "mutation { ...Seven " + aliasedFrom(100, 3, create) + " __typename } fragment Seven on Mutation { " + creates(7) + "}"
			res, out := e.gqlRaw(bearer(jwt), gqlBody(query))
			if res.Status != http.StatusOK || len(out.Errors) > 0 || len(out.Data) != 11 {
				t.Fatalf("%d %.500s", res.Status, res.Body)
			}
			for k, v := range out.Data {
				if m, ok := v.(map[string]any); ok {
					key, _ := m["key"].(string)
					e.remember(key)
					e.remember(hashOf(key))
				} else if k != "__typename" {
					t.Errorf("data.%s = %v", k, v)
				}
			}
			e.wantKeysHeld(jwt, 10)
		})

		// Queries are not mutations: their size is the complexity limit's.
		t.Run("QueriesUnaffected", func(t *testing.T) {
			e := e.subEnv(t)
			status, out := e.gql(bearer(e.token("limit-query")), "{ "+aliased(50, "viewer { userId }")+"}", nil)
			if status != http.StatusOK || len(out.Errors) > 0 || len(out.Data) != 50 {
				t.Fatalf("%d %+v", status, out.Errors)
			}
		})
	})
}

// wantGQLShape checks an error answer of /graphql refused before GraphQL
// ran: status, the GraphQL error shape with code and no data, in media type
// mt; none of REST's error members.
func wantGQLShape(t testing.TB, res response, status int, code, mt string) {
	t.Helper()
	wantRequestError(t, res, status, code)
	wantMediaType(t, res, mt)
	var out map[string]json.RawMessage
	_ = json.Unmarshal(res.Body, &out)
	if len(out) != 1 {
		t.Errorf("members beyond errors: %s", res.Body)
	}
}

// TestGraphQLErrorShape: every refusal on /graphql, even one made before the
// request reaches the GraphQL handler, is in the GraphQL error shape; the
// REST routes keep theirs.
func TestGraphQLErrorShape(t *testing.T) {
	t.Run("MethodNotAllowed", func(t *testing.T) {
		e := newEnv(t, "sqlite")
		jwt := e.token("shape")
		for _, method := range []string{"PUT", "DELETE", "PATCH", "OPTIONS"} {
			for _, accept := range []string{mediaJSON, mediaGraphQLResponse} {
				h := bearer(jwt)
				h.Set("Accept", accept)
				res := e.do(method, "/graphql", h, str(gqlBody(`mutation { createApiKey { key } }`)))
				t.Run(method+"Accept"+map[string]string{mediaJSON: "JSON", mediaGraphQLResponse: "GraphQLResponse"}[accept], func(t *testing.T) {
					wantGQLShape(t, res, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", accept)
					if allow := res.Header.Get("Allow"); allow != "GET, HEAD, POST" {
						t.Errorf("Allow %q", allow)
					}
				})
			}
		}
		e.wantKeysHeld(jwt, 0)
		// A REST route keeps the REST shape.
		wantError(t, e.do("PUT", "/auth/verify", nil, nil), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	})

	t.Run("RateLimited", func(t *testing.T) {
		const burst = 2
		e := newEnv(t, "sqlite", func(c *config.Config) { c.AuthFailBurst = burst })
		bad := bearer("not-a-token")
		// limited sends bad tokens to path until the address is refused,
		// failing the test if it never is: the burst is spent faster than it
		// refills (one a second).
		limited := func(send func() response) response {
			t.Helper()
			for range 4 * burst {
				if res := send(); res.Status == http.StatusTooManyRequests {
					return res
				}
			}
			t.Fatalf("not rate limited after %d bad tokens", 4*burst)
			return response{}
		}
		for _, accept := range []string{mediaJSON, mediaGraphQLResponse} {
			res := limited(func() response {
				h := bad.Clone()
				h.Set("Accept", accept)
				return e.do("POST", "/graphql", h, str(gqlBody(`{ viewer { userId } }`)))
			})
			wantGQLShape(t, res, http.StatusTooManyRequests, "RATE_LIMITED", accept)
			if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("Retry-After %q", res.Header.Get("Retry-After"))
			}
		}
		res := limited(func() response { return e.do("GET", "/graphql?query={__typename}", bad, nil) })
		wantGQLShape(t, res, http.StatusTooManyRequests, "RATE_LIMITED", mediaJSON)

		res = limited(func() response { return e.do("GET", "/auth/verify", bad, nil) })
		wantError(t, res, http.StatusTooManyRequests, "RATE_LIMITED")
		if res.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	})
}
