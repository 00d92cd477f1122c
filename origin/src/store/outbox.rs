//! The transactional outbox: email written in the unit of work that causes it (tenant side),
//! and the global index of tenants with mail due, which the mail worker polls instead of every
//! tenant.

use sqlx::Row as _;
use tessera_core::model::TenantSlug;

use super::{corrupt, Dialect, Store, StoreResult, TenantTx};

/// An email to queue. `Debug` prints its kind only: the parameters carry codes and links, and
/// the recipient is personal data.
#[derive(Clone)]
pub struct NewMail {
    /// Template (or request) name.
    pub kind: &'static str,
    /// Recipient address.
    pub recipient: String,
    /// Template parameters (JSON object).
    pub params: serde_json::Value,
}

impl std::fmt::Debug for NewMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMail")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A row claimed by a worker, leased to it.
#[derive(Clone)]
pub struct ClaimedMail {
    /// Row id.
    pub id: String,
    /// Template (or request) name.
    pub kind: String,
    /// Recipient address.
    pub recipient: String,
    /// Template parameters (JSON text).
    pub params: String,
    /// When it was queued, Unix milliseconds.
    pub created_ms: i64,
    /// Tries so far, this one included.
    pub attempts: i64,
}

impl std::fmt::Debug for ClaimedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedMail")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// The outbox of the unit's tenant.
pub struct Outbox<'a>(pub(super) &'a mut TenantTx);

impl Outbox<'_> {
    /// Queues `mail`, due at once; the tenant is entered in the index of tenants with mail
    /// due when the unit commits.
    pub async fn enqueue(&mut self, mail: &NewMail, now_ms: i64) -> StoreResult<String> {
        let id = uuid::Uuid::new_v4().to_string();
        let sql = self.0.sql(
            "INSERT INTO {p}outbox (id, kind, recipient, params, created_ms, due_ms) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        );
        sqlx::query(&sql)
            .bind(&id)
            .bind(mail.kind)
            .bind(&mail.recipient)
            .bind(mail.params.to_string())
            .bind(now_ms)
            .execute(self.0.conn())
            .await?;
        self.0.mail_due(now_ms);
        Ok(id)
    }

    /// Leases up to `limit` due rows to the caller until `lease_until_ms`, counting a try on
    /// each. Rows leased by another worker, or locked by one claiming right now, are skipped.
    pub async fn claim(
        &mut self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedMail>> {
        let sql = self.0.sql(&format!(
            "UPDATE {{p}}outbox SET lease_until_ms = $1, attempts = attempts + 1 WHERE id IN (\
             SELECT id FROM {{p}}outbox WHERE sent_ms IS NULL AND failed_ms IS NULL \
             AND due_ms <= $2 AND (lease_until_ms IS NULL OR lease_until_ms <= $2) \
             ORDER BY due_ms LIMIT $3{}) \
             RETURNING id, kind, recipient, params, created_ms, attempts",
            self.0.dialect().skip_locked()
        ));
        let rows = sqlx::query(&sql)
            .bind(lease_until_ms)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(self.0.conn())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedMail {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    recipient: row.try_get("recipient")?,
                    params: row.try_get("params")?,
                    created_ms: row.try_get("created_ms")?,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Turns a claimed request into the email it resolved to.
    pub async fn resolve(&mut self, id: &str, mail: &NewMail) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}outbox SET kind = $1, recipient = $2, params = $3 WHERE id = $4");
        sqlx::query(&sql)
            .bind(mail.kind)
            .bind(&mail.recipient)
            .bind(mail.params.to_string())
            .bind(id)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Marks a row delivered (or, for a request that resolved to no email, done), erasing its
    /// parameters, which may hold a link or code.
    pub async fn mark_sent(&mut self, id: &str, now_ms: i64) -> StoreResult<()> {
        let sql = self.0.sql(
            "UPDATE {p}outbox SET sent_ms = $1, params = '{}', lease_until_ms = NULL WHERE id = $2",
        );
        sqlx::query(&sql)
            .bind(now_ms)
            .bind(id)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Gives a failed row back, due again at `due_ms`.
    pub async fn retry(&mut self, id: &str, due_ms: i64, error: &str) -> StoreResult<()> {
        let sql = self.0.sql(
            "UPDATE {p}outbox SET due_ms = $1, lease_until_ms = NULL, last_error = $2 WHERE id = $3",
        );
        sqlx::query(&sql)
            .bind(due_ms)
            .bind(error)
            .bind(id)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Gives up on a row (a permanent refusal, or too old), erasing its parameters.
    pub async fn fail(&mut self, id: &str, now_ms: i64, error: &str) -> StoreResult<()> {
        let sql = self.0.sql(
            "UPDATE {p}outbox SET failed_ms = $1, params = '{}', lease_until_ms = NULL, \
             last_error = $2 WHERE id = $3",
        );
        sqlx::query(&sql)
            .bind(now_ms)
            .bind(error)
            .bind(id)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// When the next pending row is due (or its lease ends), if any is pending.
    pub async fn next_due(&mut self) -> StoreResult<Option<i64>> {
        let sql = self.0.sql(
            "SELECT MIN(CASE WHEN lease_until_ms IS NOT NULL AND lease_until_ms > due_ms \
             THEN lease_until_ms ELSE due_ms END) AS next FROM {p}outbox \
             WHERE sent_ms IS NULL AND failed_ms IS NULL",
        );
        let row = sqlx::query(&sql).fetch_one(self.0.conn()).await?;
        Ok(row.try_get("next")?)
    }

    /// Deletes rows delivered or given up before `before_ms`.
    pub async fn purge(&mut self, before_ms: i64) -> StoreResult<u64> {
        let sql = self
            .0
            .sql("DELETE FROM {p}outbox WHERE sent_ms < $1 OR failed_ms < $1");
        let done = sqlx::query(&sql)
            .bind(before_ms)
            .execute(self.0.conn())
            .await?;
        Ok(done.rows_affected())
    }

    /// Rows by state, for tests and operators: (pending, pending after a failed try, sent,
    /// failed).
    pub async fn counts(&mut self) -> StoreResult<(i64, i64, i64, i64)> {
        let sql = self.0.sql(
            "SELECT \
             COALESCE(SUM(CASE WHEN sent_ms IS NULL AND failed_ms IS NULL THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN sent_ms IS NULL AND failed_ms IS NULL AND last_error IS NOT NULL \
             AND lease_until_ms IS NULL THEN 1 ELSE 0 END), 0) AS retrying, \
             COALESCE(SUM(CASE WHEN sent_ms IS NOT NULL THEN 1 ELSE 0 END), 0) AS sent, \
             COALESCE(SUM(CASE WHEN failed_ms IS NOT NULL THEN 1 ELSE 0 END), 0) AS failed \
             FROM {p}outbox",
        );
        let row = sqlx::query(&sql).fetch_one(self.0.conn()).await?;
        Ok((
            row.try_get("pending")?,
            row.try_get("retrying")?,
            row.try_get("sent")?,
            row.try_get("failed")?,
        ))
    }
}

/// The statement that enters a tenant in the index of tenants with mail due.
pub(super) fn mark_due_sql(dialect: Dialect) -> String {
    let p = dialect.global_prefix();
    format!(
        "INSERT INTO {p}mail_due (slug, due_ms, version) VALUES ($1, $2, 1) \
         ON CONFLICT (slug) DO UPDATE SET due_ms = {least}({p}mail_due.due_ms, excluded.due_ms), \
         version = {p}mail_due.version + 1",
        least = dialect.least()
    )
}

impl Store {
    /// Tenants with mail due by `now_ms`, soonest first, each with the index version read.
    pub async fn mail_due(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<(TenantSlug, i64)>> {
        let sql = self.global_sql(
            "SELECT slug, version FROM {p}mail_due WHERE due_ms <= $1 ORDER BY due_ms LIMIT $2",
        );
        let rows = sqlx::query(&sql)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.global)
            .await?;
        rows.iter()
            .map(|row| {
                let slug: String = row.try_get("slug")?;
                Ok((
                    TenantSlug::parse(&slug).map_err(|_| corrupt("mail_due slug"))?,
                    row.try_get("version")?,
                ))
            })
            .collect()
    }

    /// After a worker's pass over a tenant: the entry moves to `next_ms`, or goes when nothing
    /// is pending, unless mail was queued since the worker read `version` (then it stays, due).
    pub async fn settle_mail_due(
        &self,
        tenant: &TenantSlug,
        version: i64,
        next_ms: Option<i64>,
    ) -> StoreResult<()> {
        let sql = match next_ms {
            Some(_) => self
                .global_sql("UPDATE {p}mail_due SET due_ms = $3 WHERE slug = $1 AND version = $2"),
            None => self.global_sql("DELETE FROM {p}mail_due WHERE slug = $1 AND version = $2"),
        };
        let mut query = sqlx::query(&sql).bind(tenant.as_str()).bind(version);
        if let Some(next) = next_ms {
            query = query.bind(next);
        }
        query.execute(&self.global).await?;
        Ok(())
    }

    /// Tenants with an entry in the index, for tests and operators.
    pub async fn mail_due_count(&self) -> StoreResult<i64> {
        let sql = self.global_sql("SELECT COUNT(*) AS n FROM {p}mail_due");
        let row = sqlx::query(&sql).fetch_one(&self.global).await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_prints_no_parameter_and_no_recipient() {
        let mail = super::NewMail {
            kind: "sign_in_code",
            recipient: "ann@example.com".into(),
            params: serde_json::json!({"code": "493817"}),
        };
        let printed = format!("{mail:?}");
        assert!(printed.contains("sign_in_code"), "{printed}");
        assert!(
            !printed.contains("493817") && !printed.contains("ann@"),
            "{printed}"
        );
    }
}
