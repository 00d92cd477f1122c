-- Operator tokens: the platform's own backend calls the operator API (`/api/admin/*`) with
-- them. Global, of no tenant; stored as SHA-256 digests, the token itself shown once.
CREATE TABLE operator_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    digest       BYTEA NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    -- NULL: never expires.
    expires_at   BIGINT,
    -- Written at most once a minute per token.
    last_used_at BIGINT,
    revoked_at   BIGINT
);

-- The operator API lists tenants newest first, a page at a time.
CREATE INDEX tenants_newest ON tenants (created_at, slug);
