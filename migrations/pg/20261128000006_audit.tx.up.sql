-- The audit log: one row per change, written in the change's transaction,
-- never updated, deleted only by retention (AUDIT_RETENTION). user_id is
-- whose log the event belongs to; actor_* is who made the change. Neither
-- details nor any other column ever holds a secret, a hash or a token.
CREATE TABLE audit_events (
    id          uuid         PRIMARY KEY,
    user_id     varchar(255) NOT NULL,
    action      varchar(64)  NOT NULL,
    occurred_at timestamptz  NOT NULL,
    actor_type  varchar(32)  NOT NULL,
    actor_id    varchar(255),
    key_id      uuid,
    key_prefix  varchar(64),
    ip          varchar(64),
    user_agent  varchar(255),
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
ALTER TABLE api_keys ADD COLUMN last_used_ip varchar(64);

--bun:split

ALTER TABLE api_keys ADD COLUMN last_used_user_agent varchar(255);
