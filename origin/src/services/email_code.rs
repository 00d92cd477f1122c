//! Sign-in by emailed code: request one (answered the same whatever the account), then trade
//! it for a token pair.

use std::sync::Arc;

use tessera_core::lifetimes::{EMAIL_CODE_SECS, SESSION_TOKEN_SECS};
use tessera_core::model::{Email, SessionId, TenantSlug};
use tessera_core::otp;
use tessera_core::ratelimit::{account_subject, RouteClass};
use tessera_core::sign_in::{Credential, Verdict};

use super::mfa::sign_in_verdict;
use super::one_time::{mail_to, scope, OneTime};
use super::password_reset::{parse_request, queue_request};
use super::registration::{confirm_address, Proof};
use super::{Client, Issued, Revocations, ServiceError, ServiceResult, TokenIssuer};
use crate::clock::SharedClock;
use crate::limiter::Limiter;
use crate::mail::{requests, MailKind};
use crate::store::{DynStore, NewMail, Purpose, Tenant, TenantTx, User};
use crate::tenants::Directory;

/// Signs users in with emailed codes.
#[derive(Clone)]
pub struct EmailCodes {
    store: DynStore,
    tenants: Arc<Directory>,
    limiter: Arc<Limiter>,
    one_time: OneTime,
    tokens: TokenIssuer,
    clock: SharedClock,
    revocations: Revocations,
}

impl EmailCodes {
    /// The service over its dependencies.
    #[must_use]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        limiter: Arc<Limiter>,
        one_time: OneTime,
        tokens: TokenIssuer,
        clock: SharedClock,
        revocations: Revocations,
    ) -> Self {
        Self {
            store,
            tenants,
            limiter,
            one_time,
            tokens,
            clock,
            revocations,
        }
    }

    /// Queues a code request; the mail worker decides whether the account exists.
    pub async fn request(
        &self,
        named_tenant: Option<&TenantSlug>,
        tenant: &str,
        email: &str,
    ) -> ServiceResult<()> {
        let (tenant, email) = parse_request(named_tenant, tenant, email)?;
        queue_request(
            &self.store,
            &self.tenants,
            &self.limiter,
            &self.clock,
            &tenant,
            &email,
            requests::SIGN_IN_CODE,
        )
        .await
    }

    /// The mail worker's half of a request: a new code (voiding the previous one) and its
    /// email, or nothing when the address has no usable account.
    pub async fn resolve(
        &self,
        tx: &mut TenantTx,
        tenant: &Tenant,
        email: &Email,
    ) -> ServiceResult<Option<NewMail>> {
        let Some(user) = tx.users().by_email(email).await?.filter(|u| !u.disabled) else {
            return Ok(None);
        };
        let now = self.clock.now_secs();
        let purpose = Purpose::SignInCode;
        let (code, digest) = self.one_time.new_code(scope(purpose), &user.id);
        tx.secrets()
            .replace(
                &user.id,
                purpose,
                &digest,
                now,
                now + EMAIL_CODE_SECS.cast_signed(),
            )
            .await?;
        Ok(Some(mail_to(
            MailKind::SignInCode,
            tenant,
            &user,
            serde_json::json!({ "code": code }),
        )))
    }

    /// Trades a correct code for a token pair (`amr: ["otp"]`). A wrong code counts against
    /// the code; the fifth wrong one ends it. An account with a second factor is refused: a
    /// mailbox alone must not skip the password.
    pub async fn verify(
        &self,
        named_tenant: Option<&TenantSlug>,
        tenant: &str,
        email: &str,
        code: &str,
        client: &Client,
    ) -> ServiceResult<Issued> {
        let (mut tx, tenant, user, ended) = self.redeem(named_tenant, tenant, email, code).await?;
        let (session, refresh) = self
            .tokens
            .open_session(&mut tx, &user, &["otp"], client)
            .await?;
        tx.commit().await?;
        self.revocations.sessions_ended(&tenant.slug, &ended);
        self.tokens
            .issue(&tenant.slug, user, &session, &refresh)
            .await
    }

    /// [`EmailCodes::verify`] for VoiceStamp v1: the code buys one session token that lives
    /// 30 days ([`SESSION_TOKEN_SECS`]) and is never refreshed.
    pub async fn verify_for_session_token(
        &self,
        named_tenant: Option<&TenantSlug>,
        tenant: &str,
        email: &str,
        code: &str,
        client: &Client,
    ) -> ServiceResult<SessionToken> {
        let (mut tx, tenant, user, ended) = self.redeem(named_tenant, tenant, email, code).await?;
        let (session, _) = self
            .tokens
            .open_session_for(&mut tx, &user, &["otp"], client, SESSION_TOKEN_SECS)
            .await?;
        tx.commit().await?;
        self.revocations.sessions_ended(&tenant.slug, &ended);
        let (token, expires_at) = self
            .tokens
            .issue_session_token(&tenant.slug, &user, &session)
            .await?;
        Ok(SessionToken {
            token,
            expires_at,
            user,
        })
    }

    /// Spends a correct code in an uncommitted unit that the caller finishes; a wrong code is
    /// counted (and committed) here. Also answers the sessions the code's first proof of the
    /// mailbox ended, for the caller to announce once it commits.
    async fn redeem(
        &self,
        named_tenant: Option<&TenantSlug>,
        tenant: &str,
        email: &str,
        code: &str,
    ) -> ServiceResult<(TenantTx, Tenant, User, Vec<SessionId>)> {
        let (slug, email) =
            parse_request(named_tenant, tenant, email).map_err(|_| ServiceError::InvalidCode)?;
        self.limiter
            .enforce(RouteClass::CodeConfirm, &account_subject(&slug, &email))
            .await?;
        if !otp::is_code_shaped(code) {
            return Err(ServiceError::InvalidCode);
        }
        let tenant = self
            .tenants
            .get(&slug)
            .await?
            .ok_or(ServiceError::InvalidCode)?;
        let now = self.clock.now_secs();
        let purpose = Purpose::SignInCode;
        let mut tx = self.store.write(&slug).await?;
        let user = tx
            .users()
            .by_email(&email)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(ServiceError::InvalidCode)?;
        let secret = tx
            .secrets()
            .of_user(&user.id, purpose)
            .await?
            .ok_or(ServiceError::InvalidCode)?;
        let expected = self.one_time.code_digest(scope(purpose), &user.id, code);
        let open = otp::still_open(secret.expires_at, secret.attempts, now);
        if !open || !tessera_core::secret::ct_eq(&expected, &secret.digest) {
            if open && otp::after_wrong_try(secret.attempts) == otp::WrongTry::Counted {
                tx.secrets().count_attempt(&user.id, purpose).await?;
            } else {
                tx.secrets().remove(&user.id, purpose).await?;
            }
            tx.commit().await?;
            return Err(ServiceError::InvalidCode);
        }
        tx.secrets().remove(&user.id, purpose).await?;
        // The code came to the address: it is the user's. A first proof takes the password and
        // the authenticator set before it, so it comes before the rule that asks for factors.
        let mut user = user;
        let ended = confirm_address(&mut tx, &tenant, &user, Proof::EmailCode, now).await?;
        user.email_verified_at.get_or_insert(now);
        match sign_in_verdict(&mut tx, &tenant, &user, Credential::Mailbox)
            .await?
            .0
        {
            Verdict::Open => {}
            Verdict::SecondFactorRequired | Verdict::Challenge | Verdict::EnrolOnly => {
                tx.commit().await?;
                self.revocations.sessions_ended(&tenant.slug, &ended);
                return Err(ServiceError::SecondFactorRequired);
            }
            // A disabled account was not looked up above; the mailbox is the confirmation.
            Verdict::Disabled | Verdict::EmailNotVerified => return Err(ServiceError::InvalidCode),
        }
        Ok((tx, tenant, user, ended))
    }
}

/// A VoiceStamp session token. `Debug` never prints it.
pub struct SessionToken {
    /// The token (a JWT bound to its session).
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Its user.
    pub user: User,
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionToken")
            .field("expires_at", &self.expires_at)
            .field("user", &self.user.id)
            .finish_non_exhaustive()
    }
}
