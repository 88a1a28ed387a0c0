// Package apikey is the domain of apikeyd: API keys, the principals that
// present credentials, and the Service that owns every rule about them.
// The HTTP edges (GraphQL and REST) call only the Service; the Service calls
// only its Store.
package apikey

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/internal/audit"
)

// APIKey is a key as its owner may see it. The secret is never part of it.
type APIKey struct {
	ID         string
	UserID     string
	KeyPrefix  string // the key prefix and the first four secret characters
	Name       *string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
	// LastUsedIP and LastUsedUserAgent tell where the use of LastUsedAt
	// came from; nil when unknown.
	LastUsedIP        *string
	LastUsedUserAgent *string
}

// NewKey is a key to insert: its row plus the hash of the secret.
type NewKey struct {
	APIKey
	Hash string
	// Event is the api_key.created event, recorded with the key.
	Event audit.Event
}

// Use is one recorded use of a key: which, and from where.
type Use struct {
	KeyID     string
	IP        string // empty: unknown
	UserAgent string // empty: none
}

// Created is the result of Service.Create: the key and, once only, its secret.
type Created struct {
	APIKey
	Secret string
}

// Revoked is the result of Service.Revoke.
type Revoked struct {
	ID        string
	RevokedAt time.Time
}

// CreateInput is what a caller may choose about a new key.
type CreateInput struct {
	Name      *string
	ExpiresAt *time.Time
}

// Store persists keys. Implementations translate their own failures:
// an unreachable database is apperr.ServerBusy; anything else is returned as is
// and shown to clients as an internal error.
type Store interface {
	// CreateKey inserts k unless the user already has max unrevoked keys,
	// atomically with respect to other CreateKey calls for the same user.
	// Returns apperr.KeyLimitReached when the limit is reached. k.Event
	// is recorded in the same transaction.
	CreateKey(ctx context.Context, k NewKey, max int) error
	// ListKeys returns the user's unrevoked keys, newest first.
	ListKeys(ctx context.Context, userID string) ([]APIKey, error)
	// RevokeKey sets revoked_at on the user's unrevoked key id in one
	// conditional update and returns the key's hash (hex SHA-256). A store
	// shared by several servers tells the others, with the hash, once the
	// revocation is committed. ev, given the key's id and prefix, is
	// recorded in the same transaction, only by the call that changed the
	// row. Returns apperr.NotFound when no row changed.
	RevokeKey(ctx context.Context, userID, id string, at time.Time, ev audit.Event) (hash string, err error)
	// FindKeyByHash returns the key whose hash is hash, revoked or not (its
	// RevokedAt tells), so that a revoked key can be told from an unknown one
	// in one indexed lookup. Returns apperr.NotFound when there is none.
	FindKeyByHash(ctx context.Context, hash string) (APIKey, error)
	// TouchKeys sets last_used_at = at, and the last use's IP and user
	// agent, on the keys used where last_used_at is older, in one statement.
	TouchKeys(ctx context.Context, uses []Use, at time.Time) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
}
