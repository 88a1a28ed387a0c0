-- The audit log: one row per change, written in the change's transaction,
-- never updated, deleted only by retention (AUDIT_RETENTION). user_id is
-- whose log the event belongs to; actor_* is who made the change. Neither
-- details nor any other column ever holds a secret, a hash or a token.
CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    action      TEXT  NOT NULL,
    occurred_at TIMESTAMP  NOT NULL,
    actor_type  TEXT  NOT NULL,
    actor_id    TEXT,
    key_id      TEXT,
    key_prefix  TEXT,
    ip          TEXT,
    user_agent  TEXT,
    details     text         NOT NULL
);

--bun:split

-- Reading a user's log, newest first, by keyset on the time-ordered id.
CREATE INDEX audit_events_user_idx ON audit_events (user_id, id DESC);

--bun:split

-- Retention deletes the oldest first.
CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at);

--bun:split

-- Where the last use of a key came from, written with last_used_at.
ALTER TABLE api_keys ADD COLUMN last_used_ip TEXT;

--bun:split

ALTER TABLE api_keys ADD COLUMN last_used_user_agent TEXT;
