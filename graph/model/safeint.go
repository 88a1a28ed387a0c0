package model

import (
	"encoding/json"
	"io"
	"strconv"

	"github.com/99designs/gqlgen/graphql"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// maxSafeInt is 2^53 - 1, JavaScript's Number.MAX_SAFE_INTEGER: the largest
// integer a JSON number carries exactly to every client.
const maxSafeInt = 1<<53 - 1

// MarshalSafeInt writes a SafeInt as a JSON number. GraphQL's Int is 32
// bits, and credits go up to 10^12; a JSON number stays a number for
// clients, and is exact in JavaScript up to 2^53 - 1 (see docs/graphql.md).
func MarshalSafeInt(n int64) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = w.Write(strconv.AppendInt(nil, n, 10))
	})
}

// UnmarshalSafeInt reads a SafeInt input value: an integer literal, or a
// JSON number with no fraction or exponent, within ±(2^53 - 1). Like the
// strict String, it refuses what GraphQL's Int would refuse: a string
// ("12"), a fraction, a boolean.
// Returns INVALID_REQUEST for anything else.
func UnmarshalSafeInt(v any) (int64, error) {
	var n int64
	var err error
	switch v := v.(type) {
	case json.Number: // a variable: gqlgen decodes JSON numbers so
		n, err = strconv.ParseInt(string(v), 10, 64)
	case int64: // a literal in the document
		n = v
	case int:
		n = int64(v)
	default:
		return 0, apperr.New(apperr.InvalidRequest, "a SafeInt value must be an integer")
	}
	if err != nil || n < -maxSafeInt || n > maxSafeInt {
		return 0, apperr.New(apperr.InvalidRequest, "a SafeInt value must be an integer from -(2^53 - 1) to 2^53 - 1")
	}
	return n, nil
}
