//! The tenant's users.

use sqlx::any::AnyRow;
use sqlx::Row as _;
use tessera_core::model::{Email, UserId};

use super::webhooks::emit;
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

/// Rows of one multi-row insert (9 parameters a row). Postgres takes 65,535 parameters a
/// statement. SQLite takes 32,766, but sqlx looks each parameter's name up by a walk over all
/// of them (`sqlite3_bind_parameter_name`), so a statement's binding grows with the square of
/// its parameters: at 1,000 rows that walk was two thirds of an import's time.
const fn import_rows_per_statement(dialect: super::Dialect) -> usize {
    match dialect {
        super::Dialect::Postgres => 1_000,
        super::Dialect::Sqlite => 100,
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
            "INSERT INTO {p}users (id, email, name, name_key, role, password_hash, disabled, \
             created_at, updated_at) VALUES ($1, $2, $3, $7, $4, $5, 0, $6, $6)",
        );
        let inserted = sqlx::query(&sql)
            .bind(user.id.to_string())
            .bind(user.email.as_str())
            .bind(&user.name)
            .bind(&user.role)
            .bind(user.password_hash.clone())
            .bind(user.now)
            .bind(name_key(&user.name))
            .execute(self.0.conn())
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let data = serde_json::json!({ "email": user.email.as_str() });
        emit(self.0, "user.created", &user.id, data, user.now).await?;
        Ok(User {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role.clone(),
            password_hash: user.password_hash.clone(),
            disabled: false,
            email_verified_at: None,
            mfa_email: false,
            created_at: user.now,
        })
    }

    /// Inserts accounts moved in from another system (`tessera user import`) whose address is
    /// not in the tenant yet, in multi-row statements; answers the addresses inserted. The
    /// others are left as they are. `mfa_email` is not written: an import carries no emailed
    /// factor.
    pub async fn import(&mut self, users: &[User], now: i64) -> StoreResult<Vec<Email>> {
        let mut inserted = Vec::with_capacity(users.len());
        let rows_per_statement = import_rows_per_statement(self.0.dialect());
        for chunk in users.chunks(rows_per_statement) {
            // `$1` is the import's time, shared by every row; then 9 parameters a row.
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let n = 1 + i * 9;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, $1)",
                        n + 1,
                        n + 2,
                        n + 3,
                        n + 4,
                        n + 5,
                        n + 6,
                        n + 7,
                        n + 8,
                        n + 9
                    )
                })
                .collect();
            let sql = self.0.sql(&format!(
                "INSERT INTO {{p}}users (id, email, name, name_key, role, password_hash, \
                 disabled, email_verified_at, created_at, updated_at) VALUES {} \
                 ON CONFLICT (email) DO NOTHING RETURNING email",
                rows.join(", ")
            ));
            let mut query = sqlx::query(&sql).bind(now);
            for user in chunk {
                query = query
                    .bind(user.id.to_string())
                    .bind(user.email.as_str())
                    .bind(&user.name)
                    .bind(name_key(&user.name))
                    .bind(&user.role)
                    .bind(user.password_hash.clone())
                    .bind(i64::from(user.disabled))
                    .bind(user.email_verified_at)
                    .bind(user.created_at);
            }
            for row in query.fetch_all(self.0.conn()).await? {
                let email: String = row.try_get("email")?;
                inserted.push(Email::parse(&email).map_err(|_| corrupt("user email"))?);
            }
        }
        Ok(inserted)
    }

    /// How many users the tenant has.
    pub async fn count(&mut self) -> StoreResult<i64> {
        let sql = self.0.sql("SELECT COUNT(*) AS n FROM {p}users");
        let row = sqlx::query(&sql).fetch_one(self.0.conn()).await?;
        Ok(row.try_get("n")?)
    }

    /// Up to `limit` users in address order after `after`, each with the sealed secret of its
    /// confirmed authenticator (an export's pages).
    pub async fn export_page(
        &mut self,
        after: Option<&Email>,
        limit: i64,
    ) -> StoreResult<Vec<(User, Option<Vec<u8>>)>> {
        let sql = self.0.sql(&format!(
            "SELECT {JOINED_USER_COLUMNS}, t.secret_sealed FROM {{p}}users u \
             LEFT JOIN {{p}}totp_factors t ON t.user_id = u.id AND t.confirmed_at IS NOT NULL \
             WHERE u.email > $1 ORDER BY u.email LIMIT $2"
        ));
        sqlx::query(&sql)
            .bind(after.map_or("", Email::as_str))
            .bind(limit)
            .fetch_all(self.0.conn())
            .await?
            .iter()
            .map(|row| Ok((user_from_row(row, "u_")?, row.try_get("secret_sealed")?)))
            .collect()
    }

    /// Up to `limit` users in address order after the address `after`; with `prefix`, only
    /// those whose address starts with it. A range over an index in its order
    /// (`users_email_bytes` on PostgreSQL, the unique index on SQLite): the cost of a page, not
    /// of the matches.
    pub async fn by_address(
        &mut self,
        prefix: Option<&str>,
        after: Option<&Email>,
        limit: i64,
    ) -> StoreResult<Vec<User>> {
        let bytes = self.0.dialect().bytewise();
        let after = after.map_or("", Email::as_str);
        let rows = match prefix {
            None => {
                let sql = self.0.sql(&format!(
                    "SELECT {USER_COLUMNS} FROM {{p}}users WHERE email{bytes} > $1 \
                     ORDER BY email{bytes} LIMIT $2"
                ));
                sqlx::query(&sql)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(self.0.conn())
                    .await?
            }
            Some(prefix) => {
                let (within, end) = prefix_range("email", bytes, prefix, 1);
                let sql = self.0.sql(&format!(
                    "SELECT {USER_COLUMNS} FROM {{p}}users WHERE {within} AND email{bytes} > $3 \
                     ORDER BY email{bytes} LIMIT $4"
                ));
                sqlx::query(&sql)
                    .bind(prefix)
                    .bind(end)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(self.0.conn())
                    .await?
            }
        };
        rows.iter().map(|row| user_from_row(row, "")).collect()
    }

    /// Up to `limit` users whose name key starts with `prefix` but whose address does not
    /// (those are [`Users::by_address`]'s), in (name key, address) order after `after`, each
    /// with its name key. A range over `users_name_key` in its order: the cost of a page, not
    /// of the matches.
    pub async fn by_name_not_address(
        &mut self,
        prefix: &str,
        after: Option<(&str, &Email)>,
        limit: i64,
    ) -> StoreResult<Vec<(User, String)>> {
        let bytes = self.0.dialect().bytewise();
        let (by_address, end) = prefix_range("email", bytes, prefix, 1);
        let order = format!("ORDER BY name_key{bytes}, email{bytes}");
        let rows = match after {
            None => {
                let (by_name, _) = prefix_range("name_key", bytes, prefix, 1);
                let sql = self.0.sql(&format!(
                    "SELECT {USER_COLUMNS}, name_key FROM {{p}}users \
                     WHERE {by_name} AND NOT ({by_address}) {order} LIMIT $3"
                ));
                sqlx::query(&sql)
                    .bind(prefix)
                    .bind(end)
                    .bind(limit)
                    .fetch_all(self.0.conn())
                    .await?
            }
            // After a cursor the row comparison alone starts the scan (the caller checked that
            // the cursor's key starts with the prefix): beside `name_key >= $1`, PostgreSQL
            // started it at the index's beginning.
            Some((key, email)) => {
                let below = if end.is_empty() {
                    String::new()
                } else {
                    format!("AND name_key{bytes} < $2")
                };
                let sql = self.0.sql(&format!(
                    "SELECT {USER_COLUMNS}, name_key FROM {{p}}users \
                     WHERE (name_key{bytes}, email{bytes}) > ($3, $4) {below} \
                     AND NOT ({by_address}) {order} LIMIT $5"
                ));
                sqlx::query(&sql)
                    .bind(prefix)
                    .bind(end)
                    .bind(key)
                    .bind(email.as_str())
                    .bind(limit)
                    .fetch_all(self.0.conn())
                    .await?
            }
        };
        rows.iter()
            .map(|row| Ok((user_from_row(row, "")?, row.try_get("name_key")?)))
            .collect()
    }

    /// Changes a user's name or role (what is `None` stays).
    pub async fn set_profile(
        &mut self,
        id: &UserId,
        name: Option<&str>,
        role: Option<&str>,
        now: i64,
    ) -> StoreResult<()> {
        let sql = self.0.sql(
            "UPDATE {p}users SET name = COALESCE($1, name), name_key = COALESCE($5, name_key), \
             role = COALESCE($2, role), updated_at = $3 WHERE id = $4",
        );
        sqlx::query(&sql)
            .bind(name)
            .bind(role)
            .bind(now)
            .bind(id.to_string())
            .bind(name.map(name_key))
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// The address waiting for its owner's confirmation before it replaces the user's, if any.
    pub async fn pending_email(&mut self, id: &UserId) -> StoreResult<Option<Email>> {
        let sql = self
            .0
            .sql("SELECT pending_email FROM {p}users WHERE id = $1");
        let pending: Option<Option<String>> = sqlx::query_scalar(&sql)
            .bind(id.to_string())
            .fetch_optional(self.0.conn())
            .await?;
        pending
            .flatten()
            .map(|email| Email::parse(&email).map_err(|_| corrupt("pending email")))
            .transpose()
    }

    /// Sets (or, with `None`, withdraws) the address waiting for confirmation.
    pub async fn set_pending_email(
        &mut self,
        id: &UserId,
        email: Option<&Email>,
        now: i64,
    ) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}users SET pending_email = $1, updated_at = $2 WHERE id = $3");
        sqlx::query(&sql)
            .bind(email.map(Email::as_str))
            .bind(now)
            .bind(id.to_string())
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Replaces the user's address by the confirmed pending one (the confirmation proves the
    /// new address is theirs); `Conflict` if another account took it meanwhile.
    pub async fn confirm_pending_email(
        &mut self,
        id: &UserId,
        email: &Email,
        now: i64,
    ) -> StoreResult<()> {
        let sql = self.0.sql(
            "UPDATE {p}users SET email = $1, pending_email = NULL, \
             email_verified_at = COALESCE(email_verified_at, $2), updated_at = $2 WHERE id = $3",
        );
        match sqlx::query(&sql)
            .bind(email.as_str())
            .bind(now)
            .bind(id.to_string())
            .execute(self.0.conn())
            .await
        {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
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

    /// Erases a user: the row and all that hangs on it (sessions and refresh tokens, second
    /// factors, passkeys, emailed secrets, team memberships, OpenID codes by cascade; the
    /// provider's browser sessions and grants of its sessions, its passkey ceremonies and every
    /// email to its address here), and its id in the audit log replaced by `pseudonym`. The
    /// caller ends its sessions first, so that their revocation reaches the edge. `true` if
    /// the user existed.
    pub async fn erase(&mut self, user: &User, pseudonym: &str, now: i64) -> StoreResult<bool> {
        let id = user.id.to_string();
        for statement in [
            "DELETE FROM {p}oidc_browser_sessions WHERE session_id IN \
             (SELECT id FROM {p}sessions WHERE user_id = $1)",
            "DELETE FROM {p}oidc_grants WHERE session_id IN \
             (SELECT id FROM {p}sessions WHERE user_id = $1)",
            "DELETE FROM {p}webauthn_ceremonies WHERE user_id = $1",
        ] {
            let sql = self.0.sql(statement);
            sqlx::query(&sql).bind(&id).execute(self.0.conn()).await?;
        }
        let sql = self.0.sql("DELETE FROM {p}outbox WHERE recipient = $1");
        sqlx::query(&sql)
            .bind(user.email.as_str())
            .execute(self.0.conn())
            .await?;
        let sql = self
            .0
            .sql("UPDATE {p}audit_log SET user_id = $1 WHERE user_id = $2");
        sqlx::query(&sql)
            .bind(pseudonym)
            .bind(&id)
            .execute(self.0.conn())
            .await?;
        let sql = self.0.sql("DELETE FROM {p}users WHERE id = $1");
        let done = sqlx::query(&sql).bind(&id).execute(self.0.conn()).await?;
        let erased = done.rows_affected() == 1;
        if erased {
            emit(self.0, "user.deleted", &user.id, serde_json::json!({}), now).await?;
        }
        Ok(erased)
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
        let data = serde_json::json!({ "password": "removed" });
        emit(self.0, "password.changed", id, data, now).await?;
        Ok(())
    }

    /// Sets a user's new password (a change, a reset, the operator's): `password.changed`.
    pub async fn set_password_hash(
        &mut self,
        id: &UserId,
        hash: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.rehash(id, hash, now).await?;
        let data = serde_json::json!({ "password": "set" });
        emit(self.0, "password.changed", id, data, now).await?;
        Ok(())
    }

    /// Replaces the hash of the same password (new argon2 parameters, or an imported format
    /// replaced at sign-in): no change the user made.
    pub async fn rehash(&mut self, id: &UserId, hash: &str, now: i64) -> StoreResult<()> {
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
        if disabled {
            emit(self.0, "user.disabled", id, serde_json::json!({}), now).await?;
        }
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
        let first = done.rows_affected() == 1;
        if first {
            emit(
                self.0,
                "user.email_verified",
                id,
                serde_json::json!({}),
                now,
            )
            .await?;
        }
        Ok(first)
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
        let data = serde_json::json!({ "factor": "email", "enabled": enabled });
        emit(self.0, "mfa.changed", id, data, now).await?;
        Ok(())
    }
}

/// What a name is found by: lowercased by Rust's Unicode rules, the same on both backends
/// (SQLite's `lower` folds ASCII only). Written with the name by every store method that writes
/// one; the admin API's search lowercases its query the same way.
#[must_use]
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// `column` starts with the text bound at `$first`: a byte range, from it (inclusive) to the
/// text bound at `$first + 1` ([`prefix_end`], answered for binding; `""` and an always-false
/// bound when nothing is above the prefix).
fn prefix_range(column: &str, bytes: &str, prefix: &str, first: usize) -> (String, String) {
    let (low, high) = (first, first + 1);
    match prefix_end(prefix) {
        Some(end) => (
            format!("{column}{bytes} >= ${low} AND {column}{bytes} < ${high}"),
            end,
        ),
        None => (
            format!("{column}{bytes} >= ${low} AND ${high} = ''"),
            String::new(),
        ),
    }
}

/// The least string above every string that starts with `prefix`, in byte order (UTF-8 keeps
/// code point order): its last character that can be, incremented, the rest dropped. `None`
/// when no character can (every string starting with it is at the top).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_ends_where_its_last_character_would_be_incremented() {
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        for (prefix, inside) in [("ab", "ab\u{10FFFF}z"), ("jo", "joé")] {
            let end = prefix_end(prefix).unwrap();
            assert!(prefix <= inside && inside < end.as_str());
        }
    }
}
