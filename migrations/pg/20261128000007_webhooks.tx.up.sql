-- The webhook outbox: one row per event still to deliver, queued in the
-- event's transaction and deleted once delivered or given up. payload is the
-- exact body sent on every attempt. next_attempt_at is when the row is next
-- due; a dispatcher that takes a row moves it past its own time-out first
-- (a lease), so a server that dies mid-attempt leaves the row due again.
CREATE TABLE webhook_outbox (
    event_id        uuid        PRIMARY KEY,
    event_type      varchar(64) NOT NULL,
    payload         text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL
);

--bun:split

CREATE INDEX webhook_outbox_due_idx ON webhook_outbox (next_attempt_at);
