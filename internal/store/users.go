package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/account"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// userRow is a row of users.
type userRow struct {
	bun.BaseModel `bun:"table:users"`

	ID              string    `bun:"id,pk"`
	Email           string    `bun:"email,notnull"`
	EmailNormalized string    `bun:"email_normalized,notnull"`
	PasswordHash    string    `bun:"password_hash,notnull"`
	CreatedAt       time.Time `bun:"created_at,notnull"`
}

func (r *userRow) domain() account.StoredUser {
	return account.StoredUser{
		User:            account.User{ID: r.ID, Email: r.Email, CreatedAt: r.CreatedAt.UTC()},
		EmailNormalized: r.EmailNormalized,
		PasswordHash:    r.PasswordHash,
	}
}

var _ account.Store = (*Store)(nil)

// CreateUser implements account.Store. The unique index on email_normalized
// decides between concurrent registrations of one address: exactly one
// insert succeeds, the others get EMAIL_TAKEN. The user and ev commit together.
func (s *Store) CreateUser(ctx context.Context, u account.StoredUser, ev audit.Event) error {
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(&userRow{
			ID:              u.ID,
			Email:           u.Email,
			EmailNormalized: u.EmailNormalized,
			PasswordHash:    u.PasswordHash,
			CreatedAt:       u.CreatedAt,
		}).Exec(ctx)
		if err != nil {
			return err
		}
		return s.recordChangeEvent(ctx, tx, ev)
	})
	if uniqueViolation(err) {
		return apperr.New(apperr.EmailTaken, "an account with this email already exists")
	}
	if err != nil {
		return translate(err)
	}
	s.changeEventWritten(ev)
	return nil
}

// FindUserByEmail implements account.Store through the unique index on
// email_normalized.
func (s *Store) FindUserByEmail(ctx context.Context, normalized string) (account.StoredUser, error) {
	var row userRow
	err := s.db.NewSelect().Model(&row).
		Where("email_normalized = ?", normalized).
		Limit(1).
		Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return account.StoredUser{}, apperr.New(apperr.NotFound, "user not found")
	}
	if err != nil {
		return account.StoredUser{}, translate(err)
	}
	return row.domain(), nil
}
