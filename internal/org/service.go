package org

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/account"
	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

const (
	// DefaultInvitationTTL is how long an invitation may be accepted.
	DefaultInvitationTTL = 7 * 24 * time.Hour
	// LongestKeyLifetime is the largest MaxKeyLifetime an organisation
	// may set: ten years of 365 days.
	LongestKeyLifetime = 10 * 365 * 24 * time.Hour
	// maxIDLen is the longest organisation or user id, in bytes.
	maxIDLen = 255
	// invitationPrefix starts every invitation token, followed by
	// invitationSecretLen base62 characters.
	invitationPrefix    = "inv_"
	invitationSecretLen = 32
)

// Config holds the Service's settings.
type Config struct {
	// IdentityProvider is set when the login token names the organisation
	// and the role (ORG_CLAIM): membership is the provider's, so the
	// routes of members and invitations, and Create, answer NOT_FOUND.
	IdentityProvider bool
	// Accounts is set when accounts are built in: an invitation that
	// names an email is for the account with that email only.
	Accounts bool
	// InvitationTTL is how long an invitation may be accepted;
	// DefaultInvitationTTL when zero.
	InvitationTTL time.Duration
	Now           func() time.Time
	// OnKeysRevoked is told the hashes of the keys Delete revoked, for
	// this server's verification cache (other servers hear of them from
	// the store); nothing when nil.
	OnKeysRevoked func(hashes []string)
}

// Service owns every rule about organisations: who may read or change an
// organisation, its members and invitations (by role: owner, admin,
// member), what a valid name, role or lifetime is, and how invitations are
// issued and accepted. It is the apikey.OrgAccess of the keys' service. Both
// HTTP edges call it and nothing else.
//
// Every method acts for the JWT principal of ctx (apikey.RequireJWT: an
// API key gets JWT_REQUIRED), and answers NOT_FOUND "organisation not
// found" for an organisation that does not exist, was deleted, or of which
// the caller is not a member, never saying which, and INSUFFICIENT_ROLE to
// a member whose role is too low. Bad input is INVALID_REQUEST naming the
// field, and changes nothing.
type Service struct {
	store         Store
	idp           bool
	accounts      bool
	ttl           time.Duration
	now           func() time.Time
	onKeysRevoked func([]string)
}

var _ apikey.OrgAccess = (*Service)(nil)

// NewService returns a Service over st.
func NewService(st Store, cfg Config) *Service {
	if cfg.InvitationTTL <= 0 {
		cfg.InvitationTTL = DefaultInvitationTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnKeysRevoked == nil {
		cfg.OnKeysRevoked = func([]string) {}
	}
	return &Service{
		store: st, idp: cfg.IdentityProvider, accounts: cfg.Accounts,
		ttl: cfg.InvitationTTL, now: cfg.Now, onKeysRevoked: cfg.OnKeysRevoked,
	}
}

// IdentityProvider reports whether the login token names the organisation
// and the role (ORG_CLAIM), membership being the provider's.
func (s *Service) IdentityProvider() bool { return s.idp }

// timestamp returns now in UTC at the millisecond precision the API shows.
func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

var (
	errOrgNotFound        = apperr.New(apperr.NotFound, "organisation not found")
	errMemberNotFound     = apperr.New(apperr.NotFound, "member not found")
	errInvitationNotFound = apperr.New(apperr.NotFound, "invitation not found")
	errNameRequired       = apperr.New(apperr.InvalidRequest, "name is required")
	errBadRole            = apperr.New(apperr.InvalidRequest, "role must be one of owner, admin, member")
	errBadToken           = apperr.Errorf(apperr.InvalidRequest,
		"token must be an invitation token: %s followed by %d letters and digits", invitationPrefix, invitationSecretLen)
	errLastOwner = apperr.New(apperr.LastOwner,
		"an organisation keeps at least one owner: make another member an owner first, or delete the organisation")
	errOwnerInvite   = apperr.New(apperr.InsufficientRole, "only an owner may invite an owner")
	errEmailMismatch = apperr.New(apperr.InvitationEmailMismatch,
		"this invitation is for another email address: sign in with the account it names")
)

// ErrBadMaxKeyLifetime refuses a max_key_lifetime_seconds that is not a
// whole number of seconds from 1 to LongestKeyLifetime: what Update returns
// for one out of range, and what an edge returns for a value that is no
// integer at all.
var ErrBadMaxKeyLifetime = apperr.Errorf(apperr.InvalidRequest,
	"max_key_lifetime_seconds must be an integer from 1 to %d, or null", int64(LongestKeyLifetime/time.Second))

// insufficient refuses a member whose role is below need.
func insufficient(have, need apikey.Role) error {
	return apperr.Errorf(apperr.InsufficientRole,
		"this needs the role %s or higher in the organisation; yours is %s", need, have)
}

// validID reports whether id may name an organisation or a user: 1 to
// maxIDLen bytes of UTF-8 without control characters. Anything else names
// nothing, and is NOT_FOUND without asking the store.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// notFoundAs returns notFound in place of a NOT_FOUND error of the store,
// and err otherwise (nil included).
func notFoundAs(err, notFound error) error {
	if apperr.CodeOf(err) == apperr.NotFound {
		return notFound
	}
	return err
}

// event returns an event of action in the organisation id, made by the
// user p at at.
func event(ctx context.Context, p apikey.Principal, id, action string, at time.Time, details map[string]any) audit.Event {
	ev := audit.New(ctx, p.UserID, action, at)
	ev.OrgID = id
	ev.Details = details
	return ev
}

// Authorize returns the grant of the JWT principal p in the organisation
// id when p's role there allows need (apikey.OrgAccess). In
// identity-provider mode p.Org must name id; the role is p.Org's, and the
// organisation is created the first time a token names it.
// Returns NOT_FOUND "organisation not found" and INSUFFICIENT_ROLE.
func (s *Service) Authorize(ctx context.Context, p apikey.Principal, id string, need apikey.Role) (apikey.OrgGrant, error) {
	o, err := s.member(ctx, p, id, need)
	if err != nil {
		return apikey.OrgGrant{}, err
	}
	return apikey.OrgGrant{OrgID: o.ID, Role: o.Role, MaxKeyLifetime: o.MaxKeyLifetime}, nil
}

// member returns the organisation id with p's role in it, when that role
// allows need.
func (s *Service) member(ctx context.Context, p apikey.Principal, id string, need apikey.Role) (Org, error) {
	if !validID(id) {
		return Org{}, errOrgNotFound
	}
	var o Org
	var err error
	if s.idp {
		if p.Org == nil || p.Org.ID != id {
			return Org{}, errOrgNotFound
		}
		o, err = s.ensure(ctx, p)
	} else {
		o, err = s.store.Membership(ctx, id, p.UserID)
	}
	if err != nil {
		return Org{}, notFoundAs(err, errOrgNotFound)
	}
	if !o.Role.AtLeast(need) {
		return Org{}, insufficient(o.Role, need)
	}
	return o, nil
}

// ensure returns the organisation p's login token names in
// identity-provider mode, with the role the token gives, creating it the
// first time (named after its id; an owner may rename it).
func (s *Service) ensure(ctx context.Context, p apikey.Principal) (Org, error) {
	now := s.timestamp()
	id := p.Org.ID
	o, err := s.store.EnsureOrg(ctx, Org{ID: id, Name: id, CreatedAt: now},
		event(ctx, p, id, audit.OrgCreated, now, map[string]any{"name": id}))
	if err != nil {
		return Org{}, err
	}
	o.Role = p.Org.Role
	if !o.Role.Valid() { // the provider gave none we know: the least
		o.Role = apikey.RoleMember
	}
	return o, nil
}

// Create makes an organisation named name, with the caller as its owner.
// Returns INVALID_REQUEST for a bad name (apikey.NormalizeName; required),
// and NOT_FOUND in identity-provider mode, where the provider makes
// organisations.
func (s *Service) Create(ctx context.Context, name string) (Org, error) {
	p, err := apikey.RequireJWT(ctx)
	if err != nil {
		return Org{}, err
	}
	if s.idp {
		return Org{}, errOrgNotFound
	}
	n, err := apikey.NormalizeName(name)
	if err != nil {
		return Org{}, err
	}
	if n == "" {
		return Org{}, errNameRequired
	}
	uid, err := uuid.NewV7()
	if err != nil {
		return Org{}, err
	}
	now := s.timestamp()
	o := Org{ID: uid.String(), Name: n, CreatedAt: now, Role: apikey.RoleOwner}
	owner := Member{UserID: p.UserID, Role: apikey.RoleOwner, JoinedAt: now}
	ev := event(ctx, p, o.ID, audit.OrgCreated, now, map[string]any{"name": n})
	if err := s.store.CreateOrg(ctx, o, owner, ev); err != nil {
		return Org{}, err
	}
	return o, nil
}

// List returns the organisations the caller is a member of, oldest first,
// each with the caller's role; in identity-provider mode the one the login
// token names, if any.
func (s *Service) List(ctx context.Context) ([]Org, error) {
	p, err := apikey.RequireJWT(ctx)
	if err != nil {
		return nil, err
	}
	if !s.idp {
		return s.store.ListOrgs(ctx, p.UserID)
	}
	if p.Org == nil {
		return []Org{}, nil
	}
	o, err := s.member(ctx, p, p.Org.ID, apikey.RoleMember)
	switch {
	case apperr.CodeOf(err) == apperr.NotFound: // an id that names nothing
		return []Org{}, nil
	case err != nil:
		return nil, err
	}
	return []Org{o}, nil
}

// Get returns the organisation id with the caller's role in it (any
// member).
func (s *Service) Get(ctx context.Context, id string) (Org, error) {
	p, err := apikey.RequireJWT(ctx)
	if err != nil {
		return Org{}, err
	}
	return s.member(ctx, p, id, apikey.RoleMember)
}

// UpdateInput is a change of an organisation: each field set is changed.
type UpdateInput struct {
	Name apikey.Optional[string]
	// MaxKeyLifetime nil (when set) removes the limit. An edge that takes
	// whole seconds converts them with apikey.SecondsUpTo(n,
	// LongestKeyLifetime), so that Update refuses any out of range.
	MaxKeyLifetime apikey.Optional[*time.Duration]
}

// Update changes the organisation id (owner) and returns it as it now is.
// A change that changes nothing records no event.
// Returns INVALID_REQUEST for a bad name (required when set) or a
// MaxKeyLifetime that is not whole seconds from one to LongestKeyLifetime
// (ErrBadMaxKeyLifetime).
func (s *Service) Update(ctx context.Context, id string, in UpdateInput) (Org, error) {
	p, err := apikey.RequireJWT(ctx)
	if err != nil {
		return Org{}, err
	}
	var name string
	if in.Name.Set {
		if name, err = apikey.NormalizeName(in.Name.Value); err != nil {
			return Org{}, err
		}
		if name == "" {
			return Org{}, errNameRequired
		}
	}
	var lifetime time.Duration
	if in.MaxKeyLifetime.Set && in.MaxKeyLifetime.Value != nil {
		lifetime = *in.MaxKeyLifetime.Value
		if lifetime <= 0 || lifetime > LongestKeyLifetime || lifetime%time.Second != 0 {
			return Org{}, ErrBadMaxKeyLifetime
		}
	}
	o, err := s.member(ctx, p, id, apikey.RoleOwner)
	if err != nil {
		return Org{}, err
	}
	at := s.timestamp()
	updated, err := s.store.UpdateOrg(ctx, o.ID, func(old Org) (Org, audit.Event, error) {
		next, details := old, map[string]any{}
		if in.Name.Set && name != old.Name {
			next.Name = name
			details["name"] = map[string]any{"old": old.Name, "new": name}
		}
		if in.MaxKeyLifetime.Set && lifetime != old.MaxKeyLifetime {
			next.MaxKeyLifetime = lifetime
			details["max_key_lifetime_seconds"] = map[string]any{
				"old": lifetimeSeconds(old.MaxKeyLifetime), "new": lifetimeSeconds(lifetime),
			}
		}
		if len(details) == 0 {
			return next, audit.Event{}, nil
		}
		return next, event(ctx, p, o.ID, audit.OrgUpdated, at, details), nil
	})
	if err != nil {
		return Org{}, notFoundAs(err, errOrgNotFound)
	}
	updated.Role = o.Role
	return updated, nil
}

// lifetimeSeconds is a MaxKeyLifetime as the API shows it: whole seconds,
// or nil for none.
func lifetimeSeconds(d time.Duration) any {
	if d == 0 {
		return nil
	}
	return int64(d / time.Second)
}

// Delete deletes the organisation id (owner): its members and invitations
// go, and every key it owns is revoked, on every server within a second
// (the store tells the others; this one forgets them at once).
func (s *Service) Delete(ctx context.Context, id string) error {
	p, err := apikey.RequireJWT(ctx)
	if err != nil {
		return err
	}
	o, err := s.member(ctx, p, id, apikey.RoleOwner)
	if err != nil {
		return err
	}
	at := s.timestamp()
	hashes, err := s.store.DeleteOrg(ctx, o.ID, at, event(ctx, p, o.ID, audit.OrgDeleted, at, nil))
	if err != nil {
		return notFoundAs(err, errOrgNotFound)
	}
	s.onKeysRevoked(hashes)
	return nil
}

// membership opens each method of members and invitations: it returns the
// caller and the organisation id with the caller's role in it when that
// role allows need. Returns, in this order, the auth errors of RequireJWT;
// NOT_FOUND in identity-provider mode, where the provider owns membership;
// invalid, the method's own verdict on its other arguments, when not nil;
// and the errors of member.
func (s *Service) membership(ctx context.Context, id string, need apikey.Role, invalid error) (apikey.Principal, Org, error) {
	p, err := apikey.RequireJWT(ctx)
	if err != nil {
		return apikey.Principal{}, Org{}, err
	}
	if s.idp {
		return apikey.Principal{}, Org{}, errOrgNotFound
	}
	if invalid != nil {
		return apikey.Principal{}, Org{}, invalid
	}
	o, err := s.member(ctx, p, id, need)
	return p, o, err
}

// Members returns the members of the organisation id (any member), oldest
// first.
func (s *Service) Members(ctx context.Context, id string) ([]Member, error) {
	_, o, err := s.membership(ctx, id, apikey.RoleMember, nil)
	if err != nil {
		return nil, err
	}
	members, err := s.store.Members(ctx, o.ID)
	return members, notFoundAs(err, errOrgNotFound)
}

// UpdateMember gives the member userID of the organisation id the role
// (owner) and returns the member as they now are. A change that changes
// nothing records no event.
// Returns INVALID_REQUEST for an unknown role, NOT_FOUND "member not found"
// when userID is not a member, and LAST_OWNER for a demotion of the last
// owner (see lastOwner).
func (s *Service) UpdateMember(ctx context.Context, id, userID string, role apikey.Role) (Member, error) {
	var invalid error
	if !role.Valid() {
		invalid = errBadRole
	}
	p, o, err := s.membership(ctx, id, apikey.RoleMember, invalid)
	if err != nil {
		return Member{}, err
	}
	if !validID(userID) {
		return Member{}, errMemberNotFound
	}
	at := s.timestamp()
	m, err := s.store.UpdateMember(ctx, o.ID, userID, func(m Member, owners int) (Member, audit.Event, error) {
		if err := lastOwner(m, role, owners, o.Role, apikey.RoleOwner); err != nil {
			return Member{}, audit.Event{}, err
		}
		if m.Role == role {
			return m, audit.Event{}, nil
		}
		old := m.Role
		m.Role = role
		return m, event(ctx, p, o.ID, audit.OrgMemberRoleChanged, at, map[string]any{
			"user_id": m.UserID, "role": map[string]any{"old": old, "new": role},
		}), nil
	})
	return m, notFoundAs(err, errMemberNotFound)
}

// RemoveMember removes the member userID from the organisation id: an
// owner removes anyone, any member themself. Their personal keys and the
// organisation's keys (those they made included) are untouched; they lose
// access to the organisation at once.
// Returns NOT_FOUND "member not found" when userID is not a member, and
// LAST_OWNER for the last owner (see lastOwner).
func (s *Service) RemoveMember(ctx context.Context, id, userID string) error {
	p, o, err := s.membership(ctx, id, apikey.RoleMember, nil)
	if err != nil {
		return err
	}
	if !validID(userID) {
		return errMemberNotFound
	}
	need := apikey.RoleOwner
	if userID == p.UserID {
		need = apikey.RoleMember
	}
	at := s.timestamp()
	err = s.store.RemoveMember(ctx, o.ID, userID, func(m Member, owners int) (audit.Event, error) {
		if err := lastOwner(m, "", owners, o.Role, need); err != nil {
			return audit.Event{}, err
		}
		return event(ctx, p, o.ID, audit.OrgMemberRemoved, at, map[string]any{
			"user_id": m.UserID, "role": m.Role,
		}), nil
	})
	return notFoundAs(err, errMemberNotFound)
}

// lastOwner is the verdict on giving the member m the role next (none: a
// removal), with owners owners left, asked by a caller whose role is have
// where need is needed. It runs under the store's lock of the
// organisation, so that changes of its members apply one after the other.
// An organisation keeps an owner whoever asks: LAST_OWNER comes before
// INSUFFICIENT_ROLE, so that when the last two owners demote each other at
// once, the one whose turn comes second is told LAST_OWNER, even though
// the first has just made them an admin.
func lastOwner(m Member, next apikey.Role, owners int, have, need apikey.Role) error {
	if m.Role == apikey.RoleOwner && next != apikey.RoleOwner && owners <= 1 {
		return errLastOwner
	}
	if !have.AtLeast(need) {
		return insufficient(have, need)
	}
	return nil
}

// InvitationInput is an invitation to make.
type InvitationInput struct {
	Role apikey.Role
	// Email, when set, is the email of the only account that may accept
	// the invitation (with built-in accounts); blank is none.
	Email *string
}

// CreatedInvitation is an invitation just made, with its token: the only
// time the token is ever available.
type CreatedInvitation struct {
	Invitation
	Token string
}

// CreateInvitation makes an invitation to the organisation id (admin; an
// invitation of an owner: owner) valid for Config.InvitationTTL.
// Returns INVALID_REQUEST for an unknown role or a malformed email, and
// INSUFFICIENT_ROLE for an admin inviting an owner.
func (s *Service) CreateInvitation(ctx context.Context, id string, in InvitationInput) (CreatedInvitation, error) {
	email, invalid := checkInvitation(in)
	p, o, err := s.membership(ctx, id, apikey.RoleAdmin, invalid)
	if err != nil {
		return CreatedInvitation{}, err
	}
	if in.Role == apikey.RoleOwner && !o.Role.AtLeast(apikey.RoleOwner) {
		return CreatedInvitation{}, errOwnerInvite
	}
	uid, err := uuid.NewV7()
	if err != nil {
		return CreatedInvitation{}, err
	}
	now := s.timestamp()
	inv := Invitation{
		ID: uid.String(), OrgID: o.ID, Role: in.Role, Email: email,
		CreatedBy: p.UserID, CreatedAt: now, ExpiresAt: now.Add(s.ttl),
	}
	token := string(apikey.AppendRandomBase62([]byte(invitationPrefix), invitationSecretLen))
	ev := event(ctx, p, o.ID, audit.OrgInvitationCreated, now, map[string]any{
		"invitation_id": inv.ID, "role": inv.Role, "email": inv.Email, "expires_at": apitime.Format(inv.ExpiresAt),
	})
	if err := s.store.CreateInvitation(ctx, NewInvitation{Invitation: inv, TokenHash: apikey.Hash(token), Event: ev}); err != nil {
		return CreatedInvitation{}, notFoundAs(err, errOrgNotFound)
	}
	return CreatedInvitation{Invitation: inv, Token: token}, nil
}

// checkInvitation returns in's email as stored (trimmed; nil when blank),
// or INVALID_REQUEST for an unknown role or a malformed email.
func checkInvitation(in InvitationInput) (*string, error) {
	if !in.Role.Valid() {
		return nil, errBadRole
	}
	if in.Email == nil || strings.TrimSpace(*in.Email) == "" {
		return nil, nil
	}
	e, _, err := account.NormalizeEmail(*in.Email)
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// Invitations returns the pending invitations of the organisation id
// (admin), oldest first: neither accepted, revoked nor expired.
func (s *Service) Invitations(ctx context.Context, id string) ([]Invitation, error) {
	_, o, err := s.membership(ctx, id, apikey.RoleAdmin, nil)
	if err != nil {
		return nil, err
	}
	invs, err := s.store.Invitations(ctx, o.ID, s.now())
	return invs, notFoundAs(err, errOrgNotFound)
}

// RevokeInvitation withdraws the pending invitation invID of the
// organisation id (admin).
// Returns NOT_FOUND "invitation not found" when there is no such pending
// invitation (malformed, unknown, another organisation's, accepted,
// revoked or expired).
func (s *Service) RevokeInvitation(ctx context.Context, id, invID string) error {
	p, o, err := s.membership(ctx, id, apikey.RoleAdmin, nil)
	if err != nil {
		return err
	}
	uid, err := uuid.Parse(invID)
	if err != nil || len(invID) != 36 {
		return errInvitationNotFound
	}
	at := s.timestamp()
	ev := event(ctx, p, o.ID, audit.OrgInvitationRevoked, at, map[string]any{"invitation_id": uid.String()})
	return notFoundAs(s.store.RevokeInvitation(ctx, o.ID, uid.String(), at, ev), errInvitationNotFound)
}

// AcceptInvitation makes the caller a member of the organisation that the
// invitation token invites to, with the invitation's role (a member
// already keeps the higher of their role and it), and returns the
// organisation with the caller's role. The invitation is used up.
// Returns INVALID_REQUEST for a token that is not an invitation token,
// NOT_FOUND "invitation not found" for one that is unknown, expired, used
// or revoked (and then nothing changes), INVITATION_EMAIL_MISMATCH when
// accounts are built in and the invitation names another email than the
// caller's account's, and NOT_FOUND in identity-provider mode.
func (s *Service) AcceptInvitation(ctx context.Context, token string) (Org, error) {
	p, err := apikey.RequireJWT(ctx)
	if err != nil {
		return Org{}, err
	}
	if s.idp {
		return Org{}, errInvitationNotFound
	}
	secret, ok := strings.CutPrefix(token, invitationPrefix)
	if !ok || len(secret) != invitationSecretLen || !apikey.IsBase62(secret) {
		return Org{}, errBadToken
	}
	var email *string
	if s.accounts {
		if email, err = s.store.UserEmail(ctx, p.UserID); err != nil {
			return Org{}, err
		}
	}
	at := s.timestamp()
	var role apikey.Role
	o, err := s.store.AcceptInvitation(ctx, apikey.Hash(token), p.UserID, at,
		func(inv Invitation, o Org, current *Member) (*Member, []audit.Event, error) {
			if inv.AcceptedAt != nil || inv.RevokedAt != nil || !inv.ExpiresAt.After(at) {
				return nil, nil, errInvitationNotFound
			}
			// Emails compare as accounts do: lower-cased (account.NormalizeEmail).
			if s.accounts && inv.Email != nil && (email == nil || strings.ToLower(*email) != strings.ToLower(*inv.Email)) {
				return nil, nil, errEmailMismatch
			}
			events := []audit.Event{event(ctx, p, o.ID, audit.OrgInvitationAccepted, at, map[string]any{
				"invitation_id": inv.ID, "role": inv.Role,
			})}
			switch {
			case current == nil:
				role = inv.Role
				events = append(events, event(ctx, p, o.ID, audit.OrgMemberAdded, at, map[string]any{
					"user_id": p.UserID, "role": inv.Role, "invitation_id": inv.ID,
				}))
				return &Member{UserID: p.UserID, Role: inv.Role, JoinedAt: at}, events, nil
			case current.Role.AtLeast(inv.Role):
				role = current.Role
				return nil, events, nil
			default:
				role = inv.Role
				events = append(events, event(ctx, p, o.ID, audit.OrgMemberRoleChanged, at, map[string]any{
					"user_id": p.UserID, "role": map[string]any{"old": current.Role, "new": inv.Role}, "invitation_id": inv.ID,
				}))
				m := *current
				m.Role = inv.Role
				return &m, events, nil
			}
		})
	if err != nil {
		return Org{}, notFoundAs(err, errInvitationNotFound)
	}
	o.Role = role
	return o, nil
}

// AuditEvents returns a page of the organisation id's log (any member),
// newest first: first events (1 to audit.MaxLimit) after the cursor after
// (a Page.Next; empty for the first page), as audit.Service.List pages a
// user's.
// Returns INVALID_REQUEST for a limit out of range or a cursor that is not
// one of this log's.
func (s *Service) AuditEvents(ctx context.Context, id, after string, first int) (audit.Page, error) {
	p, err := apikey.RequireJWT(ctx)
	if err != nil {
		return audit.Page{}, err
	}
	o, err := s.member(ctx, p, id, apikey.RoleMember)
	if err != nil {
		return audit.Page{}, err
	}
	return audit.ReadPage(first, after, func(before string, limit int) ([]audit.Event, error) {
		return s.store.ListOrgEvents(ctx, o.ID, before, limit)
	})
}
