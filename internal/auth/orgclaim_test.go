package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/apikeyd/apikeyd/internal/apikey"
)

// The identity-provider settings of the two token shapes the common
// providers issue: a flat pair of claims whose roles are the provider's own
// (mapped), and a nested object whose roles are named as ours.
var (
	jwtFlatOrg = JWTConfig{
		OrgClaim:     []string{"org_id"},
		OrgRoleClaim: []string{"org_role"},
		OrgRoleMap:   map[string]apikey.Role{"org:admin": apikey.RoleAdmin, "org:member": apikey.RoleMember},
	}
	jwtNestedOrg = JWTConfig{OrgClaim: []string{"o", "id"}, OrgRoleClaim: []string{"o", "rol"}}
)

// jwtOrgVerifier returns an HS256 verifier with org's identity-provider settings.
func jwtOrgVerifier(t *testing.T, org JWTConfig) *JWTVerifier {
	t.Helper()
	org.Secret, org.Now = jwtTestSecret, func() time.Time { return jwtTestStart }
	v, err := NewJWTVerifier(org)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// jwtClaimsWith returns jwtTestClaims with extra claims.
func jwtClaimsWith(extra map[string]any) jwt.MapClaims {
	c := jwtTestClaims(jwtTestStart)
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// TestJWTOrgClaims: in identity-provider mode a valid token acts for the
// organisation its claims name, with the role they give mapped to ours;
// an organisation claim that is absent or unusable as an id leaves the
// token valid, for no organisation; a role that is absent, not a string or
// not mapped is member.
func TestJWTOrgClaims(t *testing.T) {
	org := func(id string, r apikey.Role) *apikey.OrgClaim { return &apikey.OrgClaim{ID: id, Role: r} }
	long := strings.Repeat("o", 255)
	for _, tc := range []struct {
		name   string
		cfg    JWTConfig
		claims map[string]any
		want   *apikey.OrgClaim
	}{
		{"flat admin", jwtFlatOrg, map[string]any{"org_id": "org_2abc", "org_role": "org:admin"}, org("org_2abc", apikey.RoleAdmin)},
		{"flat member", jwtFlatOrg, map[string]any{"org_id": "org_2abc", "org_role": "org:member"}, org("org_2abc", apikey.RoleMember)},
		{"flat unmapped role", jwtFlatOrg, map[string]any{"org_id": "org_2abc", "org_role": "org:billing_manager"}, org("org_2abc", apikey.RoleMember)},
		{"flat: with a map, our own name is not mapped", jwtFlatOrg, map[string]any{"org_id": "org_2abc", "org_role": "owner"}, org("org_2abc", apikey.RoleMember)},
		{"flat: the map is case-sensitive", jwtFlatOrg, map[string]any{"org_id": "org_2abc", "org_role": "ORG:ADMIN"}, org("org_2abc", apikey.RoleMember)},
		{"flat: no role", jwtFlatOrg, map[string]any{"org_id": "org_2abc"}, org("org_2abc", apikey.RoleMember)},
		{"flat: a role that is no string", jwtFlatOrg, map[string]any{"org_id": "org_2abc", "org_role": []any{"org:admin"}}, org("org_2abc", apikey.RoleMember)},
		{"flat: 255-byte id", jwtFlatOrg, map[string]any{"org_id": long, "org_role": "org:admin"}, org(long, apikey.RoleAdmin)},
		{"flat: no org", jwtFlatOrg, map[string]any{"org_role": "org:admin"}, nil},
		{"flat: empty id", jwtFlatOrg, map[string]any{"org_id": "", "org_role": "org:admin"}, nil},
		{"flat: 256-byte id", jwtFlatOrg, map[string]any{"org_id": long + "o", "org_role": "org:admin"}, nil},
		{"flat: id with a line break", jwtFlatOrg, map[string]any{"org_id": "org\r\nX-Auth-User-Id: admin", "org_role": "org:admin"}, nil},
		{"flat: id with NUL", jwtFlatOrg, map[string]any{"org_id": "org\x00", "org_role": "org:admin"}, nil},
		{"flat: id with surrounding space", jwtFlatOrg, map[string]any{"org_id": " org_2abc", "org_role": "org:admin"}, nil},
		{"flat: numeric id", jwtFlatOrg, map[string]any{"org_id": 42, "org_role": "org:admin"}, nil},
		{"flat: id is an object", jwtFlatOrg, map[string]any{"org_id": map[string]any{"id": "org_2abc"}}, nil},
		{"flat: id is null", jwtFlatOrg, map[string]any{"org_id": nil}, nil},
		{"nested admin", jwtNestedOrg, map[string]any{"o": map[string]any{"id": "org_2xyz", "rol": "admin", "slg": "acme"}}, org("org_2xyz", apikey.RoleAdmin)},
		{"nested owner", jwtNestedOrg, map[string]any{"o": map[string]any{"id": "org_2xyz", "rol": "owner"}}, org("org_2xyz", apikey.RoleOwner)},
		{"nested member", jwtNestedOrg, map[string]any{"o": map[string]any{"id": "org_2xyz", "rol": "member"}}, org("org_2xyz", apikey.RoleMember)},
		{"nested: without a map, another name is member", jwtNestedOrg, map[string]any{"o": map[string]any{"id": "org_2xyz", "rol": "org:admin"}}, org("org_2xyz", apikey.RoleMember)},
		{"nested: our names are exact", jwtNestedOrg, map[string]any{"o": map[string]any{"id": "org_2xyz", "rol": "Admin"}}, org("org_2xyz", apikey.RoleMember)},
		{"nested: no role", jwtNestedOrg, map[string]any{"o": map[string]any{"id": "org_2xyz"}}, org("org_2xyz", apikey.RoleMember)},
		{"nested: no o", jwtNestedOrg, map[string]any{"org_id": "org_2xyz"}, nil},
		{"nested: o is a string", jwtNestedOrg, map[string]any{"o": "org_2xyz"}, nil},
		{"nested: o is a list", jwtNestedOrg, map[string]any{"o": []any{map[string]any{"id": "org_2xyz"}}}, nil},
		{"nested: o without id", jwtNestedOrg, map[string]any{"o": map[string]any{"rol": "admin"}}, nil},
		{"nested: a claim named o.id is not the path", jwtNestedOrg, map[string]any{"o.id": "org_2xyz"}, nil},
		{"off: the claims mean nothing", JWTConfig{}, map[string]any{"org_id": "org_2abc", "org_role": "owner"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := jwtOrgVerifier(t, tc.cfg)
			p, err := v.Verify(context.Background(), jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, jwtClaimsWith(tc.claims)))
			if err != nil || p.UserID != "user-1" || p.Method != apikey.MethodJWT {
				t.Fatalf("Verify = %+v, %v; want user-1's login token", p, err)
			}
			switch {
			case tc.want == nil && p.Org != nil:
				t.Errorf("Org = %+v, want none", *p.Org)
			case tc.want != nil && (p.Org == nil || *p.Org != *tc.want):
				t.Errorf("Org = %+v, want %+v", p.Org, *tc.want)
			}
		})
	}
}

// TestJWTOrgClaimsNeedAValidToken: the organisation claims are read only
// from a token that verifies; one that does not is refused as ever, naming
// no organisation.
func TestJWTOrgClaimsNeedAValidToken(t *testing.T) {
	v := jwtOrgVerifier(t, jwtFlatOrg)
	claims := jwtClaimsWith(map[string]any{"org_id": "org_2abc", "org_role": "org:admin"})
	expired := jwtClaimsWith(map[string]any{"org_id": "org_2abc", "org_role": "org:admin", "exp": jwtTestStart.Add(-time.Hour).Unix()})
	for name, token := range map[string]string{
		"other secret": jwtSign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789-abcdefghij"), nil, claims),
		"expired":      jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, expired),
		"no subject":   jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, jwtClaimsWith(map[string]any{"sub": nil, "org_id": "org_2abc"})),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), token)
			jwtAssertInvalid(t, token, p, err)
		})
	}
}

// TestJWTOrgClaimsFromJWKS: tokens of both shapes, signed RS256 and ES256
// by keys of a JWK set served over HTTP, act for their organisation.
func TestJWTOrgClaimsFromJWKS(t *testing.T) {
	ks := jwtTestKeys()
	srv := newJWKSTestServer(t, jwkRSA("rsa-1", "RS256", &ks.rsa.PublicKey), jwkEC("ec-1", "ES256", &ks.ec.PublicKey))
	for _, tc := range []struct {
		name   string
		cfg    JWTConfig
		method jwt.SigningMethod
		key    any
		kid    string
		claims map[string]any
		want   apikey.OrgClaim
	}{
		{"flat RS256", jwtFlatOrg, jwt.SigningMethodRS256, ks.rsa, "rsa-1",
			map[string]any{"org_id": "org_2abc", "org_role": "org:admin"}, apikey.OrgClaim{ID: "org_2abc", Role: apikey.RoleAdmin}},
		{"nested ES256", jwtNestedOrg, jwt.SigningMethodES256, ks.ec, "ec-1",
			map[string]any{"o": map[string]any{"id": "org_2xyz", "rol": "member"}}, apikey.OrgClaim{ID: "org_2xyz", Role: apikey.RoleMember}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.JWKSURL, cfg.Now = srv.URL, func() time.Time { return jwtTestStart }
			v, err := NewJWTVerifier(cfg)
			if err != nil {
				t.Fatal(err)
			}
			token := jwtSign(t, tc.method, tc.key, map[string]any{"kid": tc.kid}, jwtClaimsWith(tc.claims))
			p, err := v.Verify(context.Background(), token)
			if err != nil || p.UserID != "user-1" || p.Org == nil || *p.Org != tc.want {
				t.Fatalf("Verify = %+v (org %+v), %v; want user-1 acting for %+v", p, p.Org, err, tc.want)
			}
		})
	}
}

// TestAuthenticatorCarriesOrgClaim: the principal a request's login token
// proves reaches the handlers with its organisation.
func TestAuthenticatorCarriesOrgClaim(t *testing.T) {
	a := NewAuthenticator(jwtOrgVerifier(t, jwtNestedOrg), apikey.NewService(nil, apikey.Config{}), nil, nil, nil)
	seen := make(chan apikey.Auth, 1)
	srv := httptest.NewServer(a.Optional(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- apikey.AuthOf(r.Context())
	}), nil))
	defer srv.Close()
	token := jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, jwtClaimsWith(map[string]any{"o": map[string]any{"id": "org_2xyz", "rol": "admin"}}))
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	got := <-seen
	if p := got.Principal; p == nil || p.UserID != "user-1" || p.Method != apikey.MethodJWT || p.Org == nil ||
		*p.Org != (apikey.OrgClaim{ID: "org_2xyz", Role: apikey.RoleAdmin}) {
		t.Fatalf("the handler saw %+v", got)
	}
}
