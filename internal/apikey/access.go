package apikey

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// Who may act on which keys: a login token acts on its user's personal
// keys, and on an organisation's keys as far as its role there allows
// (OrgAccess). Within an organisation's scope (WithOrg) it acts on that
// organisation's keys only.

// authorize returns the grant of p in orgID when p's role there allows
// need. Returns the errors of OrgAccess.Authorize, and NOT_FOUND when the
// Service has no organisations (Config.Orgs is nil).
func (s *Service) authorize(ctx context.Context, p Principal, orgID string, need Role) (OrgGrant, error) {
	if s.orgs == nil {
		return OrgGrant{}, errOrgNotFound
	}
	return s.orgs.Authorize(ctx, p, orgID, need)
}

// scopeOwner returns whose keys the JWT principal p acts on in ctx: the
// organisation of ctx's scope (WithOrg), where p's role must allow need,
// with p's grant there; otherwise p's personal keys (and the zero grant,
// which limits nothing). Returns the errors of authorize.
func (s *Service) scopeOwner(ctx context.Context, p Principal, need Role) (Owner, OrgGrant, error) {
	orgID, ok := OrgOf(ctx)
	if !ok {
		return UserOwner(p.UserID), OrgGrant{}, nil
	}
	g, err := s.authorize(ctx, p, orgID, need)
	if err != nil {
		return Owner{}, OrgGrant{}, err
	}
	return OrgOwner(orgID), g, nil
}

// keyRef is the key a method acts on, as ownKey found it.
type keyRef struct {
	by    Principal // who acts: a login token
	owner Owner     // whose the key is
	id    string    // the key's id, canonical
}

// event returns an event of action on the key at at, made by its actor:
// in the actor's log and, for an organisation key, in the organisation's.
func (k keyRef) event(ctx context.Context, action string, at time.Time) audit.Event {
	return ownerEvent(ctx, k.by.UserID, k.owner, action, at)
}

// ownerEvent returns an event of action made by userID at at about a key
// of owner: in userID's log and, for an organisation key, in the
// organisation's (audit.Event.OrgID).
func ownerEvent(ctx context.Context, userID string, owner Owner, action string, at time.Time) audit.Event {
	ev := audit.New(ctx, userID, action, at)
	if owner.Type == OwnerOrg {
		ev.OrgID = owner.ID
	}
	return ev
}

// ownKey opens each method that acts on one key (or leak notice), named by
// id, for the JWT principal of ctx, whose role must allow need when the key
// is an organisation's. Within an organisation's scope (WithOrg) the key is
// looked for among that organisation's keys only; otherwise among the
// principal's personal keys and the keys of the organisations in which its
// role allows need. Returns, in this order, the auth errors of RequireJWT;
// invalid, the method's own verdict on its other arguments, when not nil;
// the errors of authorize for the scope's organisation; INSUFFICIENT_ROLE
// for a key of an organisation where the principal's role is too low; and
// notFound when id is not a UUID or names no key the principal may see (an
// unknown key, another user's, or one of an organisation it is not a member
// of), which the method also returns when the store finds no such row
// (notFoundAs), never saying which.
func (s *Service) ownKey(ctx context.Context, id string, need Role, invalid, notFound error) (keyRef, error) {
	p, err := RequireJWT(ctx)
	if err != nil {
		return keyRef{}, err
	}
	if invalid != nil {
		return keyRef{}, invalid
	}
	orgID, scoped := OrgOf(ctx)
	if scoped {
		if _, err := s.authorize(ctx, p, orgID, need); err != nil {
			return keyRef{}, err
		}
	}
	uid, ok := canonicalID(id)
	if !ok {
		return keyRef{}, notFound
	}
	if scoped {
		// The store finds the key only among the organisation's.
		return keyRef{by: p, owner: OrgOwner(orgID), id: uid}, nil
	}
	owner, err := s.store.KeyOwner(ctx, uid)
	if err != nil {
		return keyRef{}, notFoundAs(err, notFound)
	}
	switch {
	case owner == UserOwner(p.UserID):
	case owner.Type == OwnerOrg:
		if _, err := s.authorize(ctx, p, owner.ID, need); err != nil {
			return keyRef{}, notFoundAs(err, notFound)
		}
	default:
		return keyRef{}, notFound
	}
	return keyRef{by: p, owner: owner, id: uid}, nil
}

// capExpiry returns the expiry of a key made at now under g, asked to
// expire at expires (nil: never): with the organisation's MaxKeyLifetime,
// the latest it allows when none was asked. Returns INVALID_REQUEST naming
// expires_at for an expiry beyond it.
func capExpiry(g OrgGrant, now time.Time, expires *time.Time) (*time.Time, error) {
	if g.MaxKeyLifetime <= 0 {
		return expires, nil
	}
	latest := now.Add(g.MaxKeyLifetime)
	if expires == nil {
		return &latest, nil
	}
	if expires.After(latest) {
		return nil, apperr.Errorf(apperr.InvalidRequest,
			"expires_at must be at most %d seconds after the key's creation (the organisation's max_key_lifetime_seconds)",
			int64(g.MaxKeyLifetime/time.Second))
	}
	return expires, nil
}

// errOrgNotFound is the answer for an organisation that is not there for
// the caller (as OrgAccess answers).
var errOrgNotFound = apperr.New(apperr.NotFound, "organisation not found")
