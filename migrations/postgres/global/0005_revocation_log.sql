-- The revocation log: every session end (sign-out, refresh reuse, disable, password change,
-- factor change, idle limit...), service-token revocation and signing-key removal, written in
-- the transaction of the change. Positions are handed out under a transaction-level advisory
-- lock held until commit, so they become visible in order and a reader that has seen position N
-- never later finds a smaller one. Every origin node indexes it in memory; the edge is fed from
-- it until it acknowledges. A row is deleted once `until` has passed: no token it covers can be
-- valid any more.
CREATE TABLE revocation_log (
    position   BIGSERIAL PRIMARY KEY,
    tenant     TEXT NOT NULL,
    -- A session id, `sk-<token id>` for a service token, or `key:<kid>` (tenant '') for a key.
    subject    TEXT NOT NULL,
    until      BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX revocation_log_until ON revocation_log (until);

-- How far the edge has acknowledged the log.
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
