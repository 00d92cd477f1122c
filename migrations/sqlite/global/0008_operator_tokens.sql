-- SQLite twin of migrations/postgres/global/0009_operator_tokens.sql (INTEGER, BLOB).
-- Operator tokens: the platform's own backend calls the operator API (`/api/admin/*`) with
-- them. Global, of no tenant; stored as SHA-256 digests, the token itself shown once.
CREATE TABLE operator_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    digest       BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    -- NULL: never expires.
    expires_at   INTEGER,
    -- Written at most once a minute per token.
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- The operator API lists tenants newest first, a page at a time.
CREATE INDEX tenants_newest ON tenants (created_at, slug);
