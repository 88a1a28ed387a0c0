package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// The two media types a GraphQL response may take (GraphQL over HTTP,
// "Accept").
const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

// responseMediaType picks the media type of the answer to r from its Accept
// header: the supported type with the highest q-value, the earlier one on a
// tie; */* and application/* mean application/json. No Accept header, or one
// that names neither type, gets application/json: GraphQL over HTTP lets a
// server disregard an Accept it cannot meet and answer with the default
// rather than 406.
func responseMediaType(r *http.Request) string {
	best, bestQ := mediaJSON, 0.0
	for _, accept := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(accept, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 || q > 1 {
					continue
				}
			}
			var t string
			switch mt {
			case mediaGraphQLResponse:
				t = mediaGraphQLResponse
			case mediaJSON, "application/*", "*/*":
				t = mediaJSON
			default:
				continue
			}
			if q > bestQ {
				best, bestQ = t, q
			}
		}
	}
	return best
}

// httpTransport runs the requests frontDoor let through: POST with a JSON
// object, and GET (HEAD arrives as GET) for queries. It differs from gqlgen's
// transport.POST and transport.GET in what GraphQL over HTTP asks of a
// request error, one raised before execution (a document that does not
// parse or validate, variables that fail coercion, an operation over a
// limit):
//
//   - the answer has no data member, whatever the media type (gqlgen's
//     carries "data": null);
//   - application/json answers 200 (gqlgen: 422 for parse and validation
//     errors); application/graphql-response+json answers 400 (gqlgen: 200
//     for an error of an extension whose code it does not know, such as
//     the depth and mutation limits).
//
// Every answer is in the media type Accept chose (responseMediaType).
type httpTransport struct{}

var _ graphql.Transport = httpTransport{}

func (httpTransport) Supports(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Method == http.MethodPost
}

func (httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	start := graphql.Now()
	params, err := requestParams(r)
	if err != nil { // frontDoor checked the request: this is a bug
		WriteError(w, r, http.StatusBadRequest, err)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	media := responseMediaType(r)
	w.Header().Set("Content-Type", media)

	oc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		status := http.StatusOK
		if media == mediaGraphQLResponse {
			status = http.StatusBadRequest
		}
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, oc), errs)
		writeResponse(w, status, &requestError{Errors: resp.Errors, Extensions: resp.Extensions})
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	writeResponse(w, http.StatusOK, responses(ctx))
}

// requestError is the answer to a request error: a graphql.Response without
// its data member.
type requestError struct {
	Errors     gqlerror.List  `json:"errors"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// requestParams reads the parameters of a GET or POST request that
// frontDoor has checked.
func requestParams(r *http.Request) (*graphql.RawParams, error) {
	p := &graphql.RawParams{}
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		p.Query, p.OperationName = q.Get("query"), q.Get("operationName")
		for name, dst := range map[string]*map[string]any{"variables": &p.Variables, "extensions": &p.Extensions} {
			if v := q.Get(name); v != "" {
				if err := decodeJSON([]byte(v), dst); err != nil {
					return nil, apperr.Errorf(apperr.InvalidRequest, "%s must be a JSON object", name)
				}
			}
		}
		return p, nil
	}
	// Members by their exact names: encoding/json would also fill Query
	// from "QUERY", a member frontDoor let through as unknown.
	var members map[string]json.RawMessage
	b, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(b, &members)
	}
	for name, dst := range map[string]any{"query": &p.Query, "operationName": &p.OperationName, "variables": &p.Variables, "extensions": &p.Extensions} {
		if v, ok := members[name]; ok && err == nil {
			err = decodeJSON(v, dst)
		}
	}
	if err != nil {
		return nil, apperr.New(apperr.InvalidRequest, "request body is not a GraphQL request")
	}
	return p, nil
}

// decodeJSON decodes b into v keeping numbers as json.Number, as gqlgen's
// transports do, so that an Int variable is not rounded through float64.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// writeResponse writes v as the JSON body of an answer with status; the
// Content-Type is already set.
func writeResponse(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
