package graph

// The checks every operation passes before it runs, after parsing,
// validation and variable coercion: each refusal is a request error, so
// nothing of the operation runs.

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

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

// stringVariables refuses variables that give a number where the operation
// declares a String, at any depth (a list's items, an input object's
// fields). gqlgen decodes JSON numbers as json.Number, which gqlparser's
// variable coercion takes for text; GraphQL's String input coercion refuses
// a number, and GraphQL over HTTP makes that a request error. (Booleans and
// objects gqlparser already refuses; an ID may be a number.)
type stringVariables struct{ schema *ast.Schema }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = (*stringVariables)(nil)

func (*stringVariables) ExtensionName() string { return "StringVariables" }

func (v *stringVariables) Validate(s graphql.ExecutableSchema) error {
	v.schema = s.Schema()
	return nil
}

func (v *stringVariables) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	for _, def := range oc.Operation.VariableDefinitions {
		path := ast.Path{ast.PathName("variable"), ast.PathName(def.Variable)}
		if err := v.check(def.Type, oc.Variables[def.Variable], path); err != nil {
			return err
		}
	}
	return nil
}

// check walks value, of type t, for a number given as a String.
func (v *stringVariables) check(t *ast.Type, value any, path ast.Path) *gqlerror.Error {
	switch {
	case value == nil:
		return nil
	case t.Elem != nil:
		// A list, or a single value that coercion made a list of one
		// (gqlparser gives that list its item's type: []json.Number).
		items := reflect.ValueOf(value)
		if items.Kind() != reflect.Slice {
			return v.check(t.Elem, value, path)
		}
		for i := range items.Len() {
			if err := v.check(t.Elem, items.Index(i).Interface(), append(slices.Clip(path), ast.PathIndex(i))); err != nil {
				return err
			}
		}
	case t.NamedType == "String":
		if _, ok := value.(json.Number); ok {
			err := gqlerror.ErrorPathf(path, "cannot use a number as String")
			errcode.Set(err, errcode.ValidationFailed)
			return err
		}
	default:
		def := v.schema.Types[t.NamedType]
		fields, ok := value.(map[string]any)
		if def == nil || def.Kind != ast.InputObject || !ok {
			return nil
		}
		for _, f := range def.Fields {
			if err := v.check(f.Type, fields[f.Name], append(slices.Clip(path), ast.PathName(f.Name))); err != nil {
				return err
			}
		}
	}
	return nil
}
