package model

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
)

// The usage policy as GraphQL writes it: the REST fields in camelCase, meta
// as JSON text (see docs/graphql.md). The service validates the values;
// these only change their shape.

// CreateInput returns in for the service (none: an empty input).
func CreateInput(in *CreateAPIKeyInput) apikey.CreateInput {
	if in == nil {
		return apikey.CreateInput{}
	}
	return apikey.CreateInput{
		Name:       in.Name,
		ExpiresAt:  in.ExpiresAt,
		Scopes:     in.Scopes,
		Enabled:    in.Enabled,
		RateLimit:  in.RateLimit.domain(),
		Credits:    in.Credits.domain(),
		AllowedIPs: in.AllowedIps,
		Meta:       metaJSON(in.Meta),
	}
}

// UpdateInput returns in for the service: a field left out stays unset, a
// field given (null included) is set.
// Returns INVALID_REQUEST when enabled is null, which REST refuses too.
func UpdateInput(in UpdateAPIKeyInput) (apikey.UpdateInput, error) {
	out := apikey.UpdateInput{
		Name:       optional(in.Name, func(n *string) *string { return n }),
		RateLimit:  optional(in.RateLimit, (*RateLimitInput).domain),
		Credits:    optional(in.Credits, (*CreditsInput).domain),
		AllowedIPs: optional(in.AllowedIps, func(ips []string) []string { return ips }),
		Meta:       optional(in.Meta, metaJSON),
	}
	if enabled, ok := in.Enabled.ValueOK(); ok {
		if enabled == nil {
			return apikey.UpdateInput{}, apperr.New(apperr.InvalidRequest, "enabled must be true or false")
		}
		out.Enabled = apikey.Optional[bool]{Set: true, Value: *enabled}
	}
	return out, nil
}

// optional returns o's value converted by conv, set when o is.
func optional[T, U any](o graphql.Omittable[T], conv func(T) U) apikey.Optional[U] {
	v, ok := o.ValueOK()
	if !ok {
		return apikey.Optional[U]{}
	}
	return apikey.Optional[U]{Set: true, Value: conv(v)}
}

// metaJSON returns meta's text as JSON; nil for none. The service checks
// it, as it checks REST's: a JSON object, at most 4 KiB.
func metaJSON(meta *string) json.RawMessage {
	if meta == nil {
		return nil
	}
	return json.RawMessage(*meta)
}

func (r *RateLimitInput) domain() *apikey.RateLimit {
	if r == nil {
		return nil
	}
	// Within Int's 32 bits, seconds fit a Duration.
	return &apikey.RateLimit{Limit: int64(r.Limit), Period: time.Duration(r.PeriodSeconds) * time.Second}
}

func (c *CreditsInput) domain() *apikey.Credits {
	if c == nil {
		return nil
	}
	out := &apikey.Credits{Remaining: c.Remaining}
	if r := c.Refill; r != nil {
		out.Refill = &apikey.Refill{Amount: r.Amount, Interval: r.Interval, DayOfMonth: OrDefault(r.DayOfMonth, 0)}
	}
	return out
}

// Meta returns a key's metadata as JSON text; nil when it has none.
func Meta(k *apikey.APIKey) *string {
	if k.Meta == nil {
		return nil
	}
	s := string(k.Meta)
	return &s
}

// Prefixes returns addresses as text (10.0.0.0/8); nil for nil.
func Prefixes(addresses []netip.Prefix) []string {
	if addresses == nil {
		return nil
	}
	out := make([]string, len(addresses))
	for i, p := range addresses {
		out[i] = p.String()
	}
	return out
}

// PeriodSeconds returns a rate limit's period in seconds.
func PeriodSeconds(r *apikey.RateLimit) int { return int(r.Period / time.Second) }

// DayOfMonth returns the day of a monthly refill; nil for a daily one.
func DayOfMonth(r *apikey.Refill) *int {
	if r.Interval != apikey.RefillMonthly {
		return nil
	}
	return &r.DayOfMonth
}
