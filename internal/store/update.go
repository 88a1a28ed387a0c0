package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// updatedColumns are the columns UpdateKey writes: the name and the policy
// (keyRow.setPolicy).
var updatedColumns = keyRowColumnsNamed("name", "disabled", "rate_limit", "rate_period_seconds", "allowed_ips", "meta")

// UpdateKey implements apikey.Store in one transaction. The key is read
// with its lineage's balance and its row locked (PostgreSQL: FOR UPDATE;
// SQLite: the write lock taken at BEGIN IMMEDIATE), so change sees what its
// update replaces and concurrent updates of a key apply one after the
// other. The row is written through updateAndNotify, as RevokeKey does, so
// the other servers forget the key, and its old policy, on commit.
func (s *Store) UpdateKey(ctx context.Context, owner apikey.Owner, id string, at time.Time, change func(old apikey.APIKey) (apikey.KeyUpdate, error)) (apikey.APIKey, string, error) {
	var key apikey.APIKey
	var hash string
	var ev audit.Event
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		old, err := lockKey(ctx, tx, owner, id, at)
		if err != nil {
			return err
		}
		upd, err := change(old)
		if err != nil {
			return err
		}
		row := keyRow{Name: upd.Key.Name}
		row.setPolicy(upd.Key.Policy)
		changed, err := updateAndNotify(ctx, tx, tx.NewUpdate().Model(&row).
			Column(updatedColumns.names...).
			Where("id = ?", old.ID))
		if err != nil {
			return err // sql.ErrNoRows cannot happen: the row is locked
		}
		key = old
		key.Name = upd.Key.Name
		credits := old.Credits
		key.Policy = upd.Key.Policy
		key.Credits = credits
		if upd.SetCredits {
			set, err := setCredits(ctx, tx, old.Lineage, upd.Key.Credits, at)
			if err != nil {
				return err
			}
			key.Credits = set
		}
		hash = changed.Hash
		ev = changed.event(upd.Event)
		return s.recordChangeEvent(ctx, tx, ev)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return apikey.APIKey{}, "", errNotFound
	}
	if err != nil {
		return apikey.APIKey{}, "", translate(err)
	}
	s.changeEventWritten(ev)
	return key, hash, nil
}

// lockKeyQuery reads a key for lockKey: arguments id, owner id, at.
func lockKeyQuery(t apikey.OwnerType) string {
	cond, _ := ownedBy("k", apikey.Owner{Type: t})
	return `SELECT ` + keyColumns.of("k") + `, ` + creditColumns + `
FROM api_keys k LEFT JOIN credit_balances c ON c.lineage_id = k.lineage_id
WHERE k.id = ? AND ` + cond + ` AND k.revoked_at IS NULL AND ` + notGone
}

// lockKey reads the owner's key id, unrevoked and not gone at at, with its
// lineage's balance, locking its row (PostgreSQL: FOR UPDATE of the key's
// row alone; the balance is spent from meanwhile). Returns sql.ErrNoRows
// when there is no such key.
func lockKey(ctx context.Context, tx bun.Tx, owner apikey.Owner, id string, at time.Time) (apikey.APIKey, error) {
	query := lockKeyQuery(owner.Type)
	if IsPostgresDB(tx) {
		query += " FOR UPDATE OF k"
	}
	rows, err := tx.QueryContext(ctx, query, id, owner.ID, at)
	if err != nil {
		return apikey.APIKey{}, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return apikey.APIKey{}, err
		}
		return apikey.APIKey{}, sql.ErrNoRows
	}
	var r keyWithCredits
	var buf destBuf
	if err := rows.Scan(keyColumns.destWithCredits(&r, &buf)...); err != nil {
		return apikey.APIKey{}, rowError("api_keys", r.ID, err)
	}
	return r.decode()
}
