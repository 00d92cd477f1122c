//! Storage: PostgreSQL (a schema per tenant) or embedded SQLite (a file per tenant), one SQL
//! implementation for both, the differences in [`dialect`].
//!
//! Global aggregates (the tenant registry, signing keys, shared rate limits) are methods of
//! [`Store`], one file each. Tenant aggregates (users, sessions and refresh families, the audit
//! log) are repositories that work inside a [`TenantTx`]: a unit of work scoped to one tenant,
//! so that a service changes state, appends to the audit log and (later) enqueues mail in one
//! commit. A tenant's scope is derived from its validated slug and nothing else, so no query of
//! one tenant can reach another's tables.

pub mod audit;
pub mod dialect;
pub mod keys;
pub mod limits;
pub mod migrate;
pub mod sessions;
pub mod tenants;
pub mod unit;
pub mod users;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use tessera_core::model::TenantSlug;
use tokio::sync::RwLock;

pub use audit::AuditEvent;
pub use dialect::Dialect;
pub use keys::StoredKey;
pub use sessions::{PresentedRefresh, Session};
pub use tenants::Tenant;
pub use unit::TenantTx;
pub use users::{NewUser, User};

/// A storage failure. Only `Conflict` is a client's doing; the rest are 500s.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (tenant slug, email) already exists.
    #[error("already exists")]
    Conflict,
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A stored value could not be read back (a bug or a manual edit).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Shared handle to the store.
pub type DynStore = Arc<Store>;

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Storage over PostgreSQL or SQLite.
pub struct Store {
    dialect: Dialect,
    global: AnyPool,
    /// SQLite only: the directory of the tenant files.
    tenant_dir: PathBuf,
    /// SQLite only: one pool per tenant file, opened on first use.
    tenant_pools: RwLock<HashMap<TenantSlug, AnyPool>>,
}

impl Store {
    /// Connects to PostgreSQL. The global schema and every tenant are migrated by `migrate`.
    pub async fn postgres(url: &str, max_connections: u32) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let global = AnyPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        Ok(Self {
            dialect: Dialect::Postgres,
            global,
            tenant_dir: PathBuf::new(),
            tenant_pools: RwLock::new(HashMap::new()),
        })
    }

    /// Opens (creating if needed) the embedded databases under `data_dir`.
    pub async fn sqlite(data_dir: &Path) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let tenant_dir = data_dir.join("tenants");
        std::fs::create_dir_all(&tenant_dir).map_err(|e| {
            StoreError::Corrupt(format!("cannot create {}: {e}", tenant_dir.display()))
        })?;
        let global = dialect::sqlite_pool(&data_dir.join("global.db"), true).await?;
        Ok(Self {
            dialect: Dialect::Sqlite,
            global,
            tenant_dir,
            tenant_pools: RwLock::new(HashMap::new()),
        })
    }

    /// The dialect.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.global).await?;
        Ok(())
    }

    /// Runs pending migrations of the global scope and of every tenant.
    pub async fn migrate(&self) -> StoreResult<()> {
        migrate::run(&self.global, self.dialect, migrate::Scope::Global).await?;
        for tenant in self.tenants().await? {
            self.migrate_tenant(&tenant.slug).await?;
        }
        Ok(())
    }

    /// A unit of work that writes in `tenant`: one transaction, committed by
    /// [`TenantTx::commit`], rolled back if dropped.
    pub async fn write(&self, tenant: &TenantSlug) -> StoreResult<TenantTx> {
        let pool = self.tenant_pool(tenant).await?;
        let tx = self.dialect.begin_write(&pool).await?;
        Ok(TenantTx::transaction(tx, self.dialect, tenant))
    }

    /// A unit of work that only reads in `tenant`: a pooled connection, no transaction, so that
    /// the hot read paths (every authenticated request) pay no `BEGIN`/`COMMIT`.
    pub async fn read(&self, tenant: &TenantSlug) -> StoreResult<TenantTx> {
        let pool = self.tenant_pool(tenant).await?;
        let conn = pool.acquire().await?;
        Ok(TenantTx::connection(conn, self.dialect, tenant))
    }

    fn global_sql(&self, sql: &str) -> String {
        sql.replace("{p}", &self.dialect.global_prefix())
    }

    /// The pool that reaches a tenant's tables.
    async fn tenant_pool(&self, tenant: &TenantSlug) -> StoreResult<AnyPool> {
        match self.dialect {
            Dialect::Postgres => Ok(self.global.clone()),
            Dialect::Sqlite => {
                if let Some(pool) = self.tenant_pools.read().await.get(tenant) {
                    return Ok(pool.clone());
                }
                let mut pools = self.tenant_pools.write().await;
                if let Some(pool) = pools.get(tenant) {
                    return Ok(pool.clone());
                }
                // Never creates a file: a tenant's file exists once `create_tenant` made it.
                let pool = dialect::sqlite_pool(&self.tenant_file(tenant), false).await?;
                pools.insert(tenant.clone(), pool.clone());
                Ok(pool)
            }
        }
    }

    fn tenant_file(&self, tenant: &TenantSlug) -> PathBuf {
        self.tenant_dir.join(format!("{}.db", tenant.as_str()))
    }

    async fn migrate_tenant(&self, tenant: &TenantSlug) -> StoreResult<()> {
        let pool = match self.dialect {
            Dialect::Postgres => self.global.clone(),
            Dialect::Sqlite => {
                let pool = dialect::sqlite_pool(&self.tenant_file(tenant), true).await?;
                self.tenant_pools
                    .write()
                    .await
                    .insert(tenant.clone(), pool.clone());
                pool
            }
        };
        migrate::run(&pool, self.dialect, migrate::Scope::Tenant(tenant)).await
    }
}
