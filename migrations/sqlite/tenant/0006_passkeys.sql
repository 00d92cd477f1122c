-- SQLite twin of migrations/postgres/tenant/0006_passkeys.sql (INTEGER, BLOB).
-- Passkeys (WebAuthn credentials): a user may have several, each its own row.
CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The authenticator's credential id (raw bytes): unique within the tenant, so that one
    -- credential never belongs to two accounts.
    credential_id   BLOB NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    -- webauthn-rs's Passkey as JSON: the public key, algorithm, signature counter and flags.
    -- Public material only; rewritten when an assertion advances the counter.
    passkey         TEXT NOT NULL,
    backup_eligible INTEGER NOT NULL,
    backed_up       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- The server-side state of a WebAuthn ceremony between its options and its finish: single
-- use (deleted when finished), five minutes. Stored here, not in memory, so that any origin
-- node can finish a ceremony another began.
CREATE TABLE webauthn_ceremonies (
    -- HMAC of the ceremony token (core's TokenKind::Ceremony).
    digest     BLOB PRIMARY KEY,
    -- register, login, discoverable or mfa.
    purpose    TEXT NOT NULL,
    -- The account the ceremony is for; NULL for a discoverable sign-in (the authenticator
    -- names the account) and for a sign-in begun for an address with no passkey.
    user_id    TEXT,
    -- webauthn-rs's ceremony state as JSON.
    state      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
-- Each new ceremony sweeps the expired ones of its tenant.
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);
