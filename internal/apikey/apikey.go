// Package apikey is the domain of apikeyd: API keys, the principals that
// present credentials, and the Service that owns every rule about them.
// The HTTP edges (GraphQL and REST) call only the Service; the Service calls
// only its Store.
package apikey

import (
	"context"
	"encoding/json"
	"time"

	"github.com/apikeyd/apikeyd/internal/audit"
)

// APIKey is a key as its owner may see it. The secret is never part of it.
type APIKey struct {
	ID string
	// UserID is the user who made the key (created_by): for a personal
	// key, also its owner.
	UserID string
	// OrgID is the organisation that owns the key; empty for a personal
	// key (see Owner).
	OrgID      string
	KeyPrefix  string // the key prefix and the first four secret characters
	Name       *string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
	// Scopes limit what the key may do, sorted; nil means unrestricted and
	// differs from an empty list (a key that holds no scope).
	Scopes []string
	// ReplacedBy is the id of the key that replaced this one in a roll;
	// nil unless the key was rolled. A rolled key works until its ExpiresAt
	// (the end of its grace, or its own earlier expiry).
	ReplacedBy *string
	// LastUsedIP and LastUsedUserAgent tell where the use of LastUsedAt
	// came from; nil when unknown.
	LastUsedIP        *string
	LastUsedUserAgent *string
	// Policy is what the owner chose about the key's use.
	Policy
	// Lineage names the balance and the rate-limit bucket the key spends
	// from: its own id, or, for a key made by a roll, the lineage of the key
	// it replaced (a rolled key and its successor share one balance and one
	// bucket).
	Lineage string
}

// Gone reports whether k was rolled and its grace has ended at now: it no
// longer verifies, is not listed and does not count toward the key limit.
func (k *APIKey) Gone(now time.Time) bool {
	return k.ReplacedBy != nil && k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)
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

// Rolled is the result of Service.Roll: the new key with its secret (shown
// once, as on create) and the key it replaces, as it now is.
type Rolled struct {
	Created
	Previous APIKey
}

// MaxGracePeriod is the longest a rolled key may keep working.
const MaxGracePeriod = 7 * 24 * time.Hour

// CreateInput is what a caller may choose about a new key.
type CreateInput struct {
	Name      *string
	ExpiresAt *time.Time
	// Scopes: nil for an unrestricted key; checked against the catalogue,
	// deduplicated and sorted by Create.
	Scopes []string

	// The usage policy, checked by Create (see Policy).
	Enabled    *bool // nil: enabled
	RateLimit  *RateLimit
	Credits    *Credits
	AllowedIPs []string        // nil: anywhere; each a CIDR or an address
	Meta       json.RawMessage // nil or JSON null: none
}

// UpdateInput is a change to a key (PATCH): each field that is Set is
// changed to its Value (nil clears where the API allows null), the others
// are left as they are.
type UpdateInput struct {
	Name       Optional[*string]
	Enabled    Optional[bool]
	RateLimit  Optional[*RateLimit]
	Credits    Optional[*Credits] // sets the balance
	AllowedIPs Optional[[]string]
	Meta       Optional[json.RawMessage]
}

// Optional is a field of a change: Set when the caller gave it.
type Optional[T any] struct {
	Set   bool
	Value T
}

// KeyUpdate is what Store.UpdateKey's change function returns.
type KeyUpdate struct {
	// Key is the key as it must be: only Name and Policy (without
	// Credits) are written from it.
	Key APIKey
	// SetCredits writes Key.Credits as the lineage's balance (nil:
	// unlimited, which deletes it); otherwise the balance is left alone.
	SetCredits bool
	// Event is recorded in the same transaction; the zero Event: none.
	Event audit.Event
}

// Store persists keys. Implementations translate their own failures:
// an unreachable database is apperr.ServerBusy; anything else is returned as is
// and shown to clients as an internal error.
type Store interface {
	// CreateKey inserts k unless its owner (k.Owner()) already has max
	// unrevoked keys (rolled keys whose grace ended by k.CreatedAt do not
	// count; a user's count is of their personal keys only), atomically
	// with respect to other CreateKey calls for the same owner. Returns
	// apperr.KeyLimitReached when the limit is reached, and
	// apperr.NotFound when k.OrgID names no organisation (or a deleted
	// one). k.Event is recorded in the same transaction.
	//
	// Every method below that takes an owner acts only on that owner's
	// keys: a user's personal keys, or an organisation's keys.
	CreateKey(ctx context.Context, k NewKey, max int) error
	// ListKeys returns the owner's unrevoked keys, newest first (rolled
	// keys included, even past their grace: the caller drops those).
	ListKeys(ctx context.Context, owner Owner) ([]APIKey, error)
	// KeyOwner returns the owner of the key id, revoked or not (the usage
	// and the leak notice of a revoked key are still its owner's), or
	// apperr.NotFound.
	KeyOwner(ctx context.Context, id string) (Owner, error)
	// RevokeKey sets revoked_at on the owner's unrevoked key id in one
	// conditional update and returns the key's hash (hex SHA-256). A store
	// shared by several servers tells the others, with the hash, once the
	// revocation is committed. ev, given the key's id and prefix, is
	// recorded in the same transaction, only by the call that changed the
	// row. Returns apperr.NotFound when no row changed (among others, for a
	// rolled key whose grace ended by at).
	RevokeKey(ctx context.Context, owner Owner, id string, at time.Time, ev audit.Event) (hash string, err error)
	// RollKey replaces the owner's unrevoked key id by next, in one
	// transaction. next is inserted (regardless of the key limit) with the
	// old key's settings copied into it (see copySettings in the store: name,
	// expires_at, and every setting a key gains later); only its identity,
	// secret and creation time are its own. The old key gets
	// replaced_by = next.ID and, when graceEnd is after at, expires_at =
	// the earlier of its own and graceEnd; otherwise it is revoked at at, as
	// RevokeKey does. Either way a store shared by several servers tells the
	// others, with the old key's hash, once the roll is committed (their
	// caches must forget the old expiry too). Returns the new key, the old
	// one as it now is, and the old key's hash. events (api_key.rolled, and
	// api_key.revoked for a grace of 0), given the old key's id and prefix,
	// are recorded in the same transaction.
	// Returns apperr.KeyAlreadyRolled when the key was rolled before (exactly
	// one of concurrent rolls of a key succeeds) and apperr.NotFound when the
	// owner has no such unrevoked key.
	RollKey(ctx context.Context, owner Owner, id string, next NewKey, at, graceEnd time.Time, events []audit.Event) (created, previous APIKey, hash string, err error)
	// UpdateKey changes the owner's key id, which must be unrevoked and not
	// gone at at: in one transaction it reads the key with its row locked
	// (policy and balance included) and calls change with it; change
	// returns the update or an error that aborts (returned as is). The
	// store writes the name and the policy, sets or deletes the balance
	// when SetCredits, records the event (completed with the key's id and
	// prefix), and tells the other servers, with the key's hash (as
	// RevokeKey does), once it commits. Returns the key as it now is and
	// its hash (for this server's cache), or apperr.NotFound.
	UpdateKey(ctx context.Context, owner Owner, id string, at time.Time, change func(old APIKey) (KeyUpdate, error)) (APIKey, string, error)
	// SpendCredits spends cost (0…MaxCost) from the balance of lineage at
	// now, refilling it first when a refill fell due (a reset to the
	// refill's amount when lower, at most once per refill time). Exact
	// under any concurrency on any number of servers. ok is false, and
	// nothing is spent, when the balance is below cost. remaining is the
	// balance after. Returns apperr.NotFound when the lineage has no
	// balance (unlimited).
	SpendCredits(ctx context.Context, lineage string, cost int64, now time.Time) (remaining int64, ok bool, err error)
	// FindKeyByHash returns the key whose hash is hash, revoked or not (its
	// RevokedAt tells), so that a revoked key can be told from an unknown one
	// in one indexed lookup. Returns apperr.NotFound when there is none.
	FindKeyByHash(ctx context.Context, hash string) (APIKey, error)
	// TouchKeys sets last_used_at = at, and the last use's IP and user
	// agent, on the keys used where last_used_at is older, in one statement.
	TouchKeys(ctx context.Context, uses []Use, at time.Time) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	LeakStore
	CountStore
}
