//! Bearer authentication: a verified access token of an active session of an enabled user, in
//! the tenant the request names (if it names one).

use std::sync::Arc;

use tessera_core::api::{VerifiedUser, VerifyAnswer};
use tessera_core::jwt::AccessClaims;
use tessera_core::model::{SessionId, TenantSlug, UserId};

use super::{ServiceError, ServiceResult};
use crate::clock::SharedClock;
use crate::keys::Keyring;
use crate::session_cache::SessionCache;
use crate::store::{DynStore, User};
use crate::tenants::Directory;

/// A request whose bearer token verified, whose session is active and whose user is enabled.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The verified claims.
    pub claims: AccessClaims,
    /// The token's user, as stored now.
    pub user: User,
    /// The token's tenant.
    pub tenant: TenantSlug,
    /// The token's user.
    pub user_id: UserId,
    /// The token's session.
    pub session_id: SessionId,
}

impl Authenticated {
    /// The verification answer for this token (the same body the edge gives).
    #[must_use]
    pub fn verify_answer(&self) -> VerifyAnswer {
        VerifyAnswer::new(
            VerifiedUser {
                id: self.user.id.to_string(),
                email: self.user.email.to_string(),
                role: self.user.role.clone(),
            },
            self.tenant.to_string(),
            self.claims.exp,
        )
    }
}

/// Authenticates bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    store: DynStore,
    tenants: Arc<Directory>,
    keys: Keyring,
    cache: Arc<SessionCache>,
    clock: SharedClock,
}

impl Authenticator {
    /// The service over its dependencies.
    #[must_use]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        keys: Keyring,
        cache: Arc<SessionCache>,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            tenants,
            keys,
            cache,
            clock,
        }
    }

    /// Verifies a bearer token and checks that its session is still active: a signed-out
    /// session's access token is refused from then on, not only when it expires. A request that
    /// names another tenant than the token's is refused.
    pub async fn authenticate(
        &self,
        bearer: &str,
        named_tenant: Option<&TenantSlug>,
    ) -> ServiceResult<Authenticated> {
        let now = self.clock.now_secs();
        let claims = self
            .keys
            .verifier()
            .await
            .verify(bearer, u64::try_from(now).unwrap_or(0))?;
        let tenant = TenantSlug::parse(&claims.tid).map_err(|_| ServiceError::SessionEnded)?;
        let user_id = UserId::parse(&claims.sub).map_err(|_| ServiceError::SessionEnded)?;
        let session_id = SessionId::parse(&claims.sid).map_err(|_| ServiceError::SessionEnded)?;
        if self.tenants.get(&tenant).await?.is_none() {
            return Err(ServiceError::SessionEnded);
        }
        let (session, user) = match self.cache.get(&tenant, &session_id) {
            Some(hit) => hit,
            None => {
                let found = self
                    .store
                    .read(&tenant)
                    .await?
                    .sessions()
                    .with_user(&session_id)
                    .await?;
                let Some((session, user)) = found else {
                    return Err(ServiceError::SessionEnded);
                };
                self.cache.put(&tenant, &session, &user);
                (session, user)
            }
        };
        if !session.is_active(now) || session.user_id != user_id || user.disabled {
            return Err(ServiceError::SessionEnded);
        }
        if named_tenant.is_some_and(|named| *named != tenant) {
            return Err(ServiceError::TenantMismatch);
        }
        Ok(Authenticated {
            claims,
            user,
            tenant,
            user_id,
            session_id,
        })
    }
}
