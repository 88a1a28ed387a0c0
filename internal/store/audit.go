package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// eventRow is a row of audit_events.
type eventRow struct {
	bun.BaseModel `bun:"table:audit_events"`

	ID         string    `bun:"id,pk"`
	UserID     string    `bun:"user_id,notnull"`
	OrgID      *string   `bun:"org_id"`
	Action     string    `bun:"action,notnull"`
	OccurredAt time.Time `bun:"occurred_at,notnull"`
	ActorType  string    `bun:"actor_type,notnull"`
	ActorID    *string   `bun:"actor_id"`
	KeyID      *string   `bun:"key_id"`
	KeyPrefix  *string   `bun:"key_prefix"`
	IP         *string   `bun:"ip"`
	UserAgent  *string   `bun:"user_agent"`
	Details    string    `bun:"details,notnull"`
}

func (r *eventRow) domain() (audit.Event, error) {
	ev := audit.Event{
		ID:         r.ID,
		UserID:     r.UserID,
		OrgID:      deref(r.OrgID),
		Action:     r.Action,
		OccurredAt: r.OccurredAt.UTC(),
		ActorType:  r.ActorType,
		ActorID:    deref(r.ActorID),
		KeyID:      deref(r.KeyID),
		KeyPrefix:  deref(r.KeyPrefix),
		IP:         deref(r.IP),
		UserAgent:  deref(r.UserAgent),
	}
	if err := json.Unmarshal([]byte(r.Details), &ev.Details); err != nil {
		return audit.Event{}, rowError("audit_events", r.ID, fmt.Errorf("details: %w", err))
	}
	return ev, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

var _ audit.Store = (*Store)(nil)

// RecordEvent writes ev through db, which is the transaction of the change
// ev records: the event commits with the change or not at all. An event
// that Config.Queue accepts is queued in the outbox in the same
// transaction. Every change's store method calls it (through
// recordChangeEvent) inside its transaction and, once that has committed,
// changeEventWritten(ev) for the metrics. Build ev with audit.New.
func (s *Store) RecordEvent(ctx context.Context, db bun.IDB, ev audit.Event) error {
	details := ev.Details
	if details == nil {
		details = map[string]any{}
	}
	d, err := json.Marshal(details)
	if err != nil {
		return err
	}
	row := &eventRow{
		ID:         ev.ID,
		UserID:     ev.UserID,
		OrgID:      nullable(ev.OrgID),
		Action:     ev.Action,
		OccurredAt: ev.OccurredAt.UTC(),
		ActorType:  ev.ActorType,
		ActorID:    nullable(ev.ActorID),
		KeyID:      nullable(ev.KeyID),
		KeyPrefix:  nullable(ev.KeyPrefix),
		IP:         nullable(ev.IP),
		UserAgent:  nullable(ev.UserAgent),
		Details:    string(d),
	}
	if _, err := db.NewInsert().Model(row).Exec(ctx); err != nil {
		return err
	}
	if s.queue != nil && s.queue(ev.Action) {
		return s.enqueue(ctx, db, ev)
	}
	return nil
}

// recordChangeEvent records ev unless it is the zero Event, which the store's
// own tests pass when they exercise a key operation alone.
func (s *Store) recordChangeEvent(ctx context.Context, tx bun.IDB, ev audit.Event) error {
	if ev.ID == "" {
		return nil
	}
	return s.RecordEvent(ctx, tx, ev)
}

// changeEventWritten counts ev once its change has committed.
func (s *Store) changeEventWritten(ev audit.Event) {
	if ev.ID != "" {
		s.eventWritten(ev)
	}
}

// eventWritten tells the observer of a committed event.
func (s *Store) eventWritten(ev audit.Event) {
	if s.onEvent != nil {
		s.onEvent(ev.Action)
	}
}

// AddEvent implements audit.Store.
func (s *Store) AddEvent(ctx context.Context, ev audit.Event) error {
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return s.RecordEvent(ctx, tx, ev)
	})
	if err != nil {
		return translate(err)
	}
	s.eventWritten(ev)
	return nil
}

// ListEvents implements audit.Store through the (user_id, id) index.
func (s *Store) ListEvents(ctx context.Context, userID, before string, limit int) ([]audit.Event, error) {
	return s.listEvents(ctx, "user_id", userID, before, limit, nil)
}

// listEvents lists the events whose column (user_id, org_id) is owner,
// through that column's (column, id) index: up to limit, below before
// (all when before is empty), newest first. When live is not nil the log
// is there only while live selects a row (the organisation is not
// deleted); otherwise errOrgNotFound. A page after a cursor is one query,
// which also checks that the cursor's event is the owner's; only an empty
// page asks again, to tell the end of the log from a cursor that is not
// theirs (errEventNotFound).
func (s *Store) listEvents(ctx context.Context, column, owner, before string, limit int, live *bun.SelectQuery) ([]audit.Event, error) {
	var rows []eventRow
	q := s.db.NewSelect().Model(&rows).
		Where("? = ?", bun.Ident(column), owner).
		OrderExpr("id DESC").
		Limit(int64(limit))
	if live != nil {
		q = q.Where("EXISTS (?)", live)
	}
	if before != "" {
		q = q.Where("id < ?", before).
			Where("EXISTS (?)", s.ownEvent(column, owner, before))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, translate(err)
	}
	if len(rows) == 0 && live != nil {
		ok, err := live.Exists(ctx)
		if err != nil {
			return nil, translate(err)
		}
		if !ok {
			return nil, errOrgNotFound
		}
	}
	if len(rows) == 0 && before != "" {
		ok, err := s.ownEvent(column, owner, before).Exists(ctx)
		if err != nil {
			return nil, translate(err)
		}
		if !ok {
			return nil, errEventNotFound
		}
	}
	out := make([]audit.Event, len(rows))
	for i := range rows {
		ev, err := rows[i].domain()
		if err != nil {
			return nil, err
		}
		out[i] = ev
	}
	return out, nil
}

// ownEvent selects a row when id is an event whose column is owner, none
// otherwise.
func (s *Store) ownEvent(column, owner, id string) *bun.SelectQuery {
	return s.db.NewSelect().TableExpr("audit_events AS own").ColumnExpr("1").
		Where("own.id = ?", id).
		Where("own.? = ?", bun.Ident(column), owner)
}

var errEventNotFound = apperr.New(apperr.NotFound, "audit event not found")

// PruneEvents implements audit.Store: one DELETE of the oldest batch.
func (s *Store) PruneEvents(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	oldest := s.db.NewSelect().Model((*eventRow)(nil)).
		Column("id").
		Where("occurred_at < ?", cutoff.UTC()).
		OrderExpr("occurred_at").
		Limit(int64(batch))
	res, err := s.db.NewDelete().Model((*eventRow)(nil)).
		Where("id IN (?)", oldest).
		Exec(ctx)
	if err != nil {
		return 0, translate(err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
