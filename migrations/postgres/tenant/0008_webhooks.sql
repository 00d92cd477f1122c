-- Outbound webhooks (Standard Webhooks): the tenant's endpoints, and one delivery row per
-- event and endpoint, written in the transaction of the change that causes the event and
-- delivered by the outbox worker, in order per user and endpoint.
CREATE TABLE webhook_endpoints (
    id            TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    -- The subscribed event types, space-separated, with a space before and after each.
    events        TEXT NOT NULL,
    -- The signing secret (32 bytes) sealed with the master key: it signs, so it is kept, but
    -- never in clear; shown once, at creation.
    secret_sealed BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    -- The order of events in the tenant.
    seq            BIGSERIAL PRIMARY KEY,
    -- The event's id (`webhook-id`): the same on every try and every endpoint.
    event_id       TEXT NOT NULL,
    endpoint_id    TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event          TEXT NOT NULL,
    -- The user the event is about: deliveries of one user to one endpoint go in order.
    user_id        TEXT NOT NULL,
    -- The signed body, as sent.
    payload        TEXT NOT NULL,
    created_ms     BIGINT NOT NULL,
    due_ms         BIGINT NOT NULL,
    attempts       BIGINT NOT NULL DEFAULT 0,
    lease_until_ms BIGINT,
    delivered_ms   BIGINT,
    failed_ms      BIGINT,
    -- The last try's HTTP status, or why it failed without one.
    last_status    BIGINT,
    last_error     TEXT,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (due_ms)
    WHERE delivered_ms IS NULL AND failed_ms IS NULL;
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, user_id, seq)
    WHERE delivered_ms IS NULL AND failed_ms IS NULL;
