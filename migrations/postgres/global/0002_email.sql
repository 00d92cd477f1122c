-- Per-tenant sign-up and sign-in policy.
ALTER TABLE tenants ADD COLUMN registration_open BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN require_verified_email BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN require_mfa BIGINT NOT NULL DEFAULT 0;

-- Which tenants have mail due, so that the mail worker never polls every tenant. Slug and
-- time only: recipients and content stay in the tenant's own outbox. `version` changes with
-- every enqueue, so that a worker clears an entry only if no mail was queued since it looked.
CREATE TABLE mail_due (
    slug    TEXT PRIMARY KEY,
    due_ms  BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX mail_due_due_ms ON mail_due (due_ms);
