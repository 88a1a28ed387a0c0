package apitime

import (
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// TestFormat: UTC, always three fractional digits, cut rather than rounded.
func TestFormat(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	for _, c := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC), "2024-01-15T12:00:00.000Z"},
		{time.Date(2024, 1, 15, 13, 0, 0, 0, paris), "2024-01-15T12:00:00.000Z"},
		{time.Date(2024, 1, 15, 12, 0, 0, 123_999_999, time.UTC), "2024-01-15T12:00:00.123Z"},
	} {
		if got := Format(c.in); got != c.want {
			t.Errorf("Format(%v) = %q, want %q", c.in, got, c.want)
		}
		if got := FormatOptional(&c.in); got == nil || *got != c.want {
			t.Errorf("FormatOptional(%v) = %v, want %q", c.in, got, c.want)
		}
	}
	if got := FormatOptional(nil); got != nil {
		t.Errorf("FormatOptional(nil) = %q, want nil", *got)
	}
}

// TestParse: any RFC 3339 timestamp, read in UTC; anything else is
// INVALID_REQUEST naming the field.
func TestParse(t *testing.T) {
	want := time.Date(2027, 1, 1, 0, 0, 0, 500_000_000, time.UTC)
	for _, s := range []string{"2027-01-01T00:00:00.5Z", "2027-01-01T01:00:00.500+01:00", Format(want)} {
		got, err := Parse("expires_at", s)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("Parse(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "2027-01-01", "2027-01-01 00:00:00Z", "tomorrow"} {
		_, err := Parse("expires_at", s)
		if apperr.CodeOf(err) != apperr.InvalidRequest || apperr.MessageOf(err) != "expires_at must be an RFC 3339 timestamp such as 2027-01-01T00:00:00.000Z" {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
}
