package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// readRequest is the front door of the endpoint: it checks r against the
// two transports apikeyd speaks (GraphQL over HTTP: POST with a JSON
// object, GET for queries) and decodes its parameters, once. It refuses
// anything else with a coded error, whose HTTP status is httpx.Status's:
//
//   - POST whose Content-Type is not application/json: UNSUPPORTED_MEDIA_TYPE
//     (a form or text/plain POST is what a foreign page can send without a
//     CORS preflight);
//   - a POST body over the cap: PAYLOAD_TOO_LARGE;
//   - a POST body that is not exactly one JSON object in valid UTF-8 with a
//     string "query", an optional string "operationName" and optional object
//     "variables" and "extensions", each at most once: INVALID_REQUEST.
//     A JSON array (a batch) is one of these, and so is an object without
//     "query";
//   - GET without a query parameter, or whose variables or extensions are
//     not JSON objects: INVALID_REQUEST;
//   - GET whose selected operation is a mutation: METHOD_NOT_ALLOWED, with
//     Allow: POST set on w;
//   - another method: METHOD_NOT_ALLOWED, with Allow set on w;
//   - a protocol upgrade (websocket): INVALID_REQUEST.
//
// gqlgen's own answers to these would name its Go types and echo the body.
// HEAD is read as GET (net/http sends no body).
func readRequest(w http.ResponseWriter, r *http.Request, l Limits) (*graphql.RawParams, error) {
	if r.Header.Get("Upgrade") != "" {
		return nil, apperr.New(apperr.InvalidRequest, "protocol upgrades (websocket) are not supported: use POST or GET")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p, err := readGET(r.URL.Query(), l.ParserTokens)
		if apperr.CodeOf(err) == apperr.MethodNotAllowed {
			w.Header().Set("Allow", "POST")
		}
		return p, err
	case http.MethodPost:
		if !httpx.IsJSON(r.Header.Get("Content-Type")) {
			return nil, apperr.New(apperr.UnsupportedMediaType, "the request body must be application/json")
		}
		b, err := httpx.ReadBody(w, r, l.BodyBytes)
		if err != nil {
			return nil, err
		}
		return decodePOST(b)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		return nil, apperr.New(apperr.MethodNotAllowed, "use POST, or GET for queries")
	}
}

var errNotJSON = apperr.New(apperr.InvalidRequest, "request body is not valid JSON")

// decodePOST decodes b as a GraphQL-over-HTTP request object, with the
// strict decoder of every JSON body (one object, valid UTF-8, no duplicate
// members, nothing after it). Members by their exact names: encoding/json
// would also fill Query from "QUERY". Returns INVALID_REQUEST, with a
// message that never quotes b, otherwise.
func decodePOST(b []byte) (*graphql.RawParams, error) {
	p := &graphql.RawParams{}
	hasQuery := false
	err := httpx.DecodeObject(b, func(name string, dec *json.Decoder) error {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return errNotJSON
		}
		kind := v[0] // Decode succeeded: v is one value without leading space
		var dst any
		switch name { // others are ignored, as GraphQL over HTTP says
		case "query":
			if kind != '"' {
				return apperr.New(apperr.InvalidRequest, "query must be a string")
			}
			hasQuery, dst = true, &p.Query
		case "operationName":
			if kind != '"' && kind != 'n' {
				return apperr.New(apperr.InvalidRequest, "operationName must be a string or null")
			}
			dst = &p.OperationName
		case "variables", "extensions":
			if kind != '{' && kind != 'n' {
				return apperr.Errorf(apperr.InvalidRequest, "%s must be an object or null", name)
			}
			dst = &p.Variables
			if name == "extensions" {
				dst = &p.Extensions
			}
		default:
			return nil
		}
		if decodeJSON(v, dst) != nil {
			return errNotJSON
		}
		return nil
	})
	if err == nil && !hasQuery {
		err = apperr.New(apperr.InvalidRequest, "the request has no query")
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// readGET reads the parameters of a GET request: there is a query;
// variables and extensions, when present, are JSON objects; and the
// operation to run is not a mutation (METHOD_NOT_ALLOWED: GET must not
// change anything). A query that does not parse is left to the executor,
// which explains why.
func readGET(q url.Values, tokenLimit int) (*graphql.RawParams, error) {
	if !q.Has("query") {
		return nil, apperr.New(apperr.InvalidRequest, "the request has no query parameter")
	}
	p := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName")}
	for _, m := range []struct {
		name string
		dst  *map[string]any
	}{{"variables", &p.Variables}, {"extensions", &p.Extensions}} {
		if v := q.Get(m.name); v != "" {
			if !utf8.ValidString(v) || decodeJSON([]byte(v), m.dst) != nil {
				return nil, apperr.Errorf(apperr.InvalidRequest, "%s must be a JSON object", m.name)
			}
		}
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, tokenLimit)
	if err != nil {
		return p, nil
	}
	var op *ast.OperationDefinition
	if p.OperationName != "" {
		op = doc.Operations.ForName(p.OperationName)
	} else if len(doc.Operations) == 1 {
		op = doc.Operations[0]
	}
	if op != nil && op.Operation != ast.Query {
		return nil, apperr.New(apperr.MethodNotAllowed, "GET runs queries only: send mutations with POST")
	}
	return p, nil
}

// decodeJSON decodes b, which must be exactly one JSON value, into v
// keeping numbers as json.Number, as gqlgen's transports do, so that an Int
// variable is not rounded through float64.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}
