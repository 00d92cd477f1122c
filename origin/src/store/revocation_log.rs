//! The global revocation log: one row per session end, service-token revocation or signing-key
//! removal, written in the transaction of the change (a tenant's unit of work appends its rows
//! as it commits, see `unit.rs`). Every origin node reads it into its in-memory index, and the
//! edge feed delivers it to the Worker until the Worker acknowledges.

use sqlx::Row as _;

use super::{Dialect, Store, StoreResult};

/// The advisory lock (PostgreSQL) held from a log append to its commit, so that positions
/// become visible in the order they were handed out: a reader that has seen position N never
/// later finds a smaller one committed. Any constant unique to this use.
const APPEND_LOCK: i64 = 0x7465_7373_6572_6101;

/// One row of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its place in the log: strictly increasing in commit order.
    pub position: i64,
    /// The tenant (empty for a signing key).
    pub tenant: String,
    /// A session id, `sk-<token id>` for a service token, or `key:<kid>`.
    pub subject: String,
    /// Unix seconds after which no token it covers can be valid: the entry may be forgotten.
    pub until: i64,
}

/// What a unit of work appends to the log as it commits: (subject, until).
pub(super) type Pending = Vec<(String, i64)>;

/// Appends `entries` of `tenant` on `conn`, inside the caller's transaction. On PostgreSQL the
/// append lock is taken first and held until that transaction ends.
pub(super) async fn append(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    tenant: &str,
    entries: &[(String, i64)],
    now: i64,
) -> StoreResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    if dialect == Dialect::Postgres {
        sqlx::query(&format!("SELECT pg_advisory_xact_lock({APPEND_LOCK})"))
            .execute(&mut *conn)
            .await?;
    }
    let sql = format!(
        "INSERT INTO {}revocation_log (tenant, subject, until, created_at) VALUES ($1, $2, $3, $4)",
        dialect.global_prefix()
    );
    for (subject, until) in entries {
        sqlx::query(&sql)
            .bind(tenant)
            .bind(subject)
            .bind(*until)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Up to `limit` entries after `position` that still cover a token at `now`, in order.
    pub async fn revocations_after(
        &self,
        position: i64,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<LogEntry>> {
        let sql = self.global_sql(
            "SELECT position, tenant, subject, until FROM {p}revocation_log \
             WHERE position > $1 AND until > $2 ORDER BY position LIMIT $3",
        );
        sqlx::query(&sql)
            .bind(position)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.global)
            .await?
            .iter()
            .map(|row| {
                Ok(LogEntry {
                    position: row.try_get("position")?,
                    tenant: row.try_get("tenant")?,
                    subject: row.try_get("subject")?,
                    until: row.try_get("until")?,
                })
            })
            .collect()
    }

    /// The newest position written (0 for an empty log).
    pub async fn revocation_log_end(&self) -> StoreResult<i64> {
        let sql = self.global_sql("SELECT COALESCE(MAX(position), 0) AS p FROM {p}revocation_log");
        Ok(sqlx::query(&sql)
            .fetch_one(&self.global)
            .await?
            .try_get("p")?)
    }

    /// Deletes the entries whose `until` has passed; answers how many.
    pub async fn delete_lapsed_revocations(&self, now: i64) -> StoreResult<u64> {
        let sql = self.global_sql("DELETE FROM {p}revocation_log WHERE until <= $1");
        Ok(sqlx::query(&sql)
            .bind(now)
            .execute(&self.global)
            .await?
            .rows_affected())
    }

    /// How far the edge has acknowledged the log.
    pub async fn edge_delivered_through(&self) -> StoreResult<i64> {
        let sql = self.global_sql("SELECT delivered_through FROM {p}edge_feed WHERE id = 1");
        Ok(sqlx::query(&sql)
            .fetch_one(&self.global)
            .await?
            .try_get("delivered_through")?)
    }

    /// Records the edge's acknowledgement of everything through `position` (never moving back,
    /// whichever node records it).
    pub async fn set_edge_delivered_through(&self, position: i64) -> StoreResult<()> {
        let sql = self.global_sql(&format!(
            "UPDATE {{p}}edge_feed SET delivered_through = {}(delivered_through, $1) WHERE id = 1",
            self.dialect.greatest()
        ));
        sqlx::query(&sql)
            .bind(position)
            .execute(&self.global)
            .await?;
        Ok(())
    }

    /// Puts the sessions ended before the log existed into it, once: every tenant's sessions
    /// ended within the longest token lifetime, each entry in that tenant's own unit of work.
    /// Answers how many were written, or `None` when it was done before. An interrupted pass
    /// runs again from the start at the next start-up (repeated entries are harmless).
    pub async fn backfill_revocation_log(&self, now: i64) -> StoreResult<Option<usize>> {
        let done = self.global_sql("SELECT COUNT(*) AS n FROM {p}revocation_log_backfill");
        let n: i64 = sqlx::query(&done)
            .fetch_one(&self.global)
            .await?
            .try_get("n")?;
        if n > 0 {
            return Ok(None);
        }
        let window = i64::try_from(tessera_core::edge::longest_token_end(0)).unwrap_or(i64::MAX);
        let mut written = 0;
        for tenant in self.tenants().await? {
            let mut tx = self.write(&tenant.slug).await?;
            written += tx
                .sessions()
                .log_ended_since(now.saturating_sub(window))
                .await?;
            tx.commit().await?;
        }
        let mark = self.global_sql(
            "INSERT INTO {p}revocation_log_backfill (id, done_at) VALUES (1, $1) \
             ON CONFLICT (id) DO NOTHING",
        );
        sqlx::query(&mark).bind(now).execute(&self.global).await?;
        Ok(Some(written))
    }

    /// Woken whenever this process commits log entries.
    #[must_use]
    pub fn revocations_written(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.revocations_written.clone()
    }
}
