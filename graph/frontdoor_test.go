package graph

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// TestReadRequest: the front door decodes a request once, into the
// parameters the executor runs: exact member names, numbers kept as
// json.Number, null as absent, unknown members ignored; GET alike. (What it
// refuses is TestGraphQLFrontDoor's, over a real listener.)
func TestReadRequest(t *testing.T) {
	vars := map[string]any{"n": json.Number("9007199254740993"), "s": "x", "o": map[string]any{"f": json.Number("1.5")}}
	for _, c := range []struct {
		name string
		req  *http.Request
		want graphql.RawParams
	}{
		{"POST", post(`{"query":"query Q($n: Int) { viewer { userId } }","operationName":"Q","variables":{"n":9007199254740993,"s":"x","o":{"f":1.5}},"extensions":{"e":true},"QUERY":"ignored","x":[1]}`),
			graphql.RawParams{Query: "query Q($n: Int) { viewer { userId } }", OperationName: "Q", Variables: vars, Extensions: map[string]any{"e": true}}},
		{"POSTNulls", post(` {"operationName":null,"variables":null,"extensions":null,"query":"{ viewer { userId } }"} `),
			graphql.RawParams{Query: "{ viewer { userId } }"}},
		{"GET", httptest.NewRequest("GET", "/graphql?"+url.Values{
			"query": {"query Q($n: Int) { viewer { userId } }"}, "operationName": {"Q"},
			"variables": {`{"n":9007199254740993,"s":"x","o":{"f":1.5}}`}, "extensions": {`{"e":true}`},
		}.Encode(), nil), graphql.RawParams{Query: "query Q($n: Int) { viewer { userId } }", OperationName: "Q", Variables: vars, Extensions: map[string]any{"e": true}}},
		{"HEADNullVariables", httptest.NewRequest("HEAD", "/graphql?query=%7B+viewer+%7B+userId+%7D+%7D&variables=null", nil),
			graphql.RawParams{Query: "{ viewer { userId } }"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := readRequest(httptest.NewRecorder(), c.req, Limits{BodyBytes: 1 << 10, ParserTokens: 100})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("got %#v\nwant %#v", *got, c.want)
			}
		})
	}
	// One JSON value per GET parameter, as in a body: nothing after it.
	for _, v := range []string{`{} {}`, `{}x`, `[]`, `"x"`} {
		r := httptest.NewRequest("GET", "/graphql?"+url.Values{"query": {"{ viewer { userId } }"}, "variables": {v}}.Encode(), nil)
		if _, err := readRequest(httptest.NewRecorder(), r, Limits{ParserTokens: 100}); apperr.CodeOf(err) != apperr.InvalidRequest {
			t.Errorf("variables=%s: %v, want INVALID_REQUEST", v, err)
		}
	}
}

func post(body string) *http.Request {
	r := httptest.NewRequest("POST", "/graphql", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}
