package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/google/uuid"
)

// auditEvent is an event as GET /auth/audit-events lists it.
type auditEvent struct {
	ID         string `json:"id"`
	Action     string `json:"action"`
	OccurredAt string `json:"occurred_at"`
	Actor      struct {
		Type string  `json:"type"`
		ID   *string `json:"id"`
	} `json:"actor"`
	OrgID     *string        `json:"org_id"`
	KeyID     *string        `json:"key_id"`
	KeyPrefix *string        `json:"key_prefix"`
	IP        *string        `json:"ip"`
	UserAgent *string        `json:"user_agent"`
	Details   map[string]any `json:"details"`
}

// auditPage reads one page of the caller's audit log; query is the query
// string (may be empty).
func (e *testEnv) auditPage(tok, query string) (events []auditEvent, next *string) {
	e.t.Helper()
	res := e.do("GET", "/auth/audit-events"+query, bearer(tok), nil)
	if res.Status != http.StatusOK {
		e.t.Fatalf("audit events%s: %d %s", query, res.Status, res.Body)
	}
	var out struct {
		Events []auditEvent `json:"audit_events"`
		Next   *string      `json:"next_cursor"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Events, out.Next
}

// actions lists the actions of events.
func actions(evs []auditEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}

func TestAuditLog(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("alice")
		h := bearer(tok)
		h.Set("User-Agent", "dashboard\t/2.0 "+strings.Repeat("x", 300))
		res := e.do("POST", "/auth/api-keys", h, str(`{"name": "ci", "expires_at": "2099-01-01T00:00:00.000Z"}`))
		if res.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", res.Status, res.Body)
		}
		var k createdKey
		if err := json.Unmarshal(res.Body, &k); err != nil {
			t.Fatal(err)
		}
		e.remember(k.Key)
		if res := e.do("DELETE", "/auth/api-keys/"+k.ID, bearer(tok), nil); res.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", res.Status, res.Body)
		}
		// A failed change records nothing.
		if res := e.do("DELETE", "/auth/api-keys/"+k.ID, bearer(tok), nil); res.Status != http.StatusNotFound {
			t.Fatalf("second revoke: %d", res.Status)
		}

		res = e.do("GET", "/auth/audit-events", bearer(tok), nil)
		if strings.Contains(string(res.Body), k.Key) || strings.Contains(string(res.Body), hashOf(k.Key)) || strings.Contains(string(res.Body), tok) {
			t.Fatal("the audit log holds a secret")
		}
		evs, next := e.auditPage(tok, "")
		if next != nil {
			t.Errorf("next_cursor %q on the only page", *next)
		}
		if got := actions(evs); !slices.Equal(got, []string{"api_key.revoked", "api_key.created"}) {
			t.Fatalf("actions %v", got)
		}
		for _, ev := range evs {
			if ev.KeyID == nil || *ev.KeyID != k.ID || ev.KeyPrefix == nil || *ev.KeyPrefix != k.KeyPrefix {
				t.Errorf("%s: key %v %v, want %s %s", ev.Action, ev.KeyID, ev.KeyPrefix, k.ID, k.KeyPrefix)
			}
			if ev.Actor.Type != "user" || ev.Actor.ID == nil || *ev.Actor.ID != "alice" {
				t.Errorf("%s: actor %+v", ev.Action, ev.Actor)
			}
			if ev.IP == nil || *ev.IP != "127.0.0.1" {
				t.Errorf("%s: ip %v", ev.Action, ev.IP)
			}
		}
		created := evs[1]
		if ua := created.UserAgent; ua == nil || len([]rune(*ua)) != 255 || !strings.HasPrefix(*ua, "dashboard/2.0 xxx") {
			t.Errorf("user agent %v: want the header cut to 255 characters without its tab", ua)
		}
		if created.Details["name"] != "ci" || created.Details["expires_at"] != "2099-01-01T00:00:00.000Z" {
			t.Errorf("create details %v", created.Details)
		}

		// Each user sees only their own log.
		if evs, _ := e.auditPage(e.token("bob"), ""); len(evs) != 0 {
			t.Errorf("bob sees %v", actions(evs))
		}
		// An API key may not read it.
		other := e.create(tok, nil)
		wantError(t, e.do("GET", "/auth/audit-events", bearer(other.Key), nil), http.StatusForbidden, "JWT_REQUIRED")
		wantError(t, e.do("GET", "/auth/audit-events", nil, nil), http.StatusUnauthorized, "MISSING_AUTH")

		// Committed events are counted, by action.
		metrics := string(e.do("GET", "/metrics", nil, nil).Body)
		for _, line := range []string{`apikeyd_audit_events_total{action="api_key.created"} 2`, `apikeyd_audit_events_total{action="api_key.revoked"} 1`} {
			if !strings.Contains(metrics, line) {
				t.Errorf("metrics lack %s", line)
			}
		}
	})
}

// forgedCursors returns cursors an attacker who read one could make: the
// same encoding, naming another user's event, or an event that never was.
func forgedCursors(e *testEnv) []string {
	e.t.Helper()
	other := e.token("mallory-" + uuid.NewString())
	e.create(other, nil)
	theirs := e.eventsOf(other)
	if len(theirs) == 0 {
		e.t.Fatal("no event to forge a cursor from")
	}
	var out []string
	for _, id := range []string{theirs[0].ID, uuid.Must(uuid.NewV7()).String()} {
		out = append(out, base64.RawURLEncoding.EncodeToString([]byte("e1:"+id)))
	}
	return out
}

func TestAuditLogPagination(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("carol")
		for range 5 {
			e.create(tok, nil)
		}
		var all []string
		query := "?limit=2"
		for pages := 0; ; pages++ {
			evs, next := e.auditPage(tok, query)
			for _, ev := range evs {
				all = append(all, ev.ID)
			}
			if next == nil {
				break
			}
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			// An event recorded between pages shifts nothing.
			e.create(tok, nil)
			query = "?limit=2&cursor=" + *next
		}
		if len(all) != 5 || !slices.IsSortedFunc(all, func(a, b string) int { return strings.Compare(b, a) }) {
			t.Errorf("paged ids %v: want the 5 events, newest first", all)
		}

		for _, q := range []string{"?limit=0", "?limit=101", "?limit=ten", "?limit=", "?limit=1.5", "?cursor=bm9wZQ", "?cursor=%25%25", "?cursor=" + strings.Repeat("A", 200)} {
			wantError(t, e.do("GET", "/auth/audit-events"+q, bearer(tok), nil), http.StatusBadRequest, "INVALID_REQUEST")
		}
		// Cursors forged in the right shape: naming another user's event,
		// or one that never was, they are refused, not served.
		for _, c := range forgedCursors(e) {
			wantError(t, e.do("GET", "/auth/audit-events?cursor="+c, bearer(tok), nil), http.StatusBadRequest, "INVALID_REQUEST")
		}
	})
}

func TestAuditLogConcurrentRevokes(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("dave")
		k := e.create(tok, nil)
		var wg sync.WaitGroup
		for range 12 {
			wg.Go(func() {
				res, err := e.send("DELETE", "/auth/api-keys/"+k.ID, bearer(tok), nil)
				if err != nil || res.Status != http.StatusNoContent && res.Status != http.StatusNotFound {
					t.Errorf("revoke: %v %d %s", err, res.Status, res.Body)
				}
			})
		}
		wg.Wait()
		evs, _ := e.auditPage(tok, "")
		if got := actions(evs); !slices.Equal(got, []string{"api_key.revoked", "api_key.created"}) {
			t.Errorf("actions %v, want one revocation", got)
		}
	})
}

func TestAuditLogTrustedProxy(t *testing.T) {
	eachDBWith(t, func(c *config.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}, func(t *testing.T, e *testEnv) {
		tok := e.token("erin")
		h := bearer(tok)
		h.Set("X-Forwarded-For", "198.51.100.23")
		if res := e.do("POST", "/auth/api-keys", h, nil); res.Status != http.StatusCreated {
			t.Fatalf("create: %d", res.Status)
		} else {
			var k createdKey
			_ = json.Unmarshal(res.Body, &k)
			e.remember(k.Key)
		}
		evs, _ := e.auditPage(tok, "")
		if len(evs) != 1 || evs[0].IP == nil || *evs[0].IP != "198.51.100.23" {
			t.Errorf("events %+v: want the forwarded address", evs)
		}
	})
}

func TestAuditLogAccounts(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		id := e.mustRegister("frank@example.com", "correct horse battery")
		tok := e.mustLogin("frank@example.com", "correct horse battery")
		if res := e.login(nil, "frank@example.com", "wrong password here"); res.Status != http.StatusUnauthorized {
			t.Fatalf("bad login: %d", res.Status)
		}
		// No account, no event (and no log to put it in).
		if res := e.login(nil, "nobody@example.com", "wrong password here"); res.Status != http.StatusUnauthorized {
			t.Fatalf("unknown login: %d", res.Status)
		}
		// A failed login is recorded in the background (so that it costs
		// no time an unknown email does not): wait for it.
		want := []string{"user.login_failed", "user.login", "user.registered"}
		deadline := time.Now().Add(10 * time.Second)
		for {
			evs, _ := e.auditPage(tok, "")
			got := actions(evs)
			if slices.Equal(got, want) {
				for _, ev := range evs {
					if ev.Actor.ID == nil || *ev.Actor.ID != id || ev.KeyID != nil {
						t.Errorf("%s: actor %+v key %v", ev.Action, ev.Actor, ev.KeyID)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("actions %v, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestLastUseOrigin(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("grace")
		k := e.create(tok, nil)
		h := bearer(k.Key)
		h.Set("User-Agent", "billing-worker/3.1")
		if res := e.do("GET", "/auth/verify", h, nil); res.Status != http.StatusOK {
			t.Fatalf("verify: %d", res.Status)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			res := e.do("GET", "/auth/api-keys", bearer(tok), nil)
			var out struct {
				APIKeys []struct {
					IP *string `json:"last_used_ip"`
					UA *string `json:"last_used_user_agent"`
				} `json:"api_keys"`
			}
			if err := json.Unmarshal(res.Body, &out); err != nil || len(out.APIKeys) != 1 {
				t.Fatalf("list: %s %v", res.Body, err)
			}
			if got := out.APIKeys[0]; got.IP != nil {
				if *got.IP != "127.0.0.1" || got.UA == nil || *got.UA != "billing-worker/3.1" {
					t.Errorf("last use from %v %v", *got.IP, got.UA)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("last_used_ip not set within 5 s of the first use")
			}
			time.Sleep(20 * time.Millisecond)
		}
		_, g := e.gql(bearer(tok), `{ apiKeys { lastUsedIp lastUsedUserAgent } }`, nil)
		if len(g.Errors) > 0 {
			t.Fatalf("GraphQL: %+v", g.Errors)
		}
		keys := g.Data["apiKeys"].([]any)
		if k0 := keys[0].(map[string]any); k0["lastUsedIp"] != "127.0.0.1" || k0["lastUsedUserAgent"] != "billing-worker/3.1" {
			t.Errorf("GraphQL last use %v", k0)
		}
	})
}

func TestAuditLogGraphQL(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		tok := e.token("heidi")
		for range 3 {
			e.create(tok, str(`{"name": "gql"}`))
		}
		const q = `query($first: Int, $after: String) { auditEvents(first: $first, after: $after) {
			edges { cursor node { id action occurredAt actor { type id } keyId keyPrefix ip userAgent details } }
			pageInfo { hasNextPage endCursor } } }`
		var ids []string
		vars := map[string]any{"first": 2}
		for range 3 {
			_, g := e.gql(bearer(tok), q, vars)
			if len(g.Errors) > 0 {
				t.Fatalf("auditEvents: %+v", g.Errors)
			}
			conn := g.Data["auditEvents"].(map[string]any)
			for _, edge := range conn["edges"].([]any) {
				node := edge.(map[string]any)["node"].(map[string]any)
				if node["action"] != "api_key.created" || node["actor"].(map[string]any)["id"] != "heidi" || node["ip"] != "127.0.0.1" {
					t.Errorf("node %v", node)
				}
				var details map[string]any
				if err := json.Unmarshal([]byte(node["details"].(string)), &details); err != nil || details["name"] != "gql" {
					t.Errorf("details %v: %v", node["details"], err)
				}
				ids = append(ids, node["id"].(string))
			}
			info := conn["pageInfo"].(map[string]any)
			if info["hasNextPage"] != true {
				break
			}
			vars = map[string]any{"first": 2, "after": info["endCursor"]}
		}
		if distinct := slices.Compact(slices.Sorted(slices.Values(ids))); len(ids) != 3 || len(distinct) != 3 {
			t.Errorf("ids %v: want 3 distinct", ids)
		}
		bads := []map[string]any{{"first": 0}, {"first": 101}, {"after": "forged"}}
		for _, c := range forgedCursors(e) {
			bads = append(bads, map[string]any{"after": c})
		}
		for _, bad := range bads {
			_, g := e.gql(bearer(tok), q, bad)
			if !slices.Equal(g.codes(), []string{"INVALID_REQUEST"}) {
				t.Errorf("%v: codes %v", bad, g.codes())
			}
		}
		_, g := e.gql(nil, q, nil)
		if !slices.Equal(g.codes(), []string{"MISSING_AUTH"}) {
			t.Errorf("anonymous: codes %v", g.codes())
		}
	})
}
