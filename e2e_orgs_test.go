package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/leak/leaktest"
)

// End-to-end tests of organisations over REST (docs/organisations.md): every
// rule of the roles, members, invitations and organisation keys, on SQLite
// and PostgreSQL.

// orgAnswer is an organisation as the REST routes answer it.
type orgAnswer struct {
	ID                    string `json:"id"`
	Name                  string `json:"name"`
	Role                  string `json:"role"`
	CreatedAt             string `json:"created_at"`
	MaxKeyLifetimeSeconds *int64 `json:"max_key_lifetime_seconds"`
}

// invitationAnswer is the answer to an invitation.
type invitationAnswer struct {
	ID        string  `json:"id"`
	Role      string  `json:"role"`
	Email     *string `json:"email"`
	ExpiresAt string  `json:"expires_at"`
	Token     string  `json:"token"`
}

// memberAnswer is a member as listed.
type memberAnswer struct {
	UserID   string  `json:"user_id"`
	Email    *string `json:"email"`
	Role     string  `json:"role"`
	JoinedAt string  `json:"joined_at"`
}

var invitationTokenPattern = regexp.MustCompile(`^inv_[0-9A-Za-z]{32}$`)

// orgURL is the path of the organisation id, with more path segments
// appended.
func orgURL(id string, more ...string) string {
	return "/auth/orgs/" + url.PathEscape(id) + strings.Join(append([]string{""}, more...), "/")
}

// decodeAs decodes res's body into a new T, failing unless res has status.
func decodeAs[T any](t testing.TB, res response, status int) T {
	t.Helper()
	var v T
	if res.Status != status {
		t.Fatalf("status %d, want %d: %s", res.Status, status, res.Body)
	}
	if err := json.Unmarshal(res.Body, &v); err != nil {
		t.Fatalf("%s: %v", res.Body, err)
	}
	return v
}

// createOrg creates an organisation named name for tok, which owns it.
func (e *testEnv) createOrg(tok, name string) orgAnswer {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name})
	res := e.do("POST", "/auth/orgs", bearer(tok), str(string(body)))
	o := decodeAs[orgAnswer](e.t, res, http.StatusCreated)
	if loc := res.Header.Get("Location"); loc != orgURL(o.ID) {
		e.t.Errorf("Location %q, want %s", loc, orgURL(o.ID))
	}
	return o
}

// invite invites someone into the organisation with body, as tok, and
// fails unless it is created. The token is remembered: it must never be
// logged.
func (e *testEnv) invite(tok, orgID, body string) invitationAnswer {
	e.t.Helper()
	inv := decodeAs[invitationAnswer](e.t, e.do("POST", orgURL(orgID, "invitations"), bearer(tok), str(body)), http.StatusCreated)
	e.remember(inv.Token)
	return inv
}

// accept accepts the invitation token as tok.
func (e *testEnv) accept(tok, token string) response {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"token": token})
	return e.do("POST", "/auth/invitations/accept", bearer(tok), str(string(body)))
}

// join makes newcomer a member of the organisation with role, invited by
// inviter.
func (e *testEnv) join(inviter, orgID, role, newcomer string) {
	e.t.Helper()
	e.joinVia(e, inviter, orgID, role, newcomer)
}

// joinVia is join with the invitation accepted through the server to,
// another server on the same database (or e).
func (e *testEnv) joinVia(to *testEnv, inviter, orgID, role, newcomer string) {
	e.t.Helper()
	inv := e.invite(inviter, orgID, `{"role":"`+role+`"}`)
	to.remember(inv.Token)
	if o := decodeAs[orgAnswer](e.t, to.accept(newcomer, inv.Token), http.StatusOK); o.ID != orgID || o.Role != role {
		e.t.Fatalf("joined %+v, want %s as %s", o, orgID, role)
	}
}

// orgKey creates a key of the organisation as tok with body (nil: none).
func (e *testEnv) orgKey(tok, orgID string, body *string) createdKey {
	e.t.Helper()
	res := e.do("POST", orgURL(orgID, "api-keys"), bearer(tok), body)
	k := decodeAs[createdKey](e.t, res, http.StatusCreated)
	if loc := res.Header.Get("Location"); loc != orgURL(orgID, "api-keys", k.ID) {
		e.t.Errorf("Location %q, want %s", loc, orgURL(orgID, "api-keys", k.ID))
	}
	return k
}

// members lists the organisation's members as tok, by user id.
func (e *testEnv) members(tok, orgID string) map[string]memberAnswer {
	e.t.Helper()
	out := decodeAs[struct {
		Members []memberAnswer `json:"members"`
	}](e.t, e.do("GET", orgURL(orgID, "members"), bearer(tok), nil), http.StatusOK)
	m := map[string]memberAnswer{}
	for _, mb := range out.Members {
		m[mb.UserID] = mb
	}
	return m
}

// roleOf returns user's role in the organisation as its owner sees it, ""
// when not a member.
func (e *testEnv) roleOf(owner, orgID, user string) string {
	e.t.Helper()
	return e.members(owner, orgID)[user].Role
}

// orgKeys lists the organisation's keys as tok.
func (e *testEnv) orgKeys(tok, orgID string) []map[string]any {
	e.t.Helper()
	return decodeAs[struct {
		APIKeys []map[string]any `json:"api_keys"`
	}](e.t, e.do("GET", orgURL(orgID, "api-keys"), bearer(tok), nil), http.StatusOK).APIKeys
}

// orgEvents reads the organisation's audit log as tok (one page of 100).
func (e *testEnv) orgEvents(tok, orgID string) []auditEvent {
	e.t.Helper()
	return decodeAs[struct {
		Events []auditEvent `json:"audit_events"`
	}](e.t, e.do("GET", orgURL(orgID, "audit-events")+"?limit=100", bearer(tok), nil), http.StatusOK).Events
}

// orgIDs lists the ids of tok's organisations.
func (e *testEnv) orgIDs(tok string) []string {
	e.t.Helper()
	out := decodeAs[struct {
		Orgs []orgAnswer `json:"orgs"`
	}](e.t, e.do("GET", "/auth/orgs", bearer(tok), nil), http.StatusOK)
	ids := []string{}
	for _, o := range out.Orgs {
		ids = append(ids, o.ID)
	}
	return ids
}

func TestOrgsCreateListGetUpdate(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice, bob := e.token("alice"), e.token("bob")

		before := e.Clock.Now().UTC().Truncate(time.Millisecond)
		res := e.do("POST", "/auth/orgs", bearer(alice), str(`{"name":"  Acme \t","id":"mine","role":"member","color":"blue"}`))
		wantNoStore(t, res)
		created := res.JSON(t)
		o := decodeAs[orgAnswer](t, res, http.StatusCreated)
		if !uuidPattern.MatchString(o.ID) || o.Name != "Acme" || o.Role != "owner" || o.MaxKeyLifetimeSeconds != nil {
			t.Fatalf("created %s", res.Body)
		}
		if at, err := time.Parse(time.RFC3339, o.CreatedAt); err != nil || !timestampPattern.MatchString(o.CreatedAt) || at.Before(before) {
			t.Errorf("created_at %q", o.CreatedAt)
		}
		if got := slices.Sorted(maps.Keys(created)); !slices.Equal(got, []string{"created_at", "id", "max_key_lifetime_seconds", "name", "role"}) {
			t.Errorf("fields %v", got)
		}
		if loc := res.Header.Get("Location"); loc != "/auth/orgs/"+o.ID {
			t.Errorf("Location %q", loc)
		}

		// Listed with the caller's role; nobody else's.
		if got := e.orgIDs(alice); !slices.Equal(got, []string{o.ID}) {
			t.Errorf("alice's organisations %v", got)
		}
		if res := e.do("GET", "/auth/orgs", bearer(bob), nil); res.Status != 200 || strings.TrimSpace(string(res.Body)) != `{"orgs":[]}` {
			t.Errorf("bob's organisations: %d %s", res.Status, res.Body)
		}
		second := e.createOrg(alice, "Second")
		if got := e.orgIDs(alice); !slices.Equal(got, []string{o.ID, second.ID}) {
			t.Errorf("alice's organisations %v, want oldest first", got)
		}
		if got := decodeAs[orgAnswer](t, e.do("GET", orgURL(o.ID), bearer(alice), nil), http.StatusOK); !reflect.DeepEqual(got, o) {
			t.Errorf("GET %+v, created %+v", got, o)
		}

		// Not a member, unknown, malformed: the same 404.
		for _, c := range []struct{ name, id string }{
			{"NotAMember", o.ID},
			{"Unknown", "01a213af-7098-770f-9058-153ce297df3b"},
			{"TooLong", strings.Repeat("a", 256)},
			{"ControlCharacter", "a\x01b"},
			{"Spaces", " "},
		} {
			t.Run("NotFound"+c.name, func(t *testing.T) {
				wantError(t, e.do("GET", orgURL(c.id), bearer(bob), nil), http.StatusNotFound, "NOT_FOUND")
				wantError(t, e.do("GET", orgURL(c.id, "api-keys"), bearer(bob), nil), http.StatusNotFound, "NOT_FOUND")
			})
		}

		t.Run("BadNames", func(t *testing.T) {
			for _, c := range []struct{ name, body string }{
				{"NoBody", ""},
				{"Empty", `{}`},
				{"NameEmpty", `{"name":""}`},
				{"NameBlank", `{"name":"  \t "}`},
				{"NameNull", `{"name":null}`},
				{"NameNumber", `{"name":42}`},
				{"NameArray", `{"name":["a"]}`},
				{"Name101", `{"name":"` + strings.Repeat("é", 101) + `"}`},
				{"NameControl", `{"name":"a\u0007b"}`},
				{"NameBidi", `{"name":"a\u202eb"}`},
				{"NotJSON", `{"name":`},
				{"Array", `[{"name":"x"}]`},
				{"Duplicate", `{"name":"a","name":"b"}`},
			} {
				t.Run(c.name, func(t *testing.T) {
					var body *string
					if c.body != "" {
						body = str(c.body)
					}
					wantError(t, e.do("POST", "/auth/orgs", bearer(bob), body), http.StatusBadRequest, "INVALID_REQUEST")
					if got := e.orgIDs(bob); len(got) != 0 {
						t.Fatalf("a refused create made %v", got)
					}
				})
			}
		})

		t.Run("Update", func(t *testing.T) {
			got := decodeAs[orgAnswer](t, e.do("PATCH", orgURL(o.ID), bearer(alice), str(`{"name":" Acme Ltd ","max_key_lifetime_seconds":3600,"role":"member"}`)), http.StatusOK)
			if got.Name != "Acme Ltd" || got.MaxKeyLifetimeSeconds == nil || *got.MaxKeyLifetimeSeconds != 3600 || got.Role != "owner" || got.CreatedAt != o.CreatedAt {
				t.Fatalf("updated %+v", got)
			}
			tenYears := int64(10 * 365 * 24 * 3600)
			for _, c := range []struct{ name, body string }{
				{"NoBody", ""},
				{"Empty", `{}`},
				{"UnknownOnly", `{"color":"red"}`},
				{"NameEmpty", `{"name":""}`},
				{"NameNull", `{"name":null}`},
				{"NameNumber", `{"name":1}`},
				{"LifetimeZero", `{"max_key_lifetime_seconds":0}`},
				{"LifetimeNegative", `{"max_key_lifetime_seconds":-1}`},
				{"LifetimeFraction", `{"max_key_lifetime_seconds":1.5}`},
				{"LifetimeExponent", `{"max_key_lifetime_seconds":1e3}`},
				{"LifetimeString", `{"max_key_lifetime_seconds":"60"}`},
				{"LifetimeTooLong", `{"max_key_lifetime_seconds":` + strconv.FormatInt(tenYears*2, 10) + `}`},
				{"LifetimeHuge", `{"max_key_lifetime_seconds":99999999999999999999999}`},
				{"GoodNameBadLifetime", `{"name":"Changed","max_key_lifetime_seconds":0}`},
			} {
				t.Run(c.name, func(t *testing.T) {
					var body *string
					if c.body != "" {
						body = str(c.body)
					}
					wantError(t, e.do("PATCH", orgURL(o.ID), bearer(alice), body), http.StatusBadRequest, "INVALID_REQUEST")
					if now := decodeAs[orgAnswer](t, e.do("GET", orgURL(o.ID), bearer(alice), nil), http.StatusOK); !reflect.DeepEqual(now, got) {
						t.Fatalf("a refused change changed %+v into %+v", got, now)
					}
				})
			}
			got = decodeAs[orgAnswer](t, e.do("PATCH", orgURL(o.ID), bearer(alice), str(`{"max_key_lifetime_seconds":null}`)), http.StatusOK)
			if got.MaxKeyLifetimeSeconds != nil || got.Name != "Acme Ltd" {
				t.Errorf("after clearing the lifetime: %+v", got)
			}
			// A non-member cannot tell it exists, even with a bad body.
			wantError(t, e.do("PATCH", orgURL(o.ID), bearer(bob), str(`{"name":"Mine"}`)), http.StatusNotFound, "NOT_FOUND")
		})
	})
}

// TestOrgRoles walks every organisation route with each role, and with no
// membership at all: owner, admin and member may do what docs/organisations.md
// says and get 403 INSUFFICIENT_ROLE otherwise; a non-member gets 404.
func TestOrgRoles(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		owner, admin, member, outsider := e.token("olivia"), e.token("adam"), e.token("mia"), e.token("otto")
		o := e.createOrg(owner, "Roles")
		e.join(owner, o.ID, "admin", admin)
		e.join(owner, o.ID, "member", member)
		stranger := e.createOrg(outsider, "Elsewhere") // the outsider is an owner, elsewhere
		callers := []struct {
			name, tok string
		}{{"owner", owner}, {"admin", admin}, {"member", member}, {"outsider", outsider}}

		// newKey is a fresh key of the organisation; newMember a fresh member;
		// newInvitation a fresh invitation.
		n := 0
		newKey := func() string { return e.orgKey(owner, o.ID, str(`{"name":"k"}`)).ID }
		newMember := func() string {
			n++
			sub := "extra-" + strconv.Itoa(n)
			e.join(owner, o.ID, "member", e.token(sub))
			return sub
		}
		newInvitation := func() string { return e.invite(owner, o.ID, `{"role":"member"}`).ID }
		fixed := func(p string) func() string { return func() string { return p } }
		k := newKey()

		for _, c := range []struct {
			name   string
			method string
			path   func() string
			body   string
			want   [4]int // owner, admin, member, outsider
		}{
			{"GetOrg", "GET", fixed(orgURL(o.ID)), "", [4]int{200, 200, 200, 404}},
			{"PatchOrg", "PATCH", fixed(orgURL(o.ID)), `{"name":"Roles"}`, [4]int{200, 403, 403, 404}},
			{"ListMembers", "GET", fixed(orgURL(o.ID, "members")), "", [4]int{200, 200, 200, 404}},
			{"ChangeRole", "PATCH", func() string { return orgURL(o.ID, "members", newMember()) }, `{"role":"admin"}`, [4]int{200, 403, 403, 404}},
			{"RemoveMember", "DELETE", func() string { return orgURL(o.ID, "members", newMember()) }, "", [4]int{204, 403, 403, 404}},
			{"ListInvitations", "GET", fixed(orgURL(o.ID, "invitations")), "", [4]int{200, 200, 403, 404}},
			{"InviteMember", "POST", fixed(orgURL(o.ID, "invitations")), `{"role":"member"}`, [4]int{201, 201, 403, 404}},
			{"InviteAdmin", "POST", fixed(orgURL(o.ID, "invitations")), `{"role":"admin"}`, [4]int{201, 201, 403, 404}},
			{"InviteOwner", "POST", fixed(orgURL(o.ID, "invitations")), `{"role":"owner"}`, [4]int{201, 403, 403, 404}},
			{"RevokeInvitation", "DELETE", func() string { return orgURL(o.ID, "invitations", newInvitation()) }, "", [4]int{204, 204, 403, 404}},
			{"CreateKey", "POST", fixed(orgURL(o.ID, "api-keys")), `{"name":"new"}`, [4]int{201, 201, 403, 404}},
			{"ListKeys", "GET", fixed(orgURL(o.ID, "api-keys")), "", [4]int{200, 200, 200, 404}},
			{"UpdateKey", "PATCH", fixed(orgURL(o.ID, "api-keys", k)), `{"name":"renamed"}`, [4]int{200, 200, 403, 404}},
			{"RollKey", "POST", func() string { return orgURL(o.ID, "api-keys", newKey(), "roll") }, "", [4]int{201, 201, 403, 404}},
			{"RevokeKey", "DELETE", func() string { return orgURL(o.ID, "api-keys", newKey()) }, "", [4]int{204, 204, 403, 404}},
			{"KeyUsage", "GET", fixed(orgURL(o.ID, "api-keys", k, "usage")), "", [4]int{200, 200, 200, 404}},
			{"Usage", "GET", fixed(orgURL(o.ID, "usage")), "", [4]int{200, 200, 200, 404}},
			{"AuditEvents", "GET", fixed(orgURL(o.ID, "audit-events")), "", [4]int{200, 200, 200, 404}},
			// The personal routes reach an organisation key by its id, with
			// the same rules.
			{"PersonalUpdateKey", "PATCH", fixed("/auth/api-keys/" + k), `{"name":"renamed again"}`, [4]int{200, 200, 403, 404}},
			{"PersonalRollKey", "POST", func() string { return "/auth/api-keys/" + newKey() + "/roll" }, "", [4]int{201, 201, 403, 404}},
			{"PersonalRevokeKey", "DELETE", func() string { return "/auth/api-keys/" + newKey() }, "", [4]int{204, 204, 403, 404}},
			{"PersonalKeyUsage", "GET", fixed("/auth/api-keys/" + k + "/usage"), "", [4]int{200, 200, 200, 404}},
			{"DeleteOrg", "DELETE", fixed(orgURL(o.ID)), "", [4]int{0, 403, 403, 404}}, // the owner's is last, below
		} {
			t.Run(c.name, func(t *testing.T) {
				for i, caller := range callers {
					want := c.want[i]
					if want == 0 {
						continue
					}
					var body *string
					if c.body != "" {
						body = str(c.body)
					}
					p := c.path()
					res := e.do(c.method, p, bearer(caller.tok), body)
					switch want {
					case 403:
						wantError(t, res, 403, "INSUFFICIENT_ROLE")
					case 404:
						wantError(t, res, 404, "NOT_FOUND")
					default:
						if res.Status != want {
							t.Errorf("%s: %s %s: %d, want %d: %s", caller.name, c.method, p, res.Status, want, res.Body)
						}
					}
					wantNoStore(t, res)
				}
			})
		}

		// The personal listings stay personal.
		if keys := e.list(owner); len(keys) != 0 {
			t.Errorf("the owner's personal keys list %+v", keys)
		}
		// The outsider's own organisation was never touched.
		if got := decodeAs[orgAnswer](t, e.do("GET", orgURL(stranger.ID), bearer(outsider), nil), http.StatusOK); !reflect.DeepEqual(got, stranger) {
			t.Errorf("the other organisation: %+v", got)
		}
		if res := e.do("DELETE", orgURL(o.ID), bearer(owner), nil); res.Status != http.StatusNoContent {
			t.Fatalf("the owner's delete: %d %s", res.Status, res.Body)
		}
		for _, c := range callers[:3] {
			wantError(t, e.do("GET", orgURL(o.ID), bearer(c.tok), nil), 404, "NOT_FOUND")
		}
	})
}

// TestOrgJWTRequired: an API key, even the organisation's own, manages
// nothing of an organisation: 403 JWT_REQUIRED before any body is read,
// and nothing changes.
func TestOrgJWTRequired(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice := e.token("alice")
		o := e.createOrg(alice, "Keys manage nothing")
		orgsKey := e.orgKey(alice, o.ID, nil)
		personal := e.create(alice, nil)
		inv := e.invite(alice, o.ID, `{"role":"member"}`)
		for _, key := range []struct{ name, key string }{{"OrgKey", orgsKey.Key}, {"PersonalKey", personal.Key}} {
			for _, c := range []struct{ method, path, body string }{
				{"POST", "/auth/orgs", `{"name":"x"}`},
				{"POST", "/auth/orgs", `{"name":`},
				{"GET", "/auth/orgs", ""},
				{"GET", orgURL(o.ID), ""},
				{"PATCH", orgURL(o.ID), `{"name":"x"}`},
				{"DELETE", orgURL(o.ID), ""},
				{"GET", orgURL(o.ID, "members"), ""},
				{"PATCH", orgURL(o.ID, "members", "alice"), `{"role":"member"}`},
				{"DELETE", orgURL(o.ID, "members", "alice"), ""},
				{"GET", orgURL(o.ID, "invitations"), ""},
				{"POST", orgURL(o.ID, "invitations"), `{"role":"owner"}`},
				{"DELETE", orgURL(o.ID, "invitations", inv.ID), ""},
				{"POST", "/auth/invitations/accept", `{"token":"` + inv.Token + `"}`},
				{"POST", orgURL(o.ID, "api-keys"), `{"name":"x"}`},
				{"GET", orgURL(o.ID, "api-keys"), ""},
				{"PATCH", orgURL(o.ID, "api-keys", orgsKey.ID), `{"name":"x"}`},
				{"DELETE", orgURL(o.ID, "api-keys", orgsKey.ID), ""},
				{"POST", orgURL(o.ID, "api-keys", orgsKey.ID, "roll"), ""},
				{"GET", orgURL(o.ID, "api-keys", orgsKey.ID, "usage"), ""},
				{"GET", orgURL(o.ID, "usage"), ""},
				{"GET", orgURL(o.ID, "audit-events"), ""},
				{"DELETE", "/auth/api-keys/" + orgsKey.ID, ""},
			} {
				t.Run(key.name+"_"+c.method+strings.ReplaceAll(c.path, "/", "_"), func(t *testing.T) {
					var body *string
					if c.body != "" {
						body = str(c.body)
					}
					wantError(t, e.do(c.method, c.path, hdr("X-Api-Key", key.key), body), http.StatusForbidden, "JWT_REQUIRED")
				})
			}
		}
		// Nothing changed: the organisation, its key, the invitation.
		if got := e.orgIDs(alice); !slices.Equal(got, []string{o.ID}) {
			t.Errorf("organisations %v", got)
		}
		if s := e.verifyKey(orgsKey.Key); s != http.StatusOK {
			t.Errorf("the organisation's key: %d", s)
		}
		if got := e.members(alice, o.ID); len(got) != 1 || got["alice"].Role != "owner" {
			t.Errorf("members %+v", got)
		}
		if res := e.accept(e.token("bob"), inv.Token); res.Status != http.StatusOK {
			t.Errorf("the invitation after refusals: %d %s", res.Status, res.Body)
		}
	})
}

// TestOrgLastOwner: the last owner cannot leave, be removed or be demoted
// (409 LAST_OWNER, and nothing changes); with two owners, either may go.
func TestOrgLastOwner(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice, bob, carol := e.token("alice"), e.token("bob"), e.token("carol")
		o := e.createOrg(alice, "Owners")
		e.join(alice, o.ID, "member", carol)

		wantLast := func(res response) {
			t.Helper()
			wantError(t, res, http.StatusConflict, "LAST_OWNER")
			if r := e.roleOf(alice, o.ID, "alice"); r != "owner" {
				t.Fatalf("alice is %q after a refusal", r)
			}
		}
		wantLast(e.do("PATCH", orgURL(o.ID, "members", "alice"), bearer(alice), str(`{"role":"admin"}`)))
		wantLast(e.do("PATCH", orgURL(o.ID, "members", "alice"), bearer(alice), str(`{"role":"member"}`)))
		wantLast(e.do("DELETE", orgURL(o.ID, "members", "alice"), bearer(alice), nil))

		// Bad roles change nothing either.
		for _, body := range []string{`{"role":"boss"}`, `{"role":"OWNER"}`, `{"role":""}`, `{"role":null}`, `{"role":1}`, `{}`, `{"rank":"admin"}`} {
			wantError(t, e.do("PATCH", orgURL(o.ID, "members", "carol"), bearer(alice), str(body)), http.StatusBadRequest, "INVALID_REQUEST")
			if r := e.roleOf(alice, o.ID, "carol"); r != "member" {
				t.Fatalf("after %s carol is %q", body, r)
			}
		}
		// Not a member: 404, whoever asks.
		wantError(t, e.do("PATCH", orgURL(o.ID, "members", "bob"), bearer(alice), str(`{"role":"admin"}`)), 404, "NOT_FOUND")
		wantError(t, e.do("DELETE", orgURL(o.ID, "members", "bob"), bearer(alice), nil), 404, "NOT_FOUND")

		// A second owner: now either may step down, not both.
		e.join(alice, o.ID, "owner", bob)
		m := decodeAs[memberAnswer](t, e.do("PATCH", orgURL(o.ID, "members", "alice"), bearer(alice), str(`{"role":"admin"}`)), http.StatusOK)
		if m.UserID != "alice" || m.Role != "admin" {
			t.Errorf("demoted %+v", m)
		}
		wantError(t, e.do("DELETE", orgURL(o.ID, "members", "bob"), bearer(bob), nil), http.StatusConflict, "LAST_OWNER")
		wantError(t, e.do("PATCH", orgURL(o.ID, "members", "bob"), bearer(bob), str(`{"role":"member"}`)), http.StatusConflict, "LAST_OWNER")
		// An admin may leave; a member may leave.
		if res := e.do("DELETE", orgURL(o.ID, "members", "carol"), bearer(carol), nil); res.Status != http.StatusNoContent {
			t.Fatalf("carol leaves: %d %s", res.Status, res.Body)
		}
		if res := e.do("DELETE", orgURL(o.ID, "members", "alice"), bearer(alice), nil); res.Status != http.StatusNoContent {
			t.Fatalf("alice leaves: %d %s", res.Status, res.Body)
		}
		if got := e.members(bob, o.ID); len(got) != 1 || got["bob"].Role != "owner" {
			t.Errorf("members %+v", got)
		}
	})
}

// TestOrgRemovedMember: a removed member loses access at once; their
// personal keys and the organisation's keys, those they made included, are
// untouched.
func TestOrgRemovedMember(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice, bob := e.token("alice"), e.token("bob")
		o := e.createOrg(alice, "Team")
		e.join(alice, o.ID, "admin", bob)
		bobsOrgKey := e.orgKey(bob, o.ID, str(`{"name":"CI"}`))
		bobsOwn := e.create(bob, str(`{"name":"mine"}`))
		for _, k := range []string{bobsOrgKey.Key, bobsOwn.Key} {
			e.waitCached(k) // a removal must not depend on a cache's timing
		}

		if res := e.do("DELETE", orgURL(o.ID, "members", "bob"), bearer(alice), nil); res.Status != http.StatusNoContent || len(res.Body) != 0 {
			t.Fatalf("remove: %d %q", res.Status, res.Body)
		}
		// At once, on every route, and the same 404 as for a stranger.
		for _, c := range []struct{ method, path, body string }{
			{"GET", orgURL(o.ID), ""},
			{"GET", orgURL(o.ID, "api-keys"), ""},
			{"POST", orgURL(o.ID, "api-keys"), `{"name":"after"}`},
			{"PATCH", orgURL(o.ID, "api-keys", bobsOrgKey.ID), `{"name":"mine now"}`},
			{"DELETE", orgURL(o.ID, "api-keys", bobsOrgKey.ID), ""},
			{"DELETE", "/auth/api-keys/" + bobsOrgKey.ID, ""},
			{"POST", "/auth/api-keys/" + bobsOrgKey.ID + "/roll", ""},
			{"GET", orgURL(o.ID, "audit-events"), ""},
			{"GET", orgURL(o.ID, "members"), ""},
			{"POST", orgURL(o.ID, "invitations"), `{"role":"member"}`},
		} {
			var body *string
			if c.body != "" {
				body = str(c.body)
			}
			wantError(t, e.do(c.method, c.path, bearer(bob), body), http.StatusNotFound, "NOT_FOUND")
		}
		if got := e.orgIDs(bob); len(got) != 0 {
			t.Errorf("bob still lists %v", got)
		}
		// Both keys keep working; the organisation's key is still listed as
		// made by bob.
		if s := e.verifyKey(bobsOrgKey.Key); s != http.StatusOK {
			t.Errorf("the organisation's key bob made: %d", s)
		}
		if s := e.verifyKey(bobsOwn.Key); s != http.StatusOK {
			t.Errorf("bob's personal key: %d", s)
		}
		if l := e.list(bob); len(l) != 1 || l[0].ID != bobsOwn.ID {
			t.Errorf("bob's keys %+v", l)
		}
		keys := e.orgKeys(alice, o.ID)
		if len(keys) != 1 || keys[0]["id"] != bobsOrgKey.ID || keys[0]["created_by"] != "bob" || keys[0]["name"] != "CI" {
			t.Errorf("the organisation's keys %v", keys)
		}
	})
}

// TestOrgInvitations: an invitation is shown once, listed without its
// token, accepted once, until it expires or is withdrawn; an invitation for
// an email is only that account's; bad input is 400 and changes nothing.
func TestOrgInvitations(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice := e.token("alice")
		o := e.createOrg(alice, "Invites")
		pending := func() []map[string]any {
			t.Helper()
			return decodeAs[struct {
				Invitations []map[string]any `json:"invitations"`
			}](t, e.do("GET", orgURL(o.ID, "invitations"), bearer(alice), nil), http.StatusOK).Invitations
		}

		t.Run("Once", func(t *testing.T) {
			before := e.Clock.Now()
			res := e.do("POST", orgURL(o.ID, "invitations"), bearer(alice), str(`{"role":"admin","note":"ignored"}`))
			wantNoStore(t, res)
			inv := decodeAs[invitationAnswer](t, res, http.StatusCreated)
			e.remember(inv.Token)
			if !invitationTokenPattern.MatchString(inv.Token) || inv.Role != "admin" || inv.Email != nil || !uuidPattern.MatchString(inv.ID) {
				t.Fatalf("invitation %s", res.Body)
			}
			if exp, err := time.Parse(time.RFC3339, inv.ExpiresAt); err != nil || exp.Sub(before) < 7*24*time.Hour-time.Second || exp.Sub(before) > 7*24*time.Hour+time.Minute {
				t.Errorf("expires_at %s, want 7 days from now", inv.ExpiresAt)
			}
			// Listed without the token.
			list := e.do("GET", orgURL(o.ID, "invitations"), bearer(alice), nil)
			if strings.Contains(string(list.Body), inv.Token) || strings.Contains(string(list.Body), inv.Token[4:]) {
				t.Fatal("the list shows the token")
			}
			ls := pending()
			if len(ls) != 1 || ls[0]["id"] != inv.ID || ls[0]["role"] != "admin" || ls[0]["created_by"] != "alice" || ls[0]["expires_at"] != inv.ExpiresAt {
				t.Fatalf("pending %v", ls)
			}
			if got := slices.Sorted(maps.Keys(ls[0])); !slices.Equal(got, []string{"created_at", "created_by", "email", "expires_at", "id", "role"}) {
				t.Errorf("fields %v", got)
			}

			bob, carol := e.token("bob"), e.token("carol")
			joined := decodeAs[orgAnswer](t, e.accept(bob, inv.Token), http.StatusOK)
			if joined.ID != o.ID || joined.Role != "admin" || joined.Name != "Invites" {
				t.Errorf("joined %+v", joined)
			}
			if m := e.members(alice, o.ID)["bob"]; m.Role != "admin" || m.Email != nil || !timestampPattern.MatchString(m.JoinedAt) {
				t.Errorf("bob's membership %+v", m)
			}
			// Used: nobody joins with it again, and it is no longer pending.
			wantError(t, e.accept(carol, inv.Token), http.StatusNotFound, "NOT_FOUND")
			wantError(t, e.accept(bob, inv.Token), http.StatusNotFound, "NOT_FOUND")
			if _, ok := e.members(alice, o.ID)["carol"]; ok {
				t.Error("carol joined with a used invitation")
			}
			if ls := pending(); len(ls) != 0 {
				t.Errorf("pending after use: %v", ls)
			}
			wantError(t, e.do("DELETE", orgURL(o.ID, "invitations", inv.ID), bearer(alice), nil), 404, "NOT_FOUND")
		})

		t.Run("Expired", func(t *testing.T) {
			inv := e.invite(alice, o.ID, `{"role":"member"}`)
			exp, err := time.Parse(time.RFC3339, inv.ExpiresAt)
			if err != nil {
				t.Fatal(err)
			}
			e.advancePast(exp)
			alice = e.token("alice") // a login token lasts an hour
			wantError(t, e.accept(e.token("dave"), inv.Token), http.StatusNotFound, "NOT_FOUND")
			if _, ok := e.members(alice, o.ID)["dave"]; ok {
				t.Error("dave joined with an expired invitation")
			}
			if ls := pending(); len(ls) != 0 {
				t.Errorf("an expired invitation is pending: %v", ls)
			}
		})

		t.Run("Revoked", func(t *testing.T) {
			inv := e.invite(alice, o.ID, `{"role":"member"}`)
			kept := e.invite(alice, o.ID, `{"role":"member"}`)
			if res := e.do("DELETE", orgURL(o.ID, "invitations", inv.ID), bearer(alice), nil); res.Status != http.StatusNoContent || len(res.Body) != 0 {
				t.Fatalf("revoke: %d %s", res.Status, res.Body)
			}
			wantError(t, e.do("DELETE", orgURL(o.ID, "invitations", inv.ID), bearer(alice), nil), 404, "NOT_FOUND")
			wantError(t, e.accept(e.token("erin"), inv.Token), http.StatusNotFound, "NOT_FOUND")
			if _, ok := e.members(alice, o.ID)["erin"]; ok {
				t.Error("erin joined with a withdrawn invitation")
			}
			// Another organisation's invitation id is not this one's.
			other := e.createOrg(alice, "Other")
			wantError(t, e.do("DELETE", orgURL(other.ID, "invitations", kept.ID), bearer(alice), nil), 404, "NOT_FOUND")
			if ls := pending(); len(ls) != 1 || ls[0]["id"] != kept.ID {
				t.Errorf("pending %v, want only the kept one", ls)
			}
		})

		t.Run("AlreadyMember", func(t *testing.T) {
			frank := e.token("frank")
			e.join(alice, o.ID, "admin", frank)
			// A lower role leaves the higher one; the invitation is used up.
			inv := e.invite(alice, o.ID, `{"role":"member"}`)
			if got := decodeAs[orgAnswer](t, e.accept(frank, inv.Token), http.StatusOK); got.Role != "admin" {
				t.Errorf("frank is %q, want admin kept", got.Role)
			}
			wantError(t, e.accept(e.token("gina"), inv.Token), http.StatusNotFound, "NOT_FOUND")
			// A higher one raises it.
			inv = e.invite(alice, o.ID, `{"role":"owner"}`)
			if got := decodeAs[orgAnswer](t, e.accept(frank, inv.Token), http.StatusOK); got.Role != "owner" {
				t.Errorf("frank is %q, want owner", got.Role)
			}
			if r := e.roleOf(alice, o.ID, "frank"); r != "owner" {
				t.Errorf("frank is listed as %q", r)
			}
		})

		t.Run("BadInput", func(t *testing.T) {
			before := pending()
			for _, c := range []struct{ name, body string }{
				{"NoBody", ""},
				{"NoRole", `{}`},
				{"RoleUnknown", `{"role":"boss"}`},
				{"RoleUpperCase", `{"role":"ADMIN"}`},
				{"RoleEmpty", `{"role":""}`},
				{"RoleNull", `{"role":null}`},
				{"RoleNumber", `{"role":1}`},
				{"EmailNumber", `{"role":"member","email":5}`},
				{"EmailNotAnAddress", `{"role":"member","email":"not an address"}`},
				{"NotJSON", `{"role":`},
			} {
				t.Run("Invite"+c.name, func(t *testing.T) {
					var body *string
					if c.body != "" {
						body = str(c.body)
					}
					wantError(t, e.do("POST", orgURL(o.ID, "invitations"), bearer(alice), body), http.StatusBadRequest, "INVALID_REQUEST")
					if after := pending(); len(after) != len(before) {
						t.Fatalf("a refused invitation is pending: %v", after)
					}
				})
			}
			hank := e.token("hank")
			unknown := "inv_" + strings.Repeat("A", 32)
			for _, c := range []struct {
				name, body string
				status     int
			}{
				{"NoBody", "", 400},
				{"NoToken", `{}`, 400},
				{"TokenNull", `{"token":null}`, 400},
				{"TokenNumber", `{"token":1}`, 400},
				{"TokenEmpty", `{"token":""}`, 400},
				{"TokenShort", `{"token":"inv_abc"}`, 400},
				{"TokenNoPrefix", `{"token":"` + strings.Repeat("A", 36) + `"}`, 400},
				{"TokenBadCharacter", `{"token":"inv_` + strings.Repeat("A", 31) + `-"}`, 400},
				{"TokenAPIKey", `{"token":"` + e.unknownKey() + `"}`, 400},
				{"TokenUnknown", `{"token":"` + unknown + `"}`, 404},
			} {
				t.Run("Accept"+c.name, func(t *testing.T) {
					var body *string
					if c.body != "" {
						body = str(c.body)
					}
					res := e.do("POST", "/auth/invitations/accept", bearer(hank), body)
					if c.status == 400 {
						wantError(t, res, 400, "INVALID_REQUEST")
					} else {
						wantError(t, res, 404, "NOT_FOUND")
					}
					if got := e.orgIDs(hank); len(got) != 0 {
						t.Fatalf("hank joined %v", got)
					}
				})
			}
		})
	})
}

// TestOrgInvitationEmail: with built-in accounts, an invitation that names an
// email is for that account only (in any case): another account gets 403
// INVITATION_EMAIL_MISMATCH and the invitation stays good.
func TestOrgInvitationEmail(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		const password = "correct horse battery staple"
		alice := e.token("alice")
		bobID, carolID := e.mustRegister("bob@example.com", password), e.mustRegister("carol@example.com", password)
		bob, carol := e.token(bobID), e.token(carolID)
		o := e.createOrg(alice, "For bob")

		inv := e.invite(alice, o.ID, `{"role":"member","email":"Bob@Example.COM"}`)
		if inv.Email == nil || !strings.EqualFold(*inv.Email, "bob@example.com") {
			t.Errorf("email %v", inv.Email)
		}
		wantError(t, e.accept(carol, inv.Token), http.StatusForbidden, "INVITATION_EMAIL_MISMATCH")
		// A user without an account is not bob either.
		wantError(t, e.accept(e.token("mallory"), inv.Token), http.StatusForbidden, "INVITATION_EMAIL_MISMATCH")
		if got := e.orgIDs(carol); len(got) != 0 {
			t.Fatalf("carol joined %v", got)
		}
		if got := decodeAs[orgAnswer](t, e.accept(bob, inv.Token), http.StatusOK); got.ID != o.ID || got.Role != "member" {
			t.Errorf("bob joined %+v", got)
		}
		if m := e.members(alice, o.ID)[bobID]; m.Email == nil || *m.Email != "bob@example.com" {
			t.Errorf("bob's membership %+v", m)
		}
		if m := e.members(alice, o.ID)["alice"]; m.Email != nil {
			t.Errorf("alice has no account, but an email: %+v", m)
		}
	})
}

// TestOrgKeys: an organisation's key has every feature of a personal key,
// answers as the organisation's, and verifies with org_id and created_by,
// X-Auth-Org-Id and no user.
func TestOrgKeys(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice, bob := e.token("alice"), e.token("bob")
		o := e.createOrg(alice, "Keys")
		e.join(alice, o.ID, "admin", bob)

		res := e.do("POST", orgURL(o.ID, "api-keys"), bearer(bob), str(`{"name":"deploy","scopes":["deploy:write","reports:read"],"credits":{"remaining":5},"meta":{"team":"ops"}}`))
		created := res.JSON(t)
		k := decodeAs[createdKey](t, res, http.StatusCreated)
		if loc := res.Header.Get("Location"); loc != orgURL(o.ID, "api-keys", k.ID) {
			t.Errorf("Location %q", loc)
		}
		if !reflect.DeepEqual(created["owner"], map[string]any{"type": "org", "id": o.ID}) || created["created_by"] != "bob" {
			t.Errorf("created %s", res.Body)
		}

		t.Run("Verify", func(t *testing.T) {
			res := e.verifyWith(k.Key, "?scope=deploy:write", nil)
			if res.Status != http.StatusOK {
				t.Fatalf("verify: %d %s", res.Status, res.Body)
			}
			got := res.JSON(t)
			want := map[string]any{"user_id": nil, "org_id": o.ID, "created_by": "bob", "auth_method": "api_key", "key_id": k.ID,
				"scopes": []any{"deploy:write", "reports:read"}, "meta": map[string]any{"team": "ops"}, "credits": map[string]any{"remaining": float64(4)}, "rate_limit": nil}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("verify %s, want %v", res.Body, want)
			}
			if v := res.Header.Values("X-Auth-Org-Id"); !slices.Equal(v, []string{o.ID}) {
				t.Errorf("X-Auth-Org-Id %q", v)
			}
			if v, ok := res.Header["X-Auth-User-Id"]; ok {
				t.Errorf("X-Auth-User-Id %q for an organisation key", v)
			}
			if v := res.Header.Get("X-Auth-Key-Id"); v != k.ID {
				t.Errorf("X-Auth-Key-Id %q", v)
			}
			wantRefusal(t, e.verifyWith(k.Key, "?scope=admin", nil), http.StatusForbidden, "INSUFFICIENT_SCOPE")
		})

		t.Run("List", func(t *testing.T) {
			keys := e.orgKeys(alice, o.ID)
			if len(keys) != 1 || keys[0]["id"] != k.ID || keys[0]["created_by"] != "bob" || keys[0]["name"] != "deploy" ||
				!reflect.DeepEqual(keys[0]["owner"], map[string]any{"type": "org", "id": o.ID}) {
				t.Fatalf("the organisation's keys %v", keys)
			}
			if l := e.list(bob); len(l) != 0 {
				t.Errorf("bob's personal keys list the organisation's: %+v", l)
			}
			if l := e.list(alice); len(l) != 0 {
				t.Errorf("alice's personal keys list the organisation's: %+v", l)
			}
		})

		t.Run("Update", func(t *testing.T) {
			// By alice, who did not make it; through either path.
			got := decodeAs[map[string]any](t, e.do("PATCH", orgURL(o.ID, "api-keys", k.ID), bearer(alice), str(`{"name":"deploy (prod)","credits":{"remaining":100}}`)), http.StatusOK)
			if got["name"] != "deploy (prod)" || got["created_by"] != "bob" || !reflect.DeepEqual(got["credits"], map[string]any{"remaining": float64(100), "refill": nil}) {
				t.Errorf("updated %v", got)
			}
			if res := e.do("PATCH", "/auth/api-keys/"+k.ID, bearer(bob), str(`{"enabled":false}`)); res.Status != http.StatusOK {
				t.Fatalf("disable: %d %s", res.Status, res.Body)
			}
			wantRefusal(t, e.verifyWith(k.Key, "", nil), http.StatusForbidden, "KEY_DISABLED")
			if res := e.do("PATCH", orgURL(o.ID, "api-keys", k.ID), bearer(bob), str(`{"enabled":true}`)); res.Status != http.StatusOK {
				t.Fatalf("enable: %d %s", res.Status, res.Body)
			}
			// Another organisation's path does not reach it.
			other := e.createOrg(alice, "Other")
			wantError(t, e.do("PATCH", orgURL(other.ID, "api-keys", k.ID), bearer(alice), str(`{"name":"x"}`)), 404, "NOT_FOUND")
			wantError(t, e.do("PATCH", orgURL(o.ID, "api-keys", k.ID), bearer(alice), str(`{"scopes":[]}`)), 400, "INVALID_REQUEST")
		})

		var rolled map[string]any
		t.Run("Roll", func(t *testing.T) {
			res := e.do("POST", orgURL(o.ID, "api-keys", k.ID, "roll"), bearer(alice), str(`{"grace_period_seconds":3600}`))
			rolled = decodeAs[map[string]any](t, res, http.StatusCreated)
			newID, _ := rolled["id"].(string)
			if rolled["rolled_from"] != k.ID || rolled["created_by"] != "alice" || !reflect.DeepEqual(rolled["owner"], map[string]any{"type": "org", "id": o.ID}) ||
				rolled["name"] != "deploy (prod)" {
				t.Errorf("rolled %s", res.Body)
			}
			if loc := res.Header.Get("Location"); loc != orgURL(o.ID, "api-keys", newID) {
				t.Errorf("Location %q", loc)
			}
			for _, key := range []string{k.Key, rolled["key"].(string)} {
				res := e.verifyWith(key, "", nil)
				if res.Status != http.StatusOK || res.Header.Get("X-Auth-Org-Id") != o.ID {
					t.Errorf("verify after the roll: %d %s", res.Status, res.Body)
				}
			}
			// The new key was made by alice; verify says so.
			if got := e.verifyWith(rolled["key"].(string), "", nil).JSON(t); got["created_by"] != "alice" || got["org_id"] != o.ID {
				t.Errorf("the new key verifies as %v", got)
			}
			wantError(t, e.do("POST", orgURL(o.ID, "api-keys", k.ID, "roll"), bearer(bob), nil), http.StatusConflict, "KEY_ALREADY_ROLLED")
		})

		t.Run("Usage", func(t *testing.T) {
			newID := rolled["id"].(string)
			deadline := time.Now().Add(5 * time.Second)
			for {
				u := e.usage(bob, orgURL(o.ID, "api-keys", newID, "usage"), "")
				if u.sum().Valid >= 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("usage of the organisation's key after 5 s: %+v", u.sum())
				}
				time.Sleep(100 * time.Millisecond)
			}
			summary := e.usage(bob, orgURL(o.ID, "usage"), "")
			var ids []string
			for _, kt := range summary.Keys {
				ids = append(ids, kt.KeyID)
			}
			if !slices.Contains(ids, newID) || !slices.Contains(ids, k.ID) {
				t.Errorf("the organisation's usage lists %v", ids)
			}
			if personal := e.usage(bob, "/auth/usage", ""); len(personal.Keys) != 0 {
				t.Errorf("bob's personal usage lists %+v", personal.Keys)
			}
		})

		t.Run("Audit", func(t *testing.T) {
			evs := e.orgEvents(bob, o.ID)
			seen := map[string]bool{}
			for _, ev := range evs {
				seen[ev.Action] = true
				if ev.OrgID == nil || *ev.OrgID != o.ID {
					t.Errorf("%s has org_id %v", ev.Action, ev.OrgID)
				}
			}
			for _, a := range []string{"org.created", "org.invitation.created", "org.invitation.accepted", "org.member.added", "api_key.created", "api_key.updated", "api_key.rolled"} {
				if !seen[a] {
					t.Errorf("the organisation's log lacks %s: %v", a, actions(evs))
				}
			}
			// Each acting user's own log has what they did, with org_id.
			var bobsCreate *auditEvent
			for _, ev := range e.eventsOf(bob) {
				if ev.Action == "api_key.created" && ev.KeyID != nil && *ev.KeyID == k.ID {
					bobsCreate = &ev
				}
			}
			if bobsCreate == nil || bobsCreate.OrgID == nil || *bobsCreate.OrgID != o.ID || bobsCreate.Actor.ID == nil || *bobsCreate.Actor.ID != "bob" {
				t.Errorf("bob's log: %+v", bobsCreate)
			}
			// Another organisation's log is not this one's.
			other := e.createOrg(alice, "Quiet")
			for _, ev := range e.orgEvents(alice, other.ID) {
				if ev.OrgID == nil || *ev.OrgID != other.ID {
					t.Errorf("the other organisation's log has %s of %v", ev.Action, ev.OrgID)
				}
			}
			wantError(t, e.do("GET", orgURL(o.ID, "audit-events")+"?limit=0", bearer(bob), nil), 400, "INVALID_REQUEST")
			wantError(t, e.do("GET", orgURL(o.ID, "audit-events")+"?cursor=nonsense", bearer(bob), nil), 400, "INVALID_REQUEST")
			// Paged as the personal log is.
			page := decodeAs[struct {
				Events []auditEvent `json:"audit_events"`
				Next   *string      `json:"next_cursor"`
			}](t, e.do("GET", orgURL(o.ID, "audit-events")+"?limit=2", bearer(bob), nil), http.StatusOK)
			if len(page.Events) != 2 || page.Next == nil || page.Events[0].ID != evs[0].ID {
				t.Fatalf("first page %+v", page)
			}
			next := decodeAs[struct {
				Events []auditEvent `json:"audit_events"`
			}](t, e.do("GET", orgURL(o.ID, "audit-events")+"?limit=2&cursor="+url.QueryEscape(*page.Next), bearer(bob), nil), http.StatusOK)
			if len(next.Events) == 0 || next.Events[0].ID != evs[2].ID {
				t.Errorf("second page %+v, want from %s", next.Events, evs[2].ID)
			}
		})

		t.Run("Delete", func(t *testing.T) {
			keep := e.create(alice, nil)
			if res := e.do("DELETE", orgURL(o.ID), bearer(alice), nil); res.Status != http.StatusNoContent || len(res.Body) != 0 {
				t.Fatalf("delete: %d %s", res.Status, res.Body)
			}
			for _, key := range []string{k.Key, rolled["key"].(string)} {
				wantError(t, e.verifyWith(key, "", nil), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
			}
			if s := e.verifyKey(keep.Key); s != http.StatusOK {
				t.Errorf("alice's personal key: %d", s)
			}
			wantError(t, e.do("GET", orgURL(o.ID, "api-keys"), bearer(alice), nil), 404, "NOT_FOUND")
			wantError(t, e.do("DELETE", orgURL(o.ID), bearer(alice), nil), 404, "NOT_FOUND")
			if slices.Contains(e.orgIDs(bob), o.ID) {
				t.Error("bob still lists the deleted organisation")
			}
		})
	})
}

// TestOrgKeyLimits: MAX_KEYS_PER_ORG caps an organisation's active keys,
// apart from its members' personal keys; max_key_lifetime_seconds caps how
// long each new key may live.
func TestOrgKeyLimits(t *testing.T) {
	t.Parallel()
	eachDBWith(t, func(c *config.Config) { c.MaxKeysPerOrg, c.MaxKeysPerUser = 2, 1 }, func(t *testing.T, e *testEnv) {
		alice := e.token("alice")
		o := e.createOrg(alice, "Limited")
		first := e.orgKey(alice, o.ID, nil)
		e.orgKey(alice, o.ID, nil)
		refused := func() {
			t.Helper()
			wantError(t, e.do("POST", orgURL(o.ID, "api-keys"), bearer(alice), str(`{"name":"third"}`)), http.StatusForbidden, "KEY_LIMIT_REACHED")
			if n := len(e.orgKeys(alice, o.ID)); n != 2 {
				t.Fatalf("%d keys after a refused create", n)
			}
		}
		refused()
		// The personal limit is apart.
		e.create(alice, nil)
		wantError(t, e.do("POST", "/auth/api-keys", bearer(alice), nil), http.StatusForbidden, "KEY_LIMIT_REACHED")
		// A roll succeeds at the limit; a revocation frees one slot.
		e.do("POST", orgURL(o.ID, "api-keys", first.ID, "roll"), bearer(alice), nil)
		refused()
		keys := e.orgKeys(alice, o.ID)
		if res := e.do("DELETE", orgURL(o.ID, "api-keys", keys[0]["id"].(string)), bearer(alice), nil); res.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", res.Status, res.Body)
		}
		e.orgKey(alice, o.ID, nil)
		refused()

		t.Run("MaxKeyLifetime", func(t *testing.T) {
			o := e.createOrg(alice, "Short-lived")
			if res := e.do("PATCH", orgURL(o.ID), bearer(alice), str(`{"max_key_lifetime_seconds":3600}`)); res.Status != http.StatusOK {
				t.Fatalf("patch: %d %s", res.Status, res.Body)
			}
			k := e.orgKey(alice, o.ID, nil)
			created, err := time.Parse(time.RFC3339, k.CreatedAt)
			if err != nil {
				t.Fatal(err)
			}
			if k.ExpiresAt == nil || *k.ExpiresAt != apitime.Format(created.Add(time.Hour)) {
				t.Errorf("expires_at %v, want an hour after %s", k.ExpiresAt, k.CreatedAt)
			}
			within := apitime.Format(e.Clock.Now().Add(30 * time.Minute))
			if k := e.orgKey(alice, o.ID, str(`{"expires_at":"`+within+`"}`)); k.ExpiresAt == nil || *k.ExpiresAt != within {
				t.Errorf("expires_at %v, want %s", k.ExpiresAt, within)
			}
			beyond := apitime.Format(e.Clock.Now().Add(2 * time.Hour))
			wantError(t, e.do("POST", orgURL(o.ID, "api-keys"), bearer(alice), str(`{"expires_at":"`+beyond+`"}`)), http.StatusBadRequest, "INVALID_REQUEST")
			if n := len(e.orgKeys(alice, o.ID)); n != 2 {
				t.Errorf("%d keys after a refused create, want 2", n)
			}
			// The key expires at the limit.
			e.advancePast(created.Add(time.Hour))
			wantError(t, e.verifyWith(k.Key, "", nil), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
		})
	})
}

// TestOrgLeakNotice: a leak report revoking an organisation key shows to the
// organisation's admins and owners, not to its members.
func TestOrgLeakNotice(t *testing.T) {
	t.Parallel()
	gh := leaktest.NewSigner(t, "gh-1")
	eachDBWith(t, keySetFile(t, gh), func(t *testing.T, e *testEnv) {
		alice, bob, carol, dave := e.token("alice"), e.token("bob"), e.token("carol"), e.token("dave")
		o := e.createOrg(alice, "Leaky")
		e.join(alice, o.ID, "admin", bob)
		e.join(alice, o.ID, "member", carol)
		k := e.orgKey(bob, o.ID, str(`{"name":"CI"}`))
		if res := e.signedReport(gh, reportBody(k.Key)); res.Status != http.StatusOK {
			t.Fatalf("report: %d %s", res.Status, res.Body)
		}
		wantError(t, e.verifyWith(k.Key, "", nil), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
		notices := func(tok string) []map[string]any {
			t.Helper()
			return decodeAs[struct {
				LeakNotices []map[string]any `json:"leak_notices"`
			}](t, e.do("GET", "/auth/leak-notices", bearer(tok), nil), http.StatusOK).LeakNotices
		}
		for _, who := range []struct{ name, tok string }{{"owner", alice}, {"admin", bob}} {
			if n := notices(who.tok); len(n) != 1 || n[0]["id"] != k.ID || n[0]["name"] != "CI" {
				t.Errorf("the %s's notices: %v", who.name, n)
			}
		}
		for _, who := range []struct{ name, tok string }{{"member", carol}, {"outsider", dave}} {
			if n := notices(who.tok); len(n) != 0 {
				t.Errorf("the %s sees %v", who.name, n)
			}
		}
		var leaked bool
		for _, ev := range e.orgEvents(carol, o.ID) {
			if ev.Action == "api_key.leaked" && ev.KeyID != nil && *ev.KeyID == k.ID {
				leaked = true
			}
		}
		if !leaked {
			t.Error("the organisation's log lacks api_key.leaked")
		}
	})
}

// TestOrgRoutes: every other method on an organisation path answers 405
// with Allow, and paths below them 404.
func TestOrgRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	alice := e.token("alice")
	o := e.createOrg(alice, "Routes")
	k := e.orgKey(alice, o.ID, nil)
	for _, c := range []struct {
		method, path string
		allow        string
	}{
		{"PUT", "/auth/orgs", "GET, HEAD, POST"},
		{"POST", orgURL(o.ID), "DELETE, GET, HEAD, PATCH"},
		{"POST", orgURL(o.ID, "members"), "GET, HEAD"},
		{"GET", orgURL(o.ID, "members", "alice"), "DELETE, PATCH"},
		{"PATCH", orgURL(o.ID, "invitations"), "GET, HEAD, POST"},
		{"GET", orgURL(o.ID, "invitations", "x"), "DELETE"},
		{"GET", "/auth/invitations/accept", "POST"},
		{"POST", orgURL(o.ID, "audit-events"), "GET, HEAD"},
		{"DELETE", orgURL(o.ID, "api-keys"), "GET, HEAD, POST"},
		{"GET", orgURL(o.ID, "api-keys", k.ID), "DELETE, PATCH"},
		{"GET", orgURL(o.ID, "api-keys", k.ID, "roll"), "POST"},
		{"POST", orgURL(o.ID, "api-keys", k.ID, "usage"), "GET, HEAD"},
		{"POST", orgURL(o.ID, "usage"), "GET, HEAD"},
	} {
		res := e.do(c.method, c.path, bearer(alice), nil)
		wantError(t, res, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		if got := res.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
		wantNoStore(t, res)
	}
	for _, p := range []string{"/auth/orgs/", orgURL(o.ID, "nope"), orgURL(o.ID, "api-keys", k.ID, "nope"), "/auth/invitations"} {
		wantError(t, e.do("GET", p, bearer(alice), nil), http.StatusNotFound, "NOT_FOUND")
	}
	if s := e.verifyKey(k.Key); s != http.StatusOK {
		t.Errorf("the key after 405s: %d", s)
	}
}
