-- Tenant schemas made ahead, already migrated, each waiting under a name of its own
-- (`spare_<hex>`): creating a tenant renames one instead of running the tenant migrations' DDL
-- while the operator waits. Taken with FOR UPDATE SKIP LOCKED, so two creations never take the
-- same one. (SQLite's equivalent is the template file; it has no such table.)
CREATE TABLE spare_schemas (
    name       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
