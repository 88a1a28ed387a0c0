package auth

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// TestAttempt: a route that checks its own credential draws on a budget
// through Attempt. A failure is charged and a success or a malformed
// request is not; once the budget is spent, the request is refused with
// the route's error and Retry-After, and its credential is not checked.
func TestAttempt(t *testing.T) {
	l, _ := newTestLimiter[string](2, 1)
	errLimited := apperr.New(apperr.RateLimited, "too many failures")
	attempt := func(outcome error) (checked bool, err error, retryAfter string) {
		w := httptest.NewRecorder()
		err = Attempt(w, httptest.NewRequest("POST", "/", nil), l, "k", errLimited, func() error {
			checked = true
			return outcome
		})
		return checked, err, w.Header().Get("Retry-After")
	}
	errMalformed := apperr.New(apperr.InvalidRequest, "bad body")
	for i, outcome := range []error{nil, errMalformed, errWrong, nil, errMalformed, errWrong} {
		if checked, err, ra := attempt(outcome); !checked || err != outcome || ra != "" {
			t.Fatalf("attempt %d: checked %v, %v, Retry-After %q; want %v", i, checked, err, ra, outcome)
		}
	}
	if checked, err, ra := attempt(nil); checked || !errors.Is(err, errLimited) || ra == "" {
		t.Fatalf("past the budget: checked %v, %v, Retry-After %q", checked, err, ra)
	}
	// No limiter: no limit.
	for range 5 {
		err := Attempt(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), (*FailureLimiter[string])(nil), "k", errLimited, func() error { return errWrong })
		if err != errWrong {
			t.Fatalf("without a limiter: %v", err)
		}
	}
}
