package apikey

import (
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// TimeLayout is how every timestamp is written on the API: UTC RFC 3339 with
// milliseconds, e.g. 2024-01-15T12:00:00.000Z.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime writes t as the API does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// FormatOptionalTime writes t as the API does; nil stays nil (null).
func FormatOptionalTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := FormatTime(*t)
	return &s
}

// ParseTime reads an RFC 3339 timestamp sent by a client.
// Returns INVALID_REQUEST when s is not one.
func ParseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, apperr.Errorf(apperr.InvalidRequest, "%s must be an RFC 3339 timestamp such as 2027-01-01T00:00:00.000Z", field)
	}
	return t.UTC(), nil
}
