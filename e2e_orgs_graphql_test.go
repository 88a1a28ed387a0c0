package main

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// The organisations in GraphQL (docs/graphql.md#organisations): every
// mutation and field, with the REST codes in extensions.code.

const (
	gqlOrgFields        = `id name role createdAt maxKeyLifetimeSeconds`
	gqlMemberFields     = `userId email role joinedAt`
	gqlInvitationFields = `id role email expiresAt createdAt createdBy`
	gqlOrgKeyFields     = `id keyPrefix name owner { type id } createdBy`

	gqlCreateOrg = `mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { ` + gqlOrgFields + ` } }`
	gqlUpdateOrg = `mutation($id: ID!, $input: UpdateOrganizationInput!) { updateOrganization(id: $id, input: $input) { ` + gqlOrgFields + ` } }`
	gqlDeleteOrg = `mutation($id: ID!) { deleteOrganization(id: $id) }`
	gqlOrgQuery  = `query($id: ID!) { organization(id: $id) { ` + gqlOrgFields + ` } }`
	gqlInvite    = `mutation($org: ID!, $input: CreateInvitationInput!) {
  createInvitation(organizationId: $org, input: $input) { invitation { ` + gqlInvitationFields + ` } token }
}`
	gqlAccept       = `mutation($token: String!) { acceptInvitation(token: $token) { ` + gqlOrgFields + ` } }`
	gqlRevokeInvite = `mutation($org: ID!, $id: ID!) { revokeInvitation(organizationId: $org, id: $id) }`
	gqlUpdateMember = `mutation($org: ID!, $user: ID!, $role: OrganizationRole!) { updateMember(organizationId: $org, userId: $user, role: $role) { ` + gqlMemberFields + ` } }`
	gqlRemoveMember = `mutation($org: ID!, $user: ID!) { removeMember(organizationId: $org, userId: $user) }`
	gqlMembers      = `query($id: ID!) { organization(id: $id) { members { ` + gqlMemberFields + ` } } }`
	gqlInvitations  = `query($id: ID!) { organization(id: $id) { invitations { ` + gqlInvitationFields + ` } } }`
	gqlOrgKeys      = `query($id: ID!) { organization(id: $id) { apiKeys { ` + gqlOrgKeyFields + ` } } }`
	gqlCreateOrgKey = `mutation($input: CreateApiKeyInput) { createApiKey(input: $input) { apiKey { ` + gqlOrgKeyFields + ` } key } }`
)

type gqlOrg struct {
	ID                    string `json:"id"`
	Name                  string `json:"name"`
	Role                  string `json:"role"`
	CreatedAt             string `json:"createdAt"`
	MaxKeyLifetimeSeconds *int64 `json:"maxKeyLifetimeSeconds"`
}

type gqlMember struct {
	UserID   string  `json:"userId"`
	Email    *string `json:"email"`
	Role     string  `json:"role"`
	JoinedAt string  `json:"joinedAt"`
}

type gqlInvitation struct {
	ID        string  `json:"id"`
	Role      string  `json:"role"`
	Email     *string `json:"email"`
	ExpiresAt string  `json:"expiresAt"`
	CreatedAt string  `json:"createdAt"`
	CreatedBy string  `json:"createdBy"`
}

type gqlOrgKey struct {
	ID        string `json:"id"`
	KeyPrefix string `json:"keyPrefix"`
	Name      string `json:"name"`
	Owner     struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"owner"`
	CreatedBy string `json:"createdBy"`
}

// gqlOK runs query as the login token tok and fails the test unless it
// answers without an error.
func (e *testEnv) gqlOK(tok, query string, vars map[string]any) gqlResponse {
	e.t.Helper()
	status, res := e.gql(bearer(tok), query, vars)
	if status != http.StatusOK || len(res.Errors) > 0 {
		e.t.Fatalf("%d %+v\nfor %s", status, res, query)
	}
	return res
}

// gqlFails runs query as tok and fails the test unless it answers exactly
// one error, with code, and no data.
func (e *testEnv) gqlFails(tok, query string, vars map[string]any, code string) {
	e.t.Helper()
	status, res := e.gql(bearer(tok), query, vars)
	wantGQLError(e.t, status, res, code)
}

// gqlNewOrg creates an organisation named name owned by tok.
func (e *testEnv) gqlNewOrg(tok, name string) gqlOrg {
	e.t.Helper()
	var o gqlOrg
	e.gqlOK(tok, gqlCreateOrg, map[string]any{"input": map[string]any{"name": name}}).decodeField(e.t, "createOrganization", &o)
	return o
}

// gqlNewInvitation invites for role into org as tok, and returns the
// invitation and its token (remembered: it must never be logged).
func (e *testEnv) gqlNewInvitation(tok, org string, input map[string]any) (gqlInvitation, string) {
	e.t.Helper()
	var out struct {
		Invitation gqlInvitation `json:"invitation"`
		Token      string        `json:"token"`
	}
	e.gqlOK(tok, gqlInvite, map[string]any{"org": org, "input": input}).decodeField(e.t, "createInvitation", &out)
	e.remember(out.Token)
	return out.Invitation, out.Token
}

// gqlJoin brings the user of tok into org with role, by an invitation
// from inviter.
func (e *testEnv) gqlJoin(inviter, tok, org, role string) {
	e.t.Helper()
	_, token := e.gqlNewInvitation(inviter, org, map[string]any{"role": role})
	var o gqlOrg
	e.gqlOK(tok, gqlAccept, map[string]any{"token": token}).decodeField(e.t, "acceptInvitation", &o)
	if o.ID != org || o.Role != role {
		e.t.Fatalf("accepted: %+v, want %s as %s", o, org, role)
	}
}

// gqlMembersOf lists org's members as tok sees them.
func (e *testEnv) gqlMembersOf(tok, org string) []gqlMember {
	e.t.Helper()
	var out struct {
		Members []gqlMember `json:"members"`
	}
	e.gqlOK(tok, gqlMembers, map[string]any{"id": org}).decodeField(e.t, "organization", &out)
	return out.Members
}

// gqlRoles returns org's members as user → role.
func (e *testEnv) gqlRoles(tok, org string) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, m := range e.gqlMembersOf(tok, org) {
		out[m.UserID] = m.Role
	}
	return out
}

// gqlOrgsOf lists the organisations of tok.
func (e *testEnv) gqlOrgsOf(tok string) []gqlOrg {
	e.t.Helper()
	var out []gqlOrg
	e.gqlOK(tok, `{ organizations { `+gqlOrgFields+` } }`, nil).decodeField(e.t, "organizations", &out)
	return out
}

// gqlKeysOf lists org's keys as tok sees them.
func (e *testEnv) gqlKeysOf(tok, org string) []gqlOrgKey {
	e.t.Helper()
	var out struct {
		APIKeys []gqlOrgKey `json:"apiKeys"`
	}
	e.gqlOK(tok, gqlOrgKeys, map[string]any{"id": org}).decodeField(e.t, "organization", &out)
	return out.APIKeys
}

// gqlNewOrgKey creates a key of org as tok, and returns it and its secret.
func (e *testEnv) gqlNewOrgKey(tok, org, name string) (gqlOrgKey, string) {
	e.t.Helper()
	var out struct {
		APIKey gqlOrgKey `json:"apiKey"`
		Key    string    `json:"key"`
	}
	e.gqlOK(tok, gqlCreateOrgKey, map[string]any{"input": map[string]any{"organizationId": org, "name": name}}).decodeField(e.t, "createApiKey", &out)
	return out.APIKey, out.Key
}

func wantTimestamp(t testing.TB, what, s string) time.Time {
	t.Helper()
	if !timestampPattern.MatchString(s) {
		t.Fatalf("%s %q is not YYYY-MM-DDTHH:MM:SS.mmmZ", what, s)
	}
	at, _ := time.Parse(time.RFC3339, s)
	return at
}

// TestGraphQLOrganizations: an organisation's life through GraphQL, with
// the rules of each role, on both databases.
func TestGraphQLOrganizations(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		t.Run("CreateUpdateDelete", func(t *testing.T) {
			e := e.subEnv(t)
			alice := e.token("org-alice")
			o := e.gqlNewOrg(alice, "  Acme  ")
			if o.ID == "" || o.Name != "Acme" || o.Role != "OWNER" || o.MaxKeyLifetimeSeconds != nil {
				t.Fatalf("created %+v", o)
			}
			if at := wantTimestamp(t, "createdAt", o.CreatedAt); time.Since(at).Abs() > time.Minute {
				t.Errorf("createdAt %s", o.CreatedAt)
			}
			if got := e.gqlOrgsOf(alice); !reflect.DeepEqual(got, []gqlOrg{o}) {
				t.Errorf("organizations %+v, want [%+v]", got, o)
			}
			var got gqlOrg
			e.gqlOK(alice, gqlOrgQuery, map[string]any{"id": o.ID}).decodeField(t, "organization", &got)
			if !reflect.DeepEqual(got, o) {
				t.Errorf("organization %+v, want %+v", got, o)
			}
			if m := e.gqlMembersOf(alice, o.ID); len(m) != 1 || m[0].UserID != "org-alice" || m[0].Role != "OWNER" || m[0].Email != nil {
				t.Errorf("members %+v", m)
			} else {
				wantTimestamp(t, "joinedAt", m[0].JoinedAt)
			}

			// A field left out is left as it is; null clears the lifetime.
			day := int64(86400)
			for _, tc := range []struct {
				name     string
				input    map[string]any
				wantName string
				wantLife *int64
			}{
				{"Name", map[string]any{"name": " Acme Inc "}, "Acme Inc", nil},
				{"Lifetime", map[string]any{"maxKeyLifetimeSeconds": day}, "Acme Inc", &day},
				{"Nothing", map[string]any{}, "Acme Inc", &day},
				{"LifetimeNull", map[string]any{"maxKeyLifetimeSeconds": nil}, "Acme Inc", nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := e.subEnv(t)
					var u gqlOrg
					e.gqlOK(alice, gqlUpdateOrg, map[string]any{"id": o.ID, "input": tc.input}).decodeField(t, "updateOrganization", &u)
					if u.ID != o.ID || u.Name != tc.wantName || u.Role != "OWNER" || u.CreatedAt != o.CreatedAt || !reflect.DeepEqual(u.MaxKeyLifetimeSeconds, tc.wantLife) {
						t.Errorf("updated %+v, want name %q, lifetime %v", u, tc.wantName, tc.wantLife)
					}
				})
			}

			// Deleting it revokes its keys and it is gone.
			_, key := e.gqlNewOrgKey(alice, o.ID, "ci")
			if !e.keyVerifies(key) {
				t.Fatal("the organisation's key does not verify")
			}
			var deleted string
			e.gqlOK(alice, gqlDeleteOrg, map[string]any{"id": o.ID}).decodeField(t, "deleteOrganization", &deleted)
			if deleted != o.ID {
				t.Errorf("deleteOrganization = %q, want %q", deleted, o.ID)
			}
			if e.keyVerifies(key) {
				t.Error("the deleted organisation's key still verifies")
			}
			e.gqlFails(alice, gqlOrgQuery, map[string]any{"id": o.ID}, "NOT_FOUND")
			e.gqlFails(alice, gqlDeleteOrg, map[string]any{"id": o.ID}, "NOT_FOUND")
			if orgs := e.gqlOrgsOf(alice); len(orgs) != 0 {
				t.Errorf("organizations after delete: %+v", orgs)
			}
		})

		t.Run("Invitations", func(t *testing.T) {
			e := e.subEnv(t)
			alice, bob, carol := e.token("inv-alice"), e.token("inv-bob"), e.token("inv-carol")
			o := e.gqlNewOrg(alice, "Invites")

			inv, token := e.gqlNewInvitation(alice, o.ID, map[string]any{"role": "ADMIN"})
			if !invitationTokenPattern.MatchString(token) {
				t.Errorf("token %.8s… is not inv_ and 32 base62 characters", token)
			}
			created, expires := wantTimestamp(t, "createdAt", inv.CreatedAt), wantTimestamp(t, "expiresAt", inv.ExpiresAt)
			if inv.ID == "" || inv.Role != "ADMIN" || inv.Email != nil || inv.CreatedBy != "inv-alice" || expires.Sub(created) != 7*24*time.Hour {
				t.Errorf("invitation %+v", inv)
			}
			var pending struct {
				Invitations []gqlInvitation `json:"invitations"`
			}
			e.gqlOK(alice, gqlInvitations, map[string]any{"id": o.ID}).decodeField(t, "organization", &pending)
			if !reflect.DeepEqual(pending.Invitations, []gqlInvitation{inv}) {
				t.Errorf("invitations %+v, want [%+v]", pending.Invitations, inv)
			}

			var joined gqlOrg
			e.gqlOK(bob, gqlAccept, map[string]any{"token": token}).decodeField(t, "acceptInvitation", &joined)
			if joined.ID != o.ID || joined.Name != "Invites" || joined.Role != "ADMIN" {
				t.Errorf("accepted %+v", joined)
			}
			// Single use: a used token is unknown, and nothing changes.
			e.gqlFails(carol, gqlAccept, map[string]any{"token": token}, "NOT_FOUND")
			e.gqlOK(alice, gqlInvitations, map[string]any{"id": o.ID}).decodeField(t, "organization", &pending)
			if len(pending.Invitations) != 0 {
				t.Errorf("a used invitation is pending: %+v", pending.Invitations)
			}

			// An admin invites, but not an owner.
			e.gqlFails(bob, gqlInvite, map[string]any{"org": o.ID, "input": map[string]any{"role": "OWNER"}}, "INSUFFICIENT_ROLE")
			inv, token = e.gqlNewInvitation(bob, o.ID, map[string]any{"role": "MEMBER", "email": "carol@example.com"})
			if inv.CreatedBy != "inv-bob" || inv.Email == nil || *inv.Email != "carol@example.com" {
				t.Errorf("invitation %+v", inv)
			}
			var revoked string
			e.gqlOK(alice, gqlRevokeInvite, map[string]any{"org": o.ID, "id": inv.ID}).decodeField(t, "revokeInvitation", &revoked)
			if revoked != inv.ID {
				t.Errorf("revokeInvitation = %q, want %q", revoked, inv.ID)
			}
			e.gqlFails(carol, gqlAccept, map[string]any{"token": token}, "NOT_FOUND")
			e.gqlFails(alice, gqlRevokeInvite, map[string]any{"org": o.ID, "id": inv.ID}, "NOT_FOUND")

			// A member neither invites nor reads the invitations.
			e.gqlJoin(alice, carol, o.ID, "MEMBER")
			e.gqlFails(carol, gqlInvite, map[string]any{"org": o.ID, "input": map[string]any{"role": "MEMBER"}}, "INSUFFICIENT_ROLE")
			e.gqlFails(carol, gqlInvitations, map[string]any{"id": o.ID}, "INSUFFICIENT_ROLE")
			inv, _ = e.gqlNewInvitation(alice, o.ID, map[string]any{"role": "MEMBER"})
			e.gqlFails(carol, gqlRevokeInvite, map[string]any{"org": o.ID, "id": inv.ID}, "INSUFFICIENT_ROLE")

			// Tokens: malformed is a bad request, well-formed but unknown
			// is not found.
			for _, bad := range []string{"", "garbage", "inv_short", token + "x", strings.Replace(token, "inv_", "key_", 1)} {
				e.gqlFails(carol, gqlAccept, map[string]any{"token": bad}, "INVALID_REQUEST")
			}
			e.gqlFails(carol, gqlAccept, map[string]any{"token": "inv_" + strings.Repeat("A", 32)}, "NOT_FOUND")

			// Bad input changes nothing.
			for _, input := range []map[string]any{
				{"role": "member"}, {"role": "SUPERUSER"}, {"role": nil}, {},
			} {
				status, res := e.gql(bearer(alice), gqlInvite, map[string]any{"org": o.ID, "input": input})
				if len(res.Errors) == 0 || res.Data["createInvitation"] != nil || (status != http.StatusOK && status/100 != 4) {
					t.Errorf("input %v: %d %+v", input, status, res)
				}
			}
			e.gqlFails(alice, gqlInvite, map[string]any{"org": o.ID, "input": map[string]any{"role": "MEMBER", "email": "not an email"}}, "INVALID_REQUEST")
			e.gqlOK(alice, gqlInvitations, map[string]any{"id": o.ID}).decodeField(t, "organization", &pending)
			if len(pending.Invitations) != 1 || pending.Invitations[0].ID != inv.ID {
				t.Errorf("invitations %+v, want only %s", pending.Invitations, inv.ID)
			}
		})

		t.Run("InvitationForAnotherEmail", func(t *testing.T) {
			e := e.subEnv(t)
			alice := e.token("mail-alice")
			o := e.gqlNewOrg(alice, "Mail")
			e.mustRegister("dave@example.com", "correct horse battery staple")
			dave := e.mustLogin("dave@example.com", "correct horse battery staple")

			_, token := e.gqlNewInvitation(alice, o.ID, map[string]any{"role": "MEMBER", "email": "erin@example.com"})
			e.gqlFails(dave, gqlAccept, map[string]any{"token": token}, "INVITATION_EMAIL_MISMATCH")
			if roles := e.gqlRoles(alice, o.ID); len(roles) != 1 {
				t.Errorf("members after a refused accept: %v", roles)
			}
			_, token = e.gqlNewInvitation(alice, o.ID, map[string]any{"role": "MEMBER", "email": "Dave@Example.com"})
			e.gqlOK(dave, gqlAccept, map[string]any{"token": token})
			for _, m := range e.gqlMembersOf(alice, o.ID) {
				if m.Role == "MEMBER" && (m.Email == nil || *m.Email != "dave@example.com") {
					t.Errorf("member %+v, want dave's email", m)
				}
			}
		})

		t.Run("Members", func(t *testing.T) {
			e := e.subEnv(t)
			alice, bob, carol := e.token("mem-alice"), e.token("mem-bob"), e.token("mem-carol")
			o := e.gqlNewOrg(alice, "Members")
			e.gqlJoin(alice, bob, o.ID, "ADMIN")
			e.gqlJoin(alice, carol, o.ID, "MEMBER")
			want := map[string]string{"mem-alice": "OWNER", "mem-bob": "ADMIN", "mem-carol": "MEMBER"}
			if got := e.gqlRoles(carol, o.ID); !reflect.DeepEqual(got, want) {
				t.Fatalf("members %v, want %v", got, want)
			}
			change := func(org, user, role string) map[string]any {
				return map[string]any{"org": org, "user": user, "role": role}
			}
			remove := func(org, user string) map[string]any { return map[string]any{"org": org, "user": user} }

			// Only the owner changes roles and removes others.
			e.gqlFails(bob, gqlUpdateMember, change(o.ID, "mem-carol", "ADMIN"), "INSUFFICIENT_ROLE")
			e.gqlFails(carol, gqlUpdateMember, change(o.ID, "mem-carol", "OWNER"), "INSUFFICIENT_ROLE")
			e.gqlFails(bob, gqlRemoveMember, remove(o.ID, "mem-carol"), "INSUFFICIENT_ROLE")
			// The last owner cannot be demoted, removed or leave.
			e.gqlFails(alice, gqlUpdateMember, change(o.ID, "mem-alice", "ADMIN"), "LAST_OWNER")
			e.gqlFails(alice, gqlRemoveMember, remove(o.ID, "mem-alice"), "LAST_OWNER")
			// An unknown role is refused before anything runs.
			for _, role := range []string{"SUPERUSER", "owner", ""} {
				status, res := e.gql(bearer(alice), gqlUpdateMember, change(o.ID, "mem-carol", role))
				if len(res.Errors) == 0 || res.Data["updateMember"] != nil || (status != http.StatusOK && status/100 != 4) {
					t.Errorf("role %q: %d %+v", role, status, res)
				}
			}
			status, res := e.gql(bearer(alice), `mutation { updateMember(organizationId: "`+o.ID+`", userId: "mem-carol", role: superuser) { role } }`, nil)
			if codes := res.codes(); status != http.StatusOK || !reflect.DeepEqual(codes, []string{"GRAPHQL_VALIDATION_FAILED"}) {
				t.Errorf("an unknown role literal: %d %v", status, codes)
			}
			e.gqlFails(alice, gqlUpdateMember, change(o.ID, "nobody", "ADMIN"), "NOT_FOUND")
			if got := e.gqlRoles(alice, o.ID); !reflect.DeepEqual(got, want) {
				t.Fatalf("members %v after refused changes, want %v", got, want)
			}

			var m gqlMember
			e.gqlOK(alice, gqlUpdateMember, change(o.ID, "mem-bob", "OWNER")).decodeField(t, "updateMember", &m)
			if m.UserID != "mem-bob" || m.Role != "OWNER" {
				t.Errorf("updated member %+v", m)
			}
			// Two owners now: alice may step down, then bob is the last.
			e.gqlOK(alice, gqlUpdateMember, change(o.ID, "mem-alice", "MEMBER"))
			e.gqlFails(bob, gqlRemoveMember, remove(o.ID, "mem-bob"), "LAST_OWNER")
			var removed string
			e.gqlOK(bob, gqlRemoveMember, remove(o.ID, "mem-alice")).decodeField(t, "removeMember", &removed)
			if removed != "mem-alice" {
				t.Errorf("removeMember = %q", removed)
			}
			// A member may leave by themself, and loses access at once.
			e.gqlOK(carol, gqlRemoveMember, remove(o.ID, "mem-carol"))
			for _, tok := range []string{alice, carol} {
				e.gqlFails(tok, gqlOrgQuery, map[string]any{"id": o.ID}, "NOT_FOUND")
				if orgs := e.gqlOrgsOf(tok); len(orgs) != 0 {
					t.Errorf("organizations of a removed member: %+v", orgs)
				}
			}
			if got := e.gqlRoles(bob, o.ID); !reflect.DeepEqual(got, map[string]string{"mem-bob": "OWNER"}) {
				t.Errorf("members %v", got)
			}
		})

		t.Run("OrganizationKeys", func(t *testing.T) {
			e := e.subEnv(t)
			alice, bob, carol, dave := e.token("key-alice"), e.token("key-bob"), e.token("key-carol"), e.token("key-dave")
			o := e.gqlNewOrg(alice, "Keys")
			e.gqlJoin(alice, bob, o.ID, "ADMIN")
			e.gqlJoin(alice, carol, o.ID, "MEMBER")

			k, key := e.gqlNewOrgKey(bob, o.ID, "deploy")
			wantOrgKey := func(k gqlOrgKey, createdBy string) {
				t.Helper()
				if k.Owner.Type != "ORG" || k.Owner.ID != o.ID || k.CreatedBy != createdBy {
					t.Errorf("key %+v, want owner ORG %s, createdBy %s", k, o.ID, createdBy)
				}
			}
			wantOrgKey(k, "key-bob")
			if !e.keyVerifies(key) {
				t.Fatal("the organisation key does not verify")
			}
			// The key's viewer is the organisation, as verify answers:
			// no user, the organisation and the member who made it.
			var viewer struct {
				UserID    *string `json:"userId"`
				OrgID     *string `json:"orgId"`
				CreatedBy *string `json:"createdBy"`
			}
			status, res := e.gql(hdr("X-Api-Key", key), `{ viewer { userId orgId createdBy } }`, nil)
			if status != http.StatusOK || len(res.Errors) > 0 {
				t.Fatalf("viewer of an organisation key: %d %+v", status, res)
			}
			res.decodeField(t, "viewer", &viewer)
			if viewer.UserID != nil || viewer.OrgID == nil || *viewer.OrgID != o.ID || viewer.CreatedBy == nil || *viewer.CreatedBy != "key-bob" {
				t.Errorf("viewer of an organisation key: %+v, want no user, org %s, created by key-bob", viewer, o.ID)
			}
			// Every member lists it; it is nobody's personal key.
			for _, tok := range []string{alice, bob, carol} {
				if keys := e.gqlKeysOf(tok, o.ID); len(keys) != 1 || keys[0] != k {
					t.Errorf("organization.apiKeys %+v, want [%+v]", keys, k)
				}
			}
			if keys := e.gqlList(bob); len(keys) != 0 {
				t.Errorf("bob's personal keys: %+v", keys)
			}
			// A personal key says so.
			var personal struct {
				APIKey gqlOrgKey `json:"apiKey"`
			}
			e.gqlOK(bob, gqlCreateOrgKey, map[string]any{"input": map[string]any{"name": "mine"}}).decodeField(t, "createApiKey", &personal)
			if p := personal.APIKey; p.Owner.Type != "USER" || p.Owner.ID != "key-bob" || p.CreatedBy != "key-bob" {
				t.Errorf("personal key %+v", p)
			}
			if keys := e.gqlKeysOf(alice, o.ID); len(keys) != 1 {
				t.Errorf("organization.apiKeys lists a personal key: %+v", keys)
			}

			// A member reads but does not manage; a non-member sees nothing.
			orgKey := map[string]any{"input": map[string]any{"organizationId": o.ID}}
			e.gqlFails(carol, gqlCreateOrgKey, orgKey, "INSUFFICIENT_ROLE")
			e.gqlFails(dave, gqlCreateOrgKey, orgKey, "NOT_FOUND")
			e.gqlFails(carol, gqlRevokeMutation, map[string]any{"id": k.ID}, "INSUFFICIENT_ROLE")
			e.gqlFails(dave, gqlRevokeMutation, map[string]any{"id": k.ID}, "NOT_FOUND")
			e.gqlFails(dave, gqlOrgKeys, map[string]any{"id": o.ID}, "NOT_FOUND")

			// Managed by id alone, by an admin or the owner.
			var upd struct {
				Name string `json:"name"`
			}
			e.gqlOK(alice, `mutation($id: ID!) { updateApiKey(id: $id, input: {name: "deploy-2"}) { name } }`, map[string]any{"id": k.ID}).decodeField(t, "updateApiKey", &upd)
			if upd.Name != "deploy-2" {
				t.Errorf("renamed to %q", upd.Name)
			}
			var rolled struct {
				APIKey   gqlOrgKey `json:"apiKey"`
				Key      string    `json:"key"`
				Previous struct {
					ReplacedBy string `json:"replacedBy"`
				} `json:"previous"`
			}
			e.gqlOK(alice, `mutation($id: ID!) { rollApiKey(id: $id) { apiKey { `+gqlOrgKeyFields+` } key previous { replacedBy } } }`, map[string]any{"id": k.ID}).decodeField(t, "rollApiKey", &rolled)
			wantOrgKey(rolled.APIKey, "key-alice")
			if rolled.Previous.ReplacedBy != rolled.APIKey.ID || e.keyVerifies(key) || !e.keyVerifies(rolled.Key) {
				t.Errorf("roll: %+v", rolled)
			}

			// The organisation's usage and audit log, for any member: the
			// new key's one verification counted, on the key and in total.
			if err := e.App.Keys.FlushCounts(context.Background()); err != nil {
				t.Fatal(err)
			}
			var report struct {
				APIKeys []struct {
					ID    string `json:"id"`
					Usage []struct {
						Valid int64 `json:"valid"`
					} `json:"usage"`
				} `json:"apiKeys"`
				Usage struct {
					Keys []struct {
						KeyID string `json:"keyId"`
						Valid int64  `json:"valid"`
					} `json:"keys"`
				} `json:"usage"`
				AuditEvents struct {
					Edges []struct {
						Node struct {
							Action string  `json:"action"`
							OrgID  *string `json:"orgId"`
							KeyID  *string `json:"keyId"`
						} `json:"node"`
					} `json:"edges"`
				} `json:"auditEvents"`
			}
			e.gqlOK(carol, `query($id: ID!) { organization(id: $id) {
  apiKeys { id usage { valid } }
  usage { keys { keyId valid } }
  auditEvents(first: 100) { edges { node { action orgId keyId } } }
} }`, map[string]any{"id": o.ID}).decodeField(t, "organization", &report)
			if len(report.APIKeys) != 1 || report.APIKeys[0].ID != rolled.APIKey.ID || len(report.APIKeys[0].Usage) != 24 {
				t.Fatalf("apiKeys with usage: %+v", report.APIKeys)
			}
			var valid int64
			for _, b := range report.APIKeys[0].Usage {
				valid += b.Valid
			}
			if valid != 1 {
				t.Errorf("the listed key's usage counts %d valid verifications, want 1", valid)
			}
			if len(report.Usage.Keys) != 1 || report.Usage.Keys[0].KeyID != rolled.APIKey.ID || report.Usage.Keys[0].Valid != 1 {
				t.Errorf("usage.keys: %+v", report.Usage.Keys)
			}
			var actions []string
			for _, ed := range report.AuditEvents.Edges {
				if ed.Node.OrgID == nil || *ed.Node.OrgID != o.ID {
					t.Errorf("event %+v of the organisation's log, orgId not %s", ed.Node, o.ID)
				}
				actions = append(actions, ed.Node.Action)
			}
			for _, a := range []string{"org.created", "org.invitation.created", "org.member.added", "api_key.created", "api_key.updated", "api_key.rolled"} {
				if !slices.Contains(actions, a) {
					t.Errorf("the organisation's log %v lacks %s", actions, a)
				}
			}
			// The personal log of the one who made the key has it too, with
			// its organisation.
			var own struct {
				Edges []struct {
					Node struct {
						Action string  `json:"action"`
						OrgID  *string `json:"orgId"`
					} `json:"node"`
				} `json:"edges"`
			}
			e.gqlOK(bob, `{ auditEvents { edges { node { action orgId } } } }`, nil).decodeField(t, "auditEvents", &own)
			found := false
			for _, ed := range own.Edges {
				if ed.Node.Action == "api_key.created" && ed.Node.OrgID != nil && *ed.Node.OrgID == o.ID {
					found = true
				}
			}
			if !found {
				t.Errorf("bob's log has no api_key.created of the organisation: %+v", own.Edges)
			}

			// A removed member's key keeps working: it is the organisation's.
			e.gqlOK(alice, gqlRemoveMember, map[string]any{"org": o.ID, "user": "key-bob"})
			if !e.keyVerifies(rolled.Key) {
				t.Error("the key stopped working when its maker left")
			}
			e.gqlFails(bob, gqlRevokeMutation, map[string]any{"id": rolled.APIKey.ID}, "NOT_FOUND")
		})

		t.Run("NonMembersAndMalformedIDs", func(t *testing.T) {
			e := e.subEnv(t)
			alice, eve := e.token("nm-alice"), e.token("nm-eve")
			o := e.gqlNewOrg(alice, "Private")
			inv, _ := e.gqlNewInvitation(alice, o.ID, map[string]any{"role": "MEMBER"})
			for _, id := range []string{o.ID, "", strings.Repeat("x", 256), "a\nb", "00000000-0000-0000-0000-000000000000", "../" + o.ID} {
				for _, tc := range []struct {
					query string
					vars  map[string]any
				}{
					{gqlOrgQuery, map[string]any{"id": id}},
					{gqlUpdateOrg, map[string]any{"id": id, "input": map[string]any{"name": "Mine now"}}},
					{gqlDeleteOrg, map[string]any{"id": id}},
					{gqlInvite, map[string]any{"org": id, "input": map[string]any{"role": "MEMBER"}}},
					{gqlRevokeInvite, map[string]any{"org": id, "id": inv.ID}},
					{gqlUpdateMember, map[string]any{"org": id, "user": "nm-alice", "role": "MEMBER"}},
					{gqlRemoveMember, map[string]any{"org": id, "user": "nm-alice"}},
					{gqlCreateOrgKey, map[string]any{"input": map[string]any{"organizationId": id}}},
				} {
					e.gqlFails(eve, tc.query, tc.vars, "NOT_FOUND")
				}
			}
			// A malformed id is simply not found, for a member too.
			for _, id := range []string{"", strings.Repeat("x", 256), "a\x00b", o.ID + "\n"} {
				e.gqlFails(alice, gqlOrgQuery, map[string]any{"id": id}, "NOT_FOUND")
				e.gqlFails(alice, gqlCreateOrgKey, map[string]any{"input": map[string]any{"organizationId": id}}, "NOT_FOUND")
			}
			var got gqlOrg
			e.gqlOK(alice, gqlOrgQuery, map[string]any{"id": o.ID}).decodeField(t, "organization", &got)
			if !reflect.DeepEqual(got, o) {
				t.Errorf("after a non-member's attempts: %+v, want %+v", got, o)
			}
			if roles := e.gqlRoles(alice, o.ID); len(roles) != 1 {
				t.Errorf("members %v", roles)
			}
		})

		t.Run("BadNames", func(t *testing.T) {
			e := e.subEnv(t)
			alice := e.token("names-alice")
			o := e.gqlNewOrg(alice, strings.Repeat("é", 100))
			for _, tc := range []struct {
				name string
				sent any
			}{
				{"Empty", ""},
				{"Blank", "   "},
				{"Name101CodePoints", strings.Repeat("é", 101)},
				{"Newline", "line\nbreak"},
				{"NUL", "nul\x00byte"},
				{"Escape", "esc\x1b[31m"},
				{"BidiOverride", "evil\u202egnp"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := e.subEnv(t)
					e.gqlFails(alice, gqlCreateOrg, map[string]any{"input": map[string]any{"name": tc.sent}}, "INVALID_REQUEST")
					e.gqlFails(alice, gqlUpdateOrg, map[string]any{"id": o.ID, "input": map[string]any{"name": tc.sent}}, "INVALID_REQUEST")
				})
			}
			e.gqlFails(alice, gqlUpdateOrg, map[string]any{"id": o.ID, "input": map[string]any{"name": nil}}, "INVALID_REQUEST")
			// Ten years of 365 days at most.
			var longest gqlOrg
			e.gqlOK(alice, gqlUpdateOrg, map[string]any{"id": o.ID, "input": map[string]any{"maxKeyLifetimeSeconds": 315360000}}).decodeField(t, "updateOrganization", &longest)
			if longest.MaxKeyLifetimeSeconds == nil || *longest.MaxKeyLifetimeSeconds != 315360000 {
				t.Fatalf("updated %+v", longest)
			}
			o = longest
			for _, life := range []any{0, -1, 315360001, 1<<53 - 1, -(1<<53 - 1)} {
				e.gqlFails(alice, gqlUpdateOrg, map[string]any{"id": o.ID, "input": map[string]any{"maxKeyLifetimeSeconds": life}}, "INVALID_REQUEST")
			}
			for _, input := range []map[string]any{{"name": 12}, {}, {"name": nil}, {"nam": "x"}} {
				status, res := e.gql(bearer(alice), gqlCreateOrg, map[string]any{"input": input})
				if len(res.Errors) == 0 || res.Data["createOrganization"] != nil || (status != http.StatusOK && status/100 != 4) {
					t.Errorf("input %v: %d %+v", input, status, res)
				}
			}
			if orgs := e.gqlOrgsOf(alice); !reflect.DeepEqual(orgs, []gqlOrg{o}) {
				t.Errorf("organizations %+v, want only %+v", orgs, o)
			}
		})

		t.Run("LoginTokenRequired", func(t *testing.T) {
			e := e.subEnv(t)
			_, key := e.gqlCreate(e.token("key-user"), nil)
			for _, q := range []string{`{ organizations { id } }`, `mutation { createOrganization(input: {name: "x"}) { id } }`, `mutation { acceptInvitation(token: "inv_` + strings.Repeat("A", 32) + `") { id } }`} {
				status, res := e.gql(hdr("X-Api-Key", key), q, nil)
				wantGQLError(t, status, res, "JWT_REQUIRED")
				status, res = e.gql(nil, q, nil)
				wantGQLError(t, status, res, "MISSING_AUTH")
			}
		})
	})
}

// TestGraphQLOrganizationKeysInFixedQueries: listing an organisation's keys
// with their owner, maker and usage costs the same statements for one key
// as for twenty.
func TestGraphQLOrganizationKeysInFixedQueries(t *testing.T) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			var count dbtest.Statements
			e := startEnv(t, envSpec{dsn: dbtest.DSN(t, db), onDB: func(db *bun.DB) { db.AddQueryHook(&count) }})
			alice := e.token("fixed-alice")
			o := e.gqlNewOrg(alice, "Fixed")
			e.gqlNewOrg(alice, "Other")
			const query = `{ organizations { id apiKeys { id owner { type id } createdBy usage { valid } days: usage(granularity: DAY) { valid } } } }`
			measure := func(keys int) int64 {
				t.Helper()
				if err := e.App.Keys.FlushUsage(context.Background()); err != nil {
					t.Fatal(err)
				}
				before := count.Count()
				res := e.gqlOK(alice, query, nil)
				n := count.Count() - before
				var orgs []struct {
					ID      string `json:"id"`
					APIKeys []struct {
						Usage []struct {
							Valid int64 `json:"valid"`
						} `json:"usage"`
					} `json:"apiKeys"`
				}
				res.decodeField(t, "organizations", &orgs)
				if len(orgs) != 2 || orgs[0].ID != o.ID || len(orgs[0].APIKeys) != keys {
					t.Fatalf("organizations %+v, want %d keys in %s", orgs, keys, o.ID)
				}
				return n
			}
			e.gqlNewOrgKey(alice, o.ID, "first")
			one := measure(1)
			for range 19 {
				e.gqlNewOrgKey(alice, o.ID, "more")
			}
			if twenty := measure(20); one != twenty {
				t.Errorf("statements for 1 key and for 20: %d and %d", one, twenty)
			}
		})
	}
}
