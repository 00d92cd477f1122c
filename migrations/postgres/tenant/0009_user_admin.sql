-- An address an admin gave a user, waiting for its owner to confirm it from the emailed link
-- before it replaces the old one.
ALTER TABLE users ADD COLUMN pending_email TEXT;

-- What the admin API's search finds a name by: lowercased by the application (Unicode rules,
-- the same on both backends), written with the name. Existing rows take PostgreSQL's lower().
ALTER TABLE users ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE users SET name_key = lower(name);

-- The search: an address or a name key by prefix, as byte ranges (collation "C"), whatever the
-- database's collation, each read in its index's order (a name match's page is ordered by name
-- key, then address).
CREATE INDEX users_email_bytes ON users ((email COLLATE "C"));
CREATE INDEX users_name_key ON users ((name_key COLLATE "C"), (email COLLATE "C"));
