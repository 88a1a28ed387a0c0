package apikey_test

import (
	"context"
	"math"
	"strings"
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

// TestOwnKeyOpening: the four methods that act on one of the caller's keys
// (Revoke, Roll, Rename, DismissLeakNotice) open alike: a login token first,
// then the method's own arguments, then the id, which is NOT_FOUND (in the
// method's words) whether malformed, unknown or another user's. None of
// these refusals changes anything.
func TestOwnKeyOpening(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, apikey.Config{})
		k := f.create(t, nil)
		none := context.Background()
		keyCaller := apikey.WithPrincipal(none, apikey.Principal{UserID: "alice", Method: apikey.MethodAPIKey, KeyID: k.ID})
		mallory := apikey.WithPrincipal(none, apikey.Principal{UserID: "mallory", Method: apikey.MethodJWT})
		long := strings.Repeat("n", apikey.MaxNameLen+1)
		name := "renamed"
		methods := map[string]struct {
			call     func(ctx context.Context, id string, badInput bool) error
			notFound string
		}{
			"Revoke": {func(ctx context.Context, id string, _ bool) error {
				_, err := f.svc.Revoke(ctx, id)
				return err
			}, "API key not found"},
			"Roll": {func(ctx context.Context, id string, bad bool) error {
				grace := time.Duration(0)
				if bad {
					grace = -time.Second
				}
				_, err := f.svc.Roll(ctx, id, grace)
				return err
			}, "API key not found"},
			"Update": {func(ctx context.Context, id string, bad bool) error {
				n := &name
				if bad {
					n = &long
				}
				_, err := f.svc.Update(ctx, id, apikey.UpdateInput{Name: apikey.Optional[*string]{Set: true, Value: n}})
				return err
			}, "API key not found"},
			"DismissLeakNotice": {func(ctx context.Context, id string, _ bool) error {
				return f.svc.DismissLeakNotice(ctx, id)
			}, "no such leak notice"},
		}
		for method, m := range methods {
			for _, c := range []struct {
				ctx      context.Context
				id       string
				badInput bool
				code     apperr.Code
				msg      string
			}{
				{none, k.ID, false, apperr.MissingAuth, ""},
				{none, "nope", true, apperr.MissingAuth, ""},
				{keyCaller, k.ID, false, apperr.JWTRequired, ""},
				{keyCaller, "nope", true, apperr.JWTRequired, ""},
				{f.jwt, "nope", false, apperr.NotFound, m.notFound},
				{f.jwt, strings.ToUpper(k.ID) + "0", false, apperr.NotFound, m.notFound},
				{f.jwt, "00000000-0000-7000-8000-000000000000", false, apperr.NotFound, m.notFound},
				{mallory, k.ID, false, apperr.NotFound, m.notFound},
			} {
				err := m.call(c.ctx, c.id, c.badInput)
				if apperr.CodeOf(err) != c.code || c.msg != "" && apperr.MessageOf(err) != c.msg {
					t.Errorf("%s(%q): %v, want %s %q", method, c.id, err, c.code, c.msg)
				}
			}
			if method == "Roll" || method == "Rename" {
				if err := m.call(f.jwt, "nope", true); apperr.CodeOf(err) != apperr.InvalidRequest {
					t.Errorf("%s: bad input and a malformed id: %v, want INVALID_REQUEST first", method, err)
				}
			}
		}
		keys, err := f.svc.List(f.jwt)
		if err != nil || len(keys) != 1 || keys[0].ID != k.ID || keys[0].Name != nil || keys[0].ReplacedBy != nil {
			t.Fatalf("after the refusals: %+v, %v", keys, err)
		}
		if c := f.verify(t, k.Secret); c != "" {
			t.Fatalf("the key no longer verifies: %s", c)
		}
	})
}
