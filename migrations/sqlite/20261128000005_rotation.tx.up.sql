-- A rolled key points at the key that replaced it. While its grace lasts it
-- is listed and verifies; its expires_at is the end of the grace (or its own
-- earlier expiry), after which it is gone from the list and the limit.
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;
