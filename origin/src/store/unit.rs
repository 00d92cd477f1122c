//! The tenant unit of work: one connection (in a transaction when it writes) whose SQL is scoped
//! to one tenant, and the repositories that work through it.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Transaction};
use tessera_core::model::TenantSlug;
use tokio::sync::Notify;

use super::api_tokens::ApiTokens;
use super::audit::AuditLog;
use super::oidc::Oidc;
use super::outbox::{mark_due_sql, Outbox};
use super::passkeys::Passkeys;
use super::revocation_log;
use super::secrets::Secrets;
use super::sessions::Sessions;
use super::teams::Teams;
use super::totp::Factors;
use super::users::Users;
use super::webhooks::Webhooks;
use super::{Dialect, StoreResult};

enum Conn {
    Tx(Transaction<'static, Any>, Global),
    Read(PoolConnection<Any>),
}

/// What a writing unit needs beyond its tenant: the global pool (for the index of tenants with
/// mail due) and the mail worker's wake-up.
pub(super) struct Global {
    pub(super) pool: AnyPool,
    pub(super) mail_queued: Arc<Notify>,
    pub(super) revocations_written: Arc<Notify>,
}

/// One tenant's unit of work. Changes made through its repositories become visible together at
/// [`TenantTx::commit`]; dropping it uncommitted rolls them back.
pub struct TenantTx {
    conn: Conn,
    dialect: Dialect,
    prefix: String,
    tenant: TenantSlug,
    /// The earliest mail queued in this unit, Unix milliseconds.
    mail_due_ms: Option<i64>,
    /// Revocation-log entries of what this unit ended, appended as it commits.
    revoked: revocation_log::Pending,
    /// The time of the newest of them, Unix seconds.
    revoked_at: i64,
}

impl TenantTx {
    pub(super) fn transaction(
        tx: Transaction<'static, Any>,
        global: Global,
        dialect: Dialect,
        tenant: &TenantSlug,
    ) -> Self {
        Self::new(Conn::Tx(tx, global), dialect, tenant)
    }

    pub(super) fn connection(
        conn: PoolConnection<Any>,
        dialect: Dialect,
        tenant: &TenantSlug,
    ) -> Self {
        Self::new(Conn::Read(conn), dialect, tenant)
    }

    fn new(conn: Conn, dialect: Dialect, tenant: &TenantSlug) -> Self {
        Self {
            conn,
            dialect,
            prefix: dialect.tenant_prefix(tenant),
            tenant: tenant.clone(),
            mail_due_ms: None,
            revoked: Vec::new(),
            revoked_at: 0,
        }
    }

    /// The tenant this unit works in.
    #[must_use]
    pub fn tenant(&self) -> &TenantSlug {
        &self.tenant
    }

    /// The tenant's users.
    pub fn users(&mut self) -> Users<'_> {
        Users(self)
    }

    /// The tenant's sessions and their refresh families.
    pub fn sessions(&mut self) -> Sessions<'_> {
        Sessions(self)
    }

    /// The tenant's audit log.
    pub fn audit(&mut self) -> AuditLog<'_> {
        AuditLog(self)
    }

    /// The tenant's emailed secrets and MFA challenges.
    pub fn secrets(&mut self) -> Secrets<'_> {
        Secrets(self)
    }

    /// The tenant's teams and projects.
    pub fn teams(&mut self) -> Teams<'_> {
        Teams(self)
    }

    /// The tenant's TOTP factors and recovery codes.
    pub fn totp(&mut self) -> Factors<'_> {
        Factors(self)
    }

    /// The tenant's service API tokens.
    pub fn api_tokens(&mut self) -> ApiTokens<'_> {
        ApiTokens(self)
    }

    /// The tenant's passkeys and WebAuthn ceremonies.
    pub fn passkeys(&mut self) -> Passkeys<'_> {
        Passkeys(self)
    }

    /// The tenant's OpenID provider: clients, codes, browser sessions, grants.
    pub fn oidc(&mut self) -> Oidc<'_> {
        Oidc(self)
    }

    /// The tenant's outbox.
    pub fn outbox(&mut self) -> Outbox<'_> {
        Outbox(self)
    }

    /// The tenant's webhook endpoints and deliveries.
    pub fn webhooks(&mut self) -> Webhooks<'_> {
        Webhooks(self)
    }

    /// Makes every change of this unit visible at once. A unit that queued mail first enters
    /// its tenant in the index of tenants with mail due, and a unit that ended sessions or
    /// revoked service tokens appends them to the global revocation log: on PostgreSQL in the
    /// same transaction; on SQLite (another file) just before the tenant's commit, while this
    /// unit still holds the tenant's write lock, so that a reader either sees the new version or
    /// waits for the lock and then sees the change. A rollback after that leaves a mail entry
    /// with nothing due, which the worker clears, or a log entry for a session that did not end
    /// (its tokens are refused: the safe side, and only after a failed commit).
    pub async fn commit(self) -> StoreResult<()> {
        let Conn::Tx(mut tx, global) = self.conn else {
            return Ok(());
        };
        if let Some(due_ms) = self.mail_due_ms {
            let sql = mark_due_sql(self.dialect);
            let query = sqlx::query(&sql).bind(self.tenant.as_str()).bind(due_ms);
            match self.dialect {
                Dialect::Postgres => query.execute(&mut *tx).await?,
                Dialect::Sqlite => query.execute(&global.pool).await?,
            };
        }
        if !self.revoked.is_empty() {
            let tenant = self.tenant.as_str();
            match self.dialect {
                Dialect::Postgres => {
                    revocation_log::append(
                        &mut tx,
                        self.dialect,
                        tenant,
                        &self.revoked,
                        self.revoked_at,
                    )
                    .await?;
                }
                Dialect::Sqlite => {
                    let mut log = self.dialect.begin_write(&global.pool).await?;
                    revocation_log::append(
                        &mut log,
                        self.dialect,
                        tenant,
                        &self.revoked,
                        self.revoked_at,
                    )
                    .await?;
                    log.commit().await?;
                }
            }
        }
        tx.commit().await?;
        if self.mail_due_ms.is_some() {
            global.mail_queued.notify_one();
        }
        if !self.revoked.is_empty() {
            global.revocations_written.notify_waiters();
        }
        Ok(())
    }

    /// Notes a revocation-log entry for something this unit ended at `now`.
    pub(super) fn revoked(&mut self, subject: String, until: u64, now: i64) {
        self.revoked
            .push((subject, i64::try_from(until).unwrap_or(i64::MAX)));
        self.revoked_at = self.revoked_at.max(now);
    }

    /// Notes mail queued in this unit, due at `due_ms`.
    pub(super) fn mail_due(&mut self, due_ms: i64) {
        self.mail_due_ms = Some(self.mail_due_ms.map_or(due_ms, |d| d.min(due_ms)));
    }

    /// `sql` with its `{p}` placeholders scoped to this tenant.
    pub(super) fn sql(&self, sql: &str) -> String {
        sql.replace("{p}", &self.prefix)
    }

    pub(super) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The connection to run a statement on.
    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        match &mut self.conn {
            Conn::Tx(tx, _) => tx,
            Conn::Read(conn) => conn,
        }
    }
}
