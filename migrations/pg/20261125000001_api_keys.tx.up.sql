CREATE TABLE api_keys (
    id           uuid         PRIMARY KEY,
    user_id      varchar(255) NOT NULL,
    key_hash     char(64)     NOT NULL,
    key_prefix   varchar(64)  NOT NULL,
    name         varchar(100),
    created_at   timestamptz  NOT NULL,
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);

--bun:split

CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);

--bun:split

-- Listing and the per-user limit read only a user's active keys.
CREATE INDEX api_keys_user_active_idx ON api_keys (user_id, created_at DESC, id DESC) WHERE revoked_at IS NULL;
