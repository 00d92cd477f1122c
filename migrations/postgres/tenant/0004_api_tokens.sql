-- Service API tokens: long-lived bearer tokens of a tenant's services (VoiceStamp's "static
-- API token"), stored as SHA-256 digests; the token itself is shown once, at creation.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    digest       BYTEA NOT NULL UNIQUE,
    -- Space-separated scopes, as OAuth writes them.
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    -- NULL: never expires.
    expires_at   BIGINT,
    -- Written at most once a minute per token.
    last_used_at BIGINT,
    revoked_at   BIGINT
);
