//! Bearer authentication: a verified access token of an active session of an enabled user, in
//! the tenant the request names (if it names one).

use std::sync::Arc;

use quick_cache::sync::Cache;
use tessera_core::jwt::ENROL_SCOPE;
use tessera_core::jwt::{AccessClaims, Verified};
use tessera_core::lifetimes::REFRESH_FAMILY_SECS;
use tessera_core::model::{SessionId, TenantSlug, UserId};
use tessera_core::policy::Api;
use tessera_core::secret::sha256;

use super::{ServiceError, ServiceResult};
use crate::clock::SharedClock;
use crate::keys::Keyring;
use crate::revocation_index::RevocationIndex;
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

/// Which tokens a route accepts beside plain access tokens.
#[derive(Clone, Copy)]
enum Mode {
    /// Only valid, unrestricted access tokens.
    Plain,
    /// Also a token restricted to enrolling a second factor.
    Enrol,
    /// Also an expired access token of an active session.
    Refresh,
}

/// Authenticates bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    store: DynStore,
    tenants: Arc<Directory>,
    keys: Keyring,
    cache: Arc<SessionCache>,
    revoked: Arc<RevocationIndex>,
    verified: Option<Arc<TokenCache>>,
    clock: SharedClock,
}

/// Tokens already verified, by SHA-256 of the whole token: a token is presented many times in
/// its 15 minutes, and its Ed25519 check is the cost of every presentation. An entry is used
/// only while core's `recheck` holds (its key still in the key ring, its `exp` not passed), so
/// a key removed from the ring takes its tokens with it; past the bound, quick_cache evicts by
/// recency and frequency (a token presented once goes before one presented often).
type TokenCache = Cache<[u8; 32], Arc<Verified>>;

impl Authenticator {
    /// The service over its dependencies.
    #[must_use]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        keys: Keyring,
        cache: Arc<SessionCache>,
        revoked: Arc<RevocationIndex>,
        token_cache_entries: usize,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            tenants,
            keys,
            cache,
            revoked,
            verified: (token_cache_entries > 0).then(|| Arc::new(Cache::new(token_cache_entries))),
            clock,
        }
    }

    /// The token's claims: from the cache of verified tokens while they still hold, otherwise
    /// by full verification.
    async fn verify(&self, bearer: &str, now: u64) -> ServiceResult<AccessClaims> {
        let verifier = self.keys.verifier().await;
        let Some(cache) = &self.verified else {
            return Ok(verifier.verify(bearer, now)?);
        };
        let digest = sha256(bearer.as_bytes());
        if let Some(hit) = cache.get(&digest) {
            if verifier.recheck(&hit, now).is_ok() {
                return Ok(hit.claims.clone());
            }
            cache.remove(&digest);
        }
        let verified = verifier.verify_keyed(bearer, now)?;
        let claims = verified.claims.clone();
        cache.insert(digest, Arc::new(verified));
        Ok(claims)
    }

    /// Forgets what the caches hold for nothing: sessions past the session cache's TTL and
    /// tokens past their expiry (and the verifier's leeway). Answers [`Self::cache_sizes`].
    pub fn sweep_caches(&self) -> (usize, usize) {
        self.cache.sweep();
        let now = u64::try_from(self.clock.now_secs()).unwrap_or(0);
        if let Some(verified) = &self.verified {
            verified.retain(|_, token| {
                token
                    .claims
                    .exp
                    .saturating_add(tessera_core::jwt::Verifier::DEFAULT_LEEWAY_SECS)
                    > now
            });
        }
        self.cache_sizes()
    }

    /// How many entries the session cache and the verified-token cache hold.
    #[must_use]
    pub fn cache_sizes(&self) -> (usize, usize) {
        let tokens = self.verified.as_ref().map_or(0, |verified| verified.len());
        (self.cache.len(), tokens)
    }

    /// Answers a verification (`GET /api/auth/verify`, VoiceStamp's too) from the token alone:
    /// core's strict verification, then the revocation index, then the named tenant; no tenant
    /// database is read, as at the edge, and the answer is the token's claims (docs/API.md).
    /// A user disabled or a session ended by any means is in the index: every session end is
    /// written to the revocation log in the transaction that ends it.
    pub async fn verify_claims(
        &self,
        bearer: &str,
        named_tenant: Option<&TenantSlug>,
    ) -> ServiceResult<AccessClaims> {
        let now = self.clock.now_secs();
        let claims = self.verify(bearer, u64::try_from(now).unwrap_or(0)).await?;
        if claims.is_restricted() {
            return Err(ServiceError::RestrictedToken);
        }
        if self.revoked.is_revoked(&claims.tid, &claims.sid, now) {
            return Err(ServiceError::SessionEnded);
        }
        if named_tenant.is_some_and(|named| named.as_str() != claims.tid) {
            return Err(ServiceError::TenantMismatch);
        }
        Ok(claims)
    }

    /// Verifies a bearer token and checks that its session is still active: a signed-out
    /// session's access token is refused from then on, not only when it expires. A request that
    /// names another tenant than the token's is refused.
    pub async fn authenticate(
        &self,
        bearer: &str,
        named_tenant: Option<&TenantSlug>,
    ) -> ServiceResult<Authenticated> {
        self.authenticate_scoped(bearer, named_tenant, Mode::Plain)
            .await
    }

    /// As [`Authenticator::authenticate`], for the team/vault API's `GET /api/refresh`, which
    /// trades its `userToken` for a new one: also accepting an access token that has expired,
    /// as long as its session is active, but only of a session that API opened. An access token
    /// of any other session (found in a log, say) must not renew for the rest of its week.
    pub async fn authenticate_for_refresh(
        &self,
        bearer: &str,
        named_tenant: Option<&TenantSlug>,
    ) -> ServiceResult<Authenticated> {
        self.authenticate_scoped(bearer, named_tenant, Mode::Refresh)
            .await
    }

    /// As [`Authenticator::authenticate`], also accepting a token restricted to enrolling a
    /// second factor (the only routes that do: TOTP enrolment and its confirmation).
    pub async fn authenticate_for_enrolment(
        &self,
        bearer: &str,
        named_tenant: Option<&TenantSlug>,
    ) -> ServiceResult<Authenticated> {
        self.authenticate_scoped(bearer, named_tenant, Mode::Enrol)
            .await
    }

    async fn authenticate_scoped(
        &self,
        bearer: &str,
        named_tenant: Option<&TenantSlug>,
        mode: Mode,
    ) -> ServiceResult<Authenticated> {
        let now = self.clock.now_secs();
        let now_u = u64::try_from(now).unwrap_or(0);
        let claims = match mode {
            Mode::Refresh => {
                self.keys
                    .verifier()
                    .await
                    .verify_with_grace(bearer, now_u, REFRESH_FAMILY_SECS)?
            }
            Mode::Plain | Mode::Enrol => self.verify(bearer, now_u).await?,
        };
        let allowed_scope = matches!(mode, Mode::Enrol).then_some(ENROL_SCOPE);
        if claims.is_restricted() && claims.scope.as_deref() != allowed_scope {
            return Err(ServiceError::RestrictedToken);
        }
        let tenant = TenantSlug::parse(&claims.tid).map_err(|_| ServiceError::SessionEnded)?;
        let user_id = UserId::parse(&claims.sub).map_err(|_| ServiceError::SessionEnded)?;
        let session_id = SessionId::parse(&claims.sid).map_err(|_| ServiceError::SessionEnded)?;
        if !self.tenants.exists(&tenant).await?
            || self.revoked.is_revoked(tenant.as_str(), &claims.sid, now)
        {
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
        if matches!(mode, Mode::Refresh) && session.api != Api::TeamVault.name() {
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
