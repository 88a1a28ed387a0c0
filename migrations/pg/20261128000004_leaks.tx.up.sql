-- A key revoked by a leak report (a code host found it in public) keeps
-- where and when, for the notice its owner sees until they dismiss it.
ALTER TABLE api_keys ADD COLUMN leaked_at timestamptz;

--bun:split

ALTER TABLE api_keys ADD COLUMN leak_url varchar(2048);

--bun:split

ALTER TABLE api_keys ADD COLUMN leak_source varchar(64);

--bun:split

ALTER TABLE api_keys ADD COLUMN leak_dismissed_at timestamptz;

--bun:split

-- The dashboard asks for a user's undismissed notices on every load.
CREATE INDEX api_keys_leak_notice_idx ON api_keys (user_id, leaked_at DESC) WHERE leaked_at IS NOT NULL AND leak_dismissed_at IS NULL;
