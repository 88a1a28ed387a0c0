package gcra

import "testing"

// A rate whose interval is not a whole unit: 3 per 10 units, one every 3⅓.
func TestTakeKeepsThirds(t *testing.T) {
	r := Rate{Limit: 3, Period: 10}
	var s State
	for _, c := range []struct {
		now  int64
		want Result
	}{
		{100, Result{Allowed: true, Remaining: 2, Reset: 4}}, // full at 103⅓
		{100, Result{Allowed: true, Remaining: 1, Reset: 7}}, // 106⅔
		{100, Result{Allowed: true, Remaining: 0, Reset: 10}},
		{100, Result{RetryAfter: 4, Reset: 10}},              // a token back at 103⅓
		{103, Result{RetryAfter: 1, Reset: 7}},               // ⅓ to go, rounded up
		{104, Result{Allowed: true, Reset: 10}},              // full at 113⅓
		{200, Result{Allowed: true, Remaining: 2, Reset: 4}}, // idle: full again
	} {
		if got := s.Take(r, c.now); got != c.want {
			t.Fatalf("take at %d: %+v, want %+v (state %+v)", c.now, got, c.want, s)
		}
	}
	if s.Full(203) || !s.Full(204) {
		t.Errorf("state %+v: full at 203 %v, at 204 %v; want full from 203⅓", s, s.Full(203), s.Full(204))
	}
}

// A bucket kept at one rate and taken at another rounds its remainder up:
// never a token more than it had.
func TestTakeAtAnotherRate(t *testing.T) {
	s := State{TAT: 103, Frac: 1, Limit: 3}
	got := s.Take(Rate{Limit: 2, Period: 10}, 100) // owes 4 units: 104, plus 5
	if want := (Result{Allowed: true, Remaining: 0, Reset: 9}); got != want {
		t.Fatalf("%+v, want %+v", got, want)
	}
}
