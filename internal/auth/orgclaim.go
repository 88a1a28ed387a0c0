package auth

import "github.com/apikeyd/apikeyd/internal/apikey"

// orgClaims reads the organisation a login token acts for in
// identity-provider mode (ORG_CLAIM, docs/organisations.md): the
// organisation's id and the token's role in it, both string claims found
// by a path of claim names into nested objects.
type orgClaims struct {
	id    []string               // the path of the organisation's id
	role  []string               // the path of the role; nil: none, every token is a member
	roles map[string]apikey.Role // the provider's roles as ours; nil: ours, named as is
}

// read returns the organisation claims names, or nil when the id is not
// there or is not usable as an id (jwtValidID): such a token is valid, and
// acts for no organisation.
func (o *orgClaims) read(claims map[string]any) *apikey.OrgClaim {
	id, ok := claimString(claims, o.id)
	if !ok || !jwtValidID(id) {
		return nil
	}
	return &apikey.OrgClaim{ID: id, Role: o.mapRole(claimString(claims, o.role))}
}

// mapRole returns our role for the provider's role (ok=false: none). With a
// role map, only an exact entry counts; without one, a role named as one of
// ours is taken as is. Anything else is member, the least role: a token
// never gets more than its provider's role was mapped to.
func (o *orgClaims) mapRole(theirs string, ok bool) apikey.Role {
	if !ok {
		return apikey.RoleMember
	}
	if o.roles != nil {
		if r, found := o.roles[theirs]; found {
			return r
		}
		return apikey.RoleMember
	}
	if r := apikey.Role(theirs); r.Valid() {
		return r
	}
	return apikey.RoleMember
}

// claimString returns the string at path in claims, each name but the last
// naming a nested object; ok=false when path is empty, a name is missing,
// an object on the way is not one, or the value is not a string.
func claimString(claims map[string]any, path []string) (s string, ok bool) {
	if len(path) == 0 {
		return "", false
	}
	obj := claims
	for _, name := range path[:len(path)-1] {
		if obj, ok = obj[name].(map[string]any); !ok {
			return "", false
		}
	}
	s, ok = obj[path[len(path)-1]].(string)
	return s, ok
}
