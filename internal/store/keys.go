package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// keyRow is a row of api_keys.
type keyRow struct {
	bun.BaseModel `bun:"table:api_keys"`

	ID         string     `bun:"id,pk"`
	UserID     string     `bun:"user_id,notnull"`
	KeyHash    string     `bun:"key_hash,notnull"`
	KeyPrefix  string     `bun:"key_prefix,notnull"`
	Name       *string    `bun:"name"`
	CreatedAt  time.Time  `bun:"created_at,notnull"`
	LastUsedAt *time.Time `bun:"last_used_at"`
	ExpiresAt  *time.Time `bun:"expires_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`

	// Where the last use came from, written with last_used_at.
	LastUsedIP        *string `bun:"last_used_ip"`
	LastUsedUserAgent *string `bun:"last_used_user_agent"`
}

func (r *keyRow) domain() apikey.APIKey {
	return apikey.APIKey{
		ID:         r.ID,
		UserID:     r.UserID,
		KeyPrefix:  r.KeyPrefix,
		Name:       r.Name,
		CreatedAt:  r.CreatedAt.UTC(),
		LastUsedAt: utc(r.LastUsedAt),
		ExpiresAt:  utc(r.ExpiresAt),
		RevokedAt:  utc(r.RevokedAt),
	}
}

// toUTC sets *t, when t is not nil, to UTC in place.
func toUTC(t *time.Time) {
	if t != nil {
		*t = t.UTC()
	}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Store is the bun implementation of apikey.Store.
type Store struct {
	db            *bun.DB
	findKeyByHash *statement
	listKeys      *statement

	webhooks bool                // queue api_key.* events for delivery (QueueWebhooks)
	onEvent  func(action string) // told of committed events (ObserveEvents)
}

var _ apikey.Store = (*Store)(nil)

// New returns a Store over db, whose schema must be migrated.
func New(db *bun.DB) *Store {
	return &Store{
		db:            db,
		findKeyByHash: newStatement(db, findKeyByHashQuery),
		listKeys:      newStatement(db, listKeysQuery),
	}
}

// CreateKey implements apikey.Store. The count and the insert run in one
// transaction that holds a per-user lock (PostgreSQL: an advisory lock;
// SQLite: the database write lock, taken at BEGIN IMMEDIATE), so concurrent
// creates cannot together exceed max.
func (s *Store) CreateKey(ctx context.Context, k apikey.NewKey, max int) error {
	row := &keyRow{
		ID:        k.ID,
		UserID:    k.UserID,
		KeyHash:   k.Hash,
		KeyPrefix: k.KeyPrefix,
		Name:      k.Name,
		CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt,
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if tx.Dialect().Name() == dialect.PG {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", k.UserID); err != nil {
				return err
			}
		}
		n, err := activeKeys(tx, k.UserID).Count(ctx)
		if err != nil {
			return err
		}
		if n >= int64(max) {
			return apperr.Errorf(apperr.KeyLimitReached, "you already have %d active API keys; revoke one first", max)
		}
		if _, err = tx.NewInsert().Model(row).Exec(ctx); err != nil {
			return err
		}
		return s.recordChangeEvent(ctx, tx, k.Event)
	})
	if err != nil {
		return translate(err)
	}
	s.changeEventWritten(k.Event)
	return nil
}

// activeKeys selects a user's unrevoked keys.
func activeKeys(db bun.IDB, userID string) *bun.SelectQuery {
	return db.NewSelect().Model((*keyRow)(nil)).
		Where("user_id = ?", userID).
		Where("revoked_at IS NULL")
}

// ListKeys implements apikey.Store with a prepared statement.
func (s *Store) ListKeys(ctx context.Context, userID string) ([]apikey.APIKey, error) {
	rows, err := s.listKeys.query(ctx, userID)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	keys := make([]apikey.APIKey, 0, 8)
	for rows.Next() {
		var k apikey.APIKey
		if err := rows.Scan(&k.ID, &k.UserID, &k.KeyPrefix, &k.Name, &k.CreatedAt, &k.LastUsedAt, &k.ExpiresAt, &k.LastUsedIP, &k.LastUsedUserAgent); err != nil {
			return nil, translate(err)
		}
		k.CreatedAt = k.CreatedAt.UTC()
		toUTC(k.LastUsedAt)
		toUTC(k.ExpiresAt)
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return keys, nil
}

// RevokeKey implements apikey.Store with one conditional UPDATE … RETURNING,
// so of many concurrent revokes of one key exactly one changes a row and
// learns the key's hash; that one records ev (completed with the key's id
// and prefix) in the same transaction. On PostgreSQL the same statement
// publishes the hash on RevocationChannel (pg_notify in a data-modifying
// WITH query), delivered to every listening server when, and only if, the
// revocation commits.
func (s *Store) RevokeKey(ctx context.Context, userID, id string, at time.Time, ev audit.Event) (string, error) {
	var hash string
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		revoke := tx.NewUpdate().Model((*keyRow)(nil)).
			Set("revoked_at = ?", at).
			Where("id = ?", id).
			Where("user_id = ?", userID).
			Where("revoked_at IS NULL").
			Returning("key_hash, key_prefix")
		var prefix string
		var err error
		if tx.Dialect().Name() == dialect.PG {
			// pg_notify returns void, which has no binary form: cast it.
			var notified string
			err = tx.NewSelect().
				With("revoked", revoke).
				TableExpr("revoked").
				ColumnExpr("key_hash").
				ColumnExpr("key_prefix").
				ColumnExpr("pg_notify(?, key_hash)::text", RevocationChannel).
				Scan(ctx, &hash, &prefix, &notified)
		} else {
			err = revoke.Scan(ctx, &hash, &prefix)
		}
		if err != nil {
			return err
		}
		if ev.ID != "" {
			ev.KeyID, ev.KeyPrefix = id, prefix
		}
		return s.recordChangeEvent(ctx, tx, ev)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return "", apperr.New(apperr.NotFound, "API key not found")
	}
	if err != nil {
		return "", translate(err)
	}
	s.changeEventWritten(ev)
	return hash, nil
}

// FindKeyByHash implements apikey.Store with a prepared statement, through
// the unique index on key_hash. Revoked keys are returned too: the caller
// checks RevokedAt.
func (s *Store) FindKeyByHash(ctx context.Context, hash string) (apikey.APIKey, error) {
	rows, err := s.findKeyByHash.query(ctx, hash)
	if err != nil {
		return apikey.APIKey{}, translate(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return apikey.APIKey{}, translate(err)
		}
		return apikey.APIKey{}, apperr.New(apperr.NotFound, "API key not found")
	}
	var r keyRow
	if err := rows.Scan(&r.ID, &r.UserID, &r.KeyPrefix, &r.CreatedAt, &r.ExpiresAt, &r.RevokedAt); err != nil {
		return apikey.APIKey{}, translate(err)
	}
	return r.domain(), nil
}

// TouchKeys implements apikey.Store in one statement: an UPDATE … FROM a
// VALUES list that carries each key's own origin.
func (s *Store) TouchKeys(ctx context.Context, uses []apikey.Use, at time.Time) error {
	if len(uses) == 0 {
		return nil
	}
	var b strings.Builder
	args := make([]any, 0, 3*len(uses)+2)
	for i, u := range uses {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?)")
		args = append(args, u.KeyID, nullable(u.IP), nullable(u.UserAgent))
	}
	// VALUES names its columns column1, column2, … on both databases. The
	// statement starts with UPDATE, as the load test's count expects.
	idMatch := "api_keys.id = used.column1"
	if s.db.Dialect().Name() == dialect.PG {
		idMatch = "api_keys.id = used.column1::uuid"
	}
	args = append([]any{at}, args...)
	args = append(args, at)
	_, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ?, last_used_ip = used.column2, last_used_user_agent = used.column3
FROM (VALUES `+b.String()+`) AS used
WHERE `+idMatch+` AND api_keys.revoked_at IS NULL AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < ?)`, args...)
	return translate(err)
}

// Ping implements apikey.Store.
func (s *Store) Ping(ctx context.Context) error {
	return translate(s.db.PingContext(ctx))
}
