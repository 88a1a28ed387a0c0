package main

import (
	"net/http"
	"testing"
	"time"
)

// TestReplicasSeeRolls runs two servers on one PostgreSQL database, each
// with the key cached: a roll without grace is refused by the other server
// within a second, as a revocation is; a key whose grace ends is refused by
// both within a second of the end, whether the other server re-cached it
// during the grace or still held it from before the roll.
func TestReplicasSeeRolls(t *testing.T) {
	a, b := replicas(t)
	tok := a.token("alice")
	now, held, recached := b.keep(a.create(tok, nil)), b.keep(a.create(tok, nil)), b.keep(a.create(tok, nil))
	for _, e := range []*testEnv{a, b} {
		e.waitCached(now.Key)
		e.waitCached(held.Key)
		e.waitCached(recached.Key)
	}

	// The helpers fail the test they were made with (e.t): no subtests here.

	// A roll without grace.
	{
		k := a.roll(tok, now.ID, str(`{"grace_period_seconds": 0}`))
		b.remember(k.Key)
		if s := a.verifyKey(now.Key); s != http.StatusUnauthorized {
			t.Fatalf("the rolling server answered %d right after its 201", s)
		}
		took := b.refusedWithin(now.Key, time.Second)
		t.Logf("the other server refused the rolled key %s after the roll", took)
		if s := b.verifyKey(k.Key); s != http.StatusOK {
			t.Fatalf("the other server answered %d for the new key", s)
		}
	}

	// Rolls with a grace, ending.
	{
		const grace = `{"grace_period_seconds": 3}`
		kh := a.roll(tok, held.ID, str(grace))
		kr := a.roll(tok, recached.ID, str(grace))
		b.remember(kh.Key)
		b.remember(kr.Key)
		keys := a.rotatedList(tok)
		endHeld, endRecached := keys[held.ID].ExpiresAt, keys[recached.ID].ExpiresAt
		if endHeld == nil || endRecached == nil {
			t.Fatal("a key in its grace has no expires_at")
		}
		// During the grace the old key works on both; b caches it again,
		// now with the end of the grace as its expiry.
		for _, e := range []*testEnv{a, b} {
			e.waitCached(recached.Key)
		}

		a.advancePastTimestamp(*endRecached) // and b's: they share a clock
		for _, e := range []*testEnv{b, a} {
			took := e.refusedWithin(recached.Key, time.Second)
			t.Logf("a key cached during its grace was refused %s after the end", took)
			if e.App.Keys.Cached(recached.Key) {
				t.Fatal("a key past its grace is still cached")
			}
		}
		a.advancePastTimestamp(*endHeld)
		for _, e := range []*testEnv{b, a} {
			took := e.refusedWithin(held.Key, time.Second)
			t.Logf("a key cached before the roll was refused %s after the end of its grace", took)
		}
		for _, e := range []*testEnv{a, b} {
			for _, k := range []rolledKey{kh, kr} {
				if s := e.verifyKey(k.Key); s != http.StatusOK {
					t.Fatalf("a new key answered %d", s)
				}
			}
		}
	}
}
