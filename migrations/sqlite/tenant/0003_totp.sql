-- SQLite twin of migrations/postgres/tenant/0003_totp.sql (INTEGER, BLOB).
-- TOTP second factor: one authenticator per user, pending until its first code confirms it.
CREATE TABLE totp_factors (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- The secret sealed with the master key (XChaCha20-Poly1305, bound to the user id): never
    -- stored or logged in clear, never returned after enrolment.
    secret_sealed BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    -- NULL while pending.
    confirmed_at  INTEGER,
    -- The time step of the last code accepted: that step and earlier ones are replays.
    -- Advanced by compare-and-set in the transaction that accepts the code.
    last_step     INTEGER
);

-- Single-use recovery codes of an active factor, as HMAC-SHA-256 under a server key.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest  BLOB NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, digest)
);
