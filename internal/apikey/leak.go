package apikey

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// Leak is where a leak report says a key was found.
type Leak struct {
	URL    string // where it was found; empty when not said
	Source string // what kind of place (commit, issue, …, gitlab), lower case; empty when not said
}

// LeakNotice is a key revoked by a leak report whose notice its owner has
// not dismissed.
type LeakNotice struct {
	APIKey
	LeakedAt time.Time // when the report revoked it (= RevokedAt)
	URL      *string
	Source   *string
}

// LeakOutcome is what a leak report did to a key.
type LeakOutcome int

// Leak outcomes.
const (
	// LeakNotActive: the string is no active key of this server (unknown,
	// revoked by its owner, or expired); nothing changed.
	LeakNotActive LeakOutcome = iota
	// LeakRevoked: the key was active and is now revoked.
	LeakRevoked
	// LeakAlreadyRevoked: an earlier leak report revoked it; nothing changed.
	LeakAlreadyRevoked
)

// Limits on what a report may store on a key: longer values are cut.
const (
	maxLeakURLLen    = 2048
	maxLeakSourceLen = 64
)

// LeakStore is the part of the Store that leak reports need.
type LeakStore interface {
	// RevokeLeakedKey revokes the unrevoked, unexpired key whose hash is
	// hash, in the same conditional update (and with the same notification
	// to other servers) as RevokeKey, and records at and where on it, and
	// ev (api_key.leaked), given the key's owner, id and prefix, in the same
	// transaction. Returns LeakRevoked when it changed a row,
	// LeakAlreadyRevoked when an earlier report revoked the key,
	// LeakNotActive otherwise.
	RevokeLeakedKey(ctx context.Context, hash string, at time.Time, where Leak, ev audit.Event) (LeakOutcome, error)
	// ListLeakNotices returns the keys revoked by leak reports whose notice
	// is not dismissed, most recent first, that userID sees: their
	// personal keys, the keys of the live organisations of which they are
	// an admin or an owner (their membership), and the keys of orgIDs.
	ListLeakNotices(ctx context.Context, userID string, orgIDs []string) ([]LeakNotice, error)
	// DismissLeakNotice marks the notice of the owner's key id dismissed.
	// Returns apperr.NotFound unless it is an undismissed notice of a key
	// of theirs.
	DismissLeakNotice(ctx context.Context, owner Owner, id string, at time.Time) error
}

// RevokeLeaked revokes key, which a leak report says was found in public at
// where. The caller must have authenticated the report (its signature, or
// the code host's pre-shared token): no principal is needed. A string that
// is not well formed (prefix, length, alphabet, checksum) costs no query.
// It reports whether key is a key of this server that a leak report revoked,
// this one or an earlier one: a replayed report gets the same answer and
// changes nothing. From the moment it returns, Verify refuses the key here;
// other servers follow through the store's notification, as for Revoke.
// Returns SERVER_BUSY when the database cannot be reached.
func (s *Service) RevokeLeaked(ctx context.Context, key string, where Leak) (bool, error) {
	if !s.format.WellFormed(key) {
		return false, nil
	}
	d := Sum(key)
	where = Leak{URL: cleanLeakText(where.URL, maxLeakURLLen), Source: strings.ToLower(cleanLeakText(where.Source, maxLeakSourceLen))}
	at := s.timestamp()
	ev := audit.New(ctx, "", audit.KeyLeaked, at) // the store names the owner
	ev.ActorType, ev.ActorID = audit.ActorLeakReport, ""
	ev.Details = map[string]any{"url": where.URL, "source": where.Source}
	o, err := s.store.RevokeLeakedKey(ctx, d.Hex(), at, where, ev)
	if err != nil {
		return false, err
	}
	if o == LeakRevoked {
		s.cache.evict(d)
		s.observer.KeyRevoked()
	}
	return o != LeakNotActive, nil
}

// LeakNotices returns the keys revoked by leak reports whose notice is not
// dismissed, most recent first, that the JWT principal of ctx is warned
// about: its personal keys and the keys of the organisations of which it
// is an admin or an owner (in identity-provider mode, the organisation of
// its token, when the token makes it one). What the dashboard warns about.
// Returns MISSING_AUTH/INVALID_OR_EXPIRED_TOKEN/JWT_REQUIRED as Create does.
func (s *Service) LeakNotices(ctx context.Context) ([]LeakNotice, error) {
	p, err := RequireJWT(ctx)
	if err != nil {
		return nil, err
	}
	var orgIDs []string
	if p.Org != nil && s.orgs != nil {
		_, err := s.authorize(ctx, p, p.Org.ID, RoleAdmin)
		switch apperr.CodeOf(err) {
		case "":
			orgIDs = []string{p.Org.ID}
		case apperr.ServerBusy, apperr.Internal:
			return nil, err
		} // any other refusal: none of the organisation's notices
	}
	return s.store.ListLeakNotices(ctx, p.UserID, orgIDs)
}

// DismissLeakNotice hides the leak notice of the key id of the JWT
// principal of ctx: one of its personal keys, or a key of an organisation
// of which it is an admin (see ownKey).
// Returns NOT_FOUND when id is malformed, unknown, another user's, an
// organisation's the principal is not a member of, not revoked by a leak
// report or already dismissed, INSUFFICIENT_ROLE for an organisation key of
// a mere member, and the auth errors of Create.
func (s *Service) DismissLeakNotice(ctx context.Context, id string) error {
	key, err := s.ownKey(ctx, id, RoleAdmin, nil, errNoLeakNotice)
	if err != nil {
		return err
	}
	return notFoundAs(s.store.DismissLeakNotice(ctx, key.owner, key.id, s.timestamp()), errNoLeakNotice)
}

var errNoLeakNotice = apperr.New(apperr.NotFound, "no such leak notice")

// cleanLeakText drops control characters from s, which a reporter chose,
// and cuts it to n code points.
func cleanLeakText(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isBidiControl(r) {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n])
	}
	return strings.TrimSpace(s)
}
