package graph

import (
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
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

// httpTransport is the endpoint's one transport: it reads every request
// (readRequest, which refuses what is not GraphQL over HTTP) and runs it.
// It differs from gqlgen's transport.POST and transport.GET in what GraphQL
// over HTTP asks of a request error, one raised before execution (a
// document that does not parse or validate, variables that fail coercion,
// an operation over a limit):
//
//   - the answer has no data member, whatever the media type (gqlgen's
//     carries "data": null);
//   - application/json answers 200 (gqlgen: 422 for parse and validation
//     errors); application/graphql-response+json answers 400 (gqlgen: 200
//     for an error of an extension whose code it does not know, such as
//     the depth and mutation limits).
//
// Every answer is in the media type Accept chose (responseMediaType).
type httpTransport struct{ limits Limits }

var _ graphql.Transport = httpTransport{}

// Supports takes every request: Do refuses, itself, what apikeyd does not
// speak, in the shape of every GraphQL error.
func (httpTransport) Supports(*http.Request) bool { return true }

func (t httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	start := graphql.Now()
	params, err := readRequest(w, r, t.limits)
	if err != nil {
		WriteError(w, r, httpx.Status(apperr.CodeOf(err)), err)
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
