package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/apikeyd/apikeyd/internal/apikey"
)

// The settings of identity-provider mode, parsed into the typed values the
// login-token verifier takes (auth.JWTConfig's OrgClaim, OrgRoleClaim and
// OrgRoleMap).

// claimPath parses ORG_CLAIM or ORG_ROLE_CLAIM: claim names joined by dots,
// each a key of the object the one before it names (o.id is the id member
// of the o claim); empty is nil. A claim whose own name holds a dot cannot
// be named.
func claimPath(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	path := strings.Split(v, ".")
	for _, name := range path {
		if name == "" || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return nil, errors.New("must be claim names joined by dots, without spaces, such as org_id or o.id")
		}
	}
	return path, nil
}

// parseRoleMap parses ORG_ROLE_MAP: comma-separated provider_role=role
// entries, role being owner, admin or member; empty entries are skipped and
// blank is nil. The provider's role is everything before the last =, so it
// may hold one; it may not hold a comma.
func parseRoleMap(v string) (map[string]apikey.Role, error) {
	var m map[string]apikey.Role
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		i := strings.LastIndexByte(entry, '=')
		if i < 0 {
			return nil, fmt.Errorf("%q is not provider_role=role, such as org:admin=admin", entry)
		}
		theirs, ours := strings.TrimSpace(entry[:i]), apikey.Role(strings.TrimSpace(entry[i+1:]))
		if theirs == "" {
			return nil, fmt.Errorf("%q names no provider role: write provider_role=role, such as org:admin=admin", entry)
		}
		if !ours.Valid() {
			return nil, fmt.Errorf("%q maps to %q, which is no role: owner, admin or member", entry, ours)
		}
		if _, dup := m[theirs]; dup {
			return nil, fmt.Errorf("%q is mapped twice", theirs)
		}
		if m == nil {
			m = map[string]apikey.Role{}
		}
		m[theirs] = ours
	}
	return m, nil
}
