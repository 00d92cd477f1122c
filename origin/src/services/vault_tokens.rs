//! The team/vault API's token pair: a `userToken` (an access token of the session) and a
//! `vaultToken` (an access token of the same session naming the user's default team and the
//! user's role in it). The rules of when a pair is handed out live here, not in the adapter.

use super::mfa::sign_in_verdict;
use super::{
    audit_event, Authenticated, Authenticator, Client, Issued, Revocations, ServiceError,
    ServiceResult, TokenIssuer,
};
use crate::clock::SharedClock;
use crate::store::{DynStore, Session, Tenant, User};
use tessera_core::model::TenantSlug;
use tessera_core::refresh::idle_expired;
use tessera_core::sign_in::{Credential, Verdict};

/// A `userToken` and a `vaultToken` of one session. `Debug` never prints them.
pub struct VaultPair {
    /// The access token.
    pub user_token: String,
    /// The team token.
    pub vault_token: String,
}

impl std::fmt::Debug for VaultPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultPair { .. }")
    }
}

/// Hands out team/vault token pairs.
#[derive(Clone)]
pub struct VaultTokens {
    store: DynStore,
    tokens: TokenIssuer,
    authenticate: Authenticator,
    revocations: Revocations,
    clock: SharedClock,
    idle_secs: u64,
}

impl VaultTokens {
    /// The service over its dependencies; `idle_secs` is how long a session may go without
    /// renewal (0: no limit), as for refresh tokens.
    #[must_use]
    pub fn new(
        store: DynStore,
        tokens: TokenIssuer,
        authenticate: Authenticator,
        revocations: Revocations,
        clock: SharedClock,
        idle_secs: u64,
    ) -> Self {
        Self {
            store,
            tokens,
            authenticate,
            revocations,
            clock,
            idle_secs,
        }
    }

    /// The pair for a sign-in that issued `issued` (its refresh token is not part of this
    /// API: the `userToken` itself is refreshed).
    pub async fn for_sign_in(&self, issued: &Issued) -> ServiceResult<VaultPair> {
        self.pair(
            &issued.tenant,
            &issued.user,
            &issued.session,
            Some(issued.access_token.clone()),
        )
        .await
    }

    /// Signs in a user who has just registered: the tenant's rules for sign-in hold (a tenant
    /// that requires a confirmed address answers `EmailNotVerified`, one that requires a second
    /// factor `SecondFactorRequired`).
    pub async fn for_new_account(
        &self,
        tenant: &Tenant,
        user: &User,
        client: &Client,
    ) -> ServiceResult<VaultPair> {
        self.open(tenant, user, Credential::PasswordInOneStep, client)
            .await
    }

    /// Signs in a user who has just confirmed their address with the emailed link (the link
    /// proves the mailbox, not the password: an account with a second factor, or in a tenant
    /// that requires one, is refused with `SecondFactorRequired`; a disabled account with
    /// `InvalidCredentials`).
    pub async fn for_confirmed_address(
        &self,
        tenant: &Tenant,
        user: &User,
        client: &Client,
    ) -> ServiceResult<VaultPair> {
        self.open(tenant, user, Credential::Mailbox, client).await
    }

    /// A new pair for the session of `bearer`, a `userToken` of a session this API opened,
    /// which may have expired as long as its session is active and has not gone unused for
    /// longer than the idle limit (then it ends). The renewal is the session's last use.
    pub async fn refresh(
        &self,
        bearer: &str,
        named_tenant: Option<&TenantSlug>,
        client: &Client,
    ) -> ServiceResult<VaultPair> {
        let caller = self
            .authenticate
            .authenticate_for_refresh(bearer, named_tenant)
            .await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        let session = tx
            .sessions()
            .by_id(&caller.session_id)
            .await?
            .filter(|s| s.is_active(now))
            .ok_or(ServiceError::SessionEnded)?;
        if idle_expired(session.last_used_at, now, self.idle_secs) {
            tx.sessions().revoke(&session.id, "idle", now).await?;
            let event = audit_event(
                "session_idle_timeout",
                client,
                Some(&caller.user_id),
                Some(&session.id),
                String::new(),
                now,
            );
            tx.audit().append(&event).await?;
            tx.commit().await?;
            self.revocations.session_ended(&caller.tenant, &session.id);
            return Err(ServiceError::SessionEnded);
        }
        tx.sessions().touch(&session.id, now).await?;
        tx.commit().await?;
        self.pair(&caller.tenant, &caller.user, &session, None)
            .await
    }

    /// A new pair for the caller's session.
    pub async fn renew(&self, caller: &Authenticated) -> ServiceResult<VaultPair> {
        let session = self
            .store
            .read(&caller.tenant)
            .await?
            .sessions()
            .by_id(&caller.session_id)
            .await?
            .ok_or(ServiceError::SessionEnded)?;
        self.pair(&caller.tenant, &caller.user, &session, None)
            .await
    }

    async fn open(
        &self,
        tenant: &Tenant,
        user: &User,
        credential: Credential,
        client: &Client,
    ) -> ServiceResult<VaultPair> {
        let mut tx = self.store.write(&tenant.slug).await?;
        match sign_in_verdict(&mut tx, tenant, user, credential).await?.0 {
            Verdict::Open => {}
            Verdict::Disabled => return Err(ServiceError::InvalidCredentials),
            Verdict::EmailNotVerified => return Err(ServiceError::EmailNotVerified),
            // No second step in this API.
            Verdict::SecondFactorRequired | Verdict::Challenge | Verdict::EnrolOnly => {
                return Err(ServiceError::SecondFactorRequired)
            }
        }
        let (session, _) = self
            .tokens
            .open_session(&mut tx, user, credential.amr(), client)
            .await?;
        tx.commit().await?;
        self.pair(&tenant.slug, user, &session, None).await
    }

    async fn pair(
        &self,
        tenant: &TenantSlug,
        user: &User,
        session: &Session,
        user_token: Option<String>,
    ) -> ServiceResult<VaultPair> {
        let teams = self
            .store
            .read(tenant)
            .await?
            .teams()
            .of_user(&user.id)
            .await?;
        let user_token = match user_token {
            Some(token) => token,
            None => self.tokens.issue_access(tenant, user, session).await?,
        };
        let vault_token = self
            .tokens
            .issue_vault_token(tenant, user, session, teams.first())
            .await?;
        Ok(VaultPair {
            user_token,
            vault_token,
        })
    }
}
