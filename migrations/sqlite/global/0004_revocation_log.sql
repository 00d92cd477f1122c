-- The revocation log: every session end, service-token revocation and signing-key removal
-- (see the PostgreSQL migration of the same name). AUTOINCREMENT, so that a position is never
-- handed out twice even after the newest rows are deleted; SQLite's single writer makes
-- positions visible in order.
CREATE TABLE revocation_log (
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    until      BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX revocation_log_until ON revocation_log (until);

CREATE TABLE edge_feed (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    delivered_through BIGINT NOT NULL
);
INSERT INTO edge_feed (id, delivered_through) VALUES (1, 0);

-- Set once the sessions ended before this log existed are in it (a one-time pass over every
-- tenant at the first start after the upgrade, see `Store::backfill_revocation_log`).
CREATE TABLE revocation_log_backfill (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    done_at BIGINT NOT NULL
);
