package store

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/webhook"
)

// outboxRow is a row of webhook_outbox: an event still to deliver.
type outboxRow struct {
	bun.BaseModel `bun:"table:webhook_outbox"`

	EventID       string    `bun:"event_id,pk"`
	EventType     string    `bun:"event_type,notnull"`
	Payload       string    `bun:"payload,notnull"`
	Attempts      int       `bun:"attempts,notnull"`
	NextAttemptAt time.Time `bun:"next_attempt_at,notnull"`
	CreatedAt     time.Time `bun:"created_at,notnull"`
}

// QueueWebhooks has every api_key.* event recorded from now on queued for
// delivery in its transaction. Call it before the Store is used.
func (s *Store) QueueWebhooks() { s.webhooks = true }

// enqueueWebhook queues ev for delivery, due at once, through db.
func (s *Store) enqueueWebhook(ctx context.Context, db bun.IDB, ev audit.Event) error {
	body, err := webhook.Body(ev)
	if err != nil {
		return err
	}
	_, err = db.NewInsert().Model(&outboxRow{
		EventID:       ev.ID,
		EventType:     ev.Action,
		Payload:       string(body),
		NextAttemptAt: ev.OccurredAt.UTC(),
		CreatedAt:     ev.OccurredAt.UTC(),
	}).Exec(ctx)
	return err
}
