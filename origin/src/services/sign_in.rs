//! Password sign-in.

use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use tessera_core::model::{Email, TenantSlug};
use tessera_core::ratelimit::{account_subject, RouteClass};
use tessera_core::sign_in::{Credential, Verdict};

use super::mfa::sign_in_verdict;
use super::{
    audit_event, Challenge, Client, Issued, Mfa, ServiceError, ServiceResult, TokenIssuer,
};
use crate::clock::SharedClock;
use crate::limiter::Limiter;
use crate::password::Hasher;
use crate::store::DynStore;
use crate::tenants::Directory;
use tessera_core::jwt::ENROL_SCOPE;

/// A sign-in attempt as the client sent it: nothing parsed yet, so that a malformed tenant or
/// email fails exactly like a wrong password.
pub struct Attempt<'a> {
    /// The tenant the request's headers name (`X-Tenant`, subdomain), if any.
    pub named_tenant: Option<&'a TenantSlug>,
    /// The tenant the body names.
    pub tenant: &'a str,
    /// The email.
    pub email: &'a str,
    /// The password.
    pub password: SecretString,
}

/// What a correct password leads to. `Debug` never prints a token.
pub enum SignedIn {
    /// Signed in.
    Tokens(Box<Issued>),
    /// The account needs its second factor first; its code was emailed.
    SecondFactor(Challenge),
    /// The tenant requires a second factor and the user has none: a 15-minute access token
    /// good only for enrolling an authenticator app, and no refresh token.
    EnrolmentRequired {
        /// The restricted access token.
        access_token: String,
    },
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tokens(issued) => f.debug_tuple("Tokens").field(issued).finish(),
            Self::SecondFactor(challenge) => {
                f.debug_tuple("SecondFactor").field(challenge).finish()
            }
            Self::EnrolmentRequired { .. } => f.write_str("EnrolmentRequired { .. }"),
        }
    }
}

/// Signs users in with tenant, email and password.
#[derive(Clone)]
pub struct SignIn {
    store: DynStore,
    tenants: Arc<Directory>,
    hasher: Hasher,
    limiter: Arc<Limiter>,
    tokens: TokenIssuer,
    mfa: Mfa,
    clock: SharedClock,
}

impl SignIn {
    /// The service over its dependencies.
    #[must_use]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        hasher: Hasher,
        limiter: Arc<Limiter>,
        tokens: TokenIssuer,
        mfa: Mfa,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            tenants,
            hasher,
            limiter,
            tokens,
            mfa,
            clock,
        }
    }

    /// Signs in. Every credential failure (unknown tenant, unknown email, wrong password,
    /// disabled account) is the same `InvalidCredentials` after the same argon2 work. Only
    /// past a correct password does the answer say more: the address must be confirmed first
    /// (when the tenant requires it), or a second factor is due.
    pub async fn login(&self, attempt: Attempt<'_>, client: &Client) -> ServiceResult<SignedIn> {
        self.login_counted(attempt, client, true).await
    }

    /// As [`SignIn::login`], for an API with no second step (team/vault): an account that
    /// would need one is refused with `SecondFactorRequired` after its correct password, and
    /// no challenge is emailed and no session opened for a step the client cannot take.
    pub async fn login_in_one_step(
        &self,
        attempt: Attempt<'_>,
        client: &Client,
    ) -> ServiceResult<Box<Issued>> {
        match self.login_counted(attempt, client, false).await? {
            SignedIn::Tokens(issued) => Ok(issued),
            // Refused inside, before a challenge or a session exists.
            SignedIn::SecondFactor(_) | SignedIn::EnrolmentRequired { .. } => {
                Err(ServiceError::SecondFactorRequired)
            }
        }
    }

    async fn login_counted(
        &self,
        attempt: Attempt<'_>,
        client: &Client,
        second_step: bool,
    ) -> ServiceResult<SignedIn> {
        let started = std::time::Instant::now();
        let result = self.login_inner(attempt, client, second_step).await;
        let outcome = match &result {
            Ok(SignedIn::Tokens(_)) => "success",
            Ok(SignedIn::SecondFactor(_)) => "mfa_required",
            Ok(SignedIn::EnrolmentRequired { .. }) => "mfa_enrolment_required",
            Err(error) => error.outcome(),
        };
        metrics::counter!("tessera_sign_in_total", "outcome" => outcome).increment(1);
        metrics::histogram!("tessera_sign_in_seconds").record(started.elapsed().as_secs_f64());
        result
    }

    async fn login_inner(
        &self,
        attempt: Attempt<'_>,
        client: &Client,
        second_step: bool,
    ) -> ServiceResult<SignedIn> {
        let slug = TenantSlug::parse(attempt.tenant).ok();
        if attempt
            .named_tenant
            .is_some_and(|named| slug.as_ref() != Some(named))
        {
            return Err(ServiceError::TenantMismatch);
        }
        let email = Email::parse(attempt.email).ok();
        if let (Some(slug), Some(email)) = (&slug, &email) {
            self.limiter
                .enforce(RouteClass::Credential, &account_subject(slug, email))
                .await?;
        }
        let tenant = match &slug {
            Some(slug) => self.tenants.get(slug).await?,
            None => None,
        };
        let user = match (&tenant, &email) {
            (Some(tenant), Some(email)) => {
                self.store
                    .read(&tenant.slug)
                    .await?
                    .users()
                    .by_email(email)
                    .await?
            }
            _ => None,
        };
        let usable = user
            .as_ref()
            .filter(|u| !u.disabled && u.password_hash.is_some());
        let password = attempt.password;
        let verified = self
            .hasher
            .verify(
                password.expose_secret().into(),
                usable.and_then(|u| u.password_hash.clone()),
            )
            .await?;
        let (Some(tenant), Some(user), true) = (&tenant, usable, verified.matched) else {
            if let (Some(tenant), Some(email)) = (&tenant, &email) {
                self.audit_failure(&tenant.slug, email, user.as_ref().map(|u| u.id), client);
            }
            return Err(ServiceError::InvalidCredentials);
        };
        // Hashed before the unit starts: SQLite's writer lock is not held across argon2.
        let rehashed = if verified.needs_rehash {
            self.hasher.hash(password).await.ok()
        } else {
            None
        };
        let mut tx = self.store.write(&tenant.slug).await?;
        let credential = if second_step {
            Credential::Password
        } else {
            Credential::PasswordInOneStep
        };
        if let Some(hash) = rehashed {
            tx.users()
                .rehash(&user.id, &hash, self.clock.now_secs())
                .await?;
        }
        // A refusal drops the unit, and the new hash with it.
        let (verdict, factors) = sign_in_verdict(&mut tx, tenant, user, credential).await?;
        match verdict {
            Verdict::Disabled => return Err(ServiceError::InvalidCredentials),
            Verdict::EmailNotVerified => return Err(ServiceError::EmailNotVerified),
            Verdict::SecondFactorRequired => {
                tx.commit().await?;
                return Err(ServiceError::SecondFactorRequired);
            }
            Verdict::EnrolOnly => {
                let (session, _) = self
                    .tokens
                    .open_session(&mut tx, user, &["pwd"], client)
                    .await?;
                tx.commit().await?;
                let access_token = self
                    .tokens
                    .issue_restricted(&tenant.slug, user, &session, ENROL_SCOPE)
                    .await?;
                return Ok(SignedIn::EnrolmentRequired { access_token });
            }
            Verdict::Challenge => {
                let challenge = self
                    .mfa
                    .challenge(&mut tx, tenant, user, factors, client)
                    .await?;
                tx.commit().await?;
                return Ok(SignedIn::SecondFactor(challenge));
            }
            Verdict::Open => {}
        }
        let (session, refresh) = self
            .tokens
            .open_session(&mut tx, user, &["pwd"], client)
            .await?;
        tx.commit().await?;
        self.tokens
            .issue(&tenant.slug, user.clone(), &session, &refresh)
            .await
            .map(|issued| SignedIn::Tokens(Box::new(issued)))
    }

    /// Records a failed sign-in in an existing tenant, off the request path, so that a failure
    /// in an existing tenant takes no longer to answer than one in a tenant that does not exist.
    fn audit_failure(
        &self,
        tenant: &TenantSlug,
        email: &Email,
        user: Option<tessera_core::model::UserId>,
        client: &Client,
    ) {
        let event = audit_event(
            "login_failed",
            client,
            user.as_ref(),
            None,
            format!("email={email}"),
            self.clock.now_secs(),
        );
        let (store, tenant) = (self.store.clone(), tenant.clone());
        tokio::spawn(async move {
            let written = async {
                let mut tx = store.write(&tenant).await?;
                tx.audit().append(&event).await?;
                tx.commit().await
            };
            if let Err(error) = written.await {
                tracing::error!(%error, "audit write failed");
            }
        });
    }
}
