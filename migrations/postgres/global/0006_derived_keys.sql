-- Server secrets that are not sealed values but keys of their own (the HMAC keys of emailed
-- codes and links, of recovery codes, of refresh-token successors), kept sealed with the master
-- key so that rotating the master key re-seals them instead of changing them: a digest made
-- before a rotation still checks after it. Written once, at the first start that finds none,
-- with the values the master key derived until then.
CREATE TABLE derived_keys (
    purpose TEXT PRIMARY KEY,
    sealed  BYTEA NOT NULL
);
