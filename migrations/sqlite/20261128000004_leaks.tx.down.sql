DROP INDEX api_keys_leak_notice_idx;

--bun:split

ALTER TABLE api_keys DROP COLUMN leak_dismissed_at;

--bun:split

ALTER TABLE api_keys DROP COLUMN leak_source;

--bun:split

ALTER TABLE api_keys DROP COLUMN leak_url;

--bun:split

ALTER TABLE api_keys DROP COLUMN leaked_at;
