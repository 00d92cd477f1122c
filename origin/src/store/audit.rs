//! The tenant's audit log: append-only security events.

use sqlx::Row as _;

use super::{StoreResult, TenantTx};

/// A security event for the tenant's audit log. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Unix seconds.
    pub at: i64,
    /// `login_succeeded`, `login_failed`, `refresh`, `refresh_grace_replay`,
    /// `refresh_reuse_detected`, `logout`, `session_ended`.
    pub event: String,
    /// The user concerned, when known.
    pub user_id: Option<String>,
    /// The session concerned, when known.
    pub session_id: Option<String>,
    /// Client IP.
    pub ip: String,
    /// Client user agent.
    pub user_agent: String,
    /// Free text without secrets (e.g. the email tried on a failed sign-in).
    pub detail: String,
}

/// The audit log of the unit's tenant.
pub struct AuditLog<'a>(pub(super) &'a mut TenantTx);

impl AuditLog<'_> {
    /// Appends an event.
    pub async fn append(&mut self, event: &AuditEvent) -> StoreResult<()> {
        let sql = self.0.sql(
            "INSERT INTO {p}audit_log (at, event, user_id, session_id, ip, user_agent, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        );
        sqlx::query(&sql)
            .bind(event.at)
            .bind(&event.event)
            .bind(event.user_id.clone())
            .bind(event.session_id.clone())
            .bind(&event.ip)
            .bind(&event.user_agent)
            .bind(&event.detail)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// The latest events, newest first.
    pub async fn latest(&mut self, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        let sql = self.0.sql(
            "SELECT at, event, user_id, session_id, ip, user_agent, detail FROM {p}audit_log \
             ORDER BY id DESC LIMIT $1",
        );
        sqlx::query(&sql)
            .bind(limit)
            .fetch_all(self.0.conn())
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
