package apikey

import (
	"encoding/json"
	"time"
)

// The policy's values are written in one JSON shape, the REST API's
// (docs/usage-policy.md), wherever they are written: REST answers and the
// details of audit events.

// MarshalJSON writes l as {"limit", "period_seconds"}.
func (l RateLimit) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Limit         int64 `json:"limit"`
		PeriodSeconds int64 `json:"period_seconds"`
	}{l.Limit, int64(l.Period / time.Second)})
}

// MarshalJSON writes c as {"remaining", "refill"}.
func (c Credits) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Remaining int64   `json:"remaining"`
		Refill    *Refill `json:"refill"`
	}{c.Remaining, c.Refill})
}

// MarshalJSON writes r as {"amount", "interval", "day_of_month"}, the day
// null for a daily refill.
func (r Refill) MarshalJSON() ([]byte, error) {
	var day *int
	if r.Interval == RefillMonthly {
		day = &r.DayOfMonth
	}
	return json.Marshal(struct {
		Amount     int64          `json:"amount"`
		Interval   RefillInterval `json:"interval"`
		DayOfMonth *int           `json:"day_of_month"`
	}{r.Amount, r.Interval, day})
}
