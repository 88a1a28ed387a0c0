// Package model holds the GraphQL types that are not domain types, and the
// Time scalar.
package model

import (
	"io"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/apperr"
)

// MarshalTime writes a Time as REST does: UTC RFC 3339 with milliseconds.
// The layout holds nothing that JSON escapes, so the quoted text is built in
// one buffer: a listing writes three timestamps per key.
func MarshalTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		b := make([]byte, 0, len(apitime.Layout)+2)
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, apitime.Layout)
		b = append(b, '"')
		_, _ = w.Write(b)
	})
}

// UnmarshalTime reads an RFC 3339 timestamp.
// Returns INVALID_REQUEST for anything else.
func UnmarshalTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, apperr.New(apperr.InvalidRequest, "Time must be an RFC 3339 string such as 2027-01-01T00:00:00.000Z")
	}
	return apitime.Parse("Time", s)
}
