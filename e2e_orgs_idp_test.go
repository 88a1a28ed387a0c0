package main

import (
	"flag"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// idpOrgMode runs apikeyd on the identity provider idp's key set, in
// identity-provider mode as `apikeyd serve` reads it from flags (args:
// -org-claim and the rest).
func idpOrgMode(t testing.TB, idp *identityProvider, args ...string) func(*config.Config) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	parsed, err := config.Parse(fs, config.Serve, args, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) {
		c.JWTSecret, c.JWKSURL = "", mustURL(idp.URL)
		c.JWTIssuer, c.JWTAudience = idpIssuer, idpAudience
		c.OrgClaim, c.OrgRoleClaim, c.OrgRoleMap = parsed.OrgClaim, parsed.OrgRoleClaim, parsed.OrgRoleMap
	}
}

// idpTokenShape is how an identity provider puts the organisation and the
// role into its login tokens, and the settings that read them.
type idpTokenShape struct {
	name  string
	flags []string
	// org returns the claims of a token acting for org with the
	// provider's role.
	org func(org, role string) signOption
	// The provider's names of our roles ("" when it has none), and one
	// that is none of them.
	owner, admin, member, unmapped string
}

// idpShapes are the two shapes of the common providers: a flat pair of
// claims with roles of the provider's own naming, and a nested object
// whose roles are named as ours.
var idpShapes = []idpTokenShape{
	{
		name:  "Flat",
		flags: []string{"-org-claim", "org_id", "-org-role-claim", "org_role", "-org-role-map", "org:admin=admin,org:member=member"},
		org: func(org, role string) signOption {
			return withClaim("org_id", org, "org_role", role, "org_slug", "acme")
		},
		admin: "org:admin", member: "org:member", unmapped: "org:billing_manager",
	},
	{
		name:  "Nested",
		flags: []string{"-org-claim", "o.id", "-org-role-claim", "o.rol"},
		org: func(org, role string) signOption {
			return withClaim("o", map[string]any{"id": org, "rol": role, "slg": "acme"})
		},
		owner: "owner", admin: "admin", member: "member", unmapped: "org:admin",
	},
}

// TestOrgsIdentityProvider: with ORG_CLAIM, login tokens from a real JWK
// set (ES256) name the organisation they act for and their role in it,
// in both shapes the common providers issue, on both databases. The
// organisation is created the first time a token names it; the role is
// the token's (mapped by ORG_ROLE_MAP; anything unmapped is member); a
// token of another organisation, or of none, gets 404; the provider owns
// membership, so the members and invitations routes answer 404 (and
// NOT_FOUND in GraphQL); and an
// organisation's key keeps verifying, with its org_id, when the member who
// made it is gone from the organisation.
func TestOrgsIdentityProvider(t *testing.T) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			for _, shape := range idpShapes {
				t.Run(shape.name, func(t *testing.T) { testOrgsIdentityProvider(t, db, shape) })
			}
		})
	}
}

func testOrgsIdentityProvider(t *testing.T, db string, shape idpTokenShape) {
	idp := newIdentityProvider(t)
	e := newEnv(t, db, idpOrgMode(t, idp, shape.flags...))
	const org = "org_2pQ7dWcrY1kL"
	orgPath := orgURL(org)
	admin := idp.sign(e, "user_ada", shape.org(org, shape.admin))
	member := idp.sign(e, "user_bob", shape.org(org, shape.member))
	unmapped := idp.sign(e, "user_cy", shape.org(org, shape.unmapped))
	adaAsMember := idp.sign(e, "user_ada", shape.org(org, shape.member))
	outsider := idp.sign(e, "user_eve", shape.org("org_2other", shape.admin))
	noOrg := idp.sign(e, "user_ada")

	var key createdKey
	t.Run("CreatedOnFirstSight", func(t *testing.T) {
		e := e.subEnv(t)
		list := decodeAs[struct{ Orgs []orgAnswer }](t, e.do("GET", "/auth/orgs", bearer(admin), nil), http.StatusOK)
		if len(list.Orgs) != 1 || list.Orgs[0].ID != org || list.Orgs[0].Name != org || list.Orgs[0].Role != "admin" {
			t.Fatalf("the admin's organisations: %+v, want %s, named after its id, as admin", list.Orgs, org)
		}
		for _, tok := range []string{member, unmapped, adaAsMember} {
			if o := decodeAs[orgAnswer](t, e.do("GET", orgPath, bearer(tok), nil), http.StatusOK); o.ID != org || o.Role != "member" {
				t.Errorf("GET the organisation: %+v, want it as member", o)
			}
		}
		// Made once, however many tokens named it.
		if got := actions(e.orgEvents(member, org)); !slices.Equal(got, []string{"org.created"}) {
			t.Errorf("the organisation's log: %q, want one org.created", got)
		}
		if got := e.orgIDs(noOrg); len(got) != 0 {
			t.Errorf("a token naming no organisation lists %q", got)
		}
		if got := e.orgIDs(outsider); !slices.Equal(got, []string{"org_2other"}) {
			t.Errorf("another organisation's token lists %q", got)
		}
	})

	t.Run("AdminCreatesMemberLists", func(t *testing.T) {
		e := e.subEnv(t)
		key = e.orgKey(admin, org, str(`{"name":"CI deploys"}`))
		for _, tok := range []string{member, unmapped, admin} {
			keys := e.orgKeys(tok, org)
			if len(keys) != 1 || keys[0]["id"] != key.ID || keys[0]["created_by"] != "user_ada" {
				t.Errorf("listed %v, want the key made by user_ada", keys)
			}
			if owner, _ := keys[0]["owner"].(map[string]any); owner["type"] != "org" || owner["id"] != org {
				t.Errorf("owner %v, want the organisation", keys[0]["owner"])
			}
		}
	})

	t.Run("MemberCannotManage", func(t *testing.T) {
		e := e.subEnv(t)
		// The role is the token's own: ada's member token is a member's.
		for _, tok := range []string{member, unmapped, adaAsMember} {
			wantError(t, e.do("DELETE", orgURL(org, "api-keys", key.ID), bearer(tok), nil), 403, "INSUFFICIENT_ROLE")
			wantError(t, e.do("DELETE", "/auth/api-keys/"+key.ID, bearer(tok), nil), 403, "INSUFFICIENT_ROLE")
			wantError(t, e.do("POST", orgURL(org, "api-keys"), bearer(tok), str(`{"name":"mine"}`)), 403, "INSUFFICIENT_ROLE")
			wantError(t, e.do("PATCH", orgPath, bearer(tok), str(`{"name":"Mine"}`)), 403, "INSUFFICIENT_ROLE")
		}
		if !e.keyVerifies(key.Key) {
			t.Fatal("a refused revoke revoked the key")
		}
	})

	t.Run("OtherOrgNotFound", func(t *testing.T) {
		e := e.subEnv(t)
		for _, tok := range []string{outsider, noOrg} {
			wantError(t, e.do("GET", orgPath, bearer(tok), nil), 404, "NOT_FOUND")
			wantError(t, e.do("GET", orgURL(org, "api-keys"), bearer(tok), nil), 404, "NOT_FOUND")
			wantError(t, e.do("DELETE", orgURL(org, "api-keys", key.ID), bearer(tok), nil), 404, "NOT_FOUND")
			wantError(t, e.do("DELETE", "/auth/api-keys/"+key.ID, bearer(tok), nil), 404, "NOT_FOUND")
			wantError(t, e.do("GET", orgURL(org, "audit-events"), bearer(tok), nil), 404, "NOT_FOUND")
		}
	})

	t.Run("MembershipIsTheProviders", func(t *testing.T) {
		e := e.subEnv(t)
		toks := map[string]string{"admin": admin}
		if shape.owner != "" {
			toks["owner"] = idp.sign(e, "user_ola", shape.org(org, shape.owner))
		}
		for role, tok := range toks {
			for _, r := range []struct {
				method, path string
				body         *string
			}{
				{"GET", orgURL(org, "members"), nil},
				{"PATCH", orgURL(org, "members", "user_bob"), str(`{"role":"admin"}`)},
				{"DELETE", orgURL(org, "members", "user_bob"), nil},
				{"POST", orgURL(org, "invitations"), str(`{"role":"member"}`)},
				{"GET", orgURL(org, "invitations"), nil},
				{"DELETE", orgURL(org, "invitations", "0192f6c3-7f2a-7cc1-b2a4-5d1e8f0a9b3c"), nil},
				{"POST", "/auth/invitations/accept", str(`{"token":"inv_0123456789abcdefghijABCDEFGHIJkl"}`)},
				{"POST", "/auth/orgs", str(`{"name":"Made here"}`)},
			} {
				t.Run(role+" "+r.method+" "+r.path, func(t *testing.T) {
					wantError(t, e.do(r.method, r.path, bearer(tok), r.body), 404, "NOT_FOUND")
				})
			}
		}
	})

	t.Run("GraphQL", func(t *testing.T) {
		e := e.subEnv(t)
		status, out := e.gql(bearer(member), `{ organizations { `+gqlOrgFields+` } }`, nil)
		var orgs []gqlOrg
		if status != http.StatusOK || len(out.Errors) > 0 {
			t.Fatalf("organizations: %d %+v", status, out)
		}
		out.decodeField(t, "organizations", &orgs)
		if len(orgs) != 1 || orgs[0].ID != org || orgs[0].Role != "MEMBER" {
			t.Errorf("organizations %+v, want %s as MEMBER", orgs, org)
		}
		status, out = e.gql(bearer(member), gqlOrgKeys, map[string]any{"id": org})
		if status != http.StatusOK || len(out.Errors) > 0 {
			t.Fatalf("the organisation's keys: %d %+v", status, out)
		}
		var o struct {
			APIKeys []struct{ ID, CreatedBy string } `json:"apiKeys"`
		}
		out.decodeField(t, "organization", &o)
		if len(o.APIKeys) != 1 || o.APIKeys[0].ID != key.ID || o.APIKeys[0].CreatedBy != "user_ada" {
			t.Errorf("the organisation's keys %+v, want %s made by user_ada", o.APIKeys, key.ID)
		}
		for name, op := range map[string]struct {
			query string
			vars  map[string]any
		}{
			"members":            {gqlMembers, map[string]any{"id": org}},
			"invitations":        {gqlInvitations, map[string]any{"id": org}},
			"createOrganization": {gqlCreateOrg, map[string]any{"input": map[string]any{"name": "Made here"}}},
			"createInvitation":   {gqlInvite, map[string]any{"org": org, "input": map[string]any{"role": "MEMBER"}}},
			"updateMember":       {gqlUpdateMember, map[string]any{"org": org, "user": "user_bob", "role": "ADMIN"}},
			"removeMember":       {gqlRemoveMember, map[string]any{"org": org, "user": "user_bob"}},
			"revokeInvitation":   {gqlRevokeInvite, map[string]any{"org": org, "id": "00000000-0000-0000-0000-000000000000"}},
			"acceptInvitation":   {gqlAccept, map[string]any{"token": "inv_" + strings.Repeat("A", 32)}},
		} {
			t.Run(name, func(t *testing.T) {
				status, out := e.gql(bearer(admin), op.query, op.vars)
				wantGQLError(t, status, out, "NOT_FOUND")
			})
		}
	})

	if shape.owner != "" {
		t.Run("OwnerRenames", func(t *testing.T) {
			e := e.subEnv(t)
			owner := idp.sign(e, "user_ola", shape.org(org, shape.owner))
			if o := decodeAs[orgAnswer](t, e.do("PATCH", orgPath, bearer(owner), str(`{"name":"Acme"}`)), http.StatusOK); o.Name != "Acme" || o.Role != "owner" {
				t.Fatalf("the owner renames: %+v", o)
			}
			wantError(t, e.do("PATCH", orgPath, bearer(admin), str(`{"name":"Acme 2"}`)), 403, "INSUFFICIENT_ROLE")
		})
	}

	t.Run("KeyOutlivesItsMaker", func(t *testing.T) {
		e := e.subEnv(t)
		// Ada's provider no longer names the organisation in her tokens:
		// she is gone from it, and its key keeps working.
		gone := idp.sign(e, "user_ada", shape.org("org_2elsewhere", shape.admin))
		wantError(t, e.do("GET", orgURL(org, "api-keys"), bearer(gone), nil), 404, "NOT_FOUND")
		wantError(t, e.do("DELETE", "/auth/api-keys/"+key.ID, bearer(gone), nil), 404, "NOT_FOUND")
		res := e.do("GET", "/auth/verify", hdr("X-Api-Key", key.Key), nil)
		if res.Status != http.StatusOK {
			t.Fatalf("verify: %d %s", res.Status, res.Body)
		}
		if m := res.JSON(t); m["user_id"] != nil || m["org_id"] != org || m["created_by"] != "user_ada" || m["key_id"] != key.ID {
			t.Errorf("verify: %s", res.Body)
		}
		if got := res.Header.Values("X-Auth-Org-Id"); len(got) != 1 || got[0] != org {
			t.Errorf("X-Auth-Org-Id %q, want %s", got, org)
		}
		if got := res.Header.Values("X-Auth-User-Id"); got != nil {
			t.Errorf("X-Auth-User-Id %q for an organisation's key", got)
		}
		// An admin of the organisation still manages it.
		if res := e.do("DELETE", orgURL(org, "api-keys", key.ID), bearer(admin), nil); res.Status != http.StatusNoContent {
			t.Fatalf("the admin revokes: %d %s", res.Status, res.Body)
		}
		if e.keyVerifies(key.Key) {
			t.Error("the revoked key still verifies")
		}
	})
}
