// Package account is apikeyd's built-in user accounts, for when apikeyd is
// its own token issuer: people register with an email and a password and log
// in for a login token (a JWT whose sub is their user id), the same kind of
// token every other route accepts. The HTTP edge calls only the Service; the
// Service calls only its Store.
package account

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/internal/audit"
)

// User is an account as its owner may see it. The password hash is never
// part of it.
type User struct {
	ID        string
	Email     string // as registered, trimmed
	CreatedAt time.Time
}

// StoredUser is a user as stored: with the email's comparison form and the
// password hash.
type StoredUser struct {
	User
	EmailNormalized string // lower-cased; unique
	PasswordHash    string // argon2id, PHC string format
}

// Session is the answer to a successful login.
type Session struct {
	User        User
	AccessToken string        // a login token (JWT), sub = User.ID
	TokenType   string        // always "bearer"
	ExpiresIn   time.Duration // the token's lifetime, whole seconds
	ExpiresAt   time.Time     // the token's exp
}

// Store persists users. Implementations translate their own failures as
// apikey.Store does: an unreachable database is apperr.ServerBusy.
type Store interface {
	// CreateUser inserts u. Returns apperr.EmailTaken when a user with the
	// same EmailNormalized exists, also when both are created concurrently.
	// ev (user.registered) is recorded in the same transaction.
	CreateUser(ctx context.Context, u StoredUser, ev audit.Event) error
	// FindUserByEmail returns the user whose EmailNormalized is normalized.
	// Returns apperr.NotFound when there is none.
	FindUserByEmail(ctx context.Context, normalized string) (StoredUser, error)
	// AddEvent records ev (a login, a failed login) in the audit log.
	AddEvent(ctx context.Context, ev audit.Event) error
}
