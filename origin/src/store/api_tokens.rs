//! The tenant's service API tokens, stored as SHA-256 digests of the token.

use sqlx::Row as _;
use tessera_core::token::TokenDigest;

use super::{is_unique_violation, StoreError, StoreResult, TenantTx};

/// A service API token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Id (UUID), shown in listings and used to revoke.
    pub id: String,
    /// Name, unique in the tenant.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None` never expires.
    pub expires_at: Option<i64>,
    /// Unix seconds, to the minute.
    pub last_used_at: Option<i64>,
    /// Unix seconds.
    pub revoked_at: Option<i64>,
}

impl ApiToken {
    /// Whether the token is accepted at `now`.
    #[must_use]
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

const COLUMNS: &str = "id, name, scopes, created_at, expires_at, last_used_at, revoked_at";

fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<ApiToken> {
    let scopes: String = row.try_get("scopes")?;
    Ok(ApiToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// The service API tokens of the unit's tenant.
pub struct ApiTokens<'a>(pub(super) &'a mut TenantTx);

impl ApiTokens<'_> {
    /// Stores a new token; a name already used in the tenant is a `Conflict`.
    pub async fn create(&mut self, token: &ApiToken, digest: &TokenDigest) -> StoreResult<()> {
        let sql = self.0.sql(
            "INSERT INTO {p}api_tokens (id, name, digest, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        );
        let inserted = sqlx::query(&sql)
            .bind(&token.id)
            .bind(&token.name)
            .bind(digest.as_bytes().to_vec())
            .bind(token.scopes.join(" "))
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute(self.0.conn())
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    /// The token with this digest, revoked or not.
    pub async fn by_digest(&mut self, digest: &TokenDigest) -> StoreResult<Option<ApiToken>> {
        let sql = self.0.sql(&format!(
            "SELECT {COLUMNS} FROM {{p}}api_tokens WHERE digest = $1"
        ));
        let row = sqlx::query(&sql)
            .bind(digest.as_bytes().to_vec())
            .fetch_optional(self.0.conn())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every token of the tenant, revoked ones included, newest first.
    pub async fn list(&mut self) -> StoreResult<Vec<ApiToken>> {
        let sql = self.0.sql(&format!(
            "SELECT {COLUMNS} FROM {{p}}api_tokens ORDER BY created_at DESC, id"
        ));
        let rows = sqlx::query(&sql).fetch_all(self.0.conn()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Revokes the active token whose id or name is `id_or_name`; answers it, or `None` if
    /// there is no such active token.
    pub async fn revoke(&mut self, id_or_name: &str, now: i64) -> StoreResult<Option<ApiToken>> {
        let sql = self.0.sql(&format!(
            "UPDATE {{p}}api_tokens SET revoked_at = $1 \
             WHERE (id = $2 OR name = $2) AND revoked_at IS NULL RETURNING {COLUMNS}"
        ));
        let row = sqlx::query(&sql)
            .bind(now)
            .bind(id_or_name)
            .fetch_optional(self.0.conn())
            .await?;
        let revoked = row.as_ref().map(from_row).transpose()?;
        if let Some(token) = &revoked {
            let revocation = tessera_core::edge::Revocation::service_token_revoked(
                self.0.tenant().as_str(),
                &token.id,
                u64::try_from(now).unwrap_or(0),
            );
            self.0.revoked(revocation.session, revocation.until, now);
        }
        Ok(revoked)
    }

    /// Revokes every active token of the tenant (it is being deleted), each in the revocation
    /// log as the unit commits; answers how many.
    pub async fn revoke_all(&mut self, now: i64) -> StoreResult<usize> {
        let sql = self
            .0
            .sql("UPDATE {p}api_tokens SET revoked_at = $1 WHERE revoked_at IS NULL RETURNING id");
        let rows = sqlx::query(&sql).bind(now).fetch_all(self.0.conn()).await?;
        for row in &rows {
            let id: String = row.try_get("id")?;
            let revocation = tessera_core::edge::Revocation::service_token_revoked(
                self.0.tenant().as_str(),
                &id,
                u64::try_from(now).unwrap_or(0),
            );
            self.0.revoked(revocation.session, revocation.until, now);
        }
        Ok(rows.len())
    }

    /// Records a use at `now` unless one was recorded in the last minute; answers whether it
    /// wrote.
    pub async fn touch(&mut self, id: &str, now: i64) -> StoreResult<bool> {
        let sql = self.0.sql(
            "UPDATE {p}api_tokens SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        );
        let done = sqlx::query(&sql)
            .bind(now)
            .bind(id)
            .bind(now - 60)
            .execute(self.0.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
