package main

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// atOnce sends every request at the same instant (each on its own
// goroutine, released together once all are ready) and returns the
// answers in order.
func atOnce(t testing.TB, sends ...func() (response, error)) []response {
	t.Helper()
	out := make([]response, len(sends))
	errs := make([]error, len(sends))
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i, send := range sends {
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-start
			out[i], errs[i] = send()
		})
	}
	ready.Wait()
	close(start)
	done.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// owners returns the user ids of the organisation's owners, as e lists its
// members to tok, sorted.
func (e *testEnv) owners(tok, orgID string) []string {
	e.t.Helper()
	var owners []string
	for id, m := range e.members(tok, orgID) {
		if m.Role == "owner" {
			owners = append(owners, id)
		}
	}
	slices.Sort(owners)
	return owners
}

// TestLastTwoOwnersAtOnce: the last two owners of an organisation demote
// each other, or both leave it, at the same instant, through two servers
// on one PostgreSQL database and through one server on SQLite. Every round,
// exactly one succeeds and the other is refused with 409 LAST_OWNER: the
// organisation always keeps exactly one owner.
func TestLastTwoOwnersAtOnce(t *testing.T) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			var servers [2]*testEnv
			if db == "postgres" {
				servers[0], servers[1] = replicas(t)
			} else {
				e := newEnv(t, db)
				servers = [2]*testEnv{e, e}
			}
			users := [2]string{"alice", "bob"}
			toks := [2]string{servers[0].token("alice"), servers[0].token("bob")}
			org := servers[0].createOrg(toks[0], "Two owners").ID
			servers[0].joinVia(servers[1], toks[0], org, "owner", toks[1])

			const rounds = 8
			for round := range rounds {
				leave := round%4 == 3 // every fourth round both leave; the others, each demotes the other
				// user i goes through server (i + round) % 2: each pairing
				// of user and server in turn.
				send := func(i int) func() (response, error) {
					e, other := servers[(i+round)%2], users[1-i]
					if leave {
						return func() (response, error) {
							return e.send("DELETE", orgURL(org, "members", users[i]), bearer(toks[i]), nil)
						}
					}
					return func() (response, error) {
						return e.send("PATCH", orgURL(org, "members", other), bearer(toks[i]), str(`{"role":"admin"}`))
					}
				}
				res := atOnce(t, send(0), send(1))

				won, lost := -1, -1
				for i, r := range res {
					switch {
					case (!leave && r.Status == http.StatusOK) || (leave && r.Status == http.StatusNoContent):
						won = i
					case r.Status == http.StatusConflict:
						wantError(t, r, http.StatusConflict, "LAST_OWNER")
						lost = i
					default:
						t.Fatalf("round %d: %s answered %d %s", round, users[i], r.Status, r.Body)
					}
				}
				if won < 0 || lost < 0 {
					t.Fatalf("round %d: answers %d and %d, want one success and one 409 LAST_OWNER", round, res[0].Status, res[1].Status)
				}
				// The owner left: who won the demotions, who was refused
				// leaving.
				kept := won
				if leave {
					kept = lost
				}
				if got := servers[1].owners(toks[kept], org); fmt.Sprint(got) != fmt.Sprint([]string{users[kept]}) {
					t.Fatalf("round %d: owners %v, want [%s]", round, got, users[kept])
				}
				t.Logf("round %d (%s): %s's request won", round, map[bool]string{true: "both leave", false: "each demotes the other"}[leave], users[won])

				// Two owners again for the next round.
				other := 1 - kept
				if leave {
					servers[0].joinVia(servers[1], toks[kept], org, "owner", toks[other])
				} else if res := servers[0].do("PATCH", orgURL(org, "members", users[other]), bearer(toks[kept]), str(`{"role":"owner"}`)); res.Status != http.StatusOK {
					t.Fatalf("promote %s again: %d %s", users[other], res.Status, res.Body)
				}
			}
		})
	}
}
