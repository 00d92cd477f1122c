-- An address an admin gave a user, waiting for its owner to confirm it from the emailed link
-- before it replaces the old one.
ALTER TABLE users ADD COLUMN pending_email TEXT;

-- The admin API's search: an address or a name by prefix, case-insensitive, as byte ranges
-- (collation "C"), whatever the database's collation.
CREATE INDEX users_email_bytes ON users ((email COLLATE "C"));
CREATE INDEX users_name_prefix ON users ((lower(name) COLLATE "C"));
