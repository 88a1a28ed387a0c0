// Package gcra is the generic cell rate algorithm (GCRA) in whole time
// units, the arithmetic of apikeyd's rate limits wherever their buckets are
// kept (this process's memory, or Redis, whose script runs the same steps).
//
// A token bucket of Limit tokens refilled evenly over Period is kept as one
// time per bucket, the theoretical arrival time (TAT): when the bucket will
// be full again. A request at now moves it by the emission interval
// T = Period/Limit from max(TAT, now), and is allowed when the new TAT is
// at most Period ahead of now (the bucket then owes at most Limit tokens).
// A TAT that has passed is a full bucket: a new or idle key has the whole
// burst.
//
// T is rarely a whole number of units (a second over 3), so times are kept
// exactly, as whole units plus a remainder counted in Limit-ths of a unit:
// Limit requests at once are allowed, and the next one is not, at any rate.
package gcra

import "math/bits"

// Rate is Limit tokens refilled evenly over Period time units. Both are
// positive.
type Rate struct {
	Limit, Period int64
}

// Interval returns the emission interval T = Period/Limit as whole units
// and a remainder in Limit-ths of a unit.
func (r Rate) Interval() (step, rem int64) {
	return r.Period / r.Limit, r.Period % r.Limit
}

// State is a bucket: its TAT is TAT + Frac/Limit units. The zero State is a
// full bucket.
type State struct {
	TAT   int64
	Frac  int64 // 0…Limit-1
	Limit int64 // the Limit Frac is counted in
}

// Result is what one request found.
type Result struct {
	Allowed   bool
	Remaining int64 // tokens left after the request
	// RetryAfter is the time until a token is back, when not Allowed,
	// rounded up to a whole unit.
	RetryAfter int64
	// Reset is the time until the bucket is full, rounded up.
	Reset int64
}

// Take applies one request at now to s, of rate r.
func (s *State) Take(r Rate, now int64) Result {
	tat, frac := s.TAT, s.Frac
	if s.Limit != r.Limit && frac > 0 {
		// The remainder was counted in another rate's units: round up.
		tat, frac = tat+1, 0
	}
	if tat < now {
		tat, frac = now, 0
	}
	step, rem := r.Interval()
	next, nextFrac := tat+step, frac+rem
	if nextFrac >= r.Limit {
		next, nextFrac = next+1, nextFrac-r.Limit
	}
	ahead := next - now
	allowed := Allows(r, ahead, nextFrac)
	if allowed {
		*s = State{TAT: next, Frac: nextFrac, Limit: r.Limit}
	}
	return Outcome(r, allowed, ahead, nextFrac)
}

// Allows reports whether a request whose TAT would be ahead+frac/Limit
// units ahead of now is allowed.
func Allows(r Rate, ahead, frac int64) bool {
	return ahead < r.Period || ahead == r.Period && frac == 0
}

// Outcome returns the Result of a request that was allowed or not, whose
// TAT with it is (allowed) or would have been (refused) ahead+frac/Limit
// units ahead of now: what Take answers, from the numbers a Take run
// elsewhere (a Redis script) returns.
func Outcome(r Rate, allowed bool, ahead, frac int64) Result {
	if !allowed {
		// A token is back once the TAT with the request is Period
		// ahead; the bucket is full once the TAT without it is reached.
		step, rem := r.Interval()
		tat, tatFrac := ahead-step, frac-rem
		if tatFrac < 0 {
			tat, tatFrac = tat-1, tatFrac+r.Limit
		}
		return Result{RetryAfter: ceil(ahead-r.Period, frac), Reset: ceil(tat, tatFrac)}
	}
	// Tokens left: (Period - ahead)/T = ((Period-ahead)*Limit - frac)/Period,
	// in 128 bits since Period*Limit may not fit in 64.
	hi, lo := bits.Mul64(uint64(r.Period-ahead), uint64(r.Limit))
	lo, borrow := bits.Sub64(lo, uint64(frac), 0)
	left, _ := bits.Div64(hi-borrow, lo, uint64(r.Period))
	return Result{Allowed: true, Remaining: int64(left), Reset: ceil(ahead, frac)}
}

// Full reports whether s is full at now: it carries no state, and a
// zero State would do as well.
func (s State) Full(now int64) bool {
	return s.TAT < now || s.TAT == now && s.Frac == 0
}

// ceil returns units plus frac of a Limit-th of one, rounded up.
func ceil(units, frac int64) int64 {
	if frac > 0 {
		units++
	}
	return units
}
