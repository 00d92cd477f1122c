//! Changes to an account that end its sessions: a password change by the user, and the
//! operator's disable, enable, set-password and sign-out, and an admin's sign-out of a user;
//! and the operator's creation of an account.

use secrecy::{ExposeSecret as _, SecretString};
use tessera_core::model::{Email, SessionId, TenantSlug, UserId};

use super::one_time::mail_to;
use super::{
    audit_event, end_other_sessions, require_admin, Authenticated, Client, Revocations,
    ServiceError, ServiceResult,
};
use crate::clock::SharedClock;
use crate::mail::MailKind;
use crate::password::{Hasher, PasswordPolicy};
use crate::store::{DynStore, NewUser, StoreError, User};
use crate::tenants::Directory;
use std::sync::Arc;

/// The roles an account can have: `admin` may act on the other accounts of its tenant.
pub const ROLES: [&str; 2] = ["user", "admin"];

/// Password changes and account switches.
#[derive(Clone)]
pub struct Accounts {
    pub(super) store: DynStore,
    tenants: Arc<Directory>,
    pub(super) hasher: Hasher,
    pub(super) revocations: Revocations,
    pub(super) clock: SharedClock,
    password_policy: PasswordPolicy,
}

/// What an operator gives to create an account.
pub struct OperatorAccount<'a> {
    /// The address.
    pub email: &'a Email,
    /// The display name (may be empty).
    pub name: &'a str,
    /// The role.
    pub role: &'a str,
    /// The password, checked against the policy.
    pub password: SecretString,
    /// Whether sign-in asks for an emailed code after the password.
    pub mfa_email: bool,
}

impl Accounts {
    /// The service over its dependencies.
    #[must_use]
    pub fn new(
        store: DynStore,
        tenants: Arc<Directory>,
        hasher: Hasher,
        revocations: Revocations,
        clock: SharedClock,
        password_policy: PasswordPolicy,
    ) -> Self {
        Self {
            store,
            tenants,
            hasher,
            revocations,
            clock,
            password_policy,
        }
    }

    /// An operator creates an account (`tessera user create`), with one of [`ROLES`]: the same name rule and password
    /// policy as registration, the emailed second factor when asked, and an audit event, in
    /// one commit. An address already in the tenant is `InvalidInput` with code `email_taken`.
    pub async fn create_by_operator(
        &self,
        tenant: &TenantSlug,
        account: OperatorAccount<'_>,
    ) -> ServiceResult<UserId> {
        if !ROLES.contains(&account.role) {
            return Err(ServiceError::InvalidInput {
                code: "invalid_role",
                detail: format!(
                    "no role '{}': a user is one of {}",
                    account.role,
                    ROLES.join(", ")
                ),
            });
        }
        let name = super::registration::checked_name(account.name)?;
        self.password_policy
            .check(
                account.password.expose_secret(),
                &[account.email.as_str(), tenant.as_str(), name],
            )
            .await?;
        let hash = self.hasher.hash(account.password).await?;
        let now = self.clock.now_secs();
        let new = NewUser {
            id: UserId::from_random_bytes(crate::clock::random()),
            email: account.email.clone(),
            name: name.to_owned(),
            role: account.role.to_owned(),
            password_hash: Some(hash),
            now,
        };
        let mut tx = self.store.write(tenant).await?;
        let user = match tx.users().create(&new).await {
            Err(StoreError::Conflict) => {
                return Err(ServiceError::InvalidInput {
                    code: "email_taken",
                    detail: format!("{} already exists in tenant {tenant}", account.email),
                })
            }
            other => other?,
        };
        if account.mfa_email {
            tx.users().set_mfa_email(&user.id, true, now).await?;
        }
        tx.audit()
            .append(&operator_event("user_created_by_operator", &user, now))
            .await?;
        tx.commit().await?;
        Ok(user.id)
    }

    /// The caller changes their password: confirmed by the current one; every other session
    /// of theirs ends, and they are told by email.
    pub async fn change_password(
        &self,
        caller: &Authenticated,
        current: SecretString,
        new: SecretString,
        client: &Client,
    ) -> ServiceResult<()> {
        let verified = self
            .hasher
            .verify(current, caller.user.password_hash.clone())
            .await?;
        if !verified.matched {
            return Err(ServiceError::WrongPassword);
        }
        let user = &caller.user;
        self.password_policy
            .check(
                new.expose_secret(),
                &[user.email.as_str(), caller.tenant.as_str(), &user.name],
            )
            .await?;
        let hash = self.hasher.hash(new).await?;
        let tenant = self
            .tenants
            .get(&caller.tenant)
            .await?
            .ok_or(ServiceError::SessionEnded)?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        tx.users().set_password_hash(&user.id, &hash, now).await?;
        let mail = mail_to(
            MailKind::PasswordChanged,
            &tenant,
            user,
            serde_json::json!({}),
        );
        tx.outbox()
            .enqueue(&mail, self.clock.now_millis_i64())
            .await?;
        let ended = end_other_sessions(&mut tx, "password_changed", caller, client, now).await?;
        tx.commit().await?;
        self.revocations.sessions_ended(&caller.tenant, &ended);
        Ok(())
    }

    /// The operator disables or enables an account; disabling ends all its sessions.
    pub async fn set_disabled(
        &self,
        tenant: &TenantSlug,
        email: &Email,
        disabled: bool,
    ) -> ServiceResult<usize> {
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let user = self.user(&mut tx, email).await?;
        tx.users().set_disabled(&user.id, disabled, now).await?;
        let ended = if disabled {
            tx.sessions()
                .revoke_all_of_user(&user.id, None, "disabled", now)
                .await?
        } else {
            Vec::new()
        };
        let event = operator_event(
            if disabled {
                "user_disabled"
            } else {
                "user_enabled"
            },
            &user,
            now,
        );
        tx.audit().append(&event).await?;
        tx.commit().await?;
        self.announce(tenant, &ended);
        Ok(ended.len())
    }

    /// The operator ends every session of an account, which may sign in again at once (after
    /// a suspected theft of a token or a device, where disabling would lock its owner out).
    pub async fn end_sessions(&self, tenant: &TenantSlug, email: &Email) -> ServiceResult<usize> {
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let user = self.user(&mut tx, email).await?;
        let ended = tx
            .sessions()
            .revoke_all_of_user(&user.id, None, "operator", now)
            .await?;
        tx.audit()
            .append(&operator_event("sessions_ended_by_operator", &user, now))
            .await?;
        tx.commit().await?;
        self.announce(tenant, &ended);
        Ok(ended.len())
    }

    /// An admin of the caller's tenant ends every session of one of its accounts, as
    /// [`Accounts::end_sessions`] does for the operator; 404 `not_found` for an address with
    /// no account there.
    pub async fn end_sessions_as_admin(
        &self,
        caller: &Authenticated,
        email: &str,
        client: &Client,
    ) -> ServiceResult<usize> {
        require_admin(caller)?;
        let email = Email::parse(email).map_err(|e| ServiceError::InvalidInput {
            code: "invalid_email",
            detail: e.to_string(),
        })?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        let user = tx
            .users()
            .by_email(&email)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let ended = tx
            .sessions()
            .revoke_all_of_user(&user.id, None, "admin", now)
            .await?;
        let event = audit_event(
            "sessions_ended_by_admin",
            client,
            Some(&user.id),
            None,
            format!("admin={} sessions_ended={}", caller.user_id, ended.len()),
            now,
        );
        tx.audit().append(&event).await?;
        tx.commit().await?;
        self.revocations.sessions_ended(&caller.tenant, &ended);
        Ok(ended.len())
    }

    /// The operator removes every second factor of an account (the authenticator app, its
    /// recovery codes, the emailed code), for an owner who lost them or whose account someone
    /// else enrolled: every session ends and the owner is told by email. Answers how many
    /// sessions ended.
    pub async fn reset_mfa(&self, tenant: &TenantSlug, email: &Email) -> ServiceResult<usize> {
        let stored = self
            .tenants
            .get(tenant)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let user = self.user(&mut tx, email).await?;
        tx.totp().remove(&user.id, now).await?;
        tx.passkeys().remove_all(&user.id, now).await?;
        tx.users().set_mfa_email(&user.id, false, now).await?;
        let ended = tx
            .sessions()
            .revoke_all_of_user(&user.id, None, "mfa_reset", now)
            .await?;
        let mail = mail_to(
            MailKind::FactorRemoved,
            &stored,
            &user,
            serde_json::json!({ "factor": "every second factor", "by_operator": true }),
        );
        tx.outbox()
            .enqueue(&mail, self.clock.now_millis_i64())
            .await?;
        tx.audit()
            .append(&operator_event("mfa_reset_by_operator", &user, now))
            .await?;
        tx.commit().await?;
        self.announce(tenant, &ended);
        Ok(ended.len())
    }

    /// The operator sets an account's password; all its sessions end.
    pub async fn set_password(
        &self,
        tenant: &TenantSlug,
        email: &Email,
        new: SecretString,
    ) -> ServiceResult<usize> {
        self.password_policy
            .check(new.expose_secret(), &[email.as_str(), tenant.as_str()])
            .await?;
        let hash = self.hasher.hash(new).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let user = self.user(&mut tx, email).await?;
        tx.users().set_password_hash(&user.id, &hash, now).await?;
        let ended = tx
            .sessions()
            .revoke_all_of_user(&user.id, None, "password_set", now)
            .await?;
        tx.audit()
            .append(&operator_event("password_set", &user, now))
            .await?;
        tx.commit().await?;
        self.announce(tenant, &ended);
        Ok(ended.len())
    }

    pub(super) async fn user(
        &self,
        tx: &mut crate::store::TenantTx,
        email: &Email,
    ) -> ServiceResult<User> {
        tx.users()
            .by_email(email)
            .await?
            .ok_or_else(|| ServiceError::InvalidInput {
                code: "unknown_user",
                detail: format!("no user {email} in tenant {}", tx.tenant()),
            })
    }

    fn announce(&self, tenant: &TenantSlug, ended: &[SessionId]) {
        self.revocations.sessions_ended(tenant, ended);
    }
}

pub(super) fn operator_event(event: &str, user: &User, now: i64) -> crate::store::AuditEvent {
    crate::store::AuditEvent {
        at: now,
        event: event.to_owned(),
        user_id: Some(user.id.to_string()),
        session_id: None,
        ip: String::new(),
        user_agent: "tessera-cli".into(),
        detail: String::new(),
    }
}
