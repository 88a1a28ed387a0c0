package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/httpx"
	"github.com/apikeyd/apikeyd/internal/org"
)

// Limits bound what one GraphQL request may ask for.
type Limits struct {
	Depth        int   // deepest selection; default 15
	Complexity   int   // fields selected, aliases included; default 1000
	ParserTokens int   // tokens in the query text; default 10,000
	BodyBytes    int64 // request body; default httpx.MaxBodyBytes, as REST
	Mutations    int   // mutation fields one request runs, aliases included; default 10
}

func (l *Limits) defaults() {
	if l.Depth <= 0 {
		l.Depth = 15
	}
	if l.Complexity <= 0 {
		l.Complexity = 1000
	}
	if l.ParserTokens <= 0 {
		l.ParserTokens = 10_000
	}
	if l.BodyBytes <= 0 {
		l.BodyBytes = httpx.MaxBodyBytes
	}
	if l.Mutations <= 0 {
		l.Mutations = 10
	}
}

// Options configures the GraphQL endpoint.
type Options struct {
	Keys          *apikey.Service
	Orgs          *org.Service   // the organisations
	Audit         *audit.Service // the audit log (auditEvents)
	Logger        *slog.Logger
	Introspection bool // introspection queries and field suggestions
	Limits        Limits
}

// NewHandler returns the GraphQL endpoint: POST with a JSON body, and GET for
// queries only (no websocket, no multipart, no batching), so no simple
// cross-site request can run an operation.
func NewHandler(o Options) http.Handler {
	o.Limits.defaults()
	srv := handler.New(NewExecutableSchema(Config{Resolvers: &Resolver{Keys: o.Keys, Orgs: o.Orgs, Audit: o.Audit}}))
	srv.AddTransport(httpTransport{limits: o.Limits})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	// A listing's keys read their usage together, once per request.
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		return next(apikey.WithUsageBatch(ctx))
	})
	srv.SetParserTokenLimit(o.Limits.ParserTokens)
	srv.Use(extension.FixedComplexityLimit(o.Limits.Complexity))
	srv.Use(depthLimit(o.Limits.Depth))
	srv.Use(mutationLimit(o.Limits.Mutations))
	srv.Use(&stringVariables{})
	if o.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(noIntrospection{})
		srv.SetValidationRulesFn(rulesWithoutSuggestions)
		srv.SetDisableSuggestion(true)
	}
	srv.SetErrorPresenter(errorPresenter(o.Logger))
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		o.Logger.ErrorContext(ctx, "panic in GraphQL resolver", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		return apperr.New(apperr.Internal, "internal error")
	})
	return srv
}

// errorPresenter gives every error a stable extensions.code: a domain error
// its own code and message; a malformed query gqlgen's own message; anything
// else "internal error", logged but never shown.
func errorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gerr := graphql.DefaultErrorPresenter(ctx, err)
		var ae *apperr.Error
		if errors.As(err, &ae) {
			httpx.LogFailure(ctx, log, "GraphQL request failed", ae.Code, err)
			gerr.Message = ae.Message
			gerr.Extensions = map[string]any{"code": string(ae.Code)}
			return gerr
		}
		var ge *gqlerror.Error
		if errors.As(err, &ge) && ge.Err == nil {
			return gerr // a parse or validation error: about the request itself
		}
		httpx.LogFailure(ctx, log, "GraphQL request failed", apperr.Internal, err)
		gerr.Message = "internal error"
		gerr.Extensions = map[string]any{"code": string(apperr.Internal)}
		return gerr
	}
}

// WriteError answers r with err as a GraphQL request error: status, and
// {"errors": [{"message", "extensions": {"code"}}]} with no data, in the media
// type that r's Accept chose. The message is err's coded message, or
// "internal error" for an uncoded error, which the caller logs.
func WriteError(w http.ResponseWriter, r *http.Request, status int, err error) {
	writeErrors(w, r, status, apperr.CodeOf(err), apperr.MessageOf(err))
}

// writeErrors answers a request that never reached the executor.
func writeErrors(w http.ResponseWriter, r *http.Request, status int, code apperr.Code, msg string) {
	w.Header().Set("Content-Type", responseMediaType(r))
	writeResponse(w, status, map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": string(code)}}},
	})
}
