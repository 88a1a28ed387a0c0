DROP INDEX audit_events_org_idx;

--bun:split

ALTER TABLE audit_events DROP COLUMN org_id;

--bun:split

DROP INDEX api_keys_org_idx;

--bun:split

ALTER TABLE api_keys DROP COLUMN org_id;

--bun:split

DROP TABLE org_invitations;

--bun:split

DROP TABLE org_members;

--bun:split

DROP TABLE orgs;
