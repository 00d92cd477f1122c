//! The SQL implementation of [`Store`] for both backends, over sqlx's `Any` driver.
//!
//! Queries are written once, with `$n` parameters (which SQLite accepts too) and `{p}` where a
//! table name needs its scope: on PostgreSQL `{p}` becomes the schema (`tessera.` or
//! `tenant_<slug>.`, built only from a validated [`TenantSlug`]); on SQLite it is empty and the
//! scope is the database file itself (`global.db` or `tenants/<slug>.db`). Types are limited to
//! what both share: integers, text and bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyPool;
use sqlx::{Any, Row as _, Transaction};
use tessera_core::model::{Email, SessionId, TenantSlug, UserId};
use tessera_core::ratelimit::{self, Decision, GcraState, Quota};
use tessera_core::secret::ct_eq;
use tessera_core::token::TokenDigest;
use tokio::sync::RwLock;

use super::migrate::{self, Scope, GLOBAL_SCHEMA};
use super::{
    AuditEvent, NewSession, NewUser, RefreshOutcome, Session, Store, StoreError, StoreResult,
    StoredKey, Tenant, User,
};

/// The SQL dialect in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: a schema per tenant.
    Postgres,
    /// SQLite: a file per tenant.
    Sqlite,
}

impl Dialect {
    /// Starts a transaction that will write. SQLite takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so that concurrent read-then-write transactions queue on the busy
    /// timeout instead of failing with `SQLITE_BUSY` when they upgrade.
    pub async fn begin_write(
        self,
        pool: &AnyPool,
    ) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self {
            Self::Postgres => pool.begin().await,
            Self::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        }
    }

    fn for_update(self) -> &'static str {
        match self {
            Self::Postgres => " FOR UPDATE",
            Self::Sqlite => "",
        }
    }
}

/// Connections per SQLite file: WAL lets readers run beside the one writer.
const SQLITE_POOL_SIZE: u32 = 4;

/// Storage over PostgreSQL or SQLite.
pub struct SqlStore {
    dialect: Dialect,
    global: AnyPool,
    /// SQLite only: the directory of the tenant files.
    tenant_dir: PathBuf,
    /// SQLite only: one pool per tenant file, opened on first use.
    tenant_pools: RwLock<HashMap<TenantSlug, AnyPool>>,
}

impl SqlStore {
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
        let global = sqlite_pool(&data_dir.join("global.db"), true).await?;
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

    /// `{p}` of global tables.
    fn global_prefix(&self) -> String {
        match self.dialect {
            Dialect::Postgres => format!("{GLOBAL_SCHEMA}."),
            Dialect::Sqlite => String::new(),
        }
    }

    fn global_sql(&self, sql: &str) -> String {
        sql.replace("{p}", &self.global_prefix())
    }

    /// The pool and `{p}`-substituted SQL for a tenant.
    async fn tenant_db(&self, tenant: &TenantSlug) -> StoreResult<AnyPool> {
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
                let pool = sqlite_pool(&self.tenant_file(tenant), false).await?;
                pools.insert(tenant.clone(), pool.clone());
                Ok(pool)
            }
        }
    }

    fn tenant_file(&self, tenant: &TenantSlug) -> PathBuf {
        self.tenant_dir.join(format!("{}.db", tenant.as_str()))
    }

    fn tenant_sql(&self, tenant: &TenantSlug, sql: &str) -> String {
        match self.dialect {
            Dialect::Postgres => sql.replace("{p}", &format!("{}.", tenant.schema_name())),
            Dialect::Sqlite => sql.replace("{p}", ""),
        }
    }

    async fn migrate_tenant(&self, tenant: &TenantSlug) -> StoreResult<()> {
        let pool = match self.dialect {
            Dialect::Postgres => self.global.clone(),
            Dialect::Sqlite => {
                let pool = sqlite_pool(&self.tenant_file(tenant), true).await?;
                self.tenant_pools
                    .write()
                    .await
                    .insert(tenant.clone(), pool.clone());
                pool
            }
        };
        migrate::run(&pool, self.dialect, Scope::Tenant(tenant)).await
    }
}

async fn sqlite_pool(path: &Path, create: bool) -> StoreResult<AnyPool> {
    let mode = if create { "rwc" } else { "rw" };
    let url = format!("sqlite://{}?mode={mode}", path.display());
    let pool = AnyPoolOptions::new()
        .max_connections(SQLITE_POOL_SIZE)
        .after_connect(|conn, _| {
            Box::pin(async move {
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA busy_timeout = 5000",
                    "PRAGMA foreign_keys = ON",
                    "PRAGMA synchronous = NORMAL",
                ] {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    Ok(pool)
}

const INSERT_AUDIT: &str =
    "INSERT INTO {p}audit_log (at, event, user_id, session_id, ip, user_agent, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Appends an audit event inside a transaction that also makes the change it records.
async fn insert_audit(
    tx: &mut Transaction<'static, Any>,
    sql: &str,
    event: &AuditEvent,
) -> StoreResult<()> {
    sqlx::query(sql)
        .bind(event.at)
        .bind(&event.event)
        .bind(event.user_id.clone())
        .bind(event.session_id.clone())
        .bind(&event.ip)
        .bind(&event.user_agent)
        .bind(&event.detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn tenant_from_row(row: &AnyRow) -> StoreResult<Tenant> {
    let slug: String = row.try_get("slug")?;
    let origins: String = row.try_get("cors_origins")?;
    Ok(Tenant {
        slug: TenantSlug::parse(&slug).map_err(|_| corrupt("tenant slug"))?,
        name: row.try_get("name")?,
        cors_origins: serde_json::from_str(&origins).map_err(|_| corrupt("tenant cors_origins"))?,
        created_at: row.try_get("created_at")?,
    })
}

const USER_COLUMNS: &str = "id, email, name, role, password_hash, disabled, created_at";

/// The user columns under distinct names, for joins with sessions.
const JOINED_USER_COLUMNS: &str =
    "u.id AS u_id, u.email AS u_email, u.name AS u_name, u.role AS u_role, \
     u.password_hash AS u_password_hash, u.disabled AS u_disabled, u.created_at AS u_created_at";

fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    user_from_prefixed(row, "")
}

fn user_from_prefixed(row: &AnyRow, prefix: &str) -> StoreResult<User> {
    let col = |name: &str| format!("{prefix}{name}");
    let id: String = row.try_get(col("id").as_str())?;
    let email: String = row.try_get(col("email").as_str())?;
    let disabled: i64 = row.try_get(col("disabled").as_str())?;
    Ok(User {
        id: UserId::parse(&id).map_err(|_| corrupt("user id"))?,
        email: Email::parse(&email).map_err(|_| corrupt("user email"))?,
        name: row.try_get(col("name").as_str())?,
        role: row.try_get(col("role").as_str())?,
        password_hash: row.try_get(col("password_hash").as_str())?,
        disabled: disabled != 0,
        created_at: row.try_get(col("created_at").as_str())?,
    })
}

/// A session's columns; `last_used_at` is the creation time of its newest refresh token.
const SESSION_COLUMNS: &str = "s.id, s.user_id, s.created_at, \
     COALESCE((SELECT MAX(lu.created_at) FROM {p}refresh_tokens lu WHERE lu.session_id = s.id), s.created_at) \
     AS last_used_at, \
     s.expires_at, s.revoked_at, s.ip, s.user_agent, s.amr";

fn session_from_row(row: &AnyRow) -> StoreResult<Session> {
    let id: String = row.try_get("id")?;
    let user_id: String = row.try_get("user_id")?;
    let amr: String = row.try_get("amr")?;
    Ok(Session {
        id: SessionId::parse(&id).map_err(|_| corrupt("session id"))?,
        user_id: UserId::parse(&user_id).map_err(|_| corrupt("session user id"))?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        amr: amr.split_whitespace().map(str::to_owned).collect(),
    })
}

fn key_from_row(row: &AnyRow) -> StoreResult<StoredKey> {
    Ok(StoredKey {
        kid: row.try_get("kid")?,
        algorithm: row.try_get("algorithm")?,
        public_key: row.try_get("public_key")?,
        private_key_sealed: row.try_get("private_key_sealed")?,
        created_at: row.try_get("created_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.global).await?;
        Ok(())
    }

    async fn migrate(&self) -> StoreResult<()> {
        migrate::run(&self.global, self.dialect, Scope::Global).await?;
        for tenant in self.tenants().await? {
            self.migrate_tenant(&tenant.slug).await?;
        }
        Ok(())
    }

    async fn create_tenant(&self, slug: &TenantSlug, name: &str, now: i64) -> StoreResult<Tenant> {
        if self.tenant(slug).await?.is_some() {
            return Err(StoreError::Conflict);
        }
        // Schema or file first, registry row last: a tenant is visible only once it is usable,
        // and a failure in between leaves a migrated, unregistered scope that a retry reuses.
        self.migrate_tenant(slug).await?;
        let sql = self.global_sql(
            "INSERT INTO {p}tenants (slug, name, cors_origins, created_at) VALUES ($1, $2, '[]', $3)",
        );
        let inserted = sqlx::query(&sql)
            .bind(slug.as_str())
            .bind(name)
            .bind(now)
            .execute(&self.global)
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(Tenant {
                slug: slug.clone(),
                name: name.to_owned(),
                cors_origins: Vec::new(),
                created_at: now,
            }),
        }
    }

    async fn tenant(&self, slug: &TenantSlug) -> StoreResult<Option<Tenant>> {
        let sql = self.global_sql(
            "SELECT slug, name, cors_origins, created_at FROM {p}tenants WHERE slug = $1",
        );
        sqlx::query(&sql)
            .bind(slug.as_str())
            .fetch_optional(&self.global)
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        let sql = self.global_sql(
            "SELECT slug, name, cors_origins, created_at FROM {p}tenants ORDER BY slug",
        );
        sqlx::query(&sql)
            .fetch_all(&self.global)
            .await?
            .iter()
            .map(tenant_from_row)
            .collect()
    }

    async fn set_cors_origins(&self, slug: &TenantSlug, origins: &[String]) -> StoreResult<()> {
        let json = serde_json::to_string(origins).map_err(|_| corrupt("cors origins"))?;
        let sql = self.global_sql("UPDATE {p}tenants SET cors_origins = $1 WHERE slug = $2");
        sqlx::query(&sql)
            .bind(json)
            .bind(slug.as_str())
            .execute(&self.global)
            .await?;
        Ok(())
    }

    async fn rotate_in_key(&self, key: &StoredKey, now: i64) -> StoreResult<()> {
        let mut tx = self.dialect.begin_write(&self.global).await?;
        sqlx::query(
            &self.global_sql("UPDATE {p}signing_keys SET retired_at = $1 WHERE retired_at IS NULL"),
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&self.global_sql(
            "INSERT INTO {p}signing_keys (kid, algorithm, public_key, private_key_sealed, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        ))
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.public_key)
        .bind(&key.private_key_sealed)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn keys(&self) -> StoreResult<Vec<StoredKey>> {
        let sql = self.global_sql(
            "SELECT kid, algorithm, public_key, private_key_sealed, created_at, retired_at \
             FROM {p}signing_keys ORDER BY created_at DESC, kid DESC",
        );
        sqlx::query(&sql)
            .fetch_all(&self.global)
            .await?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn rate_limit(&self, key: &str, now_ms: u64, quota: Quota) -> StoreResult<Decision> {
        let mut tx = self.dialect.begin_write(&self.global).await?;
        sqlx::query(&self.global_sql(
            "INSERT INTO {p}rate_limits (key, tat_ms) VALUES ($1, 0) ON CONFLICT (key) DO NOTHING",
        ))
        .bind(key)
        .execute(&mut *tx)
        .await?;
        let select = format!(
            "{}{}",
            self.global_sql("SELECT tat_ms FROM {p}rate_limits WHERE key = $1"),
            self.dialect.for_update()
        );
        let tat: i64 = sqlx::query(&select)
            .bind(key)
            .fetch_one(&mut *tx)
            .await?
            .try_get("tat_ms")?;
        let state = GcraState {
            tat_ms: u64::try_from(tat).unwrap_or(0),
        };
        let (decision, next) = ratelimit::check(Some(state), now_ms, quota);
        if next != state {
            sqlx::query(&self.global_sql("UPDATE {p}rate_limits SET tat_ms = $1 WHERE key = $2"))
                .bind(i64::try_from(next.tat_ms).unwrap_or(i64::MAX))
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(decision)
    }

    async fn sweep_rate_limits(&self, now_ms: u64) -> StoreResult<u64> {
        let sql = self.global_sql("DELETE FROM {p}rate_limits WHERE tat_ms <= $1");
        let done = sqlx::query(&sql)
            .bind(i64::try_from(now_ms).unwrap_or(i64::MAX))
            .execute(&self.global)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_user(&self, tenant: &TenantSlug, user: &NewUser) -> StoreResult<User> {
        let pool = self.tenant_db(tenant).await?;
        let sql = self.tenant_sql(
            tenant,
            "INSERT INTO {p}users (id, email, name, role, password_hash, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
        );
        let inserted = sqlx::query(&sql)
            .bind(user.id.to_string())
            .bind(user.email.as_str())
            .bind(&user.name)
            .bind(&user.role)
            .bind(user.password_hash.clone())
            .bind(user.now)
            .execute(&pool)
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(User {
                id: user.id,
                email: user.email.clone(),
                name: user.name.clone(),
                role: user.role.clone(),
                password_hash: user.password_hash.clone(),
                disabled: false,
                created_at: user.now,
            }),
        }
    }

    async fn user_by_email(&self, tenant: &TenantSlug, email: &Email) -> StoreResult<Option<User>> {
        let pool = self.tenant_db(tenant).await?;
        let sql = self.tenant_sql(
            tenant,
            &format!("SELECT {USER_COLUMNS} FROM {{p}}users WHERE email = $1"),
        );
        sqlx::query(&sql)
            .bind(email.as_str())
            .fetch_optional(&pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user_by_id(&self, tenant: &TenantSlug, id: &UserId) -> StoreResult<Option<User>> {
        let pool = self.tenant_db(tenant).await?;
        let sql = self.tenant_sql(
            tenant,
            &format!("SELECT {USER_COLUMNS} FROM {{p}}users WHERE id = $1"),
        );
        sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn set_password_hash(
        &self,
        tenant: &TenantSlug,
        id: &UserId,
        hash: &str,
        now: i64,
    ) -> StoreResult<()> {
        let pool = self.tenant_db(tenant).await?;
        let sql = self.tenant_sql(
            tenant,
            "UPDATE {p}users SET password_hash = $1, updated_at = $2 WHERE id = $3",
        );
        sqlx::query(&sql)
            .bind(hash)
            .bind(now)
            .bind(id.to_string())
            .execute(&pool)
            .await?;
        Ok(())
    }

    async fn set_disabled(
        &self,
        tenant: &TenantSlug,
        id: &UserId,
        disabled: bool,
        now: i64,
    ) -> StoreResult<()> {
        let pool = self.tenant_db(tenant).await?;
        let sql = self.tenant_sql(
            tenant,
            "UPDATE {p}users SET disabled = $1, updated_at = $2 WHERE id = $3",
        );
        sqlx::query(&sql)
            .bind(i64::from(disabled))
            .bind(now)
            .bind(id.to_string())
            .execute(&pool)
            .await?;
        Ok(())
    }

    async fn create_session(&self, tenant: &TenantSlug, new: &NewSession) -> StoreResult<()> {
        let pool = self.tenant_db(tenant).await?;
        let s = &new.session;
        let mut tx = self.dialect.begin_write(&pool).await?;
        sqlx::query(&self.tenant_sql(
            tenant,
            "INSERT INTO {p}sessions (id, user_id, created_at, expires_at, revoked_at, ip, user_agent, amr) \
             VALUES ($1, $2, $3, $4, NULL, $5, $6, $7)",
        ))
        .bind(s.id.to_string())
        .bind(s.user_id.to_string())
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(s.amr.join(" "))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&self.tenant_sql(
            tenant,
            "INSERT INTO {p}refresh_tokens (digest, session_id, created_at) VALUES ($1, $2, $3)",
        ))
        .bind(new.refresh_digest.as_bytes().to_vec())
        .bind(s.id.to_string())
        .bind(s.created_at)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, &self.tenant_sql(tenant, INSERT_AUDIT), &new.audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(&self, tenant: &TenantSlug, id: &SessionId) -> StoreResult<Option<Session>> {
        let pool = self.tenant_db(tenant).await?;
        let sql = self.tenant_sql(
            tenant,
            &format!("SELECT {SESSION_COLUMNS} FROM {{p}}sessions s WHERE s.id = $1"),
        );
        sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&pool)
            .await?
            .as_ref()
            .map(session_from_row)
            .transpose()
    }

    async fn session_with_user(
        &self,
        tenant: &TenantSlug,
        id: &SessionId,
    ) -> StoreResult<Option<(Session, User)>> {
        let pool = self.tenant_db(tenant).await?;
        let sql = self.tenant_sql(
            tenant,
            &format!(
                "SELECT {SESSION_COLUMNS}, {JOINED_USER_COLUMNS} FROM {{p}}sessions s \
                 JOIN {{p}}users u ON u.id = s.user_id WHERE s.id = $1"
            ),
        );
        let Some(row) = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((
            session_from_row(&row)?,
            user_from_prefixed(&row, "u_")?,
        )))
    }

    async fn active_sessions(
        &self,
        tenant: &TenantSlug,
        user: &UserId,
        now: i64,
    ) -> StoreResult<Vec<Session>> {
        let pool = self.tenant_db(tenant).await?;
        let sql = self.tenant_sql(
            tenant,
            &format!(
                "SELECT {SESSION_COLUMNS} FROM {{p}}sessions s \
                 WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
                 ORDER BY last_used_at DESC, s.id"
            ),
        );
        sqlx::query(&sql)
            .bind(user.to_string())
            .bind(now)
            .fetch_all(&pool)
            .await?
            .iter()
            .map(session_from_row)
            .collect()
    }

    async fn revoke_session(
        &self,
        tenant: &TenantSlug,
        id: &SessionId,
        reason: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let pool = self.tenant_db(tenant).await?;
        let sql = self.tenant_sql(
            tenant,
            "UPDATE {p}sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
        );
        let done = sqlx::query(&sql)
            .bind(now)
            .bind(reason)
            .bind(id.to_string())
            .execute(&pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotate_refresh(
        &self,
        tenant: &TenantSlug,
        presented: &TokenDigest,
        successor: &TokenDigest,
        now: i64,
        grace_secs: i64,
        audit: &AuditEvent,
    ) -> StoreResult<RefreshOutcome> {
        let pool = self.tenant_db(tenant).await?;
        let lookup = self.tenant_sql(
            tenant,
            &format!(
                "SELECT {SESSION_COLUMNS}, {JOINED_USER_COLUMNS}, r.rotated_at, r.successor \
                 FROM {{p}}refresh_tokens r JOIN {{p}}sessions s ON s.id = r.session_id \
                 JOIN {{p}}users u ON u.id = s.user_id WHERE r.digest = $1"
            ),
        );
        let presented_bytes = presented.as_bytes().to_vec();
        let Some(row) = sqlx::query(&lookup)
            .bind(presented_bytes.clone())
            .fetch_optional(&pool)
            .await?
        else {
            return Ok(RefreshOutcome::Invalid);
        };
        let mut session = session_from_row(&row)?;
        let user = user_from_prefixed(&row, "u_")?;
        if !session.is_active(now) || user.disabled {
            return Ok(RefreshOutcome::Invalid);
        }
        let mut rotated_at: Option<i64> = row.try_get("rotated_at")?;
        let mut stored_successor: Option<Vec<u8>> = row.try_get("successor")?;

        if rotated_at.is_none() {
            // The conditional UPDATE is the arbiter: of concurrent presentations exactly one
            // changes the row; the others see it rotated and fall through to the grace check.
            let mut tx = self.dialect.begin_write(&pool).await?;
            let won = sqlx::query(&self.tenant_sql(
                tenant,
                "UPDATE {p}refresh_tokens SET rotated_at = $1, successor = $2 WHERE digest = $3 AND rotated_at IS NULL",
            ))
            .bind(now)
            .bind(successor.as_bytes().to_vec())
            .bind(presented_bytes.clone())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if won {
                sqlx::query(&self.tenant_sql(
                    tenant,
                    "INSERT INTO {p}refresh_tokens (digest, session_id, created_at) VALUES ($1, $2, $3)",
                ))
                .bind(successor.as_bytes().to_vec())
                .bind(session.id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let audit = AuditEvent {
                    user_id: Some(user.id.to_string()),
                    session_id: Some(session.id.to_string()),
                    ..audit.clone()
                };
                insert_audit(&mut tx, &self.tenant_sql(tenant, INSERT_AUDIT), &audit).await?;
                tx.commit().await?;
                session.last_used_at = now;
                return Ok(RefreshOutcome::Rotated(session, user));
            }
            tx.rollback().await?;
            let row = sqlx::query(&self.tenant_sql(
                tenant,
                "SELECT rotated_at, successor FROM {p}refresh_tokens WHERE digest = $1",
            ))
            .bind(presented_bytes)
            .fetch_one(&pool)
            .await?;
            rotated_at = row.try_get("rotated_at")?;
            stored_successor = row.try_get("successor")?;
        }

        let within_grace = rotated_at.is_some_and(|at| now - at <= grace_secs);
        let same_successor = stored_successor
            .as_deref()
            .is_some_and(|s| ct_eq(s, successor.as_bytes()));
        if within_grace && same_successor {
            return Ok(RefreshOutcome::GraceReplay(session, user));
        }
        self.revoke_session(tenant, &session.id, "refresh_reuse", now)
            .await?;
        session.revoked_at = Some(now);
        Ok(RefreshOutcome::ReuseDetected(session))
    }

    async fn audit(&self, tenant: &TenantSlug, event: &AuditEvent) -> StoreResult<()> {
        let pool = self.tenant_db(tenant).await?;
        let mut tx = self.dialect.begin_write(&pool).await?;
        insert_audit(&mut tx, &self.tenant_sql(tenant, INSERT_AUDIT), event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_events(&self, tenant: &TenantSlug, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        let pool = self.tenant_db(tenant).await?;
        let sql = self.tenant_sql(
            tenant,
            "SELECT at, event, user_id, session_id, ip, user_agent, detail FROM {p}audit_log \
             ORDER BY id DESC LIMIT $1",
        );
        sqlx::query(&sql)
            .bind(limit)
            .fetch_all(&pool)
            .await?
            .iter()
            .map(|row| {
                Ok(AuditEvent {
                    at: row.try_get("at")?,
                    event: row.try_get("event")?,
                    user_id: row.try_get("user_id")?,
                    session_id: row.try_get("session_id")?,
                    ip: row.try_get("ip")?,
                    user_agent: row.try_get("user_agent")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }
}
