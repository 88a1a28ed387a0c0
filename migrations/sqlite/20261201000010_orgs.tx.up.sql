-- Organisations own keys that outlive the member who made them. An
-- organisation's id is a UUID when it is made here, or the identity
-- provider's own id in identity-provider mode (ORG_CLAIM), so it is text.
-- A deleted organisation keeps its row (deleted_at), so that its revoked
-- keys and its audit events still name it; its members and invitations go.
CREATE TABLE orgs (
    id                       TEXT PRIMARY KEY NOT NULL,
    name                     TEXT NOT NULL,
    created_at               TIMESTAMP  NOT NULL,
    max_key_lifetime_seconds INTEGER      CHECK (max_key_lifetime_seconds > 0),
    deleted_at               TIMESTAMP
);

--bun:split

-- One row per member: user_id is the login token's subject.
CREATE TABLE org_members (
    org_id    TEXT NOT NULL REFERENCES orgs (id),
    user_id   TEXT NOT NULL,
    role      TEXT  NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at TIMESTAMP  NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

--bun:split

-- A user's organisations (GET /auth/orgs).
CREATE INDEX org_members_user_idx ON org_members (user_id);

--bun:split

-- Invitations: only the SHA-256 of the token is kept. An invitation is
-- pending while accepted_at and revoked_at are NULL and expires_at is ahead.
CREATE TABLE org_invitations (
    id          TEXT         PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    token_hash  TEXT     NOT NULL UNIQUE,
    role        TEXT  NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    email       TEXT,
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMP  NOT NULL,
    expires_at  TIMESTAMP  NOT NULL,
    accepted_at TIMESTAMP,
    accepted_by TEXT,
    revoked_at  TIMESTAMP
);

--bun:split

CREATE INDEX org_invitations_org_idx ON org_invitations (org_id, created_at);

--bun:split

-- An organisation key: org_id is its owner and user_id the member who made
-- it (created_by). NULL for a personal key, whose owner is user_id. No
-- foreign key: organisations are never removed (deleted_at), and a column
-- under a foreign key could not be dropped again on SQLite.
ALTER TABLE api_keys ADD COLUMN org_id TEXT;

--bun:split

-- Listing and counting an organisation's unrevoked keys.
CREATE INDEX api_keys_org_idx ON api_keys (org_id, created_at DESC) WHERE org_id IS NOT NULL AND revoked_at IS NULL;

--bun:split

-- The organisation an event of an organisation key, member or invitation
-- belongs to; NULL for a personal event.
ALTER TABLE audit_events ADD COLUMN org_id TEXT;

--bun:split

-- Reading an organisation's log, newest first.
CREATE INDEX audit_events_org_idx ON audit_events (org_id, id DESC) WHERE org_id IS NOT NULL;
