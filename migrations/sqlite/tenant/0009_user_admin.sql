-- SQLite twin of migrations/postgres/tenant/0009_user_admin.sql (SQLite compares bytes: the
-- unique index on email serves prefix ranges as it is).
-- An address an admin gave a user, waiting for its owner to confirm it from the emailed link
-- before it replaces the old one.
ALTER TABLE users ADD COLUMN pending_email TEXT;

-- What the admin API's search finds a name by: lowercased by the application (Unicode rules),
-- written with the name. Existing rows take SQLite's lower() (ASCII only) until renamed.
ALTER TABLE users ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE users SET name_key = lower(name);

-- A name match's page is ordered by name key, then address.
CREATE INDEX users_name_key ON users (name_key, email);
