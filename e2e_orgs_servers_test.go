package main

import (
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cacheHits is how many verifications e's server has answered from its
// cache.
func (e *testEnv) cacheHits() float64 {
	e.t.Helper()
	return e.scrape().value("apikeyd_verify_cache_lookups_total", "result", "hit")
}

// waitServedFromCache verifies key on e, a server the test reaches only
// over HTTP, until a verification of it is answered from the server's
// cache: a revocation must then reach the server to be seen there.
func (e *testEnv) waitServedFromCache(key string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		hits := e.cacheHits()
		if s := e.verifyKey(key); s != http.StatusOK {
			e.t.Fatalf("verify on %s: %d", e.URL, s)
		}
		if e.cacheHits() > hits {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s answers the key from its database still after 10s of verifying it", e.URL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOrgsAcrossServers runs three apikeyd processes on one PostgreSQL
// database. A member removed through one server is refused by another at
// once, and nothing else changes: the keys they made for the organisation
// keep working. An organisation deleted through one server has its keys
// refused by the others within a second, each of them having answered the
// keys from its cache until then, and also by a server started after
// another was killed with SIGKILL.
func TestOrgsAcrossServers(t *testing.T) {
	g := startServerGroup(t, 3, "")
	a, b, c := g.servers[0], g.servers[1], g.servers[2]
	alice, bob := g.tok, a.token("bob")

	org := a.createOrg(alice, "Acme").ID
	a.joinVia(b, alice, org, "admin", bob)
	bobsKey := c.orgKey(bob, org, str(`{"name":"deploy"}`))
	alicesKey := a.orgKey(alice, org, str(`{"name":"backup"}`))
	personal := a.create(alice, nil)
	for _, e := range g.servers {
		e.keep(bobsKey)
		e.keep(alicesKey)
		e.keep(personal)
	}

	t.Run("RemovedMemberRefusedAtOnce", func(t *testing.T) {
		if res := b.do("GET", orgURL(org), bearer(bob), nil); res.Status != http.StatusOK || res.JSON(t)["role"] != "admin" {
			t.Fatalf("bob reads the organisation: %d %s", res.Status, res.Body)
		}
		if res := a.do("DELETE", orgURL(org, "members", "bob"), bearer(alice), nil); res.Status != http.StatusNoContent {
			t.Fatalf("remove bob: %d %s", res.Status, res.Body)
		}
		// The first request of each server after the 204: no retry.
		for i, e := range g.servers {
			wantError(t, e.do("GET", orgURL(org), bearer(bob), nil), http.StatusNotFound, "NOT_FOUND")
			wantError(t, e.do("GET", orgURL(org, "api-keys"), bearer(bob), nil), http.StatusNotFound, "NOT_FOUND")
			wantError(t, e.do("DELETE", orgURL(org, "api-keys", alicesKey.ID), bearer(bob), nil), http.StatusNotFound, "NOT_FOUND")
			// Nothing else changed: the key bob made for the organisation
			// is still the organisation's, and works.
			if s := e.verifyKey(bobsKey.Key); s != http.StatusOK {
				t.Fatalf("server %d: the key the removed member made answers %d", i, s)
			}
		}
		found := false
		for _, k := range c.orgKeys(alice, org) {
			found = found || (k["id"] == bobsKey.ID && k["created_by"] == "bob")
		}
		if !found {
			t.Fatal("the key bob made is no longer the organisation's, with created_by bob")
		}
	})

	t.Run("DeletionRevokesEverywhereWithinOneSecond", func(t *testing.T) {
		for _, e := range []*testEnv{b, c} {
			for _, k := range []createdKey{bobsKey, alicesKey, personal} {
				e.waitServedFromCache(k.Key)
			}
		}
		// One server dies without a word in the middle of it; a new one
		// takes its place, and caches the keys too.
		if err := g.procs[2].Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = g.procs[2].Wait()
		d := g.add()
		for _, k := range []createdKey{bobsKey, alicesKey, personal} {
			d.keep(k)
			d.waitServedFromCache(k.Key)
		}

		if res := a.do("DELETE", orgURL(org), bearer(alice), nil); res.Status != http.StatusNoContent {
			t.Fatalf("delete the organisation: %d %s", res.Status, res.Body)
		}
		deleted := time.Now()
		for _, k := range []createdKey{bobsKey, alicesKey} {
			if s := a.verifyKey(k.Key); s != http.StatusUnauthorized {
				t.Fatalf("the deleting server answered %d right after its 204", s)
			}
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			took = map[string]time.Duration{}
		)
		for name, e := range map[string]*testEnv{"B": b, "D": d} {
			for _, k := range []createdKey{bobsKey, alicesKey} {
				wg.Go(func() {
					for {
						sent := time.Since(deleted)
						res, err := e.send("GET", "/auth/verify", hdr("X-Api-Key", k.Key), nil)
						switch {
						case err != nil:
							t.Errorf("server %s: %v", name, err)
							return
						case res.Status == http.StatusUnauthorized:
							mu.Lock()
							took[name] = max(took[name], time.Since(deleted))
							mu.Unlock()
							return
						case res.Status != http.StatusOK:
							t.Errorf("server %s: verify answered %d %s", name, res.Status, res.Body)
							return
						case sent > time.Second:
							t.Errorf("server %s accepted a key of the deleted organisation %s after the 204", name, sent.Round(time.Millisecond))
							return
						}
						time.Sleep(5 * time.Millisecond)
					}
				})
			}
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		t.Logf("after the deletion's 204, the keys were refused by server B after %s and by server D (started after a SIGKILL) after %s",
			took["B"].Round(time.Millisecond), took["D"].Round(time.Millisecond))

		// The owner's personal key is not the organisation's.
		for _, e := range []*testEnv{a, b, d} {
			if s := e.verifyKey(personal.Key); s != http.StatusOK {
				t.Fatalf("the owner's personal key answers %d after the organisation's deletion", s)
			}
		}
		for _, e := range []*testEnv{a, b, d} {
			wantError(t, e.do("GET", orgURL(org), bearer(alice), nil), http.StatusNotFound, "NOT_FOUND")
		}
	})
}
