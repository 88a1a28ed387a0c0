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

// copySettings copies into the new key of a roll everything the owner chose
// about the old one. It is the one place a roll copies settings: a column
// added to api_keys that the owner sets is copied here.
func copySettings(next, old *keyRow) {
	next.OrgID = old.OrgID // an organisation's key stays the organisation's
	next.Name = old.Name
	next.ExpiresAt = old.ExpiresAt
	next.Scopes = old.Scopes // as stored: the JSON array, or NULL (unrestricted)
	next.Disabled = old.Disabled
	next.RateLimit, next.RatePeriod = old.RateLimit, old.RatePeriod
	next.AllowedIPs = old.AllowedIPs
	next.Meta = old.Meta
	// The new key takes over the lineage's balance and rate-limit bucket:
	// during the grace both keys spend from and are limited by the same.
	next.LineageID = old.LineageID
}

// RollKey implements apikey.Store in one transaction. The old row is read
// locked (PostgreSQL: FOR UPDATE; SQLite: the write lock taken at BEGIN
// IMMEDIATE), so of concurrent rolls of one key exactly one sees it
// unrolled; the others wait for it and then find replaced_by set. The old
// key is changed through updateAndNotify, as RevokeKey does, so the other
// servers forget it (a grace of 0) or its old expiry (a grace) on commit.
func (s *Store) RollKey(ctx context.Context, owner apikey.Owner, id string, next apikey.NewKey, at, graceEnd time.Time, events []audit.Event) (created, previous apikey.APIKey, hash string, err error) {
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var old keyRow
		cond, arg := ownedBy("", owner)
		q := tx.NewSelect().Model(&old).Where("id = ?", id).Where(cond, arg)
		if IsPostgresDB(tx) {
			q = q.For("UPDATE")
		}
		if err := q.Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errNotFound
			}
			return err
		}
		switch {
		case old.ReplacedBy != nil:
			return apperr.New(apperr.KeyAlreadyRolled, "this API key was already rolled; roll the key that replaced it")
		case old.RevokedAt != nil:
			return errNotFound
		case old.ExpiresAt != nil && !at.Before(*old.ExpiresAt):
			// The new key would copy the expiry: it would be born expired.
			return apperr.New(apperr.KeyExpired, "this API key has expired, and a roll copies its expiry; create a new key instead")
		}

		row := newKeyRow(next)
		copySettings(row, &old)
		if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
			return err
		}

		update := tx.NewUpdate().Model((*keyRow)(nil)).
			Set("replaced_by = ?", next.ID).
			Where("id = ?", id).
			Where("revoked_at IS NULL").
			Where("replaced_by IS NULL")
		switch {
		case !graceEnd.After(at):
			update = update.Set("revoked_at = ?", at)
			old.RevokedAt = &at
		case old.ExpiresAt == nil || graceEnd.Before(*old.ExpiresAt):
			// A grace never extends an earlier expiry.
			update = update.Set("expires_at = ?", graceEnd)
			old.ExpiresAt = &graceEnd
		}
		changed, err := updateAndNotify(ctx, tx, update)
		if err != nil {
			return err // sql.ErrNoRows cannot happen: the row is locked
		}
		for i, ev := range events {
			events[i] = changed.event(ev)
			if err := s.recordChangeEvent(ctx, tx, events[i]); err != nil {
				return err
			}
		}
		old.ReplacedBy = &row.ID
		if created, err = decodeKey(row); err != nil {
			return err
		}
		if previous, err = decodeKey(&old); err != nil {
			return err
		}
		if created.Credits, err = lineageCredits(ctx, tx, row.LineageID); err != nil {
			return err
		}
		previous.Credits = created.Credits
		hash = changed.Hash
		return nil
	})
	if err != nil {
		return apikey.APIKey{}, apikey.APIKey{}, "", translate(err)
	}
	for _, ev := range events {
		s.changeEventWritten(ev)
	}
	return created, previous, hash, nil
}
