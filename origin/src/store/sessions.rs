//! The tenant's sessions, each with its refresh-token family.

use sqlx::any::AnyRow;
use sqlx::Row as _;
use tessera_core::edge::Revocation;
use tessera_core::model::{SessionId, UserId};
use tessera_core::token::TokenDigest;

use super::users::{user_from_row, User, JOINED_USER_COLUMNS};
use super::webhooks::emit;
use super::{corrupt, StoreResult, TenantTx};

/// A session: one sign-in and its refresh family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Id (the `sid` claim).
    pub id: SessionId,
    /// Its user.
    pub user_id: UserId,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last renewal of any kind (refresh-token rotation, team/vault
    /// renewal), for the idle limit.
    pub last_used_at: i64,
    /// Absolute end of the family, Unix seconds.
    pub expires_at: i64,
    /// When it was ended, if it was.
    pub revoked_at: Option<i64>,
    /// Client IP at sign-in.
    pub ip: String,
    /// Client user agent at sign-in.
    pub user_agent: String,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
    /// The API that opened it (`core::policy::Api::name`; `unknown` before it was recorded).
    pub api: String,
}

impl Session {
    /// Whether the session may still be used at `now`.
    #[must_use]
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A presented refresh token as stored, with its session and user, read under a row lock.
#[derive(Debug, Clone)]
pub struct PresentedRefresh {
    /// The token's session.
    pub session: Session,
    /// The session's user.
    pub user: User,
    /// When the token was issued.
    pub issued_at: i64,
    /// When the token was rotated, if it was.
    pub rotated_at: Option<i64>,
    /// The digest of its successor, once rotated.
    pub successor: Option<Vec<u8>>,
}

/// A session's columns.
const SESSION_COLUMNS: &str = "s.id, s.user_id, s.created_at, \
     COALESCE(s.last_used_at, s.created_at) AS last_used_at, \
     s.expires_at, s.revoked_at, s.ip, s.user_agent, s.amr, s.api";

fn session_from_row(row: &AnyRow) -> StoreResult<Session> {
    let id: String = row.try_get("id")?;
    let user_id: String = row.try_get("user_id")?;
    let amr: String = row.try_get("amr")?;
    Ok(Session {
        id: SessionId::parse(&id).map_err(|_| corrupt("session id"))?,
        user_id: UserId::parse(&user_id).map_err(|_| corrupt("session user id"))?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        amr: amr.split_whitespace().map(str::to_owned).collect(),
        api: row.try_get("api")?,
    })
}

/// The sessions of the unit's tenant.
pub struct Sessions<'a>(pub(super) &'a mut TenantTx);

impl Sessions<'_> {
    /// Creates a session with its first refresh token.
    pub async fn create(&mut self, session: &Session, refresh: &TokenDigest) -> StoreResult<()> {
        let sql = self.0.sql(
            "INSERT INTO {p}sessions (id, user_id, created_at, expires_at, revoked_at, ip, user_agent, amr, api, last_used_at) \
             VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8, $3)",
        );
        sqlx::query(&sql)
            .bind(session.id.to_string())
            .bind(session.user_id.to_string())
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(&session.ip)
            .bind(&session.user_agent)
            .bind(session.amr.join(" "))
            .bind(&session.api)
            .execute(self.0.conn())
            .await?;
        self.add_refresh_token(refresh, &session.id, session.created_at)
            .await?;
        let data = serde_json::json!({ "session_id": session.id.to_string() });
        emit(
            self.0,
            "session.created",
            &session.user_id,
            data,
            session.created_at,
        )
        .await?;
        Ok(())
    }

    async fn add_refresh_token(
        &mut self,
        digest: &TokenDigest,
        session: &SessionId,
        now: i64,
    ) -> StoreResult<()> {
        let sql = self.0.sql(
            "INSERT INTO {p}refresh_tokens (digest, session_id, created_at) VALUES ($1, $2, $3)",
        );
        sqlx::query(&sql)
            .bind(digest.as_bytes().to_vec())
            .bind(session.to_string())
            .bind(now)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// A session by id.
    pub async fn by_id(&mut self, id: &SessionId) -> StoreResult<Option<Session>> {
        let sql = self.0.sql(&format!(
            "SELECT {SESSION_COLUMNS} FROM {{p}}sessions s WHERE s.id = $1"
        ));
        sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.0.conn())
            .await?
            .as_ref()
            .map(session_from_row)
            .transpose()
    }

    /// A session and its user in one lookup: what every authenticated request needs.
    pub async fn with_user(&mut self, id: &SessionId) -> StoreResult<Option<(Session, User)>> {
        let sql = self.0.sql(&format!(
            "SELECT {SESSION_COLUMNS}, {JOINED_USER_COLUMNS} FROM {{p}}sessions s \
             JOIN {{p}}users u ON u.id = s.user_id WHERE s.id = $1"
        ));
        let Some(row) = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.0.conn())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((session_from_row(&row)?, user_from_row(&row, "u_")?)))
    }

    /// A user's active sessions, most recently used first.
    pub async fn active_for(&mut self, user: &UserId, now: i64) -> StoreResult<Vec<Session>> {
        let sql = self.0.sql(&format!(
            "SELECT {SESSION_COLUMNS} FROM {{p}}sessions s \
             WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
             ORDER BY last_used_at DESC, s.id"
        ));
        sqlx::query(&sql)
            .bind(user.to_string())
            .bind(now)
            .fetch_all(self.0.conn())
            .await?
            .iter()
            .map(session_from_row)
            .collect()
    }

    /// Ends a session and its refresh family. Returns whether it was active.
    pub async fn revoke(&mut self, id: &SessionId, reason: &str, now: i64) -> StoreResult<bool> {
        let sql = self.0.sql(
            "UPDATE {p}sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE id = $3 AND revoked_at IS NULL RETURNING user_id",
        );
        let ended = sqlx::query(&sql)
            .bind(now)
            .bind(reason)
            .bind(id.to_string())
            .fetch_optional(self.0.conn())
            .await?;
        let Some(row) = ended else {
            return Ok(false);
        };
        let user: String = row.try_get("user_id")?;
        let user = UserId::parse(&user).map_err(|_| corrupt("session user id"))?;
        self.log_ended(id, now);
        self.emit_ended(&user, id, reason, now).await?;
        Ok(true)
    }

    /// Notes for the revocation log every session ended at or after `since` (the log's
    /// backfill); answers how many.
    pub async fn log_ended_since(&mut self, since: i64) -> StoreResult<usize> {
        let sql = self
            .0
            .sql("SELECT id, revoked_at FROM {p}sessions WHERE revoked_at >= $1");
        let rows = sqlx::query(&sql)
            .bind(since)
            .fetch_all(self.0.conn())
            .await?;
        for row in &rows {
            let id: String = row.try_get("id")?;
            let id = SessionId::parse(&id).map_err(|_| corrupt("session id"))?;
            self.log_ended(&id, row.try_get("revoked_at")?);
        }
        Ok(rows.len())
    }

    /// Notes a session's end for the revocation log of this unit's commit.
    /// Notes for the revocation log the end of a session that has no row: the tokens an
    /// OpenID client holds as itself (`client_credentials`), which name no user.
    pub fn note_ended(&mut self, id: &SessionId, now: i64) {
        self.log_ended(id, now);
    }

    async fn emit_ended(
        &mut self,
        user: &UserId,
        id: &SessionId,
        reason: &str,
        now: i64,
    ) -> StoreResult<()> {
        let data = serde_json::json!({ "session_id": id.to_string(), "reason": reason });
        emit(self.0, "session.ended", user, data, now).await?;
        Ok(())
    }

    fn log_ended(&mut self, id: &SessionId, now: i64) {
        let revocation = Revocation::ended_at(
            self.0.tenant().as_str(),
            &id.to_string(),
            u64::try_from(now).unwrap_or(0),
        );
        self.0.revoked(revocation.session, revocation.until, now);
    }

    /// Ends every unended session of the tenant (it is being deleted): answers how many, each
    /// in the revocation log as the unit commits. No webhook event: the endpoints go with the
    /// tenant.
    pub async fn end_all(&mut self, reason: &str, now: i64) -> StoreResult<Vec<SessionId>> {
        let sql = self.0.sql(
            "UPDATE {p}sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE revoked_at IS NULL AND expires_at > $1 RETURNING id",
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(reason)
            .fetch_all(self.0.conn())
            .await?;
        let ended = rows
            .iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                SessionId::parse(&id).map_err(|_| corrupt("session id"))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        for id in &ended {
            self.log_ended(id, now);
        }
        Ok(ended)
    }

    /// Ends every unended session of `user` but `except`; answers the ended ids, for the
    /// revocations that follow the commit.
    pub async fn revoke_all_of_user(
        &mut self,
        user: &UserId,
        except: Option<&SessionId>,
        reason: &str,
        now: i64,
    ) -> StoreResult<Vec<SessionId>> {
        let sql = self.0.sql(
            "UPDATE {p}sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL AND expires_at > $1 AND id <> $4 \
             RETURNING id",
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(reason)
            .bind(user.to_string())
            .bind(except.map(ToString::to_string).unwrap_or_default())
            .fetch_all(self.0.conn())
            .await?;
        let ended = rows
            .iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                SessionId::parse(&id).map_err(|_| corrupt("session id"))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        for id in &ended {
            self.log_ended(id, now);
            self.emit_ended(user, id, reason, now).await?;
        }
        Ok(ended)
    }

    /// A presented refresh token with its session and user, locked until the unit ends, so that
    /// of concurrent presentations each decides on the state the previous one left.
    pub async fn refresh_token_for_update(
        &mut self,
        digest: &TokenDigest,
    ) -> StoreResult<Option<PresentedRefresh>> {
        let lock = self.0.dialect().lock_rows_of("r");
        let sql = self.0.sql(&format!(
            "SELECT {SESSION_COLUMNS}, {JOINED_USER_COLUMNS}, r.created_at AS issued_at, \
             r.rotated_at, r.successor \
             FROM {{p}}refresh_tokens r JOIN {{p}}sessions s ON s.id = r.session_id \
             JOIN {{p}}users u ON u.id = s.user_id WHERE r.digest = $1{lock}"
        ));
        let Some(row) = sqlx::query(&sql)
            .bind(digest.as_bytes().to_vec())
            .fetch_optional(self.0.conn())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(PresentedRefresh {
            session: session_from_row(&row)?,
            user: user_from_row(&row, "u_")?,
            issued_at: row.try_get("issued_at")?,
            rotated_at: row.try_get("rotated_at")?,
            successor: row.try_get("successor")?,
        }))
    }

    /// Marks a refresh token used and adds its successor to the same family.
    pub async fn rotate(
        &mut self,
        presented: &TokenDigest,
        successor: &TokenDigest,
        session: &SessionId,
        now: i64,
    ) -> StoreResult<()> {
        let sql = self.0.sql(
            "UPDATE {p}refresh_tokens SET rotated_at = $1, successor = $2 \
             WHERE digest = $3 AND rotated_at IS NULL",
        );
        let done = sqlx::query(&sql)
            .bind(now)
            .bind(successor.as_bytes().to_vec())
            .bind(presented.as_bytes().to_vec())
            .execute(self.0.conn())
            .await?;
        if done.rows_affected() != 1 {
            // The row was read under a lock in this unit: it cannot have changed.
            return Err(corrupt("refresh token rotated under its lock"));
        }
        self.touch(session, now).await?;
        self.add_refresh_token(successor, session, now).await
    }

    /// Records a renewal of the session at `now` (its last use, for the idle limit).
    pub async fn touch(&mut self, session: &SessionId, now: i64) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}sessions SET last_used_at = $1 WHERE id = $2");
        sqlx::query(&sql)
            .bind(now)
            .bind(session.to_string())
            .execute(self.0.conn())
            .await?;
        Ok(())
    }
}
