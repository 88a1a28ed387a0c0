package apikey

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// Roll replaces the key id of the JWT principal of ctx (one it may revoke:
// see Revoke) with a fresh secret. The new key copies the old one's
// settings (name, expiry, its organisation, …) and is made by the
// principal (APIKey.UserID). The old key
// keeps working for grace, then is refused; with a grace of 0 it is revoked
// at once, exactly as Revoke does. Either way this server's cache forgets
// the old key before Roll returns (others when the store's notification
// reaches them), so that no cache serves it past its new expiry. A roll
// does not count against MaxKeysPerUser or MaxKeysPerOrg.
// Returns INVALID_REQUEST for a grace outside 0…MaxGracePeriod,
// KEY_ALREADY_ROLLED when the key was rolled before, KEY_EXPIRED when it
// has expired (its successor would be born expired), NOT_FOUND as Revoke
// does, and the auth errors of Create.
func (s *Service) Roll(ctx context.Context, id string, grace time.Duration) (Rolled, error) {
	key, err := s.ownKey(ctx, id, RoleAdmin, checkGrace(grace), errKeyNotFound)
	if err != nil {
		return Rolled{}, err
	}
	nid, err := uuid.NewV7()
	if err != nil {
		return Rolled{}, err
	}
	now := s.timestamp()
	secret := s.format.Generate()
	next := NewKey{
		APIKey: APIKey{
			ID:        nid.String(),
			UserID:    key.by.UserID, // the organisation, if any, is copied by the store
			KeyPrefix: s.format.DisplayPrefix(secret),
			CreatedAt: now,
		},
		Hash: Hash(secret),
	}
	rolled := key.event(ctx, audit.KeyRolled, now)
	rolled.Details = map[string]any{"new_key_id": next.ID, "grace_period_seconds": int64(grace / time.Second)}
	events := []audit.Event{rolled}
	if grace == 0 {
		events = append(events, key.event(ctx, audit.KeyRevoked, now))
	}
	created, previous, hash, err := s.store.RollKey(ctx, key.owner, key.id, next, now, now.Add(grace), events)
	if err != nil {
		return Rolled{}, notFoundAs(err, errKeyNotFound)
	}
	s.forget(hash)
	s.observer.KeyCreated()
	if grace == 0 {
		s.observer.KeyRevoked()
	}
	return Rolled{Created: Created{APIKey: created, Secret: secret}, Previous: previous}, nil
}

// GraceSeconds is a grace period of n seconds (none when nil), for Roll. A
// value out of range stays out of range, however large, so Roll refuses it.
func GraceSeconds(n *int) time.Duration {
	if n == nil {
		return 0
	}
	return SecondsUpTo(int64(*n), MaxGracePeriod)
}

// SecondsUpTo is n seconds, for a duration the API takes in whole seconds
// and allows up to max: a value outside 0…max stays outside (negative, or
// just past max), however large, without overflowing, so that the check of
// the range refuses it.
func SecondsUpTo(n int64, max time.Duration) time.Duration {
	switch {
	case n < 0:
		return -time.Second
	case n > int64(max/time.Second):
		return max + time.Second
	}
	return time.Duration(n) * time.Second
}

// checkGrace returns ErrBadGrace for a grace outside 0…MaxGracePeriod.
func checkGrace(grace time.Duration) error {
	if grace < 0 || grace > MaxGracePeriod {
		return ErrBadGrace
	}
	return nil
}

// ErrBadGrace refuses a grace period that is not a whole number of seconds
// from 0 to MaxGracePeriod: what Roll returns for one out of range, and what
// an edge returns for a value that is no integer at all.
var ErrBadGrace = apperr.Errorf(apperr.InvalidRequest,
	"grace_period_seconds must be an integer from 0 to %d", int(MaxGracePeriod/time.Second))
