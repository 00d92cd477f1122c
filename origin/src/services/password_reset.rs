//! Forgotten passwords: the request (answered the same whatever the account), the emailed
//! link, and the reset itself, which ends every session of the user.

use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use tessera_core::lifetimes::RESET_LINK_SECS;
use tessera_core::model::{Email, TenantSlug};
use tessera_core::ratelimit::{account_subject, ADDRESS_MAIL_QUOTAS};
use tessera_core::token::{OpaqueToken, TokenKind};

use super::one_time::{mail_to, OneTime};
use super::registration::{confirm_address, Proof};
use super::{audit_event, Client, Revocations, ServiceError, ServiceResult};
use crate::clock::SharedClock;
use crate::limiter::Limiter;
use crate::mail::{requests, MailKind};
use crate::password::{Hasher, PasswordPolicy};
use crate::store::{DynStore, NewMail, Purpose, Tenant, TenantTx};
use crate::tenants::Directory;

/// The hosted page an emailed reset link opens.
pub const RESET_PAGE: &str = "/auth/reset-password";

/// The links that open the reset page: a reset's (30 minutes) and an invitation's (7 days,
/// from an admin who created the account); either chooses the password once.
const LINK_PURPOSES: [Purpose; 2] = [Purpose::ResetPassword, Purpose::Invite];

/// Resets forgotten passwords.
#[derive(Clone)]
pub struct PasswordReset {
    store: DynStore,
    tenants: Arc<Directory>,
    hasher: Hasher,
    limiter: Arc<Limiter>,
    one_time: OneTime,
    revocations: Revocations,
    clock: SharedClock,
    password_policy: PasswordPolicy,
}

impl PasswordReset {
    /// The service over its dependencies.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        hasher: Hasher,
        limiter: Arc<Limiter>,
        one_time: OneTime,
        revocations: Revocations,
        clock: SharedClock,
        password_policy: PasswordPolicy,
    ) -> Self {
        Self {
            store,
            tenants,
            hasher,
            limiter,
            one_time,
            revocations,
            clock,
            password_policy,
        }
    }

    /// Queues a reset request. Whether the account exists is decided later, by the mail
    /// worker, so that this answers the same, after the same work, for every address of an
    /// existing tenant.
    pub async fn forgot(
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
            requests::RESET_PASSWORD,
        )
        .await
    }

    /// The mail worker's half of a request: a new link (voiding the previous one) and its
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
        let link = self
            .one_time
            .store_link(
                tx,
                &user,
                Purpose::ResetPassword,
                self.clock.now_secs(),
                RESET_LINK_SECS,
                RESET_PAGE,
            )
            .await?;
        Ok(Some(mail_to(
            MailKind::ResetPassword,
            tenant,
            &user,
            serde_json::json!({ "link": link }),
        )))
    }

    /// Sets a new password with an emailed link's token (a reset's or an invitation's). The link is used up, every session of
    /// the user ends (and the edge is told), the user is told by email, and nobody is signed
    /// in: the user signs in with the new password.
    pub async fn reset(
        &self,
        token: &str,
        new_password: SecretString,
        client: &Client,
    ) -> ServiceResult<()> {
        let token = OpaqueToken::parse(TokenKind::EmailLink, token)
            .map_err(|_| ServiceError::InvalidLink)?;
        let tenant = self
            .tenants
            .get(token.tenant())
            .await?
            .ok_or(ServiceError::InvalidLink)?;
        let digest = self.one_time.token_digest(&token);
        // Looked up before hashing, hashed outside the unit (SQLite's writer lock is not held
        // across argon2), then checked again under the lock: a link used meanwhile fails.
        let (user, purpose) = {
            let mut read = self.store.read(&tenant.slug).await?;
            let mut found = None;
            for purpose in LINK_PURPOSES {
                if let Some(secret) = read.secrets().by_digest(purpose, &digest).await? {
                    found = Some((secret, purpose));
                    break;
                }
            }
            let (secret, purpose) = found
                .filter(|(s, _)| s.expires_at > self.clock.now_secs())
                .ok_or(ServiceError::InvalidLink)?;
            let user = read
                .users()
                .by_id(&secret.user_id)
                .await?
                .filter(|u| !u.disabled)
                .ok_or(ServiceError::InvalidLink)?;
            (user, purpose)
        };
        self.password_policy
            .check(
                new_password.expose_secret(),
                &[user.email.as_str(), tenant.slug.as_str(), &user.name],
            )
            .await?;
        let hash = self.hasher.hash(new_password).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&tenant.slug).await?;
        let still = tx
            .secrets()
            .by_digest(purpose, &digest)
            .await?
            .is_some_and(|s| s.expires_at > now && s.user_id == user.id);
        if !still {
            return Err(ServiceError::InvalidLink);
        }
        tx.secrets().remove(&user.id, purpose).await?;
        // The link came to the address: it is the user's (before the new password is set: a
        // first proof takes what was set before it).
        let mut ended = confirm_address(&mut tx, &tenant, &user, Proof::ResetLink, now).await?;
        tx.users().set_password_hash(&user.id, &hash, now).await?;
        ended.extend(
            tx.sessions()
                .revoke_all_of_user(&user.id, None, "password_reset", now)
                .await?,
        );
        // An invitation's password is the account's first: nothing to warn its owner of.
        if purpose != Purpose::Invite {
            let mail = mail_to(
                MailKind::PasswordChanged,
                &tenant,
                &user,
                serde_json::json!({}),
            );
            tx.outbox()
                .enqueue(&mail, self.clock.now_millis_i64())
                .await?;
        }
        let event = audit_event(
            if purpose == Purpose::Invite {
                "invitation_accepted"
            } else {
                "password_reset"
            },
            client,
            Some(&user.id),
            None,
            format!("sessions_ended={}", ended.len()),
            now,
        );
        tx.audit().append(&event).await?;
        tx.commit().await?;
        self.revocations.sessions_ended(&tenant.slug, &ended);
        Ok(())
    }
}

/// The tenant and address of a request that emails an account (reset, sign-in code).
pub(super) fn parse_request(
    named_tenant: Option<&TenantSlug>,
    tenant: &str,
    email: &str,
) -> ServiceResult<(TenantSlug, Email)> {
    let tenant = TenantSlug::parse(tenant).map_err(|_| ServiceError::TenantNotFound)?;
    if named_tenant.is_some_and(|named| *named != tenant) {
        return Err(ServiceError::TenantMismatch);
    }
    let email = Email::parse(email).map_err(|e| ServiceError::InvalidInput {
        code: "invalid_email",
        detail: e.to_string(),
    })?;
    Ok((tenant, email))
}

/// Queues a request of `kind` for `email` in `tenant`: the same single write whether or not
/// the address has an account, limited per address (each may email its owner).
pub(super) async fn queue_request(
    store: &DynStore,
    tenants: &Directory,
    limiter: &Limiter,
    clock: &SharedClock,
    tenant: &TenantSlug,
    email: &Email,
    kind: &'static str,
) -> ServiceResult<()> {
    let Some(tenant) = tenants.get(tenant).await? else {
        return Err(ServiceError::TenantNotFound);
    };
    limiter
        .enforce_quotas(&ADDRESS_MAIL_QUOTAS, &account_subject(&tenant.slug, email))
        .await?;
    let mut tx = store.write(&tenant.slug).await?;
    let request = NewMail {
        kind,
        recipient: email.to_string(),
        params: serde_json::json!({ "email": email.as_str() }),
    };
    tx.outbox()
        .enqueue(&request, clock.now_millis_i64())
        .await?;
    tx.commit().await?;
    Ok(())
}
