DROP TABLE credit_balances;

--bun:split

ALTER TABLE api_keys DROP COLUMN meta;

--bun:split

ALTER TABLE api_keys DROP COLUMN allowed_ips;

--bun:split

-- rate_period_seconds before rate_limit, which its CHECK names.
ALTER TABLE api_keys DROP COLUMN rate_period_seconds;

--bun:split

ALTER TABLE api_keys DROP COLUMN rate_limit;

--bun:split

ALTER TABLE api_keys DROP COLUMN disabled;

--bun:split

ALTER TABLE api_keys DROP COLUMN lineage_id;
