//! Service API tokens: long-lived bearer tokens of a tenant's own services (VoiceStamp's
//! "static API token"). Opaque (core's checksummed format, the tenant inside), stored as
//! SHA-256, revocable; a revocation reaches the edge like a session's.

use std::sync::Arc;

use tessera_core::model::TenantSlug;
use tessera_core::token::{OpaqueToken, TokenKind};

use super::{audit_event, require_admin, Authenticated, Client, ServiceError, ServiceResult};
use crate::clock::{self, SharedClock};
use crate::store::{ApiToken, DynStore, StoreError};
use crate::tenants::Directory;

/// The longest name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// The most scopes a token carries.
const MAX_SCOPES: usize = 20;
/// The longest scope, in bytes.
const MAX_SCOPE_BYTES: usize = 64;

/// What a new token is to be.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// Unique in the tenant.
    pub name: String,
    /// Scopes (letters, digits and `:._-`).
    pub scopes: Vec<String>,
    /// Lifetime in days; `None` never expires.
    pub expires_in_days: Option<u32>,
}

/// A created token: its record, and the token itself, which exists nowhere else.
pub struct Created {
    /// The record.
    pub record: ApiToken,
    /// The token, shown once.
    pub token: String,
}

/// A request authenticated by a service token.
#[derive(Debug, Clone)]
pub struct ServicePrincipal {
    /// The token's tenant.
    pub tenant: TenantSlug,
    /// The token's record.
    pub token: ApiToken,
}

/// Creates, lists, revokes and checks service tokens.
#[derive(Clone)]
pub struct ApiTokens {
    store: DynStore,
    tenants: Arc<Directory>,
    clock: SharedClock,
}

impl ApiTokens {
    /// The service over its dependencies.
    #[must_use]
    pub fn new(store: DynStore, tenants: Arc<Directory>, clock: SharedClock) -> Self {
        Self {
            store,
            tenants,
            clock,
        }
    }

    /// Creates a token in `tenant` (an operator's command, or [`ApiTokens::create_by`]).
    pub async fn create(&self, tenant: &TenantSlug, new: NewApiToken) -> ServiceResult<Created> {
        check(&new)?;
        self.tenants
            .get(tenant)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        let now = self.clock.now_secs();
        let token = OpaqueToken::generate(TokenKind::ServiceApi, tenant, clock::random());
        let record = ApiToken {
            id: uuid::Uuid::new_v4().to_string(),
            name: new.name.trim().to_owned(),
            scopes: new.scopes,
            created_at: now,
            expires_at: new
                .expires_in_days
                .map(|days| now + i64::from(days) * 86_400),
            last_used_at: None,
            revoked_at: None,
        };
        let mut tx = self.store.write(tenant).await?;
        match tx.api_tokens().create(&record, &token.digest()).await {
            Err(StoreError::Conflict) => {
                return Err(ServiceError::Conflict {
                    code: "name_taken",
                    detail: "A token of this tenant already has this name.".to_owned(),
                })
            }
            other => other?,
        }
        tx.commit().await?;
        Ok(Created {
            record,
            token: token.expose().to_owned(),
        })
    }

    /// Creates a token in the caller's tenant, if the caller is one of its admins.
    pub async fn create_by(
        &self,
        caller: &Authenticated,
        new: NewApiToken,
        client: &Client,
    ) -> ServiceResult<Created> {
        require_admin(caller)?;
        let created = self.create(&caller.tenant, new).await?;
        self.audit(caller, "api_token_created", &created.record, client)
            .await?;
        Ok(created)
    }

    /// Every token of `tenant`, revoked ones included, newest first.
    pub async fn list(&self, tenant: &TenantSlug) -> ServiceResult<Vec<ApiToken>> {
        Ok(self.store.read(tenant).await?.api_tokens().list().await?)
    }

    /// [`ApiTokens::list`] for an admin of the caller's tenant.
    pub async fn list_by(&self, caller: &Authenticated) -> ServiceResult<Vec<ApiToken>> {
        require_admin(caller)?;
        self.list(&caller.tenant).await
    }

    /// Revokes the active token of `tenant` with this id or name (the revocation log tells the
    /// edge); `None` if there is no such active token.
    pub async fn revoke(
        &self,
        tenant: &TenantSlug,
        id_or_name: &str,
    ) -> ServiceResult<Option<ApiToken>> {
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let revoked = tx.api_tokens().revoke(id_or_name, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// [`ApiTokens::revoke`] by id, for an admin of the caller's tenant.
    pub async fn revoke_by(
        &self,
        caller: &Authenticated,
        id: &str,
        client: &Client,
    ) -> ServiceResult<()> {
        require_admin(caller)?;
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(ServiceError::NotFound);
        }
        let token = self
            .revoke(&caller.tenant, id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        self.audit(caller, "api_token_revoked", &token, client)
            .await
    }

    /// The service principal of a bearer token, if it is an active service token of an
    /// existing tenant (and, when the request names a tenant, of that one). Records the use at
    /// most once a minute.
    pub async fn authenticate(
        &self,
        bearer: &str,
        named_tenant: Option<&TenantSlug>,
    ) -> ServiceResult<ServicePrincipal> {
        let token = OpaqueToken::parse(TokenKind::ServiceApi, bearer)
            .map_err(|_| ServiceError::InvalidServiceToken)?;
        let tenant = token.tenant().clone();
        if !self.tenants.exists(&tenant).await? {
            return Err(ServiceError::InvalidServiceToken);
        }
        let now = self.clock.now_secs();
        let found = self
            .store
            .read(&tenant)
            .await?
            .api_tokens()
            .by_digest(&token.digest())
            .await?
            .filter(|t| t.is_active(now))
            .ok_or(ServiceError::InvalidServiceToken)?;
        if named_tenant.is_some_and(|named| *named != tenant) {
            return Err(ServiceError::TenantMismatch);
        }
        if found.last_used_at.is_none_or(|at| at <= now - 60) {
            let mut tx = self.store.write(&tenant).await?;
            tx.api_tokens().touch(&found.id, now).await?;
            tx.commit().await?;
        }
        Ok(ServicePrincipal {
            tenant,
            token: found,
        })
    }

    async fn audit(
        &self,
        caller: &Authenticated,
        event: &str,
        token: &ApiToken,
        client: &Client,
    ) -> ServiceResult<()> {
        let event = audit_event(
            event,
            client,
            Some(&caller.user_id),
            Some(&caller.session_id),
            format!("token={} name={}", token.id, token.name),
            self.clock.now_secs(),
        );
        let mut tx = self.store.write(&caller.tenant).await?;
        tx.audit().append(&event).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn check(new: &NewApiToken) -> ServiceResult<()> {
    let name = new.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ServiceError::InvalidInput {
            code: "invalid_name",
            detail: format!("A token's name is 1 to {MAX_NAME_CHARS} printable characters."),
        });
    }
    let scope_ok = |s: &String| {
        !s.is_empty()
            && s.len() <= MAX_SCOPE_BYTES
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":._-".contains(&b))
    };
    if new.scopes.len() > MAX_SCOPES || !new.scopes.iter().all(scope_ok) {
        return Err(ServiceError::InvalidInput {
            code: "invalid_scope",
            detail: format!(
                "At most {MAX_SCOPES} scopes, each 1 to {MAX_SCOPE_BYTES} letters, digits or `:._-`."
            ),
        });
    }
    if new.expires_in_days == Some(0) {
        return Err(ServiceError::InvalidInput {
            code: "invalid_expiry",
            detail: "A token's lifetime is at least one day.".to_owned(),
        });
    }
    Ok(())
}
