//! The tenant's emailed one-time secrets (link tokens, codes) and MFA challenges. Only keyed
//! digests are stored; the services compute them.

use sqlx::Row as _;
use tessera_core::model::UserId;

use super::{corrupt, StoreResult, TenantTx};

/// What an emailed secret is for: one live secret per user and purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The link that confirms an email address.
    VerifyEmail,
    /// The link that sets a new password.
    ResetPassword,
    /// The code that signs in without a password.
    SignInCode,
    /// The invitation link that chooses a new account's password.
    Invite,
    /// The link, sent to a new address, that confirms it before it replaces the old one.
    ChangeEmail,
}

impl Purpose {
    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::SignInCode => "sign_in_code",
            Self::Invite => "invite",
            Self::ChangeEmail => "change_email",
        }
    }
}

/// A stored secret, as read back.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    /// Its user.
    pub user_id: UserId,
    /// The keyed digest.
    pub digest: Vec<u8>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Wrong tries so far.
    pub attempts: i64,
}

/// An MFA challenge, as read back.
#[derive(Debug, Clone)]
pub struct StoredChallenge {
    /// Its user.
    pub user_id: UserId,
    /// The methods it accepts.
    pub methods: Vec<String>,
    /// The keyed digest of the emailed code, if one was sent.
    pub code_digest: Option<Vec<u8>>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Wrong tries so far.
    pub attempts: i64,
}

fn user_id(row: &sqlx::any::AnyRow) -> StoreResult<UserId> {
    let id: String = row.try_get("user_id")?;
    UserId::parse(&id).map_err(|_| corrupt("user id"))
}

/// The emailed secrets and MFA challenges of the unit's tenant.
pub struct Secrets<'a>(pub(super) &'a mut TenantTx);

impl Secrets<'_> {
    /// Stores the user's secret for `purpose`, replacing (and so voiding) an earlier one.
    pub async fn replace(
        &mut self,
        user: &UserId,
        purpose: Purpose,
        digest: &[u8],
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.remove(user, purpose).await?;
        let sql = self.0.sql(
            "INSERT INTO {p}email_secrets (user_id, purpose, digest, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        );
        sqlx::query(&sql)
            .bind(user.to_string())
            .bind(purpose.as_str())
            .bind(digest.to_vec())
            .bind(now)
            .bind(expires_at)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// The secret with this digest (a link token's), locked until the unit ends.
    pub async fn by_digest(
        &mut self,
        purpose: Purpose,
        digest: &[u8],
    ) -> StoreResult<Option<StoredSecret>> {
        let sql = self.0.sql(&format!(
            "SELECT user_id, digest, expires_at, attempts FROM {{p}}email_secrets \
             WHERE digest = $1 AND purpose = $2{}",
            self.0.dialect().lock_rows()
        ));
        let row = sqlx::query(&sql)
            .bind(digest.to_vec())
            .bind(purpose.as_str())
            .fetch_optional(self.0.conn())
            .await?;
        row.map(|row| secret_from_row(&row)).transpose()
    }

    /// The user's secret for `purpose` (a code's), locked until the unit ends.
    pub async fn of_user(
        &mut self,
        user: &UserId,
        purpose: Purpose,
    ) -> StoreResult<Option<StoredSecret>> {
        let sql = self.0.sql(&format!(
            "SELECT user_id, digest, expires_at, attempts FROM {{p}}email_secrets \
             WHERE user_id = $1 AND purpose = $2{}",
            self.0.dialect().lock_rows()
        ));
        let row = sqlx::query(&sql)
            .bind(user.to_string())
            .bind(purpose.as_str())
            .fetch_optional(self.0.conn())
            .await?;
        row.map(|row| secret_from_row(&row)).transpose()
    }

    /// Counts a wrong try against the user's secret for `purpose`.
    pub async fn count_attempt(&mut self, user: &UserId, purpose: Purpose) -> StoreResult<()> {
        let sql = self.0.sql(
            "UPDATE {p}email_secrets SET attempts = attempts + 1 WHERE user_id = $1 AND purpose = $2",
        );
        sqlx::query(&sql)
            .bind(user.to_string())
            .bind(purpose.as_str())
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Removes the user's secret for `purpose` (used, expired or out of tries).
    pub async fn remove(&mut self, user: &UserId, purpose: Purpose) -> StoreResult<()> {
        let sql = self
            .0
            .sql("DELETE FROM {p}email_secrets WHERE user_id = $1 AND purpose = $2");
        sqlx::query(&sql)
            .bind(user.to_string())
            .bind(purpose.as_str())
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Stores a new MFA challenge.
    pub async fn create_challenge(
        &mut self,
        digest: &[u8],
        user: &UserId,
        methods: &[&str],
        code_digest: Option<&[u8]>,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        let sql = self.0.sql(
            "INSERT INTO {p}mfa_challenges (digest, user_id, methods, code_digest, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        );
        sqlx::query(&sql)
            .bind(digest.to_vec())
            .bind(user.to_string())
            .bind(methods.join(" "))
            .bind(code_digest.map(<[u8]>::to_vec))
            .bind(now)
            .bind(expires_at)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// The challenge with this token digest, locked until the unit ends.
    pub async fn challenge(&mut self, digest: &[u8]) -> StoreResult<Option<StoredChallenge>> {
        let sql = self.0.sql(&format!(
            "SELECT user_id, methods, code_digest, expires_at, attempts FROM {{p}}mfa_challenges \
             WHERE digest = $1{}",
            self.0.dialect().lock_rows()
        ));
        let row = sqlx::query(&sql)
            .bind(digest.to_vec())
            .fetch_optional(self.0.conn())
            .await?;
        row.map(|row| {
            let methods: String = row.try_get("methods")?;
            Ok(StoredChallenge {
                user_id: user_id(&row)?,
                methods: methods.split_whitespace().map(str::to_owned).collect(),
                code_digest: row.try_get("code_digest")?,
                expires_at: row.try_get("expires_at")?,
                attempts: row.try_get("attempts")?,
            })
        })
        .transpose()
    }

    /// Counts a wrong code against a challenge.
    pub async fn count_challenge_attempt(&mut self, digest: &[u8]) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}mfa_challenges SET attempts = attempts + 1 WHERE digest = $1");
        sqlx::query(&sql)
            .bind(digest.to_vec())
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Removes a challenge (answered, expired or out of tries), and any of the same user's
    /// that have expired.
    pub async fn remove_challenge(&mut self, digest: &[u8], now: i64) -> StoreResult<()> {
        let sql = self
            .0
            .sql("DELETE FROM {p}mfa_challenges WHERE digest = $1 OR expires_at <= $2");
        sqlx::query(&sql)
            .bind(digest.to_vec())
            .bind(now)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }
}

fn secret_from_row(row: &sqlx::any::AnyRow) -> StoreResult<StoredSecret> {
    Ok(StoredSecret {
        user_id: user_id(row)?,
        digest: row.try_get("digest")?,
        expires_at: row.try_get("expires_at")?,
        attempts: row.try_get("attempts")?,
    })
}
