// Package clocktest is a clock for tests of code that tells the time by a
// func() time.Time (the Now of each service's Config, app.Deps.Now): a test
// moves it past a deadline instead of sleeping until the deadline comes.
package clocktest

import (
	"sync/atomic"
	"time"
)

// Clock is a time source a test advances. It is safe for concurrent use.
type Clock struct {
	base  func() time.Time
	ahead atomic.Int64 // nanoseconds added to base
}

// Stopped returns a Clock that stands at at until advanced: time passes
// only when the test says so.
func Stopped(at time.Time) *Clock {
	return &Clock{base: func() time.Time { return at }}
}

// Running returns a Clock that follows the wall clock, ahead of it by what
// the test has advanced it: what happens in real time (a retry after 10ms,
// say) still happens, and a deadline an hour away is an Advance away.
func Running() *Clock {
	return &Clock{base: time.Now}
}

// Now returns the clock's time; pass the method value as a Now func.
func (c *Clock) Now() time.Time {
	return c.base().Add(time.Duration(c.ahead.Load()))
}

// Advance moves the clock d forward. It panics on a negative d: no deadline
// the code under test has passed comes back.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		panic("clocktest: Advance with a negative duration")
	}
	c.ahead.Add(int64(d))
}
