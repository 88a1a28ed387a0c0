package config

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apikey"
)

// TestOrgClaimSettings: identity-provider mode is off by default; its claims
// are dot paths and its role map provider_role=role entries mapping onto our
// three roles.
func TestOrgClaimSettings(t *testing.T) {
	c, err := parse(Serve, nil)
	if err != nil || c.OrgClaim != nil || c.OrgRoleClaim != nil || c.OrgRoleMap != nil {
		t.Fatalf("defaults: claim %q, role claim %q, map %v, %v", c.OrgClaim, c.OrgRoleClaim, c.OrgRoleMap, err)
	}
	c, err = parse(Serve, map[string]string{"ORG_CLAIM": "org_id", "ORG_ROLE_CLAIM": "org_role", "ORG_ROLE_MAP": " org:admin=admin, org:member = member,,"})
	if err != nil || !slices.Equal(c.OrgClaim, []string{"org_id"}) || !slices.Equal(c.OrgRoleClaim, []string{"org_role"}) ||
		!maps.Equal(c.OrgRoleMap, map[string]apikey.Role{"org:admin": apikey.RoleAdmin, "org:member": apikey.RoleMember}) {
		t.Errorf("flat: claim %q, role claim %q, map %v, %v", c.OrgClaim, c.OrgRoleClaim, c.OrgRoleMap, err)
	}
	c, err = parse(Serve, nil, "-org-claim", "o.id", "-org-role-claim", "o.rol", "-org-role-map", "a=b=owner")
	if err != nil || !slices.Equal(c.OrgClaim, []string{"o", "id"}) || !slices.Equal(c.OrgRoleClaim, []string{"o", "rol"}) ||
		!maps.Equal(c.OrgRoleMap, map[string]apikey.Role{"a=b": apikey.RoleOwner}) {
		t.Errorf("nested, from flags: claim %q, role claim %q, map %v, %v", c.OrgClaim, c.OrgRoleClaim, c.OrgRoleMap, err)
	}
	if c, err := parse(Serve, map[string]string{"ORG_CLAIM": "org_id"}); err != nil || c.OrgRoleClaim != nil || c.OrgRoleMap != nil {
		t.Errorf("ORG_CLAIM alone: %+v, %v", c, err)
	}
}

// TestBadOrgClaimSettings: a malformed path or role map entry, or a setting
// that has no meaning without another, stops the server with an error
// naming the variable (and the entry).
func TestBadOrgClaimSettings(t *testing.T) {
	base := map[string]string{"ORG_CLAIM": "org_id", "ORG_ROLE_CLAIM": "org_role"}
	for _, c := range []struct {
		env, value string
		want       []string // in the error
	}{
		{"ORG_CLAIM", ".", []string{"ORG_CLAIM"}},
		{"ORG_CLAIM", "o..id", []string{"ORG_CLAIM"}},
		{"ORG_CLAIM", "o.", []string{"ORG_CLAIM"}},
		{"ORG_CLAIM", " org_id", []string{"ORG_CLAIM"}},
		{"ORG_CLAIM", "org\x00id", []string{"ORG_CLAIM"}},
		{"ORG_ROLE_CLAIM", "o.rol.", []string{"ORG_ROLE_CLAIM"}},
		{"ORG_ROLE_MAP", "org:admin", []string{"ORG_ROLE_MAP", `"org:admin" is not provider_role=role`}},
		{"ORG_ROLE_MAP", "org:admin=administrator", []string{"ORG_ROLE_MAP", `"administrator", which is no role`}},
		{"ORG_ROLE_MAP", "org:admin=Admin", []string{"ORG_ROLE_MAP", `"Admin", which is no role`}},
		{"ORG_ROLE_MAP", "=admin", []string{"ORG_ROLE_MAP", "names no provider role"}},
		{"ORG_ROLE_MAP", "org:admin=admin,org:admin=owner", []string{"ORG_ROLE_MAP", `"org:admin" is mapped twice`}},
	} {
		env := maps.Clone(base)
		env[c.env] = c.value
		_, err := parse(Serve, env)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s=%q: %v, want an error with %q", c.env, c.value, err, w)
			}
		}
	}
	for _, env := range []map[string]string{
		{"ORG_ROLE_CLAIM": "org_role"},
		{"ORG_ROLE_CLAIM": "org_role", "ORG_ROLE_MAP": "org:admin=admin"},
		{"ORG_CLAIM": "org_id", "ORG_ROLE_MAP": "org:admin=admin"},
	} {
		if _, err := parse(Serve, env); err == nil || !strings.Contains(err.Error(), "needs ORG_") {
			t.Errorf("%v: %v, want an error naming the setting it needs", env, err)
		}
	}
	// The token command signs tokens; it reads none of these.
	if _, err := parse(Token, map[string]string{"ORG_ROLE_MAP": "nonsense"}); err != nil {
		t.Errorf("token read ORG_ROLE_MAP: %v", err)
	}
}
