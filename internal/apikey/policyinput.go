package apikey

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// The checks of a policy's inputs, shared by Create and Update (so by both
// faces). Each refusal is INVALID_REQUEST naming the field as REST spells it
// (docs/usage-policy.md); GraphQL's camelCase names map one to one.

// checkRateLimit refuses a rate limit out of range; nil (none) passes.
func checkRateLimit(l *RateLimit) error {
	if l == nil {
		return nil
	}
	if l.Limit < 1 || l.Limit > MaxRateLimit {
		return apperr.Errorf(apperr.InvalidRequest, "rate_limit.limit must be an integer from 1 to %d", MaxRateLimit)
	}
	if l.Period < time.Second || l.Period > MaxRateLimitPeriod || l.Period%time.Second != 0 {
		return apperr.Errorf(apperr.InvalidRequest, "rate_limit.period_seconds must be an integer from 1 to %d", int64(MaxRateLimitPeriod/time.Second))
	}
	return nil
}

// normalizeCredits checks a balance and its refill and returns a copy of
// them; nil (unlimited) stays nil. A monthly refill without a day of the
// month refills on the 1st; a daily one must not name a day, which it
// would ignore.
func normalizeCredits(c *Credits) (*Credits, error) {
	if c == nil {
		return nil, nil
	}
	if c.Remaining < 0 || c.Remaining > MaxCredits {
		return nil, apperr.Errorf(apperr.InvalidRequest, "credits.remaining must be an integer from 0 to %d", int64(MaxCredits))
	}
	out := &Credits{Remaining: c.Remaining}
	r := c.Refill
	if r == nil {
		return out, nil
	}
	if r.Amount < 1 || r.Amount > MaxCredits {
		return nil, apperr.Errorf(apperr.InvalidRequest, "credits.refill.amount must be an integer from 1 to %d", int64(MaxCredits))
	}
	refill := *r
	switch r.Interval {
	case RefillDaily:
		if r.DayOfMonth != 0 {
			return nil, apperr.New(apperr.InvalidRequest, `credits.refill.day_of_month is for a monthly refill only: a "day" refill happens every day at 00:00 UTC`)
		}
	case RefillMonthly:
		if r.DayOfMonth == 0 {
			refill.DayOfMonth = 1
		}
		if refill.DayOfMonth < 1 || refill.DayOfMonth > 31 {
			return nil, apperr.New(apperr.InvalidRequest, "credits.refill.day_of_month must be an integer from 1 to 31")
		}
	default:
		return nil, apperr.Errorf(apperr.InvalidRequest, `credits.refill.interval must be "day" or "month", not %s`, quoteInput(string(r.Interval)))
	}
	out.Refill = &refill
	return out, nil
}

// ParseAllowedIPs reads an allowlist (CIDRs or bare addresses) into
// canonical prefixes: masked, a bare address as /32 or /128, an
// IPv4-mapped IPv6 prefix as IPv4; duplicates dropped, the order kept. nil
// (anywhere) stays nil.
// Returns INVALID_REQUEST naming the first entry that is neither, for more
// than MaxAllowedIPs entries, and for an empty list (which would allow no
// address: null is anywhere).
func ParseAllowedIPs(list []string) ([]netip.Prefix, error) {
	if list == nil {
		return nil, nil
	}
	if len(list) == 0 {
		return nil, apperr.New(apperr.InvalidRequest, "allowed_ips must list at least one address or CIDR, or be null (any address)")
	}
	if len(list) > MaxAllowedIPs {
		return nil, apperr.Errorf(apperr.InvalidRequest, "allowed_ips holds at most %d entries, not %d", MaxAllowedIPs, len(list))
	}
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, ok := canonicalPrefix(strings.TrimSpace(s))
		if !ok {
			return nil, apperr.Errorf(apperr.InvalidRequest, "allowed_ips[%d] %s is neither an IP address nor a CIDR such as 10.0.0.0/8", i, quoteInput(s))
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// canonicalPrefix parses a CIDR or an address into its canonical prefix.
// Zoned addresses (fe80::1%eth0) are refused: a zone names an interface
// of one machine, not a client.
func canonicalPrefix(s string) (netip.Prefix, bool) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, false
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, true
}

// normalizeMeta checks that meta is a JSON object of at most MaxMetaBytes
// once compacted, and returns it compacted; nil and JSON null are none.
func normalizeMeta(meta json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(meta)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	if trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, apperr.New(apperr.InvalidRequest, "meta must be a JSON object or null")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, trimmed); err != nil {
		return nil, apperr.New(apperr.InvalidRequest, "meta must be a JSON object or null")
	}
	if out.Len() > MaxMetaBytes {
		return nil, apperr.Errorf(apperr.InvalidRequest, "meta must be at most %d bytes of compact JSON, not %d", MaxMetaBytes, out.Len())
	}
	return out.Bytes(), nil
}

// newPolicy checks the policy a new key asks for and returns it canonical.
func newPolicy(in CreateInput) (Policy, error) {
	var p Policy
	var err error
	if in.Enabled != nil {
		p.Disabled = !*in.Enabled
	}
	if err = checkRateLimit(in.RateLimit); err != nil {
		return Policy{}, err
	}
	if in.RateLimit != nil {
		l := *in.RateLimit
		p.RateLimit = &l
	}
	if p.Credits, err = normalizeCredits(in.Credits); err != nil {
		return Policy{}, err
	}
	if p.AllowedIPs, err = ParseAllowedIPs(in.AllowedIPs); err != nil {
		return Policy{}, err
	}
	if p.Meta, err = normalizeMeta(in.Meta); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// quoteInput quotes a client's value for an error message, escaped and cut
// short so that a hostile value can neither forge nor flood the message.
func quoteInput(s string) string { return quoteCut(s, 72) }
