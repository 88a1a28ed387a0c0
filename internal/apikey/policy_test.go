package apikey

import (
	"testing"
	"time"
)

func TestRefillTimes(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		refill     Refill
		now        string
		last, next string
	}{
		{Refill{Interval: RefillDaily}, "2026-03-05T10:00:00Z", "2026-03-05T00:00:00Z", "2026-03-06T00:00:00Z"},
		{Refill{Interval: RefillDaily}, "2026-03-05T00:00:00Z", "2026-03-05T00:00:00Z", "2026-03-06T00:00:00Z"},
		{Refill{Interval: RefillDaily}, "2026-12-31T23:59:59Z", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
		{Refill{Interval: RefillMonthly, DayOfMonth: 15}, "2026-03-20T00:00:00Z", "2026-03-15T00:00:00Z", "2026-04-15T00:00:00Z"},
		{Refill{Interval: RefillMonthly, DayOfMonth: 15}, "2026-03-10T00:00:00Z", "2026-02-15T00:00:00Z", "2026-03-15T00:00:00Z"},
		{Refill{Interval: RefillMonthly, DayOfMonth: 15}, "2026-03-15T00:00:00Z", "2026-03-15T00:00:00Z", "2026-04-15T00:00:00Z"},
		// The month's last day when it is shorter: February, then March 31.
		{Refill{Interval: RefillMonthly, DayOfMonth: 31}, "2026-03-01T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"},
		{Refill{Interval: RefillMonthly, DayOfMonth: 31}, "2028-02-29T12:00:00Z", "2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z"},
		{Refill{Interval: RefillMonthly, DayOfMonth: 30}, "2026-01-31T00:00:00Z", "2026-01-30T00:00:00Z", "2026-02-28T00:00:00Z"},
		{Refill{Interval: RefillMonthly, DayOfMonth: 1}, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"},
		{Refill{Interval: RefillMonthly, DayOfMonth: 1}, "2025-12-31T23:00:00Z", "2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z"},
	} {
		now := at(c.now)
		if got := c.refill.Last(now); !got.Equal(at(c.last)) {
			t.Errorf("%+v.Last(%s) = %s, want %s", c.refill, c.now, got.Format(time.RFC3339), c.last)
		}
		if got := c.refill.Next(now); !got.Equal(at(c.next)) {
			t.Errorf("%+v.Next(%s) = %s, want %s", c.refill, c.now, got.Format(time.RFC3339), c.next)
		}
	}
}
