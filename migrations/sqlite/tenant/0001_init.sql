-- SQLite twin of migrations/postgres/tenant/0001_init.sql (INTEGER, BLOB).
-- One tenant's accounts. Emails are stored normalised (tessera_core::model::Email), so the
-- unique constraint is exact.
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL DEFAULT '',
    role              TEXT NOT NULL DEFAULT 'user',
    -- PHC string (argon2id); NULL for an account that signs in by email code only.
    password_hash     TEXT,
    disabled          INTEGER NOT NULL DEFAULT 0,
    email_verified_at INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

-- One row per sign-in: the session and its refresh-token family share this id.
CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    -- Absolute end of the family: rotation never extends it.
    expires_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT,
    ip             TEXT NOT NULL,
    user_agent     TEXT NOT NULL,
    -- Space-separated RFC 8176 methods of the sign-in (pwd, otp, ...).
    amr            TEXT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);

-- Refresh tokens by SHA-256 digest. A rotated token keeps its row (rotated_at, successor) so
-- that a second use is recognised: within the grace window it gets the same successor, after
-- it the whole family is revoked.
CREATE TABLE refresh_tokens (
    digest     BLOB PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    rotated_at INTEGER,
    successor  BLOB
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id, created_at);

-- Security events of this tenant. Never holds a secret.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    event      TEXT NOT NULL,
    user_id    TEXT,
    session_id TEXT,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
