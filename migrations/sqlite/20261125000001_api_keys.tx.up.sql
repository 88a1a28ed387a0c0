-- Timestamps are stored as UTC text ('2006-01-02 15:04:05.999999+00:00'),
-- which sorts in time order.
CREATE TABLE api_keys (
    id           TEXT      PRIMARY KEY NOT NULL,
    user_id      TEXT      NOT NULL,
    key_hash     TEXT      NOT NULL,
    key_prefix   TEXT      NOT NULL,
    name         TEXT,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    expires_at   TIMESTAMP,
    revoked_at   TIMESTAMP
);

--bun:split

CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);

--bun:split

-- Listing and the per-user limit read only a user's active keys.
CREATE INDEX api_keys_user_active_idx ON api_keys (user_id, created_at DESC, id DESC) WHERE revoked_at IS NULL;
