//! The tenant unit of work: one connection (in a transaction when it writes) whose SQL is scoped
//! to one tenant, and the repositories that work through it.

use sqlx::pool::PoolConnection;
use sqlx::AnyConnection;
use sqlx::{Any, Transaction};
use tessera_core::model::TenantSlug;

use super::audit::AuditLog;
use super::sessions::Sessions;
use super::users::Users;
use super::{Dialect, StoreResult};

enum Conn {
    Tx(Transaction<'static, Any>),
    Read(PoolConnection<Any>),
}

/// One tenant's unit of work. Changes made through its repositories become visible together at
/// [`TenantTx::commit`]; dropping it uncommitted rolls them back.
pub struct TenantTx {
    conn: Conn,
    dialect: Dialect,
    prefix: String,
    tenant: TenantSlug,
}

impl TenantTx {
    pub(super) fn transaction(
        tx: Transaction<'static, Any>,
        dialect: Dialect,
        tenant: &TenantSlug,
    ) -> Self {
        Self::new(Conn::Tx(tx), dialect, tenant)
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

    /// Makes every change of this unit visible at once.
    pub async fn commit(self) -> StoreResult<()> {
        if let Conn::Tx(tx) = self.conn {
            tx.commit().await?;
        }
        Ok(())
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
            Conn::Tx(tx) => tx,
            Conn::Read(conn) => conn,
        }
    }
}
