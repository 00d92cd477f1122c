-- SQLite twin of migrations/postgres/global/0001_init.sql (INTEGER, BLOB).
-- The tenant registry: one row per tenant; its data lives in schema tenant_<slug>.
CREATE TABLE tenants (
    slug         TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    -- JSON array of origins allowed to call the API from a browser (CORS).
    cors_origins TEXT NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL
);

-- Access-token signing keys. The private key is sealed with the master key (XChaCha20-Poly1305);
-- a retired key stays published in the JWKS until every token it signed has expired.
CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY,
    algorithm          TEXT NOT NULL,
    public_key         BLOB NOT NULL,
    private_key_sealed BLOB NOT NULL,
    created_at         INTEGER NOT NULL,
    retired_at         INTEGER
);

-- GCRA state for rate limits shared by several origin nodes (TESSERA_RATE_LIMIT_STORE=database).
CREATE TABLE rate_limits (
    key    TEXT PRIMARY KEY,
    tat_ms INTEGER NOT NULL
);
