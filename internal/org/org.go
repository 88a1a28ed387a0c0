// Package org is apikeyd's organisations: teams that own API keys, their
// members and roles, and the invitations that bring members in. Its Service
// owns every rule about them and tells the keys' service (apikey.OrgAccess)
// what a principal may do in an organisation. In identity-provider mode
// (ORG_CLAIM) the login token names the organisation and the role, and
// membership is the provider's.
package org

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// Org is an organisation as one of its members sees it.
type Org struct {
	ID        string // a UUID when made here; the provider's id in identity-provider mode
	Name      string
	CreatedAt time.Time
	// MaxKeyLifetime is how long after its creation an organisation key
	// may expire at the latest; 0: no limit.
	MaxKeyLifetime time.Duration
	// Role is the caller's role in it; empty where no caller is meant.
	Role apikey.Role
}

// Member is a user's membership of an organisation.
type Member struct {
	UserID   string
	Email    *string // the user's email with built-in accounts; nil otherwise
	Role     apikey.Role
	JoinedAt time.Time
}

// Invitation is an invitation to join an organisation. Its token is never
// part of it.
type Invitation struct {
	ID        string
	OrgID     string
	Role      apikey.Role
	Email     *string // whose account must accept it; nil: anyone with the token
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	// AcceptedAt and RevokedAt are nil while the invitation is pending.
	AcceptedAt *time.Time
	RevokedAt  *time.Time
}

// NewInvitation is an invitation to insert: its row, the SHA-256 of its
// token (lower-case hex) and its org.invitation.created event.
type NewInvitation struct {
	Invitation
	TokenHash string
	Event     audit.Event
}

// Store persists organisations. Implementations translate their own
// failures as apikey.Store does: an unreachable database is
// apperr.ServerBusy. "Live" means not deleted; a deleted organisation is
// NOT_FOUND everywhere.
type Store interface {
	// CreateOrg inserts o with owner as its first member, and ev, in one
	// transaction.
	CreateOrg(ctx context.Context, o Org, owner Member, ev audit.Event) error
	// EnsureOrg returns the live organisation o.ID, inserting o (and
	// recording ev) when there is none: of concurrent calls for one id,
	// exactly one inserts. A deleted organisation is made live again with
	// o's name and creation time (identity-provider mode: the provider
	// still names it). The returned Org has no Role.
	EnsureOrg(ctx context.Context, o Org, ev audit.Event) (Org, error)
	// GetOrg returns the live organisation id, with no Role, or
	// apperr.NotFound.
	GetOrg(ctx context.Context, id string) (Org, error)
	// Membership returns the live organisation id with userID's Role in it,
	// or apperr.NotFound when there is no such organisation or userID is
	// not a member (never saying which).
	Membership(ctx context.Context, id, userID string) (Org, error)
	// ListOrgs returns the live organisations userID is a member of, each
	// with userID's Role, oldest first.
	ListOrgs(ctx context.Context, userID string) ([]Org, error)
	// UpdateOrg reads the live organisation id with its row locked, calls
	// change with it, and writes the Name and MaxKeyLifetime it returns
	// and records its event (the zero Event: none), in one transaction.
	// change's error aborts and is returned as is. Returns the organisation
	// as it now is (no Role), or apperr.NotFound.
	UpdateOrg(ctx context.Context, id string, change func(old Org) (Org, audit.Event, error)) (Org, error)
	// DeleteOrg, in one transaction, marks the live organisation id
	// deleted at at, deletes its members and invitations, revokes every
	// unrevoked key it owns (revoked_at = at) and records ev, with
	// ev.Details' keys_revoked set to how many keys it revoked. A store
	// shared by several servers tells the others each revoked key's hash,
	// as RevokeKey does, once it commits. Returns the revoked keys' hashes
	// (for this server's cache), or apperr.NotFound.
	DeleteOrg(ctx context.Context, id string, at time.Time, ev audit.Event) (hashes []string, err error)
	// Members returns the members of the live organisation id, oldest
	// first, each with its Email when a built-in account has the user's id.
	Members(ctx context.Context, id string) ([]Member, error)
	// UpdateMember and RemoveMember lock the live organisation's row
	// (PostgreSQL: FOR UPDATE; SQLite: the write lock taken at BEGIN
	// IMMEDIATE), so that changes of one organisation's members apply one
	// after the other: of concurrent demotions of its last two owners, the
	// second sees one owner left. They read the member userID and count the
	// organisation's owners, then call change (check), whose error aborts
	// and is returned as is.
	//
	// UpdateMember writes the Role change returns and records its event
	// (the zero Event: none). Returns the member as it now is, or
	// apperr.NotFound when userID is not a member.
	UpdateMember(ctx context.Context, id, userID string, change func(m Member, owners int) (Member, audit.Event, error)) (Member, error)
	// RemoveMember deletes the membership and records the event check
	// returns. Returns apperr.NotFound when userID is not a member.
	RemoveMember(ctx context.Context, id, userID string, check func(m Member, owners int) (audit.Event, error)) error
	// CreateInvitation inserts inv and records inv.Event, in one
	// transaction. Returns apperr.NotFound when the organisation is not
	// live.
	CreateInvitation(ctx context.Context, inv NewInvitation) error
	// Invitations returns the live organisation's pending invitations at
	// now (neither accepted nor revoked, expiring after now), oldest first.
	Invitations(ctx context.Context, id string, now time.Time) ([]Invitation, error)
	// RevokeInvitation marks the pending invitation invID of the
	// organisation id revoked at at and records ev, in one conditional
	// update. Returns apperr.NotFound when no pending invitation changed.
	RevokeInvitation(ctx context.Context, id, invID string, at time.Time, ev audit.Event) error
	// AcceptInvitation, in one transaction, reads the invitation whose
	// token hashes to tokenHash with its row locked (accepted, revoked or
	// expired ones too: accept tells), its live organisation, and userID's
	// current membership of it (nil when none), and calls accept with
	// them; accept returns the membership to write
	// (nil: none, e.g. a member whose role is already higher) and the
	// events to record, or an error that aborts, returned as is. The
	// invitation is then marked accepted at at by userID: of concurrent
	// accepts of one invitation exactly one sees it pending. Returns apperr.NotFound when no
	// invitation has the hash, or its organisation is not live.
	AcceptInvitation(ctx context.Context, tokenHash, userID string, at time.Time, accept func(inv Invitation, o Org, current *Member) (*Member, []audit.Event, error)) (Org, error)
	// UserEmail returns the email of the built-in account userID, or nil
	// when there is none.
	UserEmail(ctx context.Context, userID string) (*string, error)
	// ListOrgEvents returns up to limit events of the organisation id
	// whose id is below before (all when before is empty), newest first;
	// apperr.NotFound when before is not the id of one of its events.
	ListOrgEvents(ctx context.Context, id, before string, limit int) ([]audit.Event, error)
}
