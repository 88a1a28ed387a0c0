package main

import (
	"net/http"
	"slices"
	"testing"

	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/leak/leaktest"
)

// eventsOf returns the caller's whole audit log, newest first.
func (e *testEnv) eventsOf(tok string) []auditEvent {
	e.t.Helper()
	evs, _ := e.auditPage(tok, "?limit=100")
	return evs
}

// only returns the one event of action in evs, failing the test unless
// there is exactly one.
func only(t testing.TB, evs []auditEvent, action string) auditEvent {
	t.Helper()
	var found []auditEvent
	for _, ev := range evs {
		if ev.Action == action {
			found = append(found, ev)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s events, want 1: %v", len(found), action, actions(evs))
	}
	return found[0]
}

// TestAuditRollAndRename: a roll records api_key.rolled about the old key
// (with the new key's id and the grace), and for a grace of 0 also
// api_key.revoked; a rename records api_key.updated with the old and new
// names; a refused roll or rename records nothing; a create records the
// key's scopes.
func TestAuditRollAndRename(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		k := e.create(tok, str(`{"name": "ci", "scopes": ["reports:read"]}`))
		created := only(t, e.eventsOf(tok), "api_key.created")
		if scopes, _ := created.Details["scopes"].([]any); len(scopes) != 1 || scopes[0] != "reports:read" {
			t.Errorf("created details %v, want the scopes", created.Details)
		}

		res := e.do("PATCH", "/auth/api-keys/"+k.ID, bearer(tok), str(`{"name": "deploy"}`))
		if res.Status != http.StatusOK {
			t.Fatalf("rename: %d %s", res.Status, res.Body)
		}
		updated := only(t, e.eventsOf(tok), "api_key.updated")
		name, _ := updated.Details["name"].(map[string]any)
		if name["old"] != "ci" || name["new"] != "deploy" || updated.KeyID == nil || *updated.KeyID != k.ID {
			t.Errorf("updated event %+v", updated)
		}

		rolled := e.roll(tok, k.ID, str(`{"grace_period_seconds": 3600}`))
		evs := e.eventsOf(tok)
		ev := only(t, evs, "api_key.rolled")
		if ev.KeyID == nil || *ev.KeyID != k.ID || ev.KeyPrefix == nil || *ev.KeyPrefix != k.KeyPrefix ||
			ev.Details["new_key_id"] != rolled.ID || ev.Details["grace_period_seconds"] != float64(3600) {
			t.Errorf("rolled event %+v", ev)
		}
		if slices.Contains(actions(evs), "api_key.revoked") {
			t.Error("a roll with a grace recorded a revocation")
		}

		// Refused: a second roll (409), a bad rename (400), another user's
		// key (404): nothing recorded.
		before := len(e.eventsOf(tok))
		wantError(t, e.do("POST", "/auth/api-keys/"+k.ID+"/roll", bearer(tok), nil), http.StatusConflict, "KEY_ALREADY_ROLLED")
		wantError(t, e.do("PATCH", "/auth/api-keys/"+rolled.ID, bearer(tok), str(`{"name": "x", "scopes": []}`)), http.StatusBadRequest, "INVALID_REQUEST")
		wantError(t, e.do("PATCH", "/auth/api-keys/"+rolled.ID, bearer(e.token("mallory")), str(`{"name": "x"}`)), http.StatusNotFound, "NOT_FOUND")
		if after := len(e.eventsOf(tok)); after != before {
			t.Errorf("refused changes recorded %d events", after-before)
		}

		// A roll with a grace of 0 revokes the old key at once: both events,
		// about the old key.
		e.roll(tok, rolled.ID, nil)
		evs = e.eventsOf(tok)
		if got := actions(evs)[:2]; !slices.Equal(got, []string{"api_key.revoked", "api_key.rolled"}) && !slices.Equal(got, []string{"api_key.rolled", "api_key.revoked"}) {
			t.Fatalf("a roll with grace 0 recorded %v", actions(evs))
		}
		for _, ev := range evs[:2] {
			if ev.KeyID == nil || *ev.KeyID != rolled.ID {
				t.Errorf("%s is about %v, want the old key %s", ev.Action, ev.KeyID, rolled.ID)
			}
		}
	})
}

// TestAuditLeaks: a key revoked by a leak report is recorded once as
// api_key.leaked, by the leak report, with where it was found, in its
// owner's log; a replayed report records nothing more; the GitLab
// endpoint records its location with source gitlab.
func TestAuditLeaks(t *testing.T) {
	gh := leaktest.NewSigner(t, "gh-1")
	const secret = "glrt-0123456789abcdef0123456789abcdef"
	eachDBWith(t, func(c *config.Config) {
		keySetFile(t, gh)(c)
		c.LeakRevocation = secret
	}, func(t *testing.T, e *testEnv) {
		e.remember(secret)
		tok := e.token("alice")
		k, other := e.create(tok, nil), e.create(tok, nil)
		body := reportBody(k.Key)
		for range 2 { // the second is a replay
			if res := e.signedReport(gh, body); res.Status != http.StatusOK {
				t.Fatalf("report: %d %s", res.Status, res.Body)
			}
		}
		ev := only(t, e.eventsOf(tok), "api_key.leaked")
		if ev.Actor.Type != "leak_report" || ev.KeyID == nil || *ev.KeyID != k.ID ||
			ev.Details["url"] != "https://github.com/octo/app/blob/abc123/.env" || ev.Details["source"] != "commit" {
			t.Errorf("leaked event %+v", ev)
		}

		location := "https://gitlab.example/o/r/-/blob/main/ci.yml"
		gl := `[{"type":"apikeyd_api_key","token":"` + other.Key + `","location":"` + location + `"}]`
		if res := e.do("POST", "/auth/leaks/gitlab/revoke_tokens", hdr("Authorization", secret), &gl); res.Status != http.StatusNoContent {
			t.Fatalf("gitlab: %d %s", res.Status, res.Body)
		}
		var leaked []auditEvent
		for _, ev := range e.eventsOf(tok) {
			if ev.Action == "api_key.leaked" {
				leaked = append(leaked, ev)
			}
		}
		if len(leaked) != 2 || leaked[0].KeyID == nil || *leaked[0].KeyID != other.ID ||
			leaked[0].Details["url"] != location || leaked[0].Details["source"] != "gitlab" {
			t.Errorf("gitlab leak events %+v", leaked)
		}
		if evs, _ := e.auditPage(e.token("mallory"), ""); len(evs) != 0 {
			t.Errorf("another user sees %d events", len(evs))
		}
	})
}
