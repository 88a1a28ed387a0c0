package audit

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// The page sizes of List.
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// Store persists events. Each change's own store method records its event
// in its transaction; this is the rest. Implementations translate their own
// failures as apikey.Store does: an unreachable database is
// apperr.ServerBusy.
type Store interface {
	// AddEvent records ev alone: for events that are themselves the
	// change (a login).
	AddEvent(ctx context.Context, ev Event) error
	// ListEvents returns up to limit events of userID whose id is below
	// before (all when before is empty), newest (highest id) first.
	// Returns NOT_FOUND when before is not the id of an event of userID.
	ListEvents(ctx context.Context, userID, before string, limit int) ([]Event, error)
	// PruneEvents deletes up to batch events that occurred before cutoff
	// and returns how many it deleted.
	PruneEvents(ctx context.Context, cutoff time.Time, batch int) (int, error)
}

// Page is one page of a log: a user's or an organisation's.
type Page struct {
	Events []Event
	// Next is the cursor of the following page; empty on the last one.
	Next string
}

// Config holds the Service's settings.
type Config struct {
	// Principal returns the user a request may read the log of, or the
	// coded error refusing it (apikey.RequireJWT). Required.
	Principal func(ctx context.Context) (userID string, err error)
	// Retention is how long events are kept (AUDIT_RETENTION, whose default
	// is the configuration's). Required.
	Retention time.Duration
	// PruneBatch is how many events one prune statement deletes at most;
	// DefaultPruneBatch when zero.
	PruneBatch int
	Now        func() time.Time
}

// Service reads the log and prunes it.
type Service struct {
	store     Store
	principal func(context.Context) (string, error)
	retention time.Duration
	batch     int
	now       func() time.Time
}

// NewService returns a Service over store.
func NewService(store Store, cfg Config) *Service {
	if cfg.Principal == nil {
		panic("audit: Config.Principal is required")
	}
	if cfg.Retention <= 0 {
		panic("audit: Config.Retention is required")
	}
	if cfg.PruneBatch <= 0 {
		cfg.PruneBatch = DefaultPruneBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{store: store, principal: cfg.Principal, retention: cfg.Retention, batch: cfg.PruneBatch, now: cfg.Now}
}

// List returns a page of the caller's own events, newest first: limit of
// them (1 to MaxLimit), after cursor (a Page.Next; empty for the first
// page). Pages are keyset-paginated on the event id, so events recorded
// meanwhile never shift a later page.
// Returns INVALID_REQUEST for a limit out of range or a cursor that is not
// one this service issued to the caller (malformed, or naming an event
// that is not theirs, or no longer kept), and the auth errors of
// Config.Principal.
func (s *Service) List(ctx context.Context, limit int, cursor string) (Page, error) {
	userID, err := s.principal(ctx)
	if err != nil {
		return Page{}, err
	}
	return ReadPage(limit, cursor, func(before string, limit int) ([]Event, error) {
		return s.store.ListEvents(ctx, userID, before, limit)
	})
}

// ReadPage returns a page of a log, newest first: limit events (1 to
// MaxLimit) after cursor (a Page.Next; empty for the first page), read by
// list, which returns up to limit events of the log whose id is below
// before (all when before is empty), newest first, or NOT_FOUND when before
// is not the id of one of its events (Store.ListEvents). It is the paging of
// every log: a user's (List) and an organisation's.
// Returns INVALID_REQUEST for a limit out of range or a cursor that is not
// one of that log's, and list's other errors.
func ReadPage(limit int, cursor string, list func(before string, limit int) ([]Event, error)) (Page, error) {
	if limit < 1 || limit > MaxLimit {
		return Page{}, ErrBadLimit
	}
	before := ""
	if cursor != "" {
		var err error
		if before, err = DecodeCursor(cursor); err != nil {
			return Page{}, err
		}
	}
	events, err := list(before, limit+1)
	if apperr.CodeOf(err) == apperr.NotFound {
		return Page{}, errBadCursor
	}
	if err != nil {
		return Page{}, err
	}
	p := Page{Events: events}
	if len(events) > limit {
		p.Events = events[:limit]
		p.Next = EncodeCursor(p.Events[limit-1].ID)
	}
	return p, nil
}

// cursorVersion starts every cursor, so that the format may change.
const cursorVersion = "e1:"

// EncodeCursor returns the cursor that resumes after the event id.
func EncodeCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + id))
}

// DecodeCursor returns the event id a cursor resumes after.
// Returns INVALID_REQUEST for anything EncodeCursor did not make.
func DecodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(c) > 128 {
		return "", errBadCursor
	}
	id, ok := strings.CutPrefix(string(b), cursorVersion)
	if !ok || len(id) != 36 {
		return "", errBadCursor
	}
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 || u.String() != id {
		return "", errBadCursor
	}
	return id, nil
}

// ErrBadLimit refuses a page size that is not an integer from 1 to
// MaxLimit: what List returns for one out of range, and what an edge
// returns for a value that is no integer at all.
var ErrBadLimit = apperr.Errorf(apperr.InvalidRequest, "limit must be an integer from 1 to %d", MaxLimit)

var errBadCursor = apperr.New(apperr.InvalidRequest, "cursor is not valid: pass next_cursor of a previous page as it is, or start again from the first page")

// DefaultPruneBatch is how many events one prune statement deletes at most,
// so that retention never holds a long lock.
const DefaultPruneBatch = 1000

// Prune deletes the events older than the retention, in batches, and
// returns how many it deleted.
func (s *Service) Prune(ctx context.Context) (int, error) {
	cutoff := s.now().Add(-s.retention)
	total := 0
	for {
		n, err := s.store.PruneEvents(ctx, cutoff, s.batch)
		total += n
		if err != nil || n < s.batch {
			return total, err
		}
	}
}
