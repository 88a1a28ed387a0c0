-- A key's scopes as a JSON array of names, sorted ('["orders:read"]');
-- NULL means unrestricted, which every existing key becomes, and differs
-- from '[]', a key that holds no scope.
ALTER TABLE api_keys ADD COLUMN scopes TEXT;
