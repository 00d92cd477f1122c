-- SQLite twin of migrations/postgres/tenant/0009_user_admin.sql (SQLite compares bytes:
-- the unique index on email serves prefix ranges as it is).
-- An address an admin gave a user, waiting for its owner to confirm it from the emailed link
-- before it replaces the old one.
ALTER TABLE users ADD COLUMN pending_email TEXT;

-- The admin API's search by name prefix, case-insensitive.
CREATE INDEX users_name_prefix ON users (lower(name));
