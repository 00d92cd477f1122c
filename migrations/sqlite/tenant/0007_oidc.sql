-- SQLite twin of migrations/postgres/tenant/0007_oidc.sql (INTEGER, BLOB).
-- The tenant's OpenID provider: its clients, authorization codes, browser sessions, and the
-- sessions its clients hold.
CREATE TABLE oidc_clients (
    -- The client_id.
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    -- SHA-256 of the secret (256 random bits, so no slow hash is needed); NULL for a public
    -- client, which proves itself with PKCE instead.
    secret_digest             BLOB,
    -- JSON arrays of exact URIs.
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    -- Space-separated grant types.
    grants                    TEXT NOT NULL,
    -- RS256 or EdDSA.
    id_token_alg              TEXT NOT NULL,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
);

-- Authorization codes: single use, a minute. A redeemed code keeps the session it opened, so
-- that a second exchange of it ends that session (RFC 6749 §4.1.2); rows are swept ten
-- minutes after they expire.
CREATE TABLE oidc_codes (
    digest          BLOB PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    browser_session TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    scope           TEXT NOT NULL,
    nonce           TEXT,
    code_challenge  TEXT,
    auth_time       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    session_id      TEXT
);
CREATE INDEX oidc_codes_expiry ON oidc_codes (expires_at);

-- The provider's browser sessions: the digest of the __Host- cookie, and the Tessera session
-- its sign-in opened (ending that session ends the cookie's use).
CREATE TABLE oidc_browser_sessions (
    digest     BLOB PRIMARY KEY,
    session_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX oidc_browser_sessions_session ON oidc_browser_sessions (session_id);

-- The sessions opened by code exchanges: the client, the scope granted, and the browser
-- session they came from (ended with it at RP-initiated logout).
CREATE TABLE oidc_grants (
    session_id      TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    scope           TEXT NOT NULL,
    browser_session TEXT NOT NULL
);
CREATE INDEX oidc_grants_browser ON oidc_grants (browser_session);
CREATE INDEX oidc_grants_client ON oidc_grants (client_id);
