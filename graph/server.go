package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/httpx"
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
	srv := handler.New(NewExecutableSchema(Config{Resolvers: &Resolver{Keys: o.Keys, Audit: o.Audit}}))
	srv.AddTransport(httpTransport{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(o.Limits.ParserTokens)
	srv.Use(extension.FixedComplexityLimit(o.Limits.Complexity))
	srv.Use(depthLimit(o.Limits.Depth))
	srv.Use(mutationLimit(o.Limits.Mutations))
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
	return frontDoor(o.Limits, srv)
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

// noIntrospection refuses operations that select __schema or __type, before
// they run: without it gqlgen fails those fields at execution with an
// uncoded error, which would reach the client as an internal error.
type noIntrospection struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = noIntrospection{}

func (noIntrospection) ExtensionName() string                   { return "NoIntrospection" }
func (noIntrospection) Validate(graphql.ExecutableSchema) error { return nil }
func (noIntrospection) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation != nil && selectsIntrospection(oc.Operation.SelectionSet) {
		err := gqlerror.Errorf("introspection is disabled")
		errcode.Set(err, errcode.ValidationFailed)
		return err
	}
	return nil
}

// selectsIntrospection reports whether a root selection set selects
// __schema or __type, directly or through fragments.
func selectsIntrospection(set ast.SelectionSet) bool {
	found := false
	eachField(set, map[string]bool{}, func(f *ast.Field) {
		found = found || f.Name == "__schema" || f.Name == "__type"
	})
	return found
}

// eachField calls fn for each field that set selects at its own level,
// looking through inline fragments and fragment spreads. visiting holds the
// fragments being expanded on the current path, guarding against cycles
// (validation refuses them anyway).
func eachField(set ast.SelectionSet, visiting map[string]bool, fn func(*ast.Field)) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			fn(s)
		case *ast.InlineFragment:
			eachField(s.SelectionSet, visiting, fn)
		case *ast.FragmentSpread:
			if s.Definition != nil && !visiting[s.Name] {
				visiting[s.Name] = true
				eachField(s.Definition.SelectionSet, visiting, fn)
				delete(visiting, s.Name)
			}
		}
	}
}

// rulesWithoutSuggestions is gqlparser's default validation with every rule
// that suggests names ("Did you mean …?") replaced by its silent variant:
// suggestions would reveal the schema that disabled introspection hides.
// SetDisableSuggestion swaps the field and leaf-selection rules; these are
// the argument, type-name and input-value ones.
func rulesWithoutSuggestions() *rules.Rules {
	r := rules.NewDefaultRules()
	for _, swap := range [][2]core.Rule{
		{rules.KnownArgumentNamesRule, rules.KnownArgumentNamesRuleWithoutSuggestions},
		{rules.KnownTypeNamesRule, rules.KnownTypeNamesRuleWithoutSuggestions},
		{rules.ValuesOfCorrectTypeRule, rules.ValuesOfCorrectTypeRuleWithoutSuggestions},
	} {
		r.RemoveRule(swap[0].Name)
		r.AddRule(swap[1].Name, swap[1].RuleFunc)
	}
	return r
}

// depthLimit refuses operations nested deeper than max.
type depthLimit int

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit(0)

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (d depthLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, map[string]bool{}); depth > int(d) {
		err := gqlerror.Errorf("operation is nested %d levels deep, more than the limit of %d", depth, int(d))
		err.Extensions = map[string]any{"code": "DEPTH_LIMIT_EXCEEDED"}
		return err
	}
	return nil
}

// selectionDepth returns how deep set nests fields, following fragments.
func selectionDepth(set ast.SelectionSet, visiting map[string]bool) int {
	depth := 0
	eachField(set, visiting, func(f *ast.Field) {
		depth = max(depth, 1+selectionDepth(f.SelectionSet, visiting))
	})
	return depth
}

// mutationLimit refuses, before any of them runs, a mutation operation that
// selects more than max mutation fields (aliases count; fragments are
// followed). The complexity limit alone would let one request create a
// hundred keys or revoke hundreds, each in its own transaction.
type mutationLimit int

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = mutationLimit(0)

func (mutationLimit) ExtensionName() string                   { return "MutationLimit" }
func (mutationLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (m mutationLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return nil
	}
	n := 0
	eachField(oc.Operation.SelectionSet, map[string]bool{}, func(f *ast.Field) {
		if !strings.HasPrefix(f.Name, "__") { // __typename changes nothing
			n++
		}
	})
	if n > int(m) {
		err := gqlerror.Errorf("the request selects %d mutation fields, more than the limit of %d", n, int(m))
		err.Extensions = map[string]any{"code": "MUTATION_LIMIT_EXCEEDED"}
		return err
	}
	return nil
}
