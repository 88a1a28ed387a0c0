package rest

import (
	"encoding/json"
	"math"
	"net/netip"
	"strconv"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// policyJSON is a key's usage policy as created and listed keys carry it
// (docs/usage-policy.md). The values write themselves in the API's shape
// (apikey's MarshalJSON methods; netip.Prefix as its text).
type policyJSON struct {
	Enabled    bool              `json:"enabled"`
	RateLimit  *apikey.RateLimit `json:"rate_limit"`
	Credits    *apikey.Credits   `json:"credits"`
	AllowedIPs []netip.Prefix    `json:"allowed_ips"`
	Meta       json.RawMessage   `json:"meta"` // nil: null
}

func policyOf(p apikey.Policy) policyJSON {
	return policyJSON{Enabled: !p.Disabled, RateLimit: p.RateLimit, Credits: p.Credits, AllowedIPs: p.AllowedIPs, Meta: p.Meta}
}

// The decoders of the policy's fields, shared by create and PATCH. Each
// checks the JSON types, naming the field; the values are the service's to
// check. null is returned as nil (for enabled, refused).

func decodeEnabled(dec *json.Decoder) (bool, error) {
	raw, err := httpx.DecodeRaw(dec)
	if err != nil {
		return false, err
	}
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, apperr.New(apperr.InvalidRequest, "enabled must be true or false")
}

func decodeRateLimit(dec *json.Decoder) (*apikey.RateLimit, error) {
	raw, err := httpx.DecodeRaw(dec)
	if err != nil || string(raw) == "null" {
		return nil, err
	}
	var l apikey.RateLimit
	var limit, period bool
	err = decodeMembers("rate_limit", `{"limit": …, "period_seconds": …}`, raw, func(name string, raw json.RawMessage) (err error) {
		switch name {
		case "limit":
			limit = true
			l.Limit, err = decodeInteger("rate_limit.limit", raw)
		case "period_seconds":
			period = true
			var n int64
			n, err = decodeInteger("rate_limit.period_seconds", raw)
			l.Period = apikey.SecondsUpTo(n, apikey.MaxRateLimitPeriod)
		default:
			return errUnknownMember("rate_limit", name)
		}
		return err
	})
	if err == nil && (!limit || !period) {
		err = apperr.New(apperr.InvalidRequest, "rate_limit needs both limit and period_seconds")
	}
	return &l, err
}

func decodeCredits(dec *json.Decoder) (*apikey.Credits, error) {
	raw, err := httpx.DecodeRaw(dec)
	if err != nil || string(raw) == "null" {
		return nil, err
	}
	var c apikey.Credits
	var remaining bool
	err = decodeMembers("credits", `{"remaining": …, "refill": …}`, raw, func(name string, raw json.RawMessage) (err error) {
		switch name {
		case "remaining":
			remaining = true
			c.Remaining, err = decodeInteger("credits.remaining", raw)
		case "refill":
			c.Refill, err = decodeRefill(raw)
		default:
			return errUnknownMember("credits", name)
		}
		return err
	})
	if err == nil && !remaining {
		err = apperr.New(apperr.InvalidRequest, "credits needs remaining, the balance")
	}
	return &c, err
}

func decodeRefill(raw json.RawMessage) (*apikey.Refill, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	var r apikey.Refill
	var amount, interval bool
	err := decodeMembers("credits.refill", `{"amount": …, "interval": "day" or "month", "day_of_month": …}`, raw, func(name string, raw json.RawMessage) (err error) {
		switch name {
		case "amount":
			amount = true
			r.Amount, err = decodeInteger("credits.refill.amount", raw)
		case "interval":
			interval = true
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return apperr.New(apperr.InvalidRequest, `credits.refill.interval must be "day" or "month"`)
			}
			r.Interval = apikey.RefillInterval(s)
		case "day_of_month":
			if string(raw) == "null" {
				return nil
			}
			var n int64
			n, err = decodeInteger("credits.refill.day_of_month", raw)
			if n < 1 || n > 31 {
				// Out of range, whatever its size: the service says so.
				n = 32
			}
			r.DayOfMonth = int(n)
		default:
			return errUnknownMember("credits.refill", name)
		}
		return err
	})
	if err == nil && (!amount || !interval) {
		err = apperr.New(apperr.InvalidRequest, "credits.refill needs amount and interval")
	}
	return &r, err
}

// decodeAllowedIPs decodes null or an array of strings; the entries are
// the service's to read.
func decodeAllowedIPs(dec *json.Decoder) ([]string, error) {
	return decodeStrings("allowed_ips", dec)
}

// decodeMeta returns meta as it came; null is nil. The service checks it is
// an object of the allowed size.
func decodeMeta(dec *json.Decoder) (json.RawMessage, error) {
	raw, err := httpx.DecodeRaw(dec)
	if err != nil || string(raw) == "null" {
		return nil, err
	}
	return raw, nil
}

// decodeMembers calls member with each member of the object raw, which is
// field's value; shape describes the object for the message of anything
// else.
func decodeMembers(field, shape string, raw json.RawMessage, member func(name string, raw json.RawMessage) error) error {
	if len(raw) == 0 || raw[0] != '{' {
		return apperr.Errorf(apperr.InvalidRequest, "%s must be an object %s or null", field, shape)
	}
	return httpx.DecodeObject(raw, func(name string, dec *json.Decoder) error {
		v, err := httpx.DecodeRaw(dec)
		if err != nil {
			return err
		}
		return member(name, v)
	})
}

func errUnknownMember(field, name string) error {
	return apperr.Errorf(apperr.InvalidRequest, "%s has no member %s", field, strconv.Quote(name))
}

// decodeInteger reads an integer literal (not 1.5, 1e3, "60" or null). One
// too large for an int64 comes out as the largest or smallest: out of every
// range the service checks.
func decodeInteger(field string, raw json.RawMessage) (int64, error) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err == nil {
		return n, nil
	}
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		if raw[0] == '-' {
			return math.MinInt64, nil
		}
		return math.MaxInt64, nil
	}
	return 0, apperr.Errorf(apperr.InvalidRequest, "%s must be an integer", field)
}
