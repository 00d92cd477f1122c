//! Registration, email confirmation and resending the confirmation.

use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use tessera_core::lifetimes::VERIFY_LINK_SECS;
use tessera_core::model::{Email, SessionId, TenantSlug, UserId};
use tessera_core::ratelimit::{account_subject, ADDRESS_MAIL_QUOTAS, RESEND_QUOTAS};
use tessera_core::token::{OpaqueToken, TokenKind};

use super::captcha::CaptchaVerifier;
use super::one_time::{display_name, mail_to, OneTime};
use super::{audit_event, Authenticated, Client, Revocations, ServiceError, ServiceResult};
use crate::clock::{self, SharedClock};
use crate::limiter::Limiter;
use crate::mail::MailKind;
use crate::password::{Hasher, PasswordPolicy};
use crate::store::{DynStore, NewUser, Purpose, StoreError, Tenant, TenantTx, User};
use crate::tenants::Directory;

/// The hosted page an emailed confirmation link opens.
pub const VERIFY_PAGE: &str = "/auth/verify-email";

/// A registration as the client sent it.
pub struct Registration<'a> {
    /// The tenant the request's headers name, if any.
    pub named_tenant: Option<&'a TenantSlug>,
    /// The tenant the body names.
    pub tenant: &'a str,
    /// Email.
    pub email: &'a str,
    /// Password.
    pub password: SecretString,
    /// Display name.
    pub name: &'a str,
}

/// What a registration did. The canonical API answers both the same; only an API whose
/// document answers tokens at registration (team/vault) tells them apart.
#[derive(Debug)]
pub enum Registered {
    /// A new account, whose confirmation link is on its way.
    Created(Box<Tenant>, Box<User>),
    /// The address has an account already; its owner was told of the attempt.
    Existing,
}

/// Longest display name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Registers users and confirms their addresses.
#[derive(Clone)]
pub struct Registrar {
    store: DynStore,
    tenants: Arc<Directory>,
    hasher: Hasher,
    limiter: Arc<Limiter>,
    one_time: OneTime,
    captcha: Option<CaptchaVerifier>,
    clock: SharedClock,
    password_policy: PasswordPolicy,
    revocations: Revocations,
}

/// A user's display name as given, trimmed: at most [`MAX_NAME_CHARS`] characters and no
/// control characters, for every way an account is created.
pub fn checked_name(given: &str) -> ServiceResult<&str> {
    let name = given.trim();
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ServiceError::InvalidInput {
            code: "invalid_name",
            detail: format!(
                "The name must have at most {MAX_NAME_CHARS} characters and no control characters."
            ),
        });
    }
    Ok(name)
}

impl Registrar {
    /// The service over its dependencies.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        hasher: Hasher,
        limiter: Arc<Limiter>,
        one_time: OneTime,
        captcha: Option<CaptchaVerifier>,
        clock: SharedClock,
        password_policy: PasswordPolicy,
        revocations: Revocations,
    ) -> Self {
        Self {
            store,
            tenants,
            hasher,
            limiter,
            one_time,
            captcha,
            clock,
            password_policy,
            revocations,
        }
    }

    /// Registers a user, or, when the address has an account already, emails its owner about
    /// the attempt instead: the caller gets the same answer either way, after the same
    /// password hashing.
    pub async fn register(
        &self,
        request: Registration<'_>,
        client: &Client,
    ) -> ServiceResult<Registered> {
        let slug = TenantSlug::parse(request.tenant).map_err(|_| ServiceError::TenantNotFound)?;
        if request.named_tenant.is_some_and(|named| *named != slug) {
            return Err(ServiceError::TenantMismatch);
        }
        let tenant = self
            .tenants
            .get(&slug)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        if !tenant.policy.registration_open {
            return Err(ServiceError::RegistrationClosed);
        }
        let email = Email::parse(request.email).map_err(|e| ServiceError::InvalidInput {
            code: "invalid_email",
            detail: e.to_string(),
        })?;
        let name = checked_name(request.name)?;
        self.password_policy
            .check(
                request.password.expose_secret(),
                &[email.as_str(), slug.as_str(), name],
            )
            .await?;
        // Each attempt on an existing address emails its owner: limited per address.
        self.limiter
            .enforce_quotas(&ADDRESS_MAIL_QUOTAS, &account_subject(&slug, &email))
            .await?;
        let hash = self.hasher.hash(request.password).await?;
        let now = self.clock.now_secs();
        let user = NewUser {
            id: UserId::from_random_bytes(clock::random()),
            email: email.clone(),
            name: name.to_owned(),
            role: "user".into(),
            password_hash: Some(hash),
            now,
        };
        let mut tx = self.store.write(&slug).await?;
        let existing = tx.users().by_email(&email).await?;
        let registered = match existing {
            Some(owner) => {
                self.tell_owner(&mut tx, &tenant, &owner, client).await?;
                Registered::Existing
            }
            None => match tx.users().create(&user).await {
                Ok(created) => {
                    self.send_link(&mut tx, &tenant, &created).await?;
                    let event = audit_event(
                        "registered",
                        client,
                        Some(&created.id),
                        None,
                        String::new(),
                        now,
                    );
                    tx.audit().append(&event).await?;
                    Registered::Created(Box::new(tenant), Box::new(created))
                }
                // Registered by a concurrent request between the lookup and the insert.
                Err(StoreError::Conflict) => Registered::Existing,
                Err(e) => return Err(e.into()),
            },
        };
        tx.commit().await?;
        let outcome = match registered {
            Registered::Created(..) => "created",
            Registered::Existing => "existing",
        };
        metrics::counter!("tessera_registrations_total", "outcome" => outcome).increment(1);
        Ok(registered)
    }

    async fn tell_owner(
        &self,
        tx: &mut TenantTx,
        tenant: &Tenant,
        owner: &User,
        client: &Client,
    ) -> ServiceResult<()> {
        let now = self.clock.now_secs();
        let mail = mail_to(
            MailKind::RegistrationAttempt,
            tenant,
            owner,
            serde_json::json!({}),
        );
        tx.outbox()
            .enqueue(&mail, self.clock.now_millis_i64())
            .await?;
        let event = audit_event(
            "registration_duplicate",
            client,
            Some(&owner.id),
            None,
            String::new(),
            now,
        );
        tx.audit().append(&event).await?;
        Ok(())
    }

    /// Stores a new confirmation link of `user` (voiding an earlier one) and queues its email.
    async fn send_link(
        &self,
        tx: &mut TenantTx,
        tenant: &Tenant,
        user: &User,
    ) -> ServiceResult<()> {
        let link = self
            .one_time
            .store_link(
                tx,
                user,
                Purpose::VerifyEmail,
                self.clock.now_secs(),
                VERIFY_LINK_SECS,
                VERIFY_PAGE,
            )
            .await?;
        let mail = mail_to(
            MailKind::VerifyEmail,
            tenant,
            user,
            serde_json::json!({ "link": link }),
        );
        tx.outbox()
            .enqueue(&mail, self.clock.now_millis_i64())
            .await?;
        Ok(())
    }

    /// Confirms the address of the link's user. The first confirmation also gives the user a
    /// default team ("<name>'s team", role owner) with a default project. The link of an
    /// address change an admin made confirms the new address instead.
    pub async fn verify_email(
        &self,
        token: &str,
        client: &Client,
    ) -> ServiceResult<(Tenant, User)> {
        let token = OpaqueToken::parse(TokenKind::EmailLink, token)
            .map_err(|_| ServiceError::InvalidLink)?;
        let tenant = self
            .tenants
            .get(token.tenant())
            .await?
            .ok_or(ServiceError::InvalidLink)?;
        let now = self.clock.now_secs();
        let digest = self.one_time.token_digest(&token);
        let mut tx = self.store.write(&tenant.slug).await?;
        let Some(secret) = tx
            .secrets()
            .by_digest(Purpose::VerifyEmail, &digest)
            .await?
        else {
            // The same page confirms a new address an admin gave the account.
            let changed =
                super::user_admin::confirm_email_change(&mut tx, &tenant, &digest, client, now)
                    .await;
            return match changed {
                Ok(Some((user, ended))) => {
                    tx.commit().await?;
                    self.revocations.sessions_ended(&tenant.slug, &ended);
                    Ok((tenant, user))
                }
                // A used or expired link is used up even so.
                Err(ServiceError::InvalidLink) => {
                    tx.commit().await?;
                    Err(ServiceError::InvalidLink)
                }
                Ok(None) => Err(ServiceError::InvalidLink),
                Err(other) => Err(other),
            };
        };
        if secret.expires_at <= now {
            tx.secrets()
                .remove(&secret.user_id, Purpose::VerifyEmail)
                .await?;
            tx.commit().await?;
            return Err(ServiceError::InvalidLink);
        }
        let mut user = tx
            .users()
            .by_id(&secret.user_id)
            .await?
            .ok_or(ServiceError::InvalidLink)?;
        tx.secrets().remove(&user.id, Purpose::VerifyEmail).await?;
        let ended = confirm_address(&mut tx, &tenant, &user, Proof::ConfirmationLink, now).await?;
        user.email_verified_at.get_or_insert(now);
        let event = audit_event(
            "email_verified",
            client,
            Some(&user.id),
            None,
            format!("sessions_ended={}", ended.len()),
            now,
        );
        tx.audit().append(&event).await?;
        tx.commit().await?;
        self.revocations.sessions_ended(&tenant.slug, &ended);
        Ok((tenant, user))
    }

    /// Whether `email` has an account in `tenant` (the team/vault API's `exist-email`), if the
    /// tenant allows the question (`EmailLookupDisabled` otherwise). A malformed address has
    /// none.
    pub async fn address_taken(&self, tenant: &TenantSlug, email: &str) -> ServiceResult<bool> {
        let tenant = self
            .tenants
            .get(tenant)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        if !tenant.policy.email_lookup {
            return Err(ServiceError::EmailLookupDisabled);
        }
        let Ok(email) = Email::parse(email) else {
            return Ok(false);
        };
        let found = self
            .store
            .read(&tenant.slug)
            .await?
            .users()
            .by_email(&email)
            .await?;
        Ok(found.is_some())
    }

    /// The caller's teams and the projects of those teams.
    pub async fn teams(
        &self,
        caller: &Authenticated,
    ) -> ServiceResult<(Vec<crate::store::Membership>, Vec<crate::store::Project>)> {
        let mut read = self.store.read(&caller.tenant).await?;
        let teams = read.teams().of_user(&caller.user_id).await?;
        let projects = read.teams().projects_of_user(&caller.user_id).await?;
        Ok((teams, projects))
    }

    /// Sends the caller a new confirmation link (voiding the previous one): at most one a
    /// minute and five an hour, and only past the captcha when one is configured.
    pub async fn resend(
        &self,
        caller: &Authenticated,
        captcha: Option<&str>,
        client: &Client,
    ) -> ServiceResult<()> {
        if caller.user.email_verified() {
            return Err(ServiceError::AlreadyVerified);
        }
        if let Some(verifier) = &self.captcha {
            let answer = captcha
                .filter(|c| !c.is_empty())
                .ok_or(ServiceError::CaptchaFailed)?;
            if !verifier.check(answer, client.ip).await {
                return Err(ServiceError::CaptchaFailed);
            }
        }
        let subject = format!("{}:{}", caller.tenant, caller.user_id);
        self.limiter
            .enforce_quotas(&RESEND_QUOTAS, &subject)
            .await?;
        let tenant = self
            .tenants
            .get(&caller.tenant)
            .await?
            .ok_or(ServiceError::SessionEnded)?;
        let mut tx = self.store.write(&caller.tenant).await?;
        self.send_link(&mut tx, &tenant, &caller.user).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// How the mailbox was proved, which decides what its first proof takes from whoever held the
/// account before it. Anyone may register an address that is not theirs, with a password of
/// their own, and wait for the owner to start using the account (pre-registration takeover).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Proof {
    /// The confirmation link, sent at registration: the registrant proving their address.
    /// Sessions opened before it end; the password stays (it is the registrant's).
    ConfirmationLink,
    /// A reset link: sessions opened before it end and an authenticator set up before it goes;
    /// the caller replaces the password.
    ResetLink,
    /// An emailed sign-in code: sessions opened before it end, and the password and the
    /// authenticator set before it go; the owner is told by email and can set a password.
    EmailCode,
}

/// Records that `user` proved they read their mail. The first time, every session opened
/// before ends (answered, for the caller to announce once committed), what `proof` says goes,
/// and the user gets a default team ("<name>'s team", role owner) with a default project.
/// Later proofs change nothing and answer no sessions.
pub(super) async fn confirm_address(
    tx: &mut TenantTx,
    tenant: &Tenant,
    user: &User,
    proof: Proof,
    now: i64,
) -> ServiceResult<Vec<SessionId>> {
    if !tx.users().mark_email_verified(&user.id, now).await? {
        return Ok(Vec::new());
    }
    let ended = tx
        .sessions()
        .revoke_all_of_user(&user.id, None, "address_confirmed", now)
        .await?;
    if proof != Proof::ConfirmationLink {
        let had_app = tx.totp().get(&user.id).await?.is_some();
        if had_app {
            tx.totp().remove(&user.id, now).await?;
        }
        if proof == Proof::EmailCode && (user.password_hash.is_some() || had_app) {
            tx.users().clear_password(&user.id, now).await?;
            let mail = mail_to(
                MailKind::PasswordCleared,
                tenant,
                user,
                serde_json::json!({}),
            );
            // Due at once: the proof's second, in the outbox's milliseconds.
            tx.outbox().enqueue(&mail, now.saturating_mul(1000)).await?;
        }
    }
    let team = uuid::Uuid::new_v4().to_string();
    tx.teams()
        .create(
            &team,
            &format!("{}'s team", display_name(user)),
            &user.id,
            now,
        )
        .await?;
    tx.teams()
        .create_project(
            &uuid::Uuid::new_v4().to_string(),
            &team,
            "Default project",
            now,
        )
        .await?;
    Ok(ended)
}
