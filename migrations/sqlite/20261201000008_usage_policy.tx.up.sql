-- The usage policy of a key (docs/usage-policy.md). Every existing key
-- stays enabled, without limits, and is its own lineage.
--
-- lineage_id names the balance and the rate-limit bucket a key spends from:
-- its own id, or, for a key made by a roll, the lineage of the key it
-- replaced, so that a rolled key and its successor share both.
--
-- SQLite adds no NOT NULL column without a default, so api_keys is rebuilt
-- (create the new table, copy, drop the old one, rename, index again): the
-- columns as before, then the policy's.
CREATE TABLE api_keys_new (
    id                   TEXT      PRIMARY KEY NOT NULL,
    user_id              TEXT      NOT NULL,
    key_hash             TEXT      NOT NULL,
    key_prefix           TEXT      NOT NULL,
    name                 TEXT,
    created_at           TIMESTAMP NOT NULL,
    last_used_at         TIMESTAMP,
    expires_at           TIMESTAMP,
    revoked_at           TIMESTAMP,
    scopes               TEXT,
    leaked_at            TIMESTAMP,
    leak_url             TEXT,
    leak_source          TEXT,
    leak_dismissed_at    TIMESTAMP,
    replaced_by          TEXT,
    last_used_ip         TEXT,
    last_used_user_agent TEXT,
    lineage_id           TEXT      NOT NULL,
    disabled             BOOLEAN   NOT NULL DEFAULT FALSE,
    -- A token bucket of rate_limit tokens refilled evenly over
    -- rate_period_seconds; both NULL: no rate limit.
    rate_limit           INTEGER   CHECK (rate_limit > 0),
    rate_period_seconds  INTEGER   CHECK ((rate_period_seconds IS NULL) = (rate_limit IS NULL) AND rate_period_seconds > 0),
    -- A JSON array of canonical prefixes ('["10.0.0.0/8","2001:db8::/32"]');
    -- NULL: anywhere.
    allowed_ips          TEXT,
    -- A compact JSON object; NULL: none.
    meta                 TEXT
);

--bun:split

INSERT INTO api_keys_new (id, user_id, key_hash, key_prefix, name, created_at, last_used_at, expires_at, revoked_at,
    scopes, leaked_at, leak_url, leak_source, leak_dismissed_at, replaced_by, last_used_ip, last_used_user_agent, lineage_id)
SELECT id, user_id, key_hash, key_prefix, name, created_at, last_used_at, expires_at, revoked_at,
    scopes, leaked_at, leak_url, leak_source, leak_dismissed_at, replaced_by, last_used_ip, last_used_user_agent, id
FROM api_keys;

--bun:split

DROP TABLE api_keys;

--bun:split

ALTER TABLE api_keys_new RENAME TO api_keys;

--bun:split

CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);

--bun:split

CREATE INDEX api_keys_user_active_idx ON api_keys (user_id, created_at DESC, id DESC) WHERE revoked_at IS NULL;

--bun:split

CREATE INDEX api_keys_leak_notice_idx ON api_keys (user_id, leaked_at DESC) WHERE leaked_at IS NOT NULL AND leak_dismissed_at IS NULL;

--bun:split

-- The balance of a lineage that has credits (none: unlimited). A refill
-- resets remaining to refill_amount, if it is lower, at refill_at (00:00 UTC
-- of the next day, or of refill_day of a month, the month's last day when it
-- is shorter), applied by the first spend at or after refill_at, which moves
-- refill_at to the next refill time.
CREATE TABLE credit_balances (
    lineage_id      TEXT      PRIMARY KEY NOT NULL,
    remaining       INTEGER   NOT NULL CHECK (remaining >= 0),
    refill_amount   INTEGER   CHECK (refill_amount > 0),
    refill_interval TEXT      CHECK (refill_interval IN ('day', 'month')),
    refill_day      INTEGER   CHECK (refill_day BETWEEN 1 AND 31),
    refill_at       TIMESTAMP,
    CHECK ((refill_amount IS NULL) = (refill_interval IS NULL)
        AND (refill_amount IS NULL) = (refill_at IS NULL)
        AND (refill_day IS NOT NULL) = (refill_interval IS NOT NULL AND refill_interval = 'month'))
);
