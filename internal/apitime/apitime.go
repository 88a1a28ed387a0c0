// Package apitime is how the API writes and reads timestamps, in REST,
// GraphQL, audit events and webhooks alike: UTC RFC 3339 with milliseconds,
// e.g. 2024-01-15T12:00:00.000Z (docs/contract.md).
package apitime

import (
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// Layout is how every timestamp is written on the API.
const Layout = "2006-01-02T15:04:05.000Z"

// Format writes t as the API does.
func Format(t time.Time) string { return t.UTC().Format(Layout) }

// FormatOptional writes t as the API does; nil stays nil (null).
func FormatOptional(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := Format(*t)
	return &s
}

// Parse reads an RFC 3339 timestamp a client sent as field, in UTC.
// Returns INVALID_REQUEST when s is not one.
func Parse(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, apperr.Errorf(apperr.InvalidRequest, "%s must be an RFC 3339 timestamp such as 2027-01-01T00:00:00.000Z", field)
	}
	return t.UTC(), nil
}
