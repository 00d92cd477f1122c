//! The tenant's users.

use sqlx::any::AnyRow;
use sqlx::Row as _;
use tessera_core::model::{Email, UserId};

use super::{corrupt, is_unique_violation, StoreError, StoreResult, TenantTx};

/// A user of a tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Normalised email.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Role (`user`, `admin`, …).
    pub role: String,
    /// argon2id PHC string; `None` for passwordless accounts.
    pub password_hash: Option<String>,
    /// A disabled account cannot sign in.
    pub disabled: bool,
    /// When the user confirmed their email address (Unix seconds), if they have.
    pub email_verified_at: Option<i64>,
    /// Whether sign-in asks for an emailed code after the password.
    pub mfa_email: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl User {
    /// Whether the user has confirmed their email address.
    #[must_use]
    pub fn email_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "***"))
            .field("disabled", &self.disabled)
            .field("email_verified_at", &self.email_verified_at)
            .field("mfa_email", &self.mfa_email)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A user to create.
#[derive(Clone)]
pub struct NewUser {
    /// Id.
    pub id: UserId,
    /// Normalised email.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: String,
    /// argon2id PHC string.
    pub password_hash: Option<String>,
    /// Unix seconds.
    pub now: i64,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

pub(super) const USER_COLUMNS: &str =
    "id, email, name, role, password_hash, disabled, email_verified_at, mfa_email, created_at";

/// The user columns under distinct names, for joins with sessions.
pub(super) const JOINED_USER_COLUMNS: &str =
    "u.id AS u_id, u.email AS u_email, u.name AS u_name, u.role AS u_role, \
     u.password_hash AS u_password_hash, u.disabled AS u_disabled, \
     u.email_verified_at AS u_email_verified_at, u.mfa_email AS u_mfa_email, \
     u.created_at AS u_created_at";

/// A user from columns named `<prefix><column>`.
pub(super) fn user_from_row(row: &AnyRow, prefix: &str) -> StoreResult<User> {
    let col = |name: &str| format!("{prefix}{name}");
    let id: String = row.try_get(col("id").as_str())?;
    let email: String = row.try_get(col("email").as_str())?;
    let disabled: i64 = row.try_get(col("disabled").as_str())?;
    let mfa_email: i64 = row.try_get(col("mfa_email").as_str())?;
    Ok(User {
        id: UserId::parse(&id).map_err(|_| corrupt("user id"))?,
        email: Email::parse(&email).map_err(|_| corrupt("user email"))?,
        name: row.try_get(col("name").as_str())?,
        role: row.try_get(col("role").as_str())?,
        password_hash: row.try_get(col("password_hash").as_str())?,
        disabled: disabled != 0,
        email_verified_at: row.try_get(col("email_verified_at").as_str())?,
        mfa_email: mfa_email != 0,
        created_at: row.try_get(col("created_at").as_str())?,
    })
}

/// The users of the unit's tenant.
pub struct Users<'a>(pub(super) &'a mut TenantTx);

impl Users<'_> {
    /// Creates a user; `Conflict` if the email is taken in this tenant.
    pub async fn create(&mut self, user: &NewUser) -> StoreResult<User> {
        let sql = self.0.sql(
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
            .execute(self.0.conn())
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
                email_verified_at: None,
                mfa_email: false,
                created_at: user.now,
            }),
        }
    }

    /// A user by normalised email.
    pub async fn by_email(&mut self, email: &Email) -> StoreResult<Option<User>> {
        let sql = self.0.sql(&format!(
            "SELECT {USER_COLUMNS} FROM {{p}}users WHERE email = $1"
        ));
        sqlx::query(&sql)
            .bind(email.as_str())
            .fetch_optional(self.0.conn())
            .await?
            .as_ref()
            .map(|row| user_from_row(row, ""))
            .transpose()
    }

    /// A user by id.
    pub async fn by_id(&mut self, id: &UserId) -> StoreResult<Option<User>> {
        let sql = self.0.sql(&format!(
            "SELECT {USER_COLUMNS} FROM {{p}}users WHERE id = $1"
        ));
        sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.0.conn())
            .await?
            .as_ref()
            .map(|row| user_from_row(row, ""))
            .transpose()
    }

    /// Removes the user's password: only an emailed code or a reset link signs them in (and a
    /// reset sets a new one).
    pub async fn clear_password(&mut self, id: &UserId, now: i64) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}users SET password_hash = NULL, updated_at = $1 WHERE id = $2");
        sqlx::query(&sql)
            .bind(now)
            .bind(id.to_string())
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Replaces a user's password hash (rehash on sign-in, password change).
    pub async fn set_password_hash(
        &mut self,
        id: &UserId,
        hash: &str,
        now: i64,
    ) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}users SET password_hash = $1, updated_at = $2 WHERE id = $3");
        sqlx::query(&sql)
            .bind(hash)
            .bind(now)
            .bind(id.to_string())
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Enables or disables a user.
    pub async fn set_disabled(&mut self, id: &UserId, disabled: bool, now: i64) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}users SET disabled = $1, updated_at = $2 WHERE id = $3");
        sqlx::query(&sql)
            .bind(i64::from(disabled))
            .bind(now)
            .bind(id.to_string())
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Records that the user confirmed their address; `true` the first time only.
    pub async fn mark_email_verified(&mut self, id: &UserId, now: i64) -> StoreResult<bool> {
        let sql = self.0.sql(
            "UPDATE {p}users SET email_verified_at = $1, updated_at = $1 \
             WHERE id = $2 AND email_verified_at IS NULL",
        );
        let done = sqlx::query(&sql)
            .bind(now)
            .bind(id.to_string())
            .execute(self.0.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Turns the emailed second factor on or off.
    pub async fn set_mfa_email(&mut self, id: &UserId, enabled: bool, now: i64) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}users SET mfa_email = $1, updated_at = $2 WHERE id = $3");
        sqlx::query(&sql)
            .bind(i64::from(enabled))
            .bind(now)
            .bind(id.to_string())
            .execute(self.0.conn())
            .await?;
        Ok(())
    }
}
