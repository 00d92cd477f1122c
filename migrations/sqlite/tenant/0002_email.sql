-- SQLite twin of migrations/postgres/tenant/0002_email.sql (INTEGER, BLOB).
-- Email flows: verification, password reset, email codes and the email second factor; teams
-- and projects; the transactional outbox.

-- Set by `--mfa email` or PUT /api/auth/mfa/email: sign-in asks for an emailed code too.
ALTER TABLE users ADD COLUMN mfa_email INTEGER NOT NULL DEFAULT 0;

-- Single-use emailed secrets: link tokens and 6-digit codes, one live per user and purpose (a
-- new one replaces the old). Only an HMAC-SHA-256 under a server key is stored: a leaked
-- table does not give a 6-digit code away to a lookup table.
CREATE TABLE email_secrets (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- verify_email, reset_password or sign_in_code.
    purpose    TEXT NOT NULL,
    digest     BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Wrong codes so far; the fifth ends the code.
    attempts   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, purpose)
);

-- The step between a correct password and the second factor, by the digest of its mfa_token.
CREATE TABLE mfa_challenges (
    digest      BLOB PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Space-separated methods the user may answer with (email, ...).
    methods     TEXT NOT NULL,
    -- HMAC of the emailed code, when email is one of the methods.
    code_digest BLOB,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mfa_challenges_user_id ON mfa_challenges (user_id);

CREATE TABLE teams (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE team_members (
    team_id    TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- owner, admin or member.
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_id ON team_members (user_id);

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    team_id    TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX projects_team_id ON projects (team_id);

-- Email to deliver, written in the same transaction as the change that causes it. The mail
-- worker claims due rows under a lease, sends them and marks them sent, erasing their
-- parameters (which may hold a link or code). Times in Unix milliseconds.
CREATE TABLE outbox (
    id             TEXT PRIMARY KEY,
    -- The template, or a request that the worker turns into one (so that the request's
    -- answer and timing do not depend on whether the account exists).
    kind           TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    -- JSON parameters of the template.
    params         TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    due_ms         INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    -- Claimed by a worker until then; an expired lease is claimable again.
    lease_until_ms INTEGER,
    sent_ms        INTEGER,
    failed_ms      INTEGER,
    last_error     TEXT
);
CREATE INDEX outbox_due ON outbox (due_ms) WHERE sent_ms IS NULL AND failed_ms IS NULL;
