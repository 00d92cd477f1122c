//! The tenant's OpenID provider: its clients, authorization codes, browser sessions, and the
//! sessions its clients hold (grants).

use sqlx::any::AnyRow;
use sqlx::Row as _;
use tessera_core::model::{SessionId, UserId};
use tessera_core::oidc::Grant;
use tessera_core::token::TokenDigest;

use super::{corrupt, is_unique_violation, StoreError, StoreResult, TenantTx};

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClient {
    /// The `client_id`.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// SHA-256 of the secret; `None` for a public client.
    pub secret_digest: Option<Vec<u8>>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact URIs RP-initiated logout may return to.
    pub post_logout_redirect_uris: Vec<String>,
    /// The grants it may use.
    pub grants: Vec<Grant>,
    /// `RS256` or `EdDSA`.
    pub id_token_alg: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

impl OidcClient {
    /// Whether it authenticates with a secret (a confidential client).
    #[must_use]
    pub fn is_confidential(&self) -> bool {
        self.secret_digest.is_some()
    }

    /// Whether it may use `grant`.
    #[must_use]
    pub fn allows(&self, grant: Grant) -> bool {
        self.grants.contains(&grant)
    }
}

const CLIENT_COLUMNS: &str = "id, name, secret_digest, redirect_uris, post_logout_redirect_uris, \
                              grants, id_token_alg, created_at, updated_at";

fn client_from_row(row: &AnyRow) -> StoreResult<OidcClient> {
    let uris = |column: &str| -> StoreResult<Vec<String>> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|_| corrupt("client redirect URIs"))
    };
    let grants: String = row.try_get("grants")?;
    Ok(OidcClient {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret_digest: row.try_get("secret_digest")?,
        redirect_uris: uris("redirect_uris")?,
        post_logout_redirect_uris: uris("post_logout_redirect_uris")?,
        grants: grants
            .split_whitespace()
            .map(|g| Grant::parse(g).ok_or_else(|| corrupt("client grant")))
            .collect::<StoreResult<_>>()?,
        id_token_alg: row.try_get("id_token_alg")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn grants_text(grants: &[Grant]) -> String {
    grants
        .iter()
        .map(|g| g.name())
        .collect::<Vec<_>>()
        .join(" ")
}

fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// An authorization code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// The client it was issued to.
    pub client_id: String,
    /// The user who signed in.
    pub user_id: UserId,
    /// The browser session it came from.
    pub browser_session: SessionId,
    /// The redirect URI of the authorization request (the exchange must repeat it).
    pub redirect_uri: String,
    /// The scopes granted, space-separated.
    pub scope: String,
    /// The client's nonce.
    pub nonce: Option<String>,
    /// The S256 code challenge.
    pub code_challenge: Option<String>,
    /// When the user signed in, Unix seconds.
    pub auth_time: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// The session its exchange opened, once redeemed.
    pub session_id: Option<SessionId>,
}

/// A session a client holds through a code exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcGrant {
    /// The session (the `sid` of its tokens).
    pub session_id: SessionId,
    /// The client.
    pub client_id: String,
    /// The scopes granted, space-separated.
    pub scope: String,
    /// The browser session it came from.
    pub browser_session: SessionId,
}

fn session_id(row: &AnyRow, column: &str) -> StoreResult<SessionId> {
    let text: String = row.try_get(column)?;
    SessionId::parse(&text).map_err(|_| corrupt("provider session id"))
}

fn grant_from_row(row: &AnyRow) -> StoreResult<OidcGrant> {
    Ok(OidcGrant {
        session_id: session_id(row, "session_id")?,
        client_id: row.try_get("client_id")?,
        scope: row.try_get("scope")?,
        browser_session: session_id(row, "browser_session")?,
    })
}

/// The provider's rows of the unit's tenant.
pub struct Oidc<'a>(pub(super) &'a mut TenantTx);

impl Oidc<'_> {
    /// Registers a client; an id the tenant already has is a `Conflict`.
    pub async fn add_client(&mut self, client: &OidcClient) -> StoreResult<()> {
        let sql = self.0.sql(&format!(
            "INSERT INTO {{p}}oidc_clients ({CLIENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ));
        let inserted = sqlx::query(&sql)
            .bind(&client.id)
            .bind(&client.name)
            .bind(client.secret_digest.clone())
            .bind(json_list(&client.redirect_uris))
            .bind(json_list(&client.post_logout_redirect_uris))
            .bind(grants_text(&client.grants))
            .bind(&client.id_token_alg)
            .bind(client.created_at)
            .bind(client.updated_at)
            .execute(self.0.conn())
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    /// Rewrites a client's settings (everything but its id, secret and creation time).
    pub async fn update_client(&mut self, client: &OidcClient) -> StoreResult<bool> {
        let sql = self.0.sql(
            "UPDATE {p}oidc_clients SET name = $2, redirect_uris = $3, \
             post_logout_redirect_uris = $4, grants = $5, id_token_alg = $6, updated_at = $7 \
             WHERE id = $1",
        );
        let done = sqlx::query(&sql)
            .bind(&client.id)
            .bind(&client.name)
            .bind(json_list(&client.redirect_uris))
            .bind(json_list(&client.post_logout_redirect_uris))
            .bind(grants_text(&client.grants))
            .bind(&client.id_token_alg)
            .bind(client.updated_at)
            .execute(self.0.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A client by id.
    pub async fn client(&mut self, id: &str) -> StoreResult<Option<OidcClient>> {
        let sql = self.0.sql(&format!(
            "SELECT {CLIENT_COLUMNS} FROM {{p}}oidc_clients WHERE id = $1"
        ));
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.0.conn())
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    /// Every client, oldest first.
    pub async fn clients(&mut self) -> StoreResult<Vec<OidcClient>> {
        let sql = self.0.sql(&format!(
            "SELECT {CLIENT_COLUMNS} FROM {{p}}oidc_clients ORDER BY created_at, id"
        ));
        let rows = sqlx::query(&sql).fetch_all(self.0.conn()).await?;
        rows.iter().map(client_from_row).collect()
    }

    /// Deletes a client; its codes and grants go with it (the caller ends the grants'
    /// sessions first). Returns whether it existed.
    pub async fn remove_client(&mut self, id: &str) -> StoreResult<bool> {
        for table in ["oidc_codes", "oidc_grants"] {
            let sql = self
                .0
                .sql(&format!("DELETE FROM {{p}}{table} WHERE client_id = $1"));
            sqlx::query(&sql).bind(id).execute(self.0.conn()).await?;
        }
        let sql = self.0.sql("DELETE FROM {p}oidc_clients WHERE id = $1");
        let done = sqlx::query(&sql).bind(id).execute(self.0.conn()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a new code, sweeping the tenant's codes that expired ten minutes ago or more.
    pub async fn add_code(
        &mut self,
        digest: &TokenDigest,
        code: &AuthorizationCode,
        now: i64,
    ) -> StoreResult<()> {
        let sweep = self
            .0
            .sql("DELETE FROM {p}oidc_codes WHERE expires_at < $1");
        sqlx::query(&sweep)
            .bind(now - 600)
            .execute(self.0.conn())
            .await?;
        let sql = self.0.sql(
            "INSERT INTO {p}oidc_codes (digest, client_id, user_id, browser_session, redirect_uri, \
             scope, nonce, code_challenge, auth_time, expires_at, session_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)",
        );
        sqlx::query(&sql)
            .bind(digest.as_bytes().to_vec())
            .bind(&code.client_id)
            .bind(code.user_id.to_string())
            .bind(code.browser_session.to_string())
            .bind(&code.redirect_uri)
            .bind(&code.scope)
            .bind(code.nonce.clone())
            .bind(code.code_challenge.clone())
            .bind(code.auth_time)
            .bind(code.expires_at)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// A code by digest, locked until the unit ends (it is about to be redeemed).
    pub async fn code_for_update(
        &mut self,
        digest: &TokenDigest,
    ) -> StoreResult<Option<AuthorizationCode>> {
        let sql = self.0.sql(&format!(
            "SELECT client_id, user_id, browser_session, redirect_uri, scope, nonce, \
             code_challenge, auth_time, expires_at, session_id FROM {{p}}oidc_codes \
             WHERE digest = $1{}",
            self.0.dialect().lock_rows()
        ));
        let Some(row) = sqlx::query(&sql)
            .bind(digest.as_bytes().to_vec())
            .fetch_optional(self.0.conn())
            .await?
        else {
            return Ok(None);
        };
        let user: String = row.try_get("user_id")?;
        let redeemed: Option<String> = row.try_get("session_id")?;
        Ok(Some(AuthorizationCode {
            client_id: row.try_get("client_id")?,
            user_id: UserId::parse(&user).map_err(|_| corrupt("code user id"))?,
            browser_session: session_id(&row, "browser_session")?,
            redirect_uri: row.try_get("redirect_uri")?,
            scope: row.try_get("scope")?,
            nonce: row.try_get("nonce")?,
            code_challenge: row.try_get("code_challenge")?,
            auth_time: row.try_get("auth_time")?,
            expires_at: row.try_get("expires_at")?,
            session_id: redeemed
                .map(|s| SessionId::parse(&s).map_err(|_| corrupt("code session id")))
                .transpose()?,
        }))
    }

    /// Marks a code redeemed by the session its exchange opened, and records that session as
    /// the client's grant.
    pub async fn redeem_code(
        &mut self,
        digest: &TokenDigest,
        grant: &OidcGrant,
    ) -> StoreResult<()> {
        let sql = self
            .0
            .sql("UPDATE {p}oidc_codes SET session_id = $2 WHERE digest = $1");
        sqlx::query(&sql)
            .bind(digest.as_bytes().to_vec())
            .bind(grant.session_id.to_string())
            .execute(self.0.conn())
            .await?;
        let sql = self.0.sql(
            "INSERT INTO {p}oidc_grants (session_id, client_id, scope, browser_session) \
             VALUES ($1, $2, $3, $4)",
        );
        sqlx::query(&sql)
            .bind(grant.session_id.to_string())
            .bind(&grant.client_id)
            .bind(&grant.scope)
            .bind(grant.browser_session.to_string())
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// The grant a session carries, if a code exchange opened it.
    pub async fn grant(&mut self, session: &SessionId) -> StoreResult<Option<OidcGrant>> {
        let sql = self.0.sql(
            "SELECT session_id, client_id, scope, browser_session FROM {p}oidc_grants \
             WHERE session_id = $1",
        );
        let row = sqlx::query(&sql)
            .bind(session.to_string())
            .fetch_optional(self.0.conn())
            .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// The grant of the session a refresh token belongs to, if a code exchange opened it.
    pub async fn grant_of_refresh(
        &mut self,
        refresh: &TokenDigest,
    ) -> StoreResult<Option<OidcGrant>> {
        let sql = self.0.sql(
            "SELECT g.session_id, g.client_id, g.scope, g.browser_session \
             FROM {p}refresh_tokens r JOIN {p}oidc_grants g ON g.session_id = r.session_id \
             WHERE r.digest = $1",
        );
        let row = sqlx::query(&sql)
            .bind(refresh.as_bytes().to_vec())
            .fetch_optional(self.0.conn())
            .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// The sessions opened from a browser session (ended with it at logout).
    pub async fn sessions_from(&mut self, browser: &SessionId) -> StoreResult<Vec<SessionId>> {
        let sql = self
            .0
            .sql("SELECT session_id FROM {p}oidc_grants WHERE browser_session = $1");
        let rows = sqlx::query(&sql)
            .bind(browser.to_string())
            .fetch_all(self.0.conn())
            .await?;
        rows.iter()
            .map(|row| session_id(row, "session_id"))
            .collect()
    }

    /// The sessions a client holds.
    pub async fn sessions_of_client(&mut self, client: &str) -> StoreResult<Vec<SessionId>> {
        let sql = self
            .0
            .sql("SELECT session_id FROM {p}oidc_grants WHERE client_id = $1");
        let rows = sqlx::query(&sql)
            .bind(client)
            .fetch_all(self.0.conn())
            .await?;
        rows.iter()
            .map(|row| session_id(row, "session_id"))
            .collect()
    }

    /// Stores a browser session's cookie digest.
    pub async fn add_browser_session(
        &mut self,
        digest: &TokenDigest,
        session: &SessionId,
        expires_at: i64,
    ) -> StoreResult<()> {
        let sql = self.0.sql(
            "INSERT INTO {p}oidc_browser_sessions (digest, session_id, expires_at) \
             VALUES ($1, $2, $3)",
        );
        sqlx::query(&sql)
            .bind(digest.as_bytes().to_vec())
            .bind(session.to_string())
            .bind(expires_at)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// The session a browser session's cookie names, while the cookie lasts.
    pub async fn browser_session(
        &mut self,
        digest: &TokenDigest,
        now: i64,
    ) -> StoreResult<Option<SessionId>> {
        let sql = self.0.sql(
            "SELECT session_id FROM {p}oidc_browser_sessions WHERE digest = $1 AND expires_at > $2",
        );
        let row = sqlx::query(&sql)
            .bind(digest.as_bytes().to_vec())
            .bind(now)
            .fetch_optional(self.0.conn())
            .await?;
        row.map(|row| session_id(&row, "session_id")).transpose()
    }

    /// Forgets a browser session's cookies (at logout), sweeping expired ones too.
    pub async fn remove_browser_session(
        &mut self,
        session: &SessionId,
        now: i64,
    ) -> StoreResult<()> {
        let sql = self
            .0
            .sql("DELETE FROM {p}oidc_browser_sessions WHERE session_id = $1 OR expires_at <= $2");
        sqlx::query(&sql)
            .bind(session.to_string())
            .bind(now)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }
}
