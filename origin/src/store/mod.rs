//! Storage: PostgreSQL (a schema per tenant) or embedded SQLite (a file per tenant), one SQL
//! implementation for both, the differences in [`dialect`].
//!
//! Global aggregates (the tenant registry, signing keys, shared rate limits) are methods of
//! [`Store`], one file each. Tenant aggregates (users, sessions and refresh families, the audit
//! log) are repositories that work inside a [`TenantTx`]: a unit of work scoped to one tenant,
//! so that a service changes state, appends to the audit log and (later) enqueues mail in one
//! commit. A tenant's scope is derived from its validated slug and nothing else, so no query of
//! one tenant can reach another's tables.

pub mod api_tokens;
pub mod audit;
pub mod dialect;
pub mod keys;
pub mod limits;
pub mod migrate;
pub mod oidc;
mod open_tenants;
pub mod operator_tokens;
pub mod outbox;
pub mod passkeys;
pub mod revocation_log;
pub mod secrets;
pub mod sessions;
mod sqlite_files;
pub mod teams;
mod tenant_shards;
pub mod tenants;
pub mod totp;
pub mod unit;
pub mod users;
pub mod webhooks;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool};
use tessera_core::model::TenantSlug;

pub use api_tokens::ApiToken;
pub use audit::AuditEvent;
pub use dialect::Dialect;
pub use keys::StoredKey;
pub use operator_tokens::OperatorTokenRecord;
pub use outbox::{ClaimedMail, NewMail};
pub use secrets::{Purpose, StoredChallenge, StoredSecret};
pub use sessions::{PresentedRefresh, Session};
pub use teams::{Membership, Project};
pub use tenants::{DeletedTenant, Tenant, TenantChanges, TenantPolicy, TenantSettings};
pub use totp::StoredFactor;
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

impl StoreError {
    /// Whether the database is unreachable or refusing work for now (connection lost or
    /// refused, pool exhausted, server shutting down, SQLite busy past its timeout): a retry
    /// later may succeed, so clients are told 503, not 500.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        let Self::Database(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // PostgreSQL: 08 connection exception, 53 insufficient resources, 57P01–03
                // shutdown / cannot connect now. SQLite: 5 busy, 6 locked.
                code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "5" | "6")
            }),
            _ => false,
        }
    }
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

/// SQLite tenant databases kept open by default (`TESSERA_SQLITE_OPEN_TENANTS`).
pub const DEFAULT_OPEN_TENANTS: usize = 128;

/// Storage over PostgreSQL or SQLite.
///
/// Tenant resources are lazy and bounded: nothing about a tenant is touched until its first
/// request, when its migrations are checked once for the life of the process (a single read
/// when none is pending); on SQLite at most `open_tenants` tenant databases are open at once,
/// the least recently used closed first. Start-up migrates only the global scope.
pub struct Store {
    dialect: Dialect,
    global: AnyPool,
    /// SQLite only: the directory of the tenant files.
    tenant_dir: PathBuf,
    /// SQLite only: open tenant databases, least recently used evicted (and so closed).
    tenant_pools: open_tenants::OpenTenants,
    /// PostgreSQL only: the tenants' connections, each tenant served by its own shard first.
    tenant_shards: Option<tenant_shards::TenantShards>,
    /// Tenants whose migrations this process has checked.
    migrated: Mutex<HashSet<TenantSlug>>,
    /// SQLite only: serialises (re)building the pre-migrated template of new tenant files.
    template: tokio::sync::Mutex<bool>,
    /// Woken when a unit of work that queued mail commits, so that this node's mail worker
    /// delivers it at once instead of at its next poll.
    mail_queued: Arc<tokio::sync::Notify>,
    /// Woken when this process commits entries to the revocation log, so that its index and
    /// its edge feed read them at once instead of at their next poll.
    revocations_written: Arc<tokio::sync::Notify>,
    /// PostgreSQL: woken when this process's tenant creation took a spare schema, so that this
    /// node makes another at once.
    spare_taken: Arc<tokio::sync::Notify>,
}

impl Store {
    /// Connects to PostgreSQL with at most `max_connections` (two at least): a quarter for the
    /// global tables, the rest in tenant shards. The global schema is migrated by `migrate_global`,
    /// every tenant by `migrate`, and each tenant lazily on first use.
    pub async fn postgres(url: &str, max_connections: u32) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let global_connections = (max_connections / 4).max(1);
        let global = AnyPoolOptions::new()
            .max_connections(global_connections)
            .connect(url)
            .await?;
        let shards = tenant_shards::TenantShards::connect_lazy(
            url,
            max_connections.saturating_sub(global_connections),
        )?;
        let mut store = Self::new(Dialect::Postgres, global, PathBuf::new(), 1);
        store.tenant_shards = Some(shards);
        Ok(store)
    }

    /// Opens (creating if needed) the embedded databases under `data_dir`, keeping at most
    /// [`DEFAULT_OPEN_TENANTS`] tenant databases open.
    pub async fn sqlite(data_dir: &Path) -> StoreResult<Self> {
        Self::sqlite_with(data_dir, DEFAULT_OPEN_TENANTS).await
    }

    /// Opens the embedded databases under `data_dir`, keeping at most `open_tenants` tenant
    /// databases open.
    pub async fn sqlite_with(data_dir: &Path, open_tenants: usize) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let tenant_dir = data_dir.join("tenants");
        std::fs::create_dir_all(&tenant_dir).map_err(|e| {
            StoreError::Corrupt(format!("cannot create {}: {e}", tenant_dir.display()))
        })?;
        let global = dialect::sqlite_pool(
            &data_dir.join("global.db"),
            dialect::SQLITE_GLOBAL_CONNECTIONS,
        )
        .await?;
        Ok(Self::new(Dialect::Sqlite, global, tenant_dir, open_tenants))
    }

    fn new(dialect: Dialect, global: AnyPool, tenant_dir: PathBuf, open_tenants: usize) -> Self {
        Self {
            dialect,
            global,
            tenant_dir,
            tenant_pools: open_tenants::OpenTenants::new(open_tenants),
            tenant_shards: None,
            migrated: Mutex::new(HashSet::new()),
            template: tokio::sync::Mutex::new(false),
            mail_queued: Arc::new(tokio::sync::Notify::new()),
            revocations_written: Arc::new(tokio::sync::Notify::new()),
            spare_taken: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Notified whenever a unit of work of this process that queued mail commits.
    #[must_use]
    pub fn mail_queued(&self) -> Arc<tokio::sync::Notify> {
        self.mail_queued.clone()
    }

    /// Notified whenever a tenant creation of this process took a spare schema.
    #[must_use]
    pub fn spare_taken(&self) -> Arc<tokio::sync::Notify> {
        self.spare_taken.clone()
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

    /// Runs pending migrations of the global scope (what start-up needs).
    pub async fn migrate_global(&self) -> StoreResult<()> {
        migrate::run(&self.global, self.dialect, migrate::Scope::Global).await
    }

    /// Runs pending migrations of the global scope and of every tenant (`tessera migrate`).
    pub async fn migrate(&self) -> StoreResult<()> {
        self.migrate_global().await?;
        for tenant in self.tenants().await? {
            let pool = self.open_tenant(&tenant.slug).await?;
            migrate::run(&pool, self.dialect, migrate::Scope::Tenant(&tenant.slug)).await?;
            self.mark_migrated(&tenant.slug);
        }
        Ok(())
    }

    /// A unit of work that writes in `tenant`: one transaction, committed by
    /// [`TenantTx::commit`], rolled back if dropped.
    pub async fn write(&self, tenant: &TenantSlug) -> StoreResult<TenantTx> {
        let conn = self.tenant_connection(tenant).await?;
        let tx = self.dialect.begin_write_on(conn).await?;
        let global = unit::Global {
            pool: self.global.clone(),
            mail_queued: self.mail_queued.clone(),
            revocations_written: self.revocations_written.clone(),
        };
        Ok(TenantTx::transaction(tx, global, self.dialect, tenant))
    }

    /// A unit of work that only reads in `tenant`: a pooled connection, no transaction, so that
    /// the hot read paths (every authenticated request) pay no `BEGIN`/`COMMIT`.
    pub async fn read(&self, tenant: &TenantSlug) -> StoreResult<TenantTx> {
        let conn = self.tenant_connection(tenant).await?;
        Ok(TenantTx::connection(conn, self.dialect, tenant))
    }

    /// How many SQLite tenant databases are open now.
    #[must_use]
    pub fn open_tenant_databases(&self) -> usize {
        self.tenant_pools.len()
    }

    fn global_sql(&self, sql: &str) -> String {
        sql.replace("{p}", &self.dialect.global_prefix())
    }

    fn is_migrated(&self, tenant: &TenantSlug) -> bool {
        self.migrated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(tenant)
    }

    fn forget_migrated(&self, tenant: &TenantSlug) {
        self.migrated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(tenant);
    }

    fn mark_migrated(&self, tenant: &TenantSlug) {
        self.migrated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant.clone());
    }

    /// The pool that reaches a tenant's tables, its migrations checked once per process.
    async fn tenant_pool(&self, tenant: &TenantSlug) -> StoreResult<AnyPool> {
        let pool = self.open_tenant(tenant).await?;
        if !self.is_migrated(tenant) {
            let scope = migrate::Scope::Tenant(tenant);
            if !migrate::is_current(&pool, self.dialect, scope).await? {
                migrate::run(&pool, self.dialect, scope).await?;
            }
            self.mark_migrated(tenant);
        }
        Ok(pool)
    }

    /// A connection to a tenant's tables, its migrations checked once per process.
    async fn tenant_connection(&self, tenant: &TenantSlug) -> StoreResult<PoolConnection<Any>> {
        let pool = self.tenant_pool(tenant).await?;
        Ok(match &self.tenant_shards {
            Some(shards) => shards.acquire(tenant).await?,
            None => pool.acquire().await?,
        })
    }

    /// The tenant's shard on PostgreSQL; on SQLite the tenant's file, opened on first use and
    /// kept in the bounded set of open databases. Never creates a file: a tenant's file exists
    /// once `create_tenant` made it.
    async fn open_tenant(&self, tenant: &TenantSlug) -> StoreResult<AnyPool> {
        match &self.tenant_shards {
            Some(shards) => Ok(shards.home(tenant).clone()),
            None => self.tenant_pools.get_or_open(tenant, || {
                dialect::sqlite_tenant_pool(&self.tenant_file(tenant))
            }),
        }
    }

    fn tenant_file(&self, tenant: &TenantSlug) -> PathBuf {
        self.tenant_dir.join(format!("{}.db", tenant.as_str()))
    }
}
