//! Rate-limit state shared by every node (global), for `TESSERA_RATE_LIMIT_STORE=database`.

use sqlx::Row as _;
use tessera_core::ratelimit::{self, Decision, GcraState, Quota};

use super::{Store, StoreResult};

impl Store {
    /// Runs GCRA for `key` atomically against state shared by every node.
    pub async fn rate_limit(&self, key: &str, now_ms: u64, quota: Quota) -> StoreResult<Decision> {
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
            self.dialect.lock_rows()
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

    /// Deletes rate-limit state that is idle at `now_ms` (back at full capacity, so it decides
    /// nothing). Returns how many keys were removed.
    pub async fn sweep_rate_limits(&self, now_ms: u64) -> StoreResult<u64> {
        let sql = self.global_sql("DELETE FROM {p}rate_limits WHERE tat_ms <= $1");
        let done = sqlx::query(&sql)
            .bind(i64::try_from(now_ms).unwrap_or(i64::MAX))
            .execute(&self.global)
            .await?;
        Ok(done.rows_affected())
    }

    /// How many keys hold rate-limit state (what the sweeper's tests watch).
    pub async fn rate_limit_keys(&self) -> StoreResult<i64> {
        let sql = self.global_sql("SELECT COUNT(*) AS n FROM {p}rate_limits");
        Ok(sqlx::query(&sql)
            .fetch_one(&self.global)
            .await?
            .try_get("n")?)
    }
}
