package apikey_test

import (
	"math"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// TestRollGraceRange: the service owns the grace-period rule that REST and
// GraphQL rely on. A grace outside 0…604800 seconds, however far out, is
// INVALID_REQUEST, checked before the id, and changes nothing; both ends of
// the range are accepted.
func TestRollGraceRange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, apikey.Config{})
		k := f.create(t, nil)
		for _, n := range []int{-1, 604801, math.MinInt, math.MaxInt} {
			for _, id := range []string{k.ID, "nope"} {
				_, err := f.svc.Roll(f.jwt, id, apikey.GraceSeconds(&n))
				if err != apikey.ErrBadGrace || apperr.CodeOf(err) != apperr.InvalidRequest ||
					apperr.MessageOf(err) != "grace_period_seconds must be an integer from 0 to 604800" {
					t.Fatalf("grace %d, id %q: %v", n, id, err)
				}
			}
		}
		if keys, err := f.svc.List(f.jwt); err != nil || len(keys) != 1 || keys[0].ReplacedBy != nil {
			t.Fatalf("after refused rolls: %+v, %v", keys, err)
		}
		if apikey.GraceSeconds(nil) != 0 {
			t.Fatal("no grace is not 0")
		}
		week := 604800
		if g := apikey.GraceSeconds(&week); g != apikey.MaxGracePeriod {
			t.Fatalf("GraceSeconds(604800) = %v", g)
		}
		r, err := f.svc.Roll(f.jwt, k.ID, apikey.GraceSeconds(&week))
		if err != nil || r.Previous.ExpiresAt == nil || !r.Previous.ExpiresAt.Equal(f.clock.Now().UTC().Truncate(time.Millisecond).Add(apikey.MaxGracePeriod)) {
			t.Fatalf("roll with the longest grace: %+v, %v", r.Previous, err)
		}
		if _, err := f.svc.Roll(f.jwt, r.ID, 0); err != nil {
			t.Fatalf("roll without grace: %v", err)
		}
	})
}
