-- Built-in accounts. email is kept as registered (trimmed); email_normalized
-- is its lower-cased form, unique, so one address in two cases is one
-- account. password_hash is an argon2id PHC string.
CREATE TABLE users (
    id               TEXT      PRIMARY KEY NOT NULL,
    email            TEXT      NOT NULL,
    email_normalized TEXT      NOT NULL,
    password_hash    TEXT      NOT NULL,
    created_at       TIMESTAMP NOT NULL
);

--bun:split

CREATE UNIQUE INDEX users_email_normalized_key ON users (email_normalized);
