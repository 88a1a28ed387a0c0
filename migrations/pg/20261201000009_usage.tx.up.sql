-- Usage analytics: the authentications of each key per UTC hour, one
-- column per outcome, and the credits they spent. Each server adds what it
-- counted in memory, once a second, in one statement for all its keys
-- (INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n), so the sums
-- over servers are exact. Rows are deleted only by retention
-- (USAGE_RETENTION); a key's rows outlive its revocation.
CREATE TABLE key_usage (
    key_id             uuid        NOT NULL,
    hour               timestamptz NOT NULL,
    valid              bigint      NOT NULL,
    disabled           bigint      NOT NULL,
    ip_not_allowed     bigint      NOT NULL,
    insufficient_scope bigint      NOT NULL,
    rate_limited       bigint      NOT NULL,
    usage_exceeded     bigint      NOT NULL,
    credits_spent      bigint      NOT NULL,
    PRIMARY KEY (key_id, hour)
);

--bun:split

-- Retention deletes the oldest hour first.
CREATE INDEX key_usage_hour_idx ON key_usage (hour);
