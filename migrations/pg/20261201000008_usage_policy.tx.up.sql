-- The usage policy of a key (docs/usage-policy.md). Every existing key
-- stays enabled, without limits, and is its own lineage.
--
-- lineage_id names the balance and the rate-limit bucket a key spends from:
-- its own id, or, for a key made by a roll, the lineage of the key it
-- replaced, so that a rolled key and its successor share both.
ALTER TABLE api_keys ADD COLUMN lineage_id uuid;

--bun:split

UPDATE api_keys SET lineage_id = id;

--bun:split

ALTER TABLE api_keys ALTER COLUMN lineage_id SET NOT NULL;

--bun:split

ALTER TABLE api_keys ADD COLUMN disabled boolean NOT NULL DEFAULT false;

--bun:split

-- A token bucket of rate_limit tokens refilled evenly over
-- rate_period_seconds; both NULL: no rate limit.
ALTER TABLE api_keys ADD COLUMN rate_limit integer CHECK (rate_limit > 0);

--bun:split

ALTER TABLE api_keys ADD COLUMN rate_period_seconds integer;

--bun:split

ALTER TABLE api_keys ADD CONSTRAINT api_keys_rate_period_seconds_check
    CHECK ((rate_period_seconds IS NULL) = (rate_limit IS NULL) AND rate_period_seconds > 0);

--bun:split

-- A JSON array of canonical prefixes ('["10.0.0.0/8","2001:db8::/32"]');
-- NULL: anywhere.
ALTER TABLE api_keys ADD COLUMN allowed_ips text;

--bun:split

-- A compact JSON object; NULL: none.
ALTER TABLE api_keys ADD COLUMN meta text;

--bun:split

-- The balance of a lineage that has credits (none: unlimited). A refill
-- resets remaining to refill_amount, if it is lower, at refill_at (00:00 UTC
-- of the next day, or of refill_day of a month, the month's last day when it
-- is shorter), applied by the first spend at or after refill_at, which moves
-- refill_at to the next refill time.
CREATE TABLE credit_balances (
    lineage_id      uuid        PRIMARY KEY,
    remaining       bigint      NOT NULL CHECK (remaining >= 0),
    refill_amount   bigint      CHECK (refill_amount > 0),
    refill_interval varchar(8)  CHECK (refill_interval IN ('day', 'month')),
    refill_day      smallint    CHECK (refill_day BETWEEN 1 AND 31),
    refill_at       timestamptz,
    CHECK ((refill_amount IS NULL) = (refill_interval IS NULL)
        AND (refill_amount IS NULL) = (refill_at IS NULL)
        AND (refill_day IS NOT NULL) = (refill_interval IS NOT NULL AND refill_interval = 'month'))
);
