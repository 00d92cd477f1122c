//! The operator's tokens (global, of no tenant), stored as SHA-256 digests of the token.

use sqlx::Row as _;
use tessera_core::token::TokenDigest;

use super::{is_unique_violation, Store, StoreError, StoreResult};

/// An operator token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTokenRecord {
    /// Id (UUID), shown in listings and used to revoke.
    pub id: String,
    /// Name, unique.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None` never expires.
    pub expires_at: Option<i64>,
    /// Unix seconds, to the minute.
    pub last_used_at: Option<i64>,
    /// Unix seconds.
    pub revoked_at: Option<i64>,
}

impl OperatorTokenRecord {
    /// Whether the token is accepted at `now`.
    #[must_use]
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

const COLUMNS: &str = "id, name, created_at, expires_at, last_used_at, revoked_at";

fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<OperatorTokenRecord> {
    Ok(OperatorTokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Stores a new operator token; a name already used is a `Conflict`.
    pub async fn create_operator_token(
        &self,
        token: &OperatorTokenRecord,
        digest: &TokenDigest,
    ) -> StoreResult<()> {
        let sql = self.global_sql(
            "INSERT INTO {p}operator_tokens (id, name, digest, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        );
        let inserted = sqlx::query(&sql)
            .bind(&token.id)
            .bind(&token.name)
            .bind(digest.as_bytes().to_vec())
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute(&self.global)
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    /// The operator token with this digest, revoked or not.
    pub async fn operator_token(
        &self,
        digest: &TokenDigest,
    ) -> StoreResult<Option<OperatorTokenRecord>> {
        let sql = self.global_sql(&format!(
            "SELECT {COLUMNS} FROM {{p}}operator_tokens WHERE digest = $1"
        ));
        let row = sqlx::query(&sql)
            .bind(digest.as_bytes().to_vec())
            .fetch_optional(&self.global)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every operator token, revoked ones included, newest first.
    pub async fn operator_tokens(&self) -> StoreResult<Vec<OperatorTokenRecord>> {
        let sql = self.global_sql(&format!(
            "SELECT {COLUMNS} FROM {{p}}operator_tokens ORDER BY created_at DESC, id"
        ));
        let rows = sqlx::query(&sql).fetch_all(&self.global).await?;
        rows.iter().map(from_row).collect()
    }

    /// Revokes the active operator token whose id or name is `id_or_name`; answers it, or
    /// `None` if there is no such active token. The origin checks every use against this
    /// table (the edge never judges operator tokens), so a revocation holds at once.
    pub async fn revoke_operator_token(
        &self,
        id_or_name: &str,
        now: i64,
    ) -> StoreResult<Option<OperatorTokenRecord>> {
        let sql = self.global_sql(&format!(
            "UPDATE {{p}}operator_tokens SET revoked_at = $1 \
             WHERE (id = $2 OR name = $2) AND revoked_at IS NULL RETURNING {COLUMNS}"
        ));
        let row = sqlx::query(&sql)
            .bind(now)
            .bind(id_or_name)
            .fetch_optional(&self.global)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Records a use at `now` unless one was recorded in the last minute.
    pub async fn touch_operator_token(&self, id: &str, now: i64) -> StoreResult<()> {
        let sql = self.global_sql(
            "UPDATE {p}operator_tokens SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        );
        sqlx::query(&sql)
            .bind(now)
            .bind(id)
            .bind(now - 60)
            .execute(&self.global)
            .await?;
        Ok(())
    }
}
