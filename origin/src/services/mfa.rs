//! The second factor after a correct password: challenges (an mfa_token and an emailed code),
//! their verification, and turning the emailed factor on or off.

use std::sync::Arc;

use secrecy::SecretString;
use tessera_core::lifetimes::MFA_CHALLENGE_SECS;
use tessera_core::otp;
use tessera_core::token::{OpaqueToken, TokenKind};

use super::one_time::{mail_to, OneTime, MFA_SCOPE};
use super::passkeys::Passkeys;
use super::totp::{Accepted, TotpFactor};
use super::{
    audit_event, caller_tenant, confirm_factor_change, end_other_sessions, tell_owner_of_factor,
    Authenticated, Client, Issued, Revocations, ServiceError, ServiceResult, TokenIssuer,
};
use crate::clock::SharedClock;
use crate::limiter::Limiter;
use crate::mail::MailKind;
use crate::password::Hasher;
use crate::store::{DynStore, Tenant, TenantTx, User};
use crate::tenants::Directory;
use tessera_core::ratelimit::{mfa_account_subject, RouteClass};

/// A code emailed with the challenge.
pub const EMAIL_METHOD: &str = "email";

/// A code of the user's authenticator app.
pub const TOTP_METHOD: &str = "totp";

/// One of the user's recovery codes.
pub const RECOVERY_METHOD: &str = "recovery_code";

/// One of the user's passkeys.
pub const WEBAUTHN_METHOD: &str = "webauthn";

/// An answer to a challenge.
pub enum Answer<'a> {
    /// An emailed, TOTP or recovery code.
    Code(&'a str),
    /// A passkey's assertion, to the options of `POST /api/auth/mfa/webauthn/options`.
    Passkey(&'a webauthn_rs::prelude::PublicKeyCredential),
}

/// The second factors `user` has set up, which their sign-in must be completed with: the
/// authenticator app (with its recovery codes) when one is active, an emailed code when they
/// turned that on. Empty when none; a tenant that requires a second factor then gives the user
/// an enrol-only token instead of a session (see `services/sign_in.rs`).
pub async fn second_factors(tx: &mut TenantTx, user: &User) -> ServiceResult<Vec<&'static str>> {
    let mut methods = Vec::new();
    if tx.totp().active(&user.id).await? {
        methods.extend([TOTP_METHOD, RECOVERY_METHOD]);
    }
    if user.mfa_email {
        methods.push(EMAIL_METHOD);
    }
    if Passkeys::any(tx, &user.id).await? {
        methods.push(WEBAUTHN_METHOD);
    }
    Ok(methods)
}

/// Core's sign-in policy for `user` of `tenant` signing in with `credential`, over the facts
/// read in `tx`; also answers the user's second factors (a challenge offers them). Every way of
/// signing in asks this, so none can skip a rule.
pub async fn sign_in_verdict(
    tx: &mut TenantTx,
    tenant: &crate::store::Tenant,
    user: &User,
    credential: tessera_core::sign_in::Credential,
) -> ServiceResult<(tessera_core::sign_in::Verdict, Vec<&'static str>)> {
    // A passkey is a second factor itself: which others the account has decides nothing, and
    // the two look-ups are saved on the fastest way in.
    let factors = if credential == tessera_core::sign_in::Credential::Passkey {
        Vec::new()
    } else {
        second_factors(tx, user).await?
    };
    let facts = tessera_core::sign_in::Facts {
        disabled: user.disabled,
        email_verified: user.email_verified(),
        has_second_factor: !factors.is_empty(),
        require_verified_email: tenant.policy.require_verified_email,
        require_mfa: tenant.policy.require_mfa,
    };
    Ok((tessera_core::sign_in::decide(credential, facts), factors))
}

/// A sign-in waiting for its second factor. `Debug` never prints the token.
#[derive(Clone)]
pub struct Challenge {
    /// The opaque token that names the challenge (never an access token).
    pub mfa_token: String,
    /// Methods the user may answer with.
    pub methods: Vec<&'static str>,
    /// Seconds until the challenge ends.
    pub expires_in: u64,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge")
            .field("methods", &self.methods)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Second-factor challenges and settings.
#[derive(Clone)]
pub struct Mfa {
    store: DynStore,
    tenants: Arc<Directory>,
    hasher: Hasher,
    one_time: OneTime,
    tokens: TokenIssuer,
    totp: TotpFactor,
    limiter: Arc<Limiter>,
    revocations: Revocations,
    passkeys: Passkeys,
    clock: SharedClock,
}

impl Mfa {
    /// The service over its dependencies.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        hasher: Hasher,
        one_time: OneTime,
        tokens: TokenIssuer,
        totp: TotpFactor,
        limiter: Arc<Limiter>,
        revocations: Revocations,
        passkeys: Passkeys,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            tenants,
            hasher,
            one_time,
            tokens,
            totp,
            limiter,
            revocations,
            passkeys,
            clock,
        }
    }

    /// Opens a challenge's passkey answer: the options for the user's passkeys (the challenge
    /// must offer `webauthn`). Charged per account as an answer is.
    pub async fn webauthn_options(&self, mfa_token: &str) -> ServiceResult<serde_json::Value> {
        let (tenant, digest) = self.open_challenge(mfa_token).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&tenant.slug).await?;
        let challenge = tx
            .secrets()
            .challenge(&digest)
            .await?
            .filter(|c| otp::still_open(c.expires_at, c.attempts, now))
            .filter(|c| c.methods.iter().any(|m| m == WEBAUTHN_METHOD))
            .ok_or(ServiceError::InvalidMfaToken)?;
        let options = self
            .passkeys
            .begin_second_factor(&mut tx, &tenant, &challenge.user_id, &digest, now)
            .await?;
        tx.commit().await?;
        Ok(options)
    }

    /// The tenant and digest of a presented challenge token, once its per-account budget is
    /// charged.
    async fn open_challenge(&self, mfa_token: &str) -> ServiceResult<(Tenant, [u8; 32])> {
        let token = OpaqueToken::parse(TokenKind::MfaChallenge, mfa_token)
            .map_err(|_| ServiceError::InvalidMfaToken)?;
        let tenant = self
            .tenants
            .get(token.tenant())
            .await?
            .ok_or(ServiceError::InvalidMfaToken)?;
        // Per account as well as per IP, keyed by the token's account tag as at the edge.
        if let Some(subject) = mfa_account_subject(mfa_token) {
            self.limiter
                .enforce(RouteClass::CodeConfirm, &subject)
                .await?;
        }
        Ok((tenant, self.one_time.token_digest(&token)))
    }

    /// Opens a challenge for `user` in `tx`, answerable by `methods` (from
    /// [`second_factors`]), and queues the emailed code when email is one of them.
    pub async fn challenge(
        &self,
        tx: &mut TenantTx,
        tenant: &Tenant,
        user: &User,
        methods: Vec<&'static str>,
        client: &Client,
    ) -> ServiceResult<Challenge> {
        let now = self.clock.now_secs();
        let (token, digest) = self.one_time.new_challenge(&tenant.slug, &user.id);
        let code_digest = if methods.contains(&EMAIL_METHOD) {
            let (code, code_digest) = self.one_time.new_code(MFA_SCOPE, &user.id);
            let mail = mail_to(
                MailKind::MfaCode,
                tenant,
                user,
                serde_json::json!({ "code": code }),
            );
            tx.outbox()
                .enqueue(&mail, self.clock.now_millis_i64())
                .await?;
            Some(code_digest)
        } else {
            None
        };
        tx.secrets()
            .create_challenge(
                &digest,
                &user.id,
                &methods,
                code_digest.as_ref().map(<[u8; 32]>::as_slice),
                now,
                now + MFA_CHALLENGE_SECS.cast_signed(),
            )
            .await?;
        let event = audit_event(
            "mfa_challenged",
            client,
            Some(&user.id),
            None,
            methods.join(" "),
            now,
        );
        tx.audit().append(&event).await?;
        Ok(Challenge {
            mfa_token: token.expose().to_owned(),
            methods,
            expires_in: MFA_CHALLENGE_SECS,
        })
    }

    /// Answers a challenge with an emailed code, a TOTP code, a recovery code or a passkey.
    /// A wrong one counts against the challenge (the fifth ends it); the right one ends it and
    /// signs in with `amr: ["pwd", "otp"]` (`["pwd", "recovery"]` for a recovery code,
    /// `["pwd", "webauthn"]` for a passkey).
    pub async fn verify(
        &self,
        mfa_token: &str,
        answer: Answer<'_>,
        client: &Client,
    ) -> ServiceResult<Issued> {
        let (tenant, digest) = self.open_challenge(mfa_token).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&tenant.slug).await?;
        let challenge = tx
            .secrets()
            .challenge(&digest)
            .await?
            .ok_or(ServiceError::InvalidMfaToken)?;
        if !otp::still_open(challenge.expires_at, challenge.attempts, now) {
            tx.secrets().remove_challenge(&digest, now).await?;
            tx.commit().await?;
            return Err(ServiceError::InvalidMfaToken);
        }
        let offers = |method: &str| challenge.methods.iter().any(|m| m == method);
        let mut refused = ("mfa_failed", String::new());
        let accepted = match answer {
            Answer::Code(code) => {
                let expected = self
                    .one_time
                    .code_digest(MFA_SCOPE, &challenge.user_id, code);
                let emailed = otp::is_code_shaped(code)
                    && challenge
                        .code_digest
                        .as_deref()
                        .is_some_and(|stored| tessera_core::secret::ct_eq(&expected, stored));
                if emailed {
                    Some("otp")
                } else if offers(TOTP_METHOD) {
                    match self.totp.check(&mut tx, &challenge.user_id, code).await? {
                        Some(Accepted::Totp) => Some("otp"),
                        Some(Accepted::RecoveryCode) => Some("recovery"),
                        None => None,
                    }
                } else {
                    None
                }
            }
            Answer::Passkey(credential) if offers(WEBAUTHN_METHOD) => {
                match self
                    .passkeys
                    .finish_second_factor(
                        &mut tx,
                        &tenant,
                        &challenge.user_id,
                        &digest,
                        credential,
                        now,
                    )
                    .await?
                {
                    Ok(()) => Some("webauthn"),
                    Err((event, detail)) => {
                        refused = (event, detail);
                        None
                    }
                }
            }
            Answer::Passkey(_) => None,
        };
        let Some(second) = accepted else {
            if otp::after_wrong_try(challenge.attempts) == otp::WrongTry::Counted {
                tx.secrets().count_challenge_attempt(&digest).await?;
            } else {
                tx.secrets().remove_challenge(&digest, now).await?;
            }
            let event = audit_event(
                refused.0,
                client,
                Some(&challenge.user_id),
                None,
                refused.1,
                now,
            );
            tx.audit().append(&event).await?;
            tx.commit().await?;
            return Err(ServiceError::InvalidCode);
        };
        tx.secrets().remove_challenge(&digest, now).await?;
        let user = tx
            .users()
            .by_id(&challenge.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(ServiceError::InvalidMfaToken)?;
        let (session, refresh) = self
            .tokens
            .open_session(&mut tx, &user, &["pwd", second], client)
            .await?;
        tx.commit().await?;
        self.tokens
            .issue(&tenant.slug, user, &session, &refresh)
            .await
    }

    /// Turns the caller's emailed second factor on or off, confirmed by their password, and
    /// tells the owner by email when it changed. Turning it on needs a confirmed address: a code
    /// sent to a mistyped address would lock the user out.
    pub async fn set_email(
        &self,
        caller: &Authenticated,
        enabled: bool,
        password: Option<SecretString>,
        client: &Client,
    ) -> ServiceResult<bool> {
        confirm_factor_change(&self.hasher, caller, password).await?;
        if enabled && !caller.user.email_verified() {
            return Err(ServiceError::EmailNotVerified);
        }
        let tenant = caller_tenant(&self.tenants, caller).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        tx.users()
            .set_mfa_email(&caller.user_id, enabled, now)
            .await?;
        if caller.user.mfa_email != enabled {
            let kind = if enabled {
                MailKind::FactorAdded
            } else {
                MailKind::FactorRemoved
            };
            tell_owner_of_factor(
                &mut tx,
                kind,
                &tenant,
                &caller.user,
                "an emailed code",
                self.clock.now_millis_i64(),
            )
            .await?;
        }
        let event = if enabled {
            "mfa_email_enabled"
        } else {
            "mfa_email_disabled"
        };
        let ended = end_other_sessions(&mut tx, event, caller, client, now).await?;
        tx.commit().await?;
        self.revocations.sessions_ended(&caller.tenant, &ended);
        Ok(enabled)
    }
}
