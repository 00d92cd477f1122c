-- SQLite twin of migrations/postgres/tenant/0004_api_tokens.sql (INTEGER, BLOB).
-- Service API tokens: long-lived bearer tokens of a tenant's services (VoiceStamp's "static
-- API token"), stored as SHA-256 digests; the token itself is shown once, at creation.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    digest       BLOB NOT NULL UNIQUE,
    -- Space-separated scopes, as OAuth writes them.
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    -- NULL: never expires.
    expires_at   INTEGER,
    -- Written at most once a minute per token.
    last_used_at INTEGER,
    revoked_at   INTEGER
);
