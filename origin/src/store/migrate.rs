//! Runs the plain SQL files under `migrations/<backend>/<scope>/`, discovered at build time
//! (every `*.sql` file of the folder, in name order), each once, each scope in one transaction,
//! recorded in the scope's `schema_migrations` table under the file's stem (`0001_init`).

use include_dir::{include_dir, Dir};
use sqlx::{Any, AnyPool, Transaction};
use sqlx::{Executor as _, Row as _};
use tessera_core::model::TenantSlug;

use super::dialect::{Dialect, GLOBAL_SCHEMA};
use super::StoreResult;

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../migrations");

/// What a migration run applies to.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The tenant registry, keys, rate limits.
    Global,
    /// One tenant's tables.
    Tenant(&'a TenantSlug),
    /// PostgreSQL: a tenant's tables in a spare schema of this name, made ahead of the tenant
    /// that will take it (see `Store::prepare_spare_schemas`).
    Spare(&'a str),
}

/// Arbitrary constant naming the advisory lock that serialises migrations across nodes.
const MIGRATION_LOCK: i64 = 0x7465_7373;

/// The migrations of a backend and scope: (version, SQL) in version order.
#[must_use]
pub fn files(dialect: Dialect, scope: Scope<'_>) -> Vec<(&'static str, &'static str)> {
    let backend = match dialect {
        Dialect::Postgres => "postgres",
        Dialect::Sqlite => "sqlite",
    };
    let folder = match scope {
        Scope::Global => "global",
        Scope::Tenant(_) | Scope::Spare(_) => "tenant",
    };
    let mut files: Vec<_> = MIGRATIONS
        .get_dir(format!("{backend}/{folder}"))
        .map(|dir| {
            dir.files()
                .filter(|f| f.path().extension().is_some_and(|e| e == "sql"))
                .filter_map(|f| {
                    let version = f.path().file_stem()?.to_str()?;
                    Some((version, f.contents_utf8()?))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort_unstable_by_key(|(version, _)| *version);
    files
}

/// Whether every migration of `scope` is recorded as applied: one read, no lock, so that the
/// first use of each tenant in a process costs a single query when nothing is pending.
pub async fn is_current(pool: &AnyPool, dialect: Dialect, scope: Scope<'_>) -> StoreResult<bool> {
    let table = match (dialect, scope) {
        (Dialect::Postgres, Scope::Global) => format!("{GLOBAL_SCHEMA}.schema_migrations"),
        (Dialect::Postgres, Scope::Tenant(slug)) => {
            format!("{}.schema_migrations", slug.schema_name())
        }
        (Dialect::Postgres, Scope::Spare(schema)) => format!("{schema}.schema_migrations"),
        (Dialect::Sqlite, _) => "schema_migrations".to_owned(),
    };
    // A scope never migrated has no table: that is "not current", not an error.
    let Ok(rows) = sqlx::query(&format!("SELECT version FROM {table}"))
        .fetch_all(pool)
        .await
    else {
        return Ok(false);
    };
    let applied: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    Ok(files(dialect, scope)
        .iter()
        .all(|(version, _)| applied.iter().any(|a| a == version)))
}

/// Applies the pending migrations of `scope` in a transaction of its own.
pub async fn run(pool: &AnyPool, dialect: Dialect, scope: Scope<'_>) -> StoreResult<()> {
    let mut tx = dialect.begin_write(pool).await?;
    apply(&mut tx, dialect, scope).await?;
    tx.commit().await?;
    Ok(())
}

/// Applies the pending migrations of `scope` inside `tx`, so that a caller can make more
/// changes in the same commit (a tenant's registration). On PostgreSQL the schema is created if
/// needed, `search_path` is set for the rest of the transaction, and an advisory lock keeps two
/// nodes from migrating at once (except a new spare schema, whose unique name no other node
/// knows yet: making one does not hold up tenant creations); DDL is transactional on both
/// backends, so a failed migration leaves nothing half-written.
pub async fn apply(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    scope: Scope<'_>,
) -> StoreResult<()> {
    if dialect == Dialect::Postgres {
        let schema = match scope {
            Scope::Global => GLOBAL_SCHEMA.to_owned(),
            Scope::Tenant(slug) => slug.schema_name(),
            Scope::Spare(schema) => schema.to_owned(),
        };
        if !matches!(scope, Scope::Spare(_)) {
            sqlx::query("SELECT count(*) FROM (SELECT pg_advisory_xact_lock($1)) AS l")
                .bind(MIGRATION_LOCK)
                .fetch_one(&mut **tx)
                .await?;
        }
        // The schema name comes from a constant, a validated TenantSlug or a spare's name
        // (`spare_` and hex digits, made by the store): [a-z0-9_] only.
        let setup =
            format!("CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path TO {schema}");
        tx.execute(setup.as_str()).await?;
    }
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let applied: Vec<String> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    for (version, sql) in files(dialect, scope) {
        if applied.iter().any(|v| v == version) {
            continue;
        }
        // A file goes as one simple query: one round trip instead of one or two per statement,
        // and no DDL text takes a place in the connection's cache of prepared statements.
        tx.execute(sql).await?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(crate::clock::system_now_secs())
            .execute(&mut **tx)
            .await?;
        tracing::debug!(?scope, version, "migration applied");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{files, Dialect, Scope};

    #[test]
    fn every_backend_and_scope_has_its_migrations_discovered_in_order() {
        let slug = tessera_core::model::TenantSlug::parse("acme").unwrap();
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            for scope in [Scope::Global, Scope::Tenant(&slug)] {
                let found = files(dialect, scope);
                assert!(!found.is_empty(), "{dialect:?} {scope:?}");
                assert_eq!(found[0].0, "0001_init");
                assert!(found.windows(2).all(|w| w[0].0 < w[1].0));
            }
        }
    }
}
