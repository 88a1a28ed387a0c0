package apikey

import (
	"context"
	"encoding/json"
	"net/netip"
	"time"
)

// Policy is what a key's owner chose about its use, checked at every
// authentication by the key (see docs/usage-policy.md). The zero Policy is
// an enabled key without limits.
type Policy struct {
	// Disabled pauses the key without revoking it (the API's "enabled" is
	// its negation, so that the zero Policy is an enabled key).
	Disabled bool
	// RateLimit is the key's token bucket; nil: no rate limit.
	RateLimit *RateLimit
	// Credits is the key's balance; nil: unlimited. On a key read from the
	// store it is the balance as it was read.
	Credits *Credits
	// AllowedIPs are the addresses the key may be used from, canonical
	// (masked, IPv4-mapped IPv6 as IPv4); nil: anywhere.
	AllowedIPs []netip.Prefix
	// Meta is a compact JSON object returned on verification for the
	// protected service; nil: none.
	Meta json.RawMessage
}

// Limits of a policy, as the API documents them.
const (
	MaxRateLimit       = 1_000_000
	MaxRateLimitPeriod = 24 * time.Hour
	MaxCredits         = 1_000_000_000_000
	MaxAllowedIPs      = 50
	MaxMetaBytes       = 4096
	MaxCost            = 1000
)

// RateLimit is a token bucket of Limit tokens refilled evenly over Period;
// a new or idle key has the whole burst.
type RateLimit struct {
	Limit  int64         // 1…MaxRateLimit
	Period time.Duration // whole seconds, 1s…MaxRateLimitPeriod
}

// Credits is a balance that each successful authentication spends.
type Credits struct {
	Remaining int64   // 0…MaxCredits
	Refill    *Refill // nil: never refilled
	// RefillAt is, on a balance read from the store, when its next refill
	// falls due; zero without a refill. The store applies a refill at the
	// first spend at or after it, so until then Remaining may predate it:
	// see Balance.
	RefillAt time.Time
}

// Balance is the balance at now: Remaining, or the refill's amount when a
// refill has fallen due since the balance was stored and Remaining is lower
// (what the next spend will find).
func (c *Credits) Balance(now time.Time) int64 {
	if c.Refill != nil && !c.RefillAt.IsZero() && !now.Before(c.RefillAt) {
		return max(c.Remaining, c.Refill.Amount)
	}
	return c.Remaining
}

// RefillInterval is how often a balance is refilled.
type RefillInterval string

// Refill intervals.
const (
	RefillDaily   RefillInterval = "day"
	RefillMonthly RefillInterval = "month"
)

// Refill resets a balance to Amount, if it was lower, at 00:00 UTC every
// day, or on DayOfMonth every month (the month's last day when it is
// shorter).
type Refill struct {
	Amount     int64 // 1…MaxCredits
	Interval   RefillInterval
	DayOfMonth int // 1…31; monthly refills only, 0 for daily ones
}

// Last returns the latest refill time at or before t.
func (r Refill) Last(t time.Time) time.Time {
	t = t.UTC()
	if r.Interval == RefillDaily {
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	y, m := t.Year(), t.Month()
	if at := r.inMonth(y, m); !at.After(t) {
		return at
	}
	return r.inMonth(y, m-1)
}

// Next returns the first refill time after t.
func (r Refill) Next(t time.Time) time.Time {
	t = t.UTC()
	if r.Interval == RefillDaily {
		return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
	}
	y, m := t.Year(), t.Month()
	if at := r.inMonth(y, m); at.After(t) {
		return at
	}
	return r.inMonth(y, m+1)
}

// inMonth returns the monthly refill time in month m of year y (m may be
// out of 1…12; time.Date normalises it): DayOfMonth, or the month's last day
// when the month is shorter.
func (r Refill) inMonth(y int, m time.Month) time.Time {
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(r.DayOfMonth, last)-1)
}

// Quota is a key's rate limit after a request took (or failed to take) a
// token from its bucket.
type Quota struct {
	Allowed   bool
	Limit     int64         // the bucket's size
	Period    time.Duration // the time it takes to refill from empty
	Remaining int64         // tokens left
	// RetryAfter is how long until a token is back, when not Allowed.
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again.
	Reset time.Duration
}

// RateLimiter keeps the token buckets of rate-limited keys. Take never
// fails: a limiter whose shared store is unreachable answers from buckets of
// its own.
type RateLimiter interface {
	// Take takes one token at now from the bucket named bucket, of rate l.
	Take(ctx context.Context, bucket string, l RateLimit, now time.Time) Quota
}
