ALTER TABLE api_keys DROP COLUMN last_used_user_agent;

--bun:split

ALTER TABLE api_keys DROP COLUMN last_used_ip;

--bun:split

DROP TABLE audit_events;
