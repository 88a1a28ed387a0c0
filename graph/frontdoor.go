package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// frontDoor checks a request against the two transports apikeyd speaks
// (GraphQL over HTTP: POST with a JSON object, GET for queries) before gqlgen
// sees it, and refuses anything else with a coded GraphQL error:
//
//   - POST whose Content-Type is not application/json: 415
//     UNSUPPORTED_MEDIA_TYPE (a form or text/plain POST is what a foreign
//     page can send without a CORS preflight);
//   - a POST body over the cap: 413 PAYLOAD_TOO_LARGE;
//   - a POST body that is not exactly one JSON object in valid UTF-8 with a
//     string "query", an optional string "operationName" and optional object
//     "variables" and "extensions", each at most once: 400 INVALID_REQUEST.
//     A JSON array (a batch) is one of these, and so is an object without
//     "query";
//   - GET without a query parameter, or whose variables or extensions are
//     not JSON objects: 400 INVALID_REQUEST;
//   - GET whose selected operation is a mutation: 405 with Allow: POST;
//   - a protocol upgrade (websocket): 400 INVALID_REQUEST.
//
// gqlgen's own answers to these would name its Go types and echo the body.
// HEAD is served as GET without a body. Each refusal is in the media type
// the request's Accept chose, like every answer of the endpoint.
func frontDoor(l Limits, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			writeErrors(w, r, http.StatusBadRequest, apperr.InvalidRequest, "protocol upgrades (websocket) are not supported: use POST or GET")
			return
		}
		switch r.Method {
		case http.MethodHead:
			r = r.Clone(r.Context())
			r.Method = http.MethodGet
			fallthrough
		case http.MethodGet:
			if err := checkGET(r.URL.Query(), l.ParserTokens); err != nil {
				if apperr.CodeOf(err) == apperr.MethodNotAllowed {
					w.Header().Set("Allow", "POST")
					writeErrors(w, r, http.StatusMethodNotAllowed, apperr.MethodNotAllowed, apperr.MessageOf(err))
					return
				}
				writeErrors(w, r, http.StatusBadRequest, apperr.CodeOf(err), apperr.MessageOf(err))
				return
			}
		case http.MethodPost:
			if !httpx.IsJSON(r.Header.Get("Content-Type")) {
				writeErrors(w, r, http.StatusUnsupportedMediaType, apperr.UnsupportedMediaType, "the request body must be application/json")
				return
			}
			b, err := httpx.ReadBody(w, r, l.BodyBytes)
			if err == nil {
				err = checkPOSTBody(b)
			}
			if err != nil {
				code := apperr.CodeOf(err)
				writeErrors(w, r, httpx.Status(code), code, apperr.MessageOf(err))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			writeErrors(w, r, http.StatusMethodNotAllowed, apperr.MethodNotAllowed, "use POST, or GET for queries")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkPOSTBody checks that b is a GraphQL-over-HTTP request object, with
// the strict decoder of every JSON body (one object, valid UTF-8, no duplicate
// members, nothing after it). Returns INVALID_REQUEST, with a message that
// never quotes b, otherwise.
func checkPOSTBody(b []byte) error {
	hasQuery := false
	err := httpx.DecodeObject(b, func(name string, dec *json.Decoder) error {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return apperr.New(apperr.InvalidRequest, "request body is not valid JSON")
		}
		hasQuery = hasQuery || name == "query"
		return checkMember(name, v)
	})
	if err == nil && !hasQuery {
		err = apperr.New(apperr.InvalidRequest, "the request has no query")
	}
	return err
}

// checkMember checks the type of one known member of a request object;
// others are ignored, as GraphQL over HTTP says.
func checkMember(name string, v json.RawMessage) error {
	kind := v[0] // Decode succeeded: v is one value without leading space
	switch name {
	case "query":
		if kind != '"' {
			return apperr.New(apperr.InvalidRequest, "query must be a string")
		}
	case "operationName":
		if kind != '"' && kind != 'n' {
			return apperr.New(apperr.InvalidRequest, "operationName must be a string or null")
		}
	case "variables", "extensions":
		if kind != '{' && kind != 'n' {
			return apperr.Errorf(apperr.InvalidRequest, "%s must be an object or null", name)
		}
	}
	return nil
}

// checkGET checks the parameters of a GET request: there is a query;
// variables and extensions, when present, are JSON objects; and the operation to run is not a
// mutation (METHOD_NOT_ALLOWED: GET must not change anything). A query that
// does not parse is left to the executor, which explains why.
func checkGET(q url.Values, tokenLimit int) error {
	if !q.Has("query") {
		return apperr.New(apperr.InvalidRequest, "the request has no query parameter")
	}
	for _, name := range []string{"variables", "extensions"} {
		if v := q.Get(name); v != "" {
			var m map[string]any
			if !utf8.ValidString(v) || json.Unmarshal([]byte(v), &m) != nil {
				return apperr.Errorf(apperr.InvalidRequest, "%s must be a JSON object", name)
			}
		}
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: q.Get("query")}, tokenLimit)
	if err != nil {
		return nil
	}
	var op *ast.OperationDefinition
	if name := q.Get("operationName"); name != "" {
		op = doc.Operations.ForName(name)
	} else if len(doc.Operations) == 1 {
		op = doc.Operations[0]
	}
	if op != nil && op.Operation != ast.Query {
		return apperr.New(apperr.MethodNotAllowed, "GET runs queries only: send mutations with POST")
	}
	return nil
}
