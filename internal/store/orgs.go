package store

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/org"
)

var _ org.Store = (*Store)(nil)

// orgRow is a row of orgs.
type orgRow struct {
	bun.BaseModel `bun:"table:orgs"`

	ID             string     `bun:"id,pk"`
	Name           string     `bun:"name,notnull"`
	CreatedAt      time.Time  `bun:"created_at,notnull"`
	MaxKeyLifetime *int64     `bun:"max_key_lifetime_seconds"` // NULL: no limit
	DeletedAt      *time.Time `bun:"deleted_at"`
}

func newOrgRow(o org.Org) *orgRow {
	return &orgRow{ID: o.ID, Name: o.Name, CreatedAt: o.CreatedAt, MaxKeyLifetime: lifetimeSeconds(o.MaxKeyLifetime)}
}

// lifetimeSeconds is a key lifetime as stored: whole seconds, NULL (nil)
// for none.
func lifetimeSeconds(d time.Duration) *int64 {
	if d <= 0 {
		return nil
	}
	s := int64(d / time.Second)
	return &s
}

// domain is the organisation r holds, with role as the caller's.
func (r *orgRow) domain(role apikey.Role) org.Org {
	o := org.Org{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt.UTC(), Role: role}
	if r.MaxKeyLifetime != nil {
		o.MaxKeyLifetime = time.Duration(*r.MaxKeyLifetime) * time.Second
	}
	return o
}

// memberRow is a row of org_members.
type memberRow struct {
	bun.BaseModel `bun:"table:org_members"`

	OrgID    string    `bun:"org_id,pk"`
	UserID   string    `bun:"user_id,pk"`
	Role     string    `bun:"role,notnull"`
	JoinedAt time.Time `bun:"joined_at,notnull"`
}

func (r *memberRow) domain() org.Member {
	return org.Member{UserID: r.UserID, Role: apikey.Role(r.Role), JoinedAt: r.JoinedAt.UTC()}
}

// invitationRow is a row of org_invitations.
type invitationRow struct {
	bun.BaseModel `bun:"table:org_invitations"`

	ID         string     `bun:"id,pk"`
	OrgID      string     `bun:"org_id,notnull"`
	TokenHash  string     `bun:"token_hash,notnull"`
	Role       string     `bun:"role,notnull"`
	Email      *string    `bun:"email"`
	CreatedBy  string     `bun:"created_by,notnull"`
	CreatedAt  time.Time  `bun:"created_at,notnull"`
	ExpiresAt  time.Time  `bun:"expires_at,notnull"`
	AcceptedAt *time.Time `bun:"accepted_at"`
	AcceptedBy *string    `bun:"accepted_by"`
	RevokedAt  *time.Time `bun:"revoked_at"`
}

func (r *invitationRow) domain() org.Invitation {
	toUTC(r.AcceptedAt)
	toUTC(r.RevokedAt)
	return org.Invitation{
		ID:         r.ID,
		OrgID:      r.OrgID,
		Role:       apikey.Role(r.Role),
		Email:      r.Email,
		CreatedBy:  r.CreatedBy,
		CreatedAt:  r.CreatedAt.UTC(),
		ExpiresAt:  r.ExpiresAt.UTC(),
		AcceptedAt: r.AcceptedAt,
		RevokedAt:  r.RevokedAt,
	}
}

var (
	errMemberNotFound     = apperr.New(apperr.NotFound, "member not found")
	errInvitationNotFound = apperr.New(apperr.NotFound, "invitation not found")
)

// liveOrg selects the organisation id unless it was deleted.
func liveOrg(db bun.IDB, id string) *bun.SelectQuery {
	return db.NewSelect().Model((*orgRow)(nil)).Where("id = ?", id).Where("deleted_at IS NULL")
}

// readLiveOrg reads the organisation id unless it was deleted, on
// PostgreSQL with its row locked in mode ("SHARE", "UPDATE"; "" for none)
// until tx ends; SQLite's write lock, taken at BEGIN IMMEDIATE, already
// excludes every other change. Returns errOrgNotFound when there is no such
// organisation.
func readLiveOrg(ctx context.Context, db bun.IDB, id, mode string) (orgRow, error) {
	var r orgRow
	q := liveOrg(db, id).Model(&r)
	if mode != "" && IsPostgresDB(db) {
		q = q.For(mode)
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return r, errOrgNotFound
	}
	return r, err
}

// change runs fn in one transaction and records the event fn returns in
// it (recordChangeEvent; the zero Event: none); once the transaction has
// committed, the event is counted (changeEventWritten). Every change of an
// organisation but an accepted invitation's (several events) goes through
// here. Errors come back translated.
func (s *Store) change(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) (audit.Event, error)) error {
	var ev audit.Event
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if ev, err = fn(ctx, tx); err != nil {
			return err
		}
		return s.recordChangeEvent(ctx, tx, ev)
	})
	if err != nil {
		return translate(err)
	}
	s.changeEventWritten(ev)
	return nil
}

// CreateOrg implements org.Store.
func (s *Store) CreateOrg(ctx context.Context, o org.Org, owner org.Member, ev audit.Event) error {
	return s.change(ctx, func(ctx context.Context, tx bun.Tx) (audit.Event, error) {
		if _, err := tx.NewInsert().Model(newOrgRow(o)).Exec(ctx); err != nil {
			return ev, err
		}
		return ev, insertMember(ctx, tx, o.ID, owner)
	})
}

// insertMember makes m a member of the organisation orgID.
func insertMember(ctx context.Context, db bun.IDB, orgID string, m org.Member) error {
	_, err := db.NewInsert().Model(&memberRow{OrgID: orgID, UserID: m.UserID, Role: string(m.Role), JoinedAt: m.JoinedAt}).Exec(ctx)
	return err
}

// ensureOrgQuery inserts an organisation, or makes a deleted one live again
// with the given values, and returns its id; it returns no row when the
// organisation is live. Either way the row stays locked until the
// transaction ends (PostgreSQL locks the conflicting row of ON CONFLICT DO
// UPDATE even when its WHERE skips it). Arguments: id, name, created_at,
// max_key_lifetime_seconds.
const ensureOrgQuery = `INSERT INTO orgs (id, name, created_at, max_key_lifetime_seconds) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, created_at = excluded.created_at,
	max_key_lifetime_seconds = excluded.max_key_lifetime_seconds, deleted_at = NULL
WHERE orgs.deleted_at IS NOT NULL
RETURNING id`

// EnsureOrg implements org.Store. A live organisation is read, with no
// write; otherwise one upsert inserts or revives it: of concurrent calls
// for one id, the unique primary key lets exactly one insert (PostgreSQL:
// the others wait for it to commit, then find the row live and read it).
func (s *Store) EnsureOrg(ctx context.Context, o org.Org, ev audit.Event) (org.Org, error) {
	switch r, err := readLiveOrg(ctx, s.db, o.ID, ""); {
	case err == nil:
		return r.domain(""), nil
	case !errors.Is(err, errOrgNotFound):
		return org.Org{}, translate(err)
	}
	var got org.Org
	err := s.change(ctx, func(ctx context.Context, tx bun.Tx) (audit.Event, error) {
		var id string
		err := tx.NewRaw(ensureOrgQuery, o.ID, o.Name, o.CreatedAt, lifetimeSeconds(o.MaxKeyLifetime)).Scan(ctx, &id)
		switch {
		case err == nil:
			got = newOrgRow(o).domain("")
			return ev, nil
		case !errors.Is(err, sql.ErrNoRows):
			return audit.Event{}, err
		}
		r, err := readLiveOrg(ctx, tx, o.ID, "")
		got = r.domain("")
		return audit.Event{}, err // made by another call meanwhile
	})
	if err != nil {
		return org.Org{}, err
	}
	return got, nil
}

// GetOrg implements org.Store.
func (s *Store) GetOrg(ctx context.Context, id string) (org.Org, error) {
	r, err := readLiveOrg(ctx, s.db, id, "")
	if err != nil {
		return org.Org{}, translate(err)
	}
	return r.domain(""), nil
}

// orgWithRole is an organisation read with a member's role.
type orgWithRole struct {
	orgRow `bun:",extend"`
	Role   string `bun:"role"`
}

// memberships selects the live organisations with userID's role in each,
// as orgWithRole.
func memberships(db bun.IDB, userID string) *bun.SelectQuery {
	return db.NewSelect().
		TableExpr("orgs AS o").
		Join("JOIN org_members AS m ON m.org_id = o.id").
		ColumnExpr("o.id, o.name, o.created_at, o.max_key_lifetime_seconds, m.role").
		Where("m.user_id = ?", userID).
		Where("o.deleted_at IS NULL")
}

// Membership implements org.Store in one query.
func (s *Store) Membership(ctx context.Context, id, userID string) (org.Org, error) {
	var r orgWithRole
	err := memberships(s.db, userID).Where("o.id = ?", id).Scan(ctx, &r)
	if errors.Is(err, sql.ErrNoRows) {
		return org.Org{}, errOrgNotFound
	}
	if err != nil {
		return org.Org{}, translate(err)
	}
	return r.domain(apikey.Role(r.Role)), nil
}

// ListOrgs implements org.Store through the index of members by user.
func (s *Store) ListOrgs(ctx context.Context, userID string) ([]org.Org, error) {
	var rows []orgWithRole
	if err := memberships(s.db, userID).OrderExpr("o.created_at, o.id").Scan(ctx, &rows); err != nil {
		return nil, translate(err)
	}
	out := make([]org.Org, len(rows))
	for i := range rows {
		out[i] = rows[i].domain(apikey.Role(rows[i].Role))
	}
	return out, nil
}

// UpdateOrg implements org.Store, the row locked (PostgreSQL: FOR UPDATE;
// SQLite: the write lock taken at BEGIN IMMEDIATE) so that concurrent
// updates apply one after the other.
func (s *Store) UpdateOrg(ctx context.Context, id string, change func(old org.Org) (org.Org, audit.Event, error)) (org.Org, error) {
	var updated org.Org
	err := s.change(ctx, func(ctx context.Context, tx bun.Tx) (audit.Event, error) {
		r, err := readLiveOrg(ctx, tx, id, "UPDATE")
		if err != nil {
			return audit.Event{}, err
		}
		next, ev, err := change(r.domain(""))
		if err != nil {
			return audit.Event{}, err
		}
		r.Name, r.MaxKeyLifetime = next.Name, lifetimeSeconds(next.MaxKeyLifetime)
		if _, err := tx.NewUpdate().Model(&r).Column("name", "max_key_lifetime_seconds").WherePK().Exec(ctx); err != nil {
			return audit.Event{}, err
		}
		updated = r.domain("")
		return ev, nil
	})
	if err != nil {
		return org.Org{}, err
	}
	return updated, nil
}

// DeleteOrg implements org.Store. The organisation's row is locked first
// (PostgreSQL: FOR UPDATE), so a concurrent CreateKey of one of its keys,
// which reads it FOR SHARE, either commits before and its key is revoked
// here, or waits and finds the organisation deleted. The keys are revoked
// in one statement through notifyingUpdate, as RevokeKey revokes one.
func (s *Store) DeleteOrg(ctx context.Context, id string, at time.Time, ev audit.Event) ([]string, error) {
	var hashes []string
	err := s.change(ctx, func(ctx context.Context, tx bun.Tx) (audit.Event, error) {
		if _, err := readLiveOrg(ctx, tx, id, "UPDATE"); err != nil {
			return ev, err
		}
		if _, err := tx.NewUpdate().Model((*orgRow)(nil)).Set("deleted_at = ?", at).Where("id = ?", id).Exec(ctx); err != nil {
			return ev, err
		}
		if _, err := tx.NewDelete().Model((*memberRow)(nil)).Where("org_id = ?", id).Exec(ctx); err != nil {
			return ev, err
		}
		if _, err := tx.NewDelete().Model((*invitationRow)(nil)).Where("org_id = ?", id).Exec(ctx); err != nil {
			return ev, err
		}
		q, notifies := notifyingUpdate(tx, tx.NewUpdate().Model((*keyRow)(nil)).
			Set("revoked_at = ?", at).
			Where("org_id = ?", id).
			Where("revoked_at IS NULL"))
		var ids, users, orgs, prefixes, notified []string
		dest := []any{&ids, &users, &orgs, &prefixes, &hashes}
		if notifies {
			dest = append(dest, &notified)
		}
		if err := q.Scan(ctx, dest...); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return ev, err
		}
		details := maps.Clone(ev.Details)
		if details == nil {
			details = map[string]any{}
		}
		details["keys_revoked"] = len(hashes)
		ev.Details = details
		return ev, nil
	})
	if err != nil {
		return nil, err
	}
	return hashes, nil
}

// Members implements org.Store: one query for the members and, when some
// may have built-in accounts, one for their emails.
func (s *Store) Members(ctx context.Context, id string) ([]org.Member, error) {
	var rows []memberRow
	err := s.db.NewSelect().Model(&rows).
		Where("org_id = ?", id).
		Where("EXISTS (?)", liveOrg(s.db, id).ColumnExpr("1")).
		OrderExpr("joined_at, user_id").
		Scan(ctx)
	if err != nil {
		return nil, translate(err)
	}
	if len(rows) == 0 {
		// No member, or no organisation.
		if _, err := s.GetOrg(ctx, id); err != nil {
			return nil, err
		}
	}
	members := make([]org.Member, len(rows))
	var accounts []string
	for i := range rows {
		members[i] = rows[i].domain()
		if canonicalUUID(rows[i].UserID) { // users.id is a uuid on PostgreSQL: compare no other string with it
			accounts = append(accounts, rows[i].UserID)
		}
	}
	if len(accounts) == 0 {
		return members, nil
	}
	var users []userRow
	if err := s.db.NewSelect().Model(&users).Column("id", "email").Where("id IN (?)", bun.In(accounts)).Scan(ctx); err != nil {
		return nil, translate(err)
	}
	emails := make(map[string]string, len(users))
	for _, u := range users {
		emails[u.ID] = u.Email
	}
	for i := range members {
		if email, ok := emails[members[i].UserID]; ok {
			members[i].Email = &email
		}
	}
	return members, nil
}

// UserEmail implements org.Store.
func (s *Store) UserEmail(ctx context.Context, userID string) (*string, error) {
	if !canonicalUUID(userID) {
		return nil, nil // users.id is a uuid on PostgreSQL: compare no other string with it
	}
	var email string
	err := s.db.NewSelect().Model((*userRow)(nil)).Column("email").Where("id = ?", userID).Scan(ctx, &email)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err)
	}
	return &email, nil
}

// lockMember locks the live organisation id (PostgreSQL: FOR UPDATE;
// SQLite: the write lock taken at BEGIN IMMEDIATE), so that changes of its
// members apply one after the other, and reads the member userID and the
// number of its owners.
func lockMember(ctx context.Context, tx bun.Tx, id, userID string) (m memberRow, owners int, err error) {
	if _, err := readLiveOrg(ctx, tx, id, "UPDATE"); err != nil {
		return m, 0, err
	}
	err = tx.NewSelect().Model(&m).Where("org_id = ?", id).Where("user_id = ?", userID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return m, 0, errMemberNotFound
	}
	if err != nil {
		return m, 0, err
	}
	n, err := tx.NewSelect().Model((*memberRow)(nil)).Where("org_id = ?", id).Where("role = ?", apikey.RoleOwner).Count(ctx)
	return m, int(n), err
}

// UpdateMember implements org.Store.
func (s *Store) UpdateMember(ctx context.Context, id, userID string, change func(m org.Member, owners int) (org.Member, audit.Event, error)) (org.Member, error) {
	var updated org.Member
	err := s.change(ctx, func(ctx context.Context, tx bun.Tx) (audit.Event, error) {
		r, owners, err := lockMember(ctx, tx, id, userID)
		if err != nil {
			return audit.Event{}, err
		}
		next, ev, err := change(r.domain(), owners)
		if err != nil {
			return audit.Event{}, err
		}
		r.Role = string(next.Role)
		if _, err := tx.NewUpdate().Model(&r).Column("role").WherePK().Exec(ctx); err != nil {
			return audit.Event{}, err
		}
		updated = r.domain()
		return ev, nil
	})
	if err != nil {
		return org.Member{}, err
	}
	return updated, nil
}

// RemoveMember implements org.Store.
func (s *Store) RemoveMember(ctx context.Context, id, userID string, check func(m org.Member, owners int) (audit.Event, error)) error {
	return s.change(ctx, func(ctx context.Context, tx bun.Tx) (audit.Event, error) {
		r, owners, err := lockMember(ctx, tx, id, userID)
		if err != nil {
			return audit.Event{}, err
		}
		ev, err := check(r.domain(), owners)
		if err != nil {
			return audit.Event{}, err
		}
		_, err = tx.NewDelete().Model(&r).WherePK().Exec(ctx)
		return ev, err
	})
}

// CreateInvitation implements org.Store. The organisation is read FOR
// SHARE (PostgreSQL), so a concurrent DeleteOrg either deletes the new
// invitation too or makes this one NOT_FOUND.
func (s *Store) CreateInvitation(ctx context.Context, inv org.NewInvitation) error {
	return s.change(ctx, func(ctx context.Context, tx bun.Tx) (audit.Event, error) {
		if _, err := readLiveOrg(ctx, tx, inv.OrgID, "SHARE"); err != nil {
			return inv.Event, err
		}
		_, err := tx.NewInsert().Model(&invitationRow{
			ID:        inv.ID,
			OrgID:     inv.OrgID,
			TokenHash: inv.TokenHash,
			Role:      string(inv.Role),
			Email:     inv.Email,
			CreatedBy: inv.CreatedBy,
			CreatedAt: inv.CreatedAt,
			ExpiresAt: inv.ExpiresAt,
		}).Exec(ctx)
		return inv.Event, err
	})
}

// pending is the condition, given the time now, that an invitation can
// still be accepted.
const pending = "accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?"

// endInvitation runs update, which accepts or revokes the invitation it
// selects, if that invitation is pending at at; errInvitationNotFound when
// it is not.
func endInvitation(ctx context.Context, update *bun.UpdateQuery, at time.Time) error {
	res, err := update.Where(pending, at).Exec(ctx)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errInvitationNotFound
	}
	return nil
}

// Invitations implements org.Store through the index of invitations by
// organisation.
func (s *Store) Invitations(ctx context.Context, id string, now time.Time) ([]org.Invitation, error) {
	if _, err := s.GetOrg(ctx, id); err != nil {
		return nil, err
	}
	var rows []invitationRow
	err := s.db.NewSelect().Model(&rows).
		Where("org_id = ?", id).
		Where(pending, now).
		OrderExpr("created_at, id").
		Scan(ctx)
	if err != nil {
		return nil, translate(err)
	}
	out := make([]org.Invitation, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// RevokeInvitation implements org.Store. An organisation's invitations
// go with it, so a pending one's organisation is live.
func (s *Store) RevokeInvitation(ctx context.Context, id, invID string, at time.Time, ev audit.Event) error {
	if !canonicalUUID(invID) {
		return errInvitationNotFound // org_invitations.id is a uuid on PostgreSQL
	}
	return s.change(ctx, func(ctx context.Context, tx bun.Tx) (audit.Event, error) {
		return ev, endInvitation(ctx, tx.NewUpdate().Model((*invitationRow)(nil)).
			Set("revoked_at = ?", at).
			Where("id = ?", invID).
			Where("org_id = ?", id), at)
	})
}

// AcceptInvitation implements org.Store. Like every change of an
// organisation's members it locks the organisation's row first
// (PostgreSQL: FOR UPDATE; SQLite: the write lock taken at BEGIN
// IMMEDIATE), then the invitation's, in the order DeleteOrg takes them.
func (s *Store) AcceptInvitation(ctx context.Context, tokenHash, userID string, at time.Time, accept func(inv org.Invitation, o org.Org, current *org.Member) (*org.Member, []audit.Event, error)) (org.Org, error) {
	var joined org.Org
	var events []audit.Event
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var orgID string
		err := tx.NewSelect().Model((*invitationRow)(nil)).Column("org_id").Where("token_hash = ?", tokenHash).Scan(ctx, &orgID)
		if errors.Is(err, sql.ErrNoRows) {
			return errInvitationNotFound
		}
		if err != nil {
			return err
		}
		o, err := readLiveOrg(ctx, tx, orgID, "UPDATE")
		if errors.Is(err, errOrgNotFound) {
			return errInvitationNotFound
		}
		if err != nil {
			return err
		}
		var inv invitationRow
		q := tx.NewSelect().Model(&inv).Where("token_hash = ?", tokenHash)
		if IsPostgresDB(tx) {
			q = q.For("UPDATE")
		}
		if err := q.Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) { // deleted with its organisation meanwhile
				return errInvitationNotFound
			}
			return err
		}
		var current *org.Member
		var m memberRow
		err = tx.NewSelect().Model(&m).Where("org_id = ?", orgID).Where("user_id = ?", userID).Scan(ctx)
		switch {
		case err == nil:
			cm := m.domain()
			current = &cm
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		next, evs, err := accept(inv.domain(), o.domain(""), current)
		if err != nil {
			return err
		}
		role := apikey.Role("")
		switch {
		case next != nil && current == nil:
			if err := insertMember(ctx, tx, orgID, org.Member{UserID: userID, Role: next.Role, JoinedAt: next.JoinedAt}); err != nil {
				return err
			}
			role = next.Role
		case next != nil:
			m.Role = string(next.Role)
			if _, err := tx.NewUpdate().Model(&m).Column("role").WherePK().Exec(ctx); err != nil {
				return err
			}
			role = next.Role
		case current != nil:
			role = current.Role
		}
		// Conditional, whatever accept said: an invitation is used once.
		err = endInvitation(ctx, tx.NewUpdate().Model((*invitationRow)(nil)).
			Set("accepted_at = ?", at).
			Set("accepted_by = ?", userID).
			Where("id = ?", inv.ID), at)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := s.recordChangeEvent(ctx, tx, ev); err != nil {
				return err
			}
		}
		joined, events = o.domain(role), evs
		return nil
	})
	if err != nil {
		return org.Org{}, translate(err)
	}
	for _, ev := range events {
		s.changeEventWritten(ev)
	}
	return joined, nil
}

// canonicalUUID reports whether id is a UUID in its canonical form, the
// form the ids of accounts and invitations are made in.
func canonicalUUID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

// ListOrgEvents implements org.Store through the (org_id, id) index, as
// ListEvents lists a user's.
func (s *Store) ListOrgEvents(ctx context.Context, id, before string, limit int) ([]audit.Event, error) {
	return s.listEvents(ctx, "org_id", id, before, limit, liveOrg(s.db, id).ColumnExpr("1"))
}
