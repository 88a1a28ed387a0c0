package store

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/audit"
)

// outboxRow is a row of webhook_outbox: an event still to deliver. Payload
// holds the event as queued (audit.Queued); rows queued by earlier versions
// hold the webhook body instead, which the dispatcher reads too.
type outboxRow struct {
	bun.BaseModel `bun:"table:webhook_outbox"`

	EventID       string    `bun:"event_id,pk"`
	EventType     string    `bun:"event_type,notnull"`
	Payload       string    `bun:"payload,notnull"`
	Attempts      int       `bun:"attempts,notnull"`
	NextAttemptAt time.Time `bun:"next_attempt_at,notnull"`
	CreatedAt     time.Time `bun:"created_at,notnull"`
}

// enqueue queues ev for delivery, due at once, through db.
func (s *Store) enqueue(ctx context.Context, db bun.IDB, ev audit.Event) error {
	queued, err := audit.Queued(ev)
	if err != nil {
		return err
	}
	_, err = db.NewInsert().Model(&outboxRow{
		EventID:       ev.ID,
		EventType:     ev.Action,
		Payload:       string(queued),
		NextAttemptAt: ev.OccurredAt.UTC(),
		CreatedAt:     ev.OccurredAt.UTC(),
	}).Exec(ctx)
	return err
}

// ClaimDeliveries implements webhook.Outbox in one conditional UPDATE …
// RETURNING. On PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so
// servers claiming at once take different rows without waiting for each
// other; a row another server has just claimed is no longer due when it is
// looked at again. SQLite has one writer: the UPDATE alone is atomic.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, n int) ([]audit.Delivery, error) {
	due := s.db.NewSelect().Model((*outboxRow)(nil)).
		Column("event_id").
		Where("next_attempt_at <= ?", now.UTC()).
		OrderExpr("next_attempt_at").
		Limit(int64(n))
	if IsPostgresDB(s.db) {
		due = due.For("UPDATE SKIP LOCKED")
	}
	var rows []outboxRow
	err := s.db.NewUpdate().Model((*outboxRow)(nil)).
		Set("attempts = attempts + 1").
		Set("next_attempt_at = ?", now.Add(lease).UTC()).
		Where("event_id IN (?)", due).
		Returning("event_id, payload, attempts").
		Scan(ctx, &rows)
	if err != nil {
		return nil, translate(err)
	}
	out := make([]audit.Delivery, len(rows))
	for i, r := range rows {
		out[i] = audit.Delivery{EventID: r.EventID, Event: []byte(r.Payload), Attempt: r.Attempts}
	}
	return out, nil
}

// FinishDelivery implements webhook.Outbox.
func (s *Store) FinishDelivery(ctx context.Context, eventID string) error {
	_, err := s.db.NewDelete().Model((*outboxRow)(nil)).Where("event_id = ?", eventID).Exec(ctx)
	return translate(err)
}

// RetryDelivery implements webhook.Outbox.
func (s *Store) RetryDelivery(ctx context.Context, eventID string, attempt int, at time.Time) error {
	_, err := s.db.NewUpdate().Model((*outboxRow)(nil)).
		Set("next_attempt_at = ?", at.UTC()).
		Where("event_id = ?", eventID).
		Where("attempts = ?", attempt).
		Exec(ctx)
	return translate(err)
}

// QueueDepth implements webhook.Outbox.
func (s *Store) QueueDepth(ctx context.Context) (int, error) {
	n, err := s.db.NewSelect().Model((*outboxRow)(nil)).Count(ctx)
	return int(n), translate(err)
}
