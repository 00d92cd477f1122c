//! Runs the plain SQL files under `migrations/` (embedded at build time), each once, each scope
//! in one transaction, recorded in the scope's `schema_migrations` table.

use sqlx::AnyPool;
use sqlx::Row as _;
use tessera_core::model::TenantSlug;

use super::sql::Dialect;
use super::StoreResult;

type Migration = (&'static str, &'static str);

const POSTGRES_GLOBAL: &[Migration] = &[(
    "0001_init",
    include_str!("../../../migrations/postgres/global/0001_init.sql"),
)];
const POSTGRES_TENANT: &[Migration] = &[(
    "0001_init",
    include_str!("../../../migrations/postgres/tenant/0001_init.sql"),
)];
const SQLITE_GLOBAL: &[Migration] = &[(
    "0001_init",
    include_str!("../../../migrations/sqlite/global/0001_init.sql"),
)];
const SQLITE_TENANT: &[Migration] = &[(
    "0001_init",
    include_str!("../../../migrations/sqlite/tenant/0001_init.sql"),
)];

/// What a migration run applies to.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The tenant registry, keys, rate limits.
    Global,
    /// One tenant's tables.
    Tenant(&'a TenantSlug),
}

/// The PostgreSQL schema of the global scope.
pub const GLOBAL_SCHEMA: &str = "tessera";

/// Arbitrary constant naming the advisory lock that serialises migrations across nodes.
const MIGRATION_LOCK: i64 = 0x7465_7373;

/// Applies the pending migrations of `scope`. On PostgreSQL the schema is created if needed and
/// an advisory lock keeps two starting nodes from migrating at once; DDL is transactional on
/// both backends, so a failed migration leaves nothing half-written.
pub async fn run(pool: &AnyPool, dialect: Dialect, scope: Scope<'_>) -> StoreResult<()> {
    let files = match (dialect, scope) {
        (Dialect::Postgres, Scope::Global) => POSTGRES_GLOBAL,
        (Dialect::Postgres, Scope::Tenant(_)) => POSTGRES_TENANT,
        (Dialect::Sqlite, Scope::Global) => SQLITE_GLOBAL,
        (Dialect::Sqlite, Scope::Tenant(_)) => SQLITE_TENANT,
    };
    let mut tx = dialect.begin_write(pool).await?;
    if dialect == Dialect::Postgres {
        let schema = match scope {
            Scope::Global => GLOBAL_SCHEMA.to_owned(),
            Scope::Tenant(slug) => slug.schema_name(),
        };
        sqlx::query("SELECT count(*) FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(MIGRATION_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        // The schema name comes from a constant or a validated TenantSlug: [a-z0-9_] only.
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("SET LOCAL search_path TO {schema}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    let applied: Vec<String> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    for (version, sql) in files {
        if applied.iter().any(|v| v == version) {
            continue;
        }
        for statement in statements(sql) {
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(crate::clock::now_secs())
            .execute(&mut *tx)
            .await?;
        tracing::info!(?scope, version, "migration applied");
    }
    tx.commit().await?;
    Ok(())
}

/// The statements of a migration file: `--` comments dropped, split at `;`. Migration files
/// keep `;` out of literals (see migrations/README.md), which makes this split exact.
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_migration_splits_into_whole_statements() {
        for (_, sql) in super::POSTGRES_TENANT.iter().chain(super::SQLITE_TENANT) {
            let statements = super::statements(sql);
            assert!(
                statements.iter().all(|s| s.starts_with("CREATE ")),
                "{statements:#?}"
            );
            assert_eq!(statements.len(), 7);
        }
    }
}
