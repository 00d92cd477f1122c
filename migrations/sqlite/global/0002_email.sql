-- SQLite twin of migrations/postgres/global/0002_email.sql (INTEGER, BLOB).
-- Per-tenant sign-up and sign-in policy.
ALTER TABLE tenants ADD COLUMN registration_open INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN require_verified_email INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;

-- Which tenants have mail due, so that the mail worker never polls every tenant. Slug and
-- time only: recipients and content stay in the tenant's own outbox. `version` changes with
-- every enqueue, so that a worker clears an entry only if no mail was queued since it looked.
CREATE TABLE mail_due (
    slug    TEXT PRIMARY KEY,
    due_ms  INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX mail_due_due_ms ON mail_due (due_ms);
