//! The tenant's TOTP factors and recovery codes.

use sqlx::Row as _;
use tessera_core::model::UserId;

use super::webhooks::emit;
use super::{StoreResult, TenantTx};

/// A user's authenticator, as stored.
#[derive(Clone)]
pub struct StoredFactor {
    /// The secret, sealed with the master key.
    pub secret_sealed: Vec<u8>,
    /// When its first code confirmed it; `None` while pending.
    pub confirmed_at: Option<i64>,
    /// The time step of the last accepted code.
    pub last_step: Option<i64>,
}

impl std::fmt::Debug for StoredFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredFactor")
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// The TOTP factors and recovery codes of the unit's tenant.
pub struct Factors<'a>(pub(super) &'a mut TenantTx);

impl Factors<'_> {
    /// The user's factor, locked until the unit ends.
    pub async fn get(&mut self, user: &UserId) -> StoreResult<Option<StoredFactor>> {
        let sql = self.0.sql(&format!(
            "SELECT secret_sealed, confirmed_at, last_step FROM {{p}}totp_factors WHERE user_id = $1{}",
            self.0.dialect().lock_rows()
        ));
        let row = sqlx::query(&sql)
            .bind(user.to_string())
            .fetch_optional(self.0.conn())
            .await?;
        row.map(|row| {
            Ok(StoredFactor {
                secret_sealed: row.try_get("secret_sealed")?,
                confirmed_at: row.try_get("confirmed_at")?,
                last_step: row.try_get("last_step")?,
            })
        })
        .transpose()
    }

    /// Whether the user has a confirmed factor.
    pub async fn active(&mut self, user: &UserId) -> StoreResult<bool> {
        let sql = self.0.sql(
            "SELECT COUNT(*) AS n FROM {p}totp_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL",
        );
        let row = sqlx::query(&sql)
            .bind(user.to_string())
            .fetch_one(self.0.conn())
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Stores a pending factor, replacing a pending one (never a confirmed one: the caller
    /// checks).
    pub async fn put_pending(&mut self, user: &UserId, sealed: &[u8], now: i64) -> StoreResult<()> {
        let sql = self
            .0
            .sql("DELETE FROM {p}totp_factors WHERE user_id = $1 AND confirmed_at IS NULL");
        sqlx::query(&sql)
            .bind(user.to_string())
            .execute(self.0.conn())
            .await?;
        let sql = self.0.sql(
            "INSERT INTO {p}totp_factors (user_id, secret_sealed, created_at) VALUES ($1, $2, $3)",
        );
        sqlx::query(&sql)
            .bind(user.to_string())
            .bind(sealed.to_vec())
            .bind(now)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Records `step` as the last accepted one if it is later than the stored one: `false`
    /// when another request got there first (the code is then a replay). On PostgreSQL a
    /// concurrent writer waits for this unit and then re-checks the condition.
    pub async fn advance_step(&mut self, user: &UserId, step: i64) -> StoreResult<bool> {
        let sql = self.0.sql(
            "UPDATE {p}totp_factors SET last_step = $2 \
             WHERE user_id = $1 AND (last_step IS NULL OR last_step < $2)",
        );
        let done = sqlx::query(&sql)
            .bind(user.to_string())
            .bind(step)
            .execute(self.0.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every factor's sealed secret with its user (pending ones too), for re-sealing under a
    /// new master key.
    pub async fn sealed_secrets(&mut self) -> StoreResult<Vec<(UserId, Vec<u8>)>> {
        let sql = self
            .0
            .sql("SELECT user_id, secret_sealed FROM {p}totp_factors ORDER BY user_id");
        let rows = sqlx::query(&sql).fetch_all(self.0.conn()).await?;
        rows.iter()
            .map(|row| {
                let user: String = row.try_get("user_id")?;
                let user = UserId::parse(&user).map_err(|_| super::corrupt("totp user id"))?;
                Ok((user, row.try_get("secret_sealed")?))
            })
            .collect()
    }

    /// Stores a factor confirmed elsewhere (an imported account's authenticator).
    pub async fn put_confirmed(
        &mut self,
        user: &UserId,
        sealed: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        let sql = self.0.sql(
            "INSERT INTO {p}totp_factors (user_id, secret_sealed, created_at, confirmed_at) \
             VALUES ($1, $2, $3, $3)",
        );
        sqlx::query(&sql)
            .bind(user.to_string())
            .bind(sealed.to_vec())
            .bind(now)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Replaces a factor's sealed secret (the same secret, re-sealed under a new master key).
    pub async fn reseal(&mut self, user: &UserId, sealed: &[u8]) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}totp_factors SET secret_sealed = $2 WHERE user_id = $1");
        sqlx::query(&sql)
            .bind(user.to_string())
            .bind(sealed.to_vec())
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Marks the user's pending factor confirmed.
    pub async fn confirm(&mut self, user: &UserId, now: i64) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}totp_factors SET confirmed_at = $2 WHERE user_id = $1");
        sqlx::query(&sql)
            .bind(user.to_string())
            .bind(now)
            .execute(self.0.conn())
            .await?;
        let data = serde_json::json!({ "factor": "totp", "enabled": true });
        emit(self.0, "mfa.changed", user, data, now).await?;
        Ok(())
    }

    /// Removes the user's factor and recovery codes (`mfa.changed` if a confirmed factor
    /// went).
    pub async fn remove(&mut self, user: &UserId, now: i64) -> StoreResult<()> {
        // The deleted factor says whether it was confirmed: no read before the delete.
        let sql = self
            .0
            .sql("DELETE FROM {p}totp_factors WHERE user_id = $1 RETURNING confirmed_at");
        let removed = sqlx::query(&sql)
            .bind(user.to_string())
            .fetch_optional(self.0.conn())
            .await?;
        let sql = self
            .0
            .sql("DELETE FROM {p}recovery_codes WHERE user_id = $1");
        sqlx::query(&sql)
            .bind(user.to_string())
            .execute(self.0.conn())
            .await?;
        let was_active = match removed {
            Some(row) => row.try_get::<Option<i64>, _>("confirmed_at")?.is_some(),
            None => false,
        };
        if was_active {
            let data = serde_json::json!({ "factor": "totp", "enabled": false });
            emit(self.0, "mfa.changed", user, data, now).await?;
        }
        Ok(())
    }

    /// Replaces the user's recovery codes.
    pub async fn replace_recovery_codes(
        &mut self,
        user: &UserId,
        digests: &[[u8; 32]],
    ) -> StoreResult<()> {
        let sql = self
            .0
            .sql("DELETE FROM {p}recovery_codes WHERE user_id = $1");
        sqlx::query(&sql)
            .bind(user.to_string())
            .execute(self.0.conn())
            .await?;
        let sql = self
            .0
            .sql("INSERT INTO {p}recovery_codes (user_id, digest) VALUES ($1, $2)");
        for digest in digests {
            sqlx::query(&sql)
                .bind(user.to_string())
                .bind(digest.to_vec())
                .execute(self.0.conn())
                .await?;
        }
        Ok(())
    }

    /// Spends a recovery code: `true` if it existed unused (it is used now).
    pub async fn use_recovery_code(
        &mut self,
        user: &UserId,
        digest: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let sql = self.0.sql(
            "UPDATE {p}recovery_codes SET used_at = $3 \
             WHERE user_id = $1 AND digest = $2 AND used_at IS NULL",
        );
        let done = sqlx::query(&sql)
            .bind(user.to_string())
            .bind(digest.to_vec())
            .bind(now)
            .execute(self.0.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
