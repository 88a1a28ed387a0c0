package model

import (
	"github.com/99designs/gqlgen/graphql"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// MarshalString writes a String as gqlgen's built-in scalar does.
func MarshalString(s string) graphql.Marshaler { return graphql.MarshalString(s) }

// UnmarshalString reads a String input value, which must be a string.
// gqlgen's built-in scalar would also take a number or a boolean and turn it
// into text (a variable {"name": 42} naming a key "42"); REST refuses those,
// and so does GraphQL.
// Returns INVALID_REQUEST for anything but a string.
func UnmarshalString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", apperr.New(apperr.InvalidRequest, "a String value must be a JSON string")
	}
	return s, nil
}

// OptionalID is id as a nullable ID: nil when empty.
func OptionalID(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}
