package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// RevokeLeakedKey implements apikey.Store: the same conditional UPDATE, and
// on PostgreSQL the same notification, as RevokeKey, also recording where
// and when the key was found. Only when no row changed does a second query
// tell a key already revoked by a leak report from anything else.
func (s *Store) RevokeLeakedKey(ctx context.Context, hash string, at time.Time, where apikey.Leak, ev audit.Event) (apikey.LeakOutcome, error) {
	_, err := s.revoke(ctx, ev, func(db bun.IDB) *bun.UpdateQuery {
		return db.NewUpdate().Model((*keyRow)(nil)).
			Set("revoked_at = ?", at).
			Set("leaked_at = ?", at).
			Set("leak_url = ?", nullable(where.URL)).
			Set("leak_source = ?", nullable(where.Source)).
			Where("key_hash = ?", hash).
			Where("revoked_at IS NULL").
			Where("(expires_at IS NULL OR expires_at > ?)", at)
	})
	if err == nil {
		return apikey.LeakRevoked, nil
	}
	if apperr.CodeOf(err) != apperr.NotFound {
		return 0, err
	}
	var leaked int
	err = s.db.NewSelect().Model((*keyRow)(nil)).ColumnExpr("1").
		Where("key_hash = ?", hash).
		Where("leaked_at IS NOT NULL").
		Limit(1).Scan(ctx, &leaked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return apikey.LeakNotActive, nil
	case err != nil:
		return 0, translate(err)
	}
	return apikey.LeakAlreadyRevoked, nil
}

// ListLeakNotices implements apikey.Store: the organisations in which
// userID is an admin or an owner are read in the same query.
func (s *Store) ListLeakNotices(ctx context.Context, userID string, orgIDs []string) ([]apikey.LeakNotice, error) {
	var rows []struct {
		keyRow     `bun:",extend"`
		LeakedAt   time.Time `bun:"leaked_at"`
		LeakURL    *string   `bun:"leak_url"`
		LeakSource *string   `bun:"leak_source"`
	}
	personal, arg := ownedBy("", apikey.UserOwner(userID))
	administered := s.db.NewSelect().
		TableExpr("org_members AS m").
		Join("JOIN orgs AS o ON o.id = m.org_id").
		Column("m.org_id").
		Where("m.user_id = ?", userID).
		Where("m.role IN (?)", bun.In([]string{string(apikey.RoleAdmin), string(apikey.RoleOwner)})).
		Where("o.deleted_at IS NULL")
	err := s.db.NewSelect().Model(&rows).
		ColumnExpr(keyColumns.list).
		Column("leaked_at", "leak_url", "leak_source").
		WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			q = q.Where(personal, arg).WhereOr("org_id IN (?)", administered)
			if len(orgIDs) > 0 {
				q = q.WhereOr("org_id IN (?)", bun.In(orgIDs))
			}
			return q
		}).
		Where("leaked_at IS NOT NULL").
		Where("leak_dismissed_at IS NULL").
		Order("leaked_at DESC", "id DESC").
		Scan(ctx)
	if err != nil {
		return nil, translate(err)
	}
	out := make([]apikey.LeakNotice, len(rows))
	for i, r := range rows {
		out[i] = apikey.LeakNotice{APIKey: r.domain(), LeakedAt: r.LeakedAt.UTC(), URL: r.LeakURL, Source: r.LeakSource}
	}
	return out, nil
}

// DismissLeakNotice implements apikey.Store with one conditional UPDATE.
func (s *Store) DismissLeakNotice(ctx context.Context, owner apikey.Owner, id string, at time.Time) error {
	cond, arg := ownedBy("", owner)
	res, err := s.db.NewUpdate().Model((*keyRow)(nil)).
		Set("leak_dismissed_at = ?", at).
		Where("id = ?", id).
		Where(cond, arg).
		Where("leaked_at IS NOT NULL").
		Where("leak_dismissed_at IS NULL").
		Exec(ctx)
	if err != nil {
		return translate(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return translate(err)
	} else if n == 0 {
		return apperr.New(apperr.NotFound, "no such leak notice")
	}
	return nil
}
