//! The tenant's passkeys (WebAuthn credentials) and the state of ceremonies under way.

use sqlx::Row as _;
use tessera_core::model::UserId;

use super::webhooks::emit;
use super::{corrupt, is_unique_violation, StoreError, StoreResult, TenantTx};

/// A passkey as stored: public material only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// Id (UUID), shown in listings and used to rename or remove it.
    pub id: String,
    /// Its owner.
    pub user_id: UserId,
    /// The authenticator's credential id.
    pub credential_id: Vec<u8>,
    /// The owner's name for it.
    pub name: String,
    /// webauthn-rs's `Passkey` as JSON (public key, counter, flags).
    pub passkey: String,
    /// Whether the authenticator may sync it to other devices.
    pub backup_eligible: bool,
    /// Whether it is synced (backed up) now.
    pub backed_up: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of its last sign-in.
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, credential_id, name, passkey, backup_eligible, backed_up, \
                       created_at, last_used_at";

fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<StoredPasskey> {
    let user: String = row.try_get("user_id")?;
    Ok(StoredPasskey {
        id: row.try_get("id")?,
        user_id: UserId::parse(&user).map_err(|_| corrupt("passkey user id"))?,
        credential_id: row.try_get("credential_id")?,
        name: row.try_get("name")?,
        passkey: row.try_get("passkey")?,
        backup_eligible: row.try_get::<i64, _>("backup_eligible")? != 0,
        backed_up: row.try_get::<i64, _>("backed_up")? != 0,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

/// A ceremony's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    /// `register`, `login`, `discoverable` or `mfa`.
    pub purpose: String,
    /// The account it is for, when known when it began.
    pub user_id: Option<UserId>,
    /// webauthn-rs's state as JSON.
    pub state: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The passkeys and ceremonies of the unit's tenant.
pub struct Passkeys<'a>(pub(super) &'a mut TenantTx);

impl Passkeys<'_> {
    /// Stores a new passkey; a credential id the tenant already has is a `Conflict`.
    pub async fn add(&mut self, passkey: &StoredPasskey) -> StoreResult<()> {
        let sql = self.0.sql(&format!(
            "INSERT INTO {{p}}passkeys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ));
        let inserted = sqlx::query(&sql)
            .bind(&passkey.id)
            .bind(passkey.user_id.to_string())
            .bind(passkey.credential_id.clone())
            .bind(&passkey.name)
            .bind(&passkey.passkey)
            .bind(i64::from(passkey.backup_eligible))
            .bind(i64::from(passkey.backed_up))
            .bind(passkey.created_at)
            .bind(passkey.last_used_at)
            .execute(self.0.conn())
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict),
            other => other?,
        };
        let data =
            serde_json::json!({ "factor": "passkey", "enabled": true, "passkey_id": passkey.id });
        emit(
            self.0,
            "mfa.changed",
            &passkey.user_id,
            data,
            passkey.created_at,
        )
        .await?;
        Ok(())
    }

    /// The user's passkeys, oldest first.
    pub async fn of_user(&mut self, user: &UserId) -> StoreResult<Vec<StoredPasskey>> {
        let sql = self.0.sql(&format!(
            "SELECT {COLUMNS} FROM {{p}}passkeys WHERE user_id = $1 ORDER BY created_at, id"
        ));
        let rows = sqlx::query(&sql)
            .bind(user.to_string())
            .fetch_all(self.0.conn())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Whether the user has a passkey (one count, no rows read: asked at every password
    /// sign-in).
    pub async fn any(&mut self, user: &UserId) -> StoreResult<bool> {
        let sql = self
            .0
            .sql("SELECT COUNT(*) AS n FROM {p}passkeys WHERE user_id = $1");
        let row = sqlx::query(&sql)
            .bind(user.to_string())
            .fetch_one(self.0.conn())
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// The passkey with this credential id, locked until the unit ends (its counter is about
    /// to be compared and advanced).
    pub async fn by_credential(
        &mut self,
        credential_id: &[u8],
    ) -> StoreResult<Option<StoredPasskey>> {
        let sql = self.0.sql(&format!(
            "SELECT {COLUMNS} FROM {{p}}passkeys WHERE credential_id = $1{}",
            self.0.dialect().lock_rows()
        ));
        let row = sqlx::query(&sql)
            .bind(credential_id.to_vec())
            .fetch_optional(self.0.conn())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Records a sign-in with the passkey: its new state (counter, flags) and the time.
    pub async fn used(
        &mut self,
        id: &str,
        passkey: &str,
        backed_up: bool,
        now: i64,
    ) -> StoreResult<()> {
        let sql = self.0.sql(
            "UPDATE {p}passkeys SET passkey = $2, backed_up = $3, last_used_at = $4 WHERE id = $1",
        );
        sqlx::query(&sql)
            .bind(id)
            .bind(passkey)
            .bind(i64::from(backed_up))
            .bind(now)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Renames one of the user's passkeys: `false` when the user has none with this id.
    pub async fn rename(&mut self, user: &UserId, id: &str, name: &str) -> StoreResult<bool> {
        let sql = self
            .0
            .sql("UPDATE {p}passkeys SET name = $3 WHERE user_id = $1 AND id = $2");
        let done = sqlx::query(&sql)
            .bind(user.to_string())
            .bind(id)
            .bind(name)
            .execute(self.0.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes one of the user's passkeys: `false` when the user has none with this id.
    pub async fn remove(&mut self, user: &UserId, id: &str, now: i64) -> StoreResult<bool> {
        let sql = self
            .0
            .sql("DELETE FROM {p}passkeys WHERE user_id = $1 AND id = $2");
        let done = sqlx::query(&sql)
            .bind(user.to_string())
            .bind(id)
            .execute(self.0.conn())
            .await?;
        let removed = done.rows_affected() == 1;
        if removed {
            let data =
                serde_json::json!({ "factor": "passkey", "enabled": false, "passkey_id": id });
            emit(self.0, "mfa.changed", user, data, now).await?;
        }
        Ok(removed)
    }

    /// Removes every passkey of the user (an operator's reset of the factors): how many.
    pub async fn remove_all(&mut self, user: &UserId, now: i64) -> StoreResult<u64> {
        let sql = self.0.sql("DELETE FROM {p}passkeys WHERE user_id = $1");
        let done = sqlx::query(&sql)
            .bind(user.to_string())
            .execute(self.0.conn())
            .await?;
        if done.rows_affected() > 0 {
            let data = serde_json::json!({ "factor": "passkey", "enabled": false });
            emit(self.0, "mfa.changed", user, data, now).await?;
        }
        Ok(done.rows_affected())
    }

    /// Stores a ceremony's state under `digest`, sweeping the tenant's expired ones.
    pub async fn begin(&mut self, digest: &[u8], ceremony: &Ceremony, now: i64) -> StoreResult<()> {
        let sql = self
            .0
            .sql("DELETE FROM {p}webauthn_ceremonies WHERE expires_at <= $1");
        sqlx::query(&sql).bind(now).execute(self.0.conn()).await?;
        let sql = self.0.sql(
            "INSERT INTO {p}webauthn_ceremonies (digest, purpose, user_id, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        );
        sqlx::query(&sql)
            .bind(digest.to_vec())
            .bind(&ceremony.purpose)
            .bind(ceremony.user_id.map(|u| u.to_string()))
            .bind(&ceremony.state)
            .bind(ceremony.expires_at)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Takes the ceremony stored under `digest`: it is deleted in the same unit, so that two
    /// finishes of one ceremony never both succeed (the second finds nothing, on another node
    /// too). An expired one is deleted and not returned.
    pub async fn take(&mut self, digest: &[u8], now: i64) -> StoreResult<Option<Ceremony>> {
        let sql = self.0.sql(
            "DELETE FROM {p}webauthn_ceremonies WHERE digest = $1 \
             RETURNING purpose, user_id, state, expires_at",
        );
        let row = sqlx::query(&sql)
            .bind(digest.to_vec())
            .fetch_optional(self.0.conn())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let user: Option<String> = row.try_get("user_id")?;
        let ceremony = Ceremony {
            purpose: row.try_get("purpose")?,
            user_id: user
                .map(|u| UserId::parse(&u).map_err(|_| corrupt("ceremony user id")))
                .transpose()?,
            state: row.try_get("state")?,
            expires_at: row.try_get("expires_at")?,
        };
        Ok((ceremony.expires_at > now).then_some(ceremony))
    }
}
