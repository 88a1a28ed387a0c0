-- Usage analytics: the authentications of each key per UTC hour, one
-- column per outcome, and the credits they spent. Each server adds what it
-- counted in memory, once a second, in one statement for all its keys
-- (INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n), so the sums
-- over servers are exact. Rows are deleted only by retention
-- (USAGE_RETENTION); a key's rows outlive its revocation. hour is UTC text
-- as bun writes a time ('2006-01-02 15:00:00+00:00').
CREATE TABLE key_usage (
    key_id             TEXT      NOT NULL,
    hour               TIMESTAMP NOT NULL,
    valid              INTEGER   NOT NULL,
    disabled           INTEGER   NOT NULL,
    ip_not_allowed     INTEGER   NOT NULL,
    insufficient_scope INTEGER   NOT NULL,
    rate_limited       INTEGER   NOT NULL,
    usage_exceeded     INTEGER   NOT NULL,
    credits_spent      INTEGER   NOT NULL,
    PRIMARY KEY (key_id, hour)
) WITHOUT ROWID;

--bun:split

-- Retention deletes the oldest hour first.
CREATE INDEX key_usage_hour_idx ON key_usage (hour);
