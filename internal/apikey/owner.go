package apikey

import (
	"context"
	"time"
)

// OwnerType is who a key belongs to: a user (a personal key) or an
// organisation (an organisation key).
type OwnerType string

// The owners of keys.
const (
	OwnerUser OwnerType = "user"
	OwnerOrg  OwnerType = "org"
)

// Owner is the user or organisation a key belongs to.
type Owner struct {
	Type OwnerType
	ID   string
}

// UserOwner is the owner of userID's personal keys.
func UserOwner(userID string) Owner { return Owner{Type: OwnerUser, ID: userID} }

// OrgOwner is the owner of orgID's keys.
func OrgOwner(orgID string) Owner { return Owner{Type: OwnerOrg, ID: orgID} }

// Owner returns who k belongs to: its organisation, when it has one, and
// otherwise the user who made it.
func (k *APIKey) Owner() Owner {
	if k.OrgID != "" {
		return OrgOwner(k.OrgID)
	}
	return UserOwner(k.UserID)
}

// Role is a member's role in an organisation, from the least to the most
// allowed: member (reads the organisation's keys, their usage and its
// audit log), admin (also manages its keys and invitations), owner
// (everything, members and deleting the organisation included).
type Role string

// The roles of organisation members.
const (
	RoleMember Role = "member"
	RoleAdmin  Role = "admin"
	RoleOwner  Role = "owner"
)

// rank orders the roles; 0 is no role.
func (r Role) rank() int {
	switch r {
	case RoleMember:
		return 1
	case RoleAdmin:
		return 2
	case RoleOwner:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r allows everything need allows.
func (r Role) AtLeast(need Role) bool { return r.Valid() && r.rank() >= need.rank() }

// OrgClaim is the organisation a login token acts for in identity-provider
// mode (ORG_CLAIM): the provider's organisation id and the role it gives,
// mapped to one of ours.
type OrgClaim struct {
	ID   string
	Role Role
}

// OrgGrant is what OrgAccess found of an organisation for a principal: its
// id, the principal's role in it, and the organisation's key rules.
type OrgGrant struct {
	OrgID string
	Role  Role
	// MaxKeyLifetime is how long after its creation an organisation key
	// may expire at the latest; 0: no limit.
	MaxKeyLifetime time.Duration
}

// OrgAccess decides what a principal may do in an organisation. The
// organisations' service implements it; the Service asks it before every
// use of an organisation key by a login token.
type OrgAccess interface {
	// Authorize returns the grant of the JWT principal p in orgID when its
	// role allows need. Returns apperr.NotFound when there is no such
	// organisation or p is not a member of it (never saying which), and
	// apperr.InsufficientRole when p's role is lower than need. In
	// identity-provider mode the role is p.Org's, and the organisation is
	// created the first time a token names it.
	Authorize(ctx context.Context, p Principal, orgID string, need Role) (OrgGrant, error)
}

type orgScopeKey struct{}

// WithOrg returns ctx in which the Service acts on orgID's keys: Create
// makes an organisation key, List lists the organisation's keys, and the
// methods that take a key's id find it only among them. It is how a route
// under /auth/orgs/{org}/ scopes the same handlers as personal keys.
func WithOrg(ctx context.Context, orgID string) context.Context {
	return context.WithValue(ctx, orgScopeKey{}, orgID)
}

// OrgOf returns the organisation WithOrg put in ctx, if any.
func OrgOf(ctx context.Context) (orgID string, ok bool) {
	orgID, ok = ctx.Value(orgScopeKey{}).(string)
	return orgID, ok
}
