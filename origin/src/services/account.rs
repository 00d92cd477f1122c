//! Changes to an account that end its sessions: a password change by the user; and the
//! administrative ones, by the operator (command line, operator API) or a tenant's admin or
//! service (tenant admin API), one method each whichever door they come through: creation,
//! disable, enable, set-password, sign-out, second factors' reset. The admin API's reads and
//! profile changes are in `user_admin`.

use secrecy::{ExposeSecret as _, SecretString};
use tessera_core::model::{Email, SessionId, TenantSlug, UserId};

use super::actor::{Actor, UserKey};
use super::one_time::mail_to;
use super::{
    end_other_sessions, require_admin, Authenticated, Client, Revocations, ServiceError,
    ServiceResult,
};
use crate::clock::SharedClock;
use crate::mail::{requests, MailKind};
use crate::password::{Hasher, PasswordPolicy};
use crate::store::{DynStore, NewMail, NewUser, StoreError, User};
use crate::tenants::Directory;
use std::sync::Arc;

/// The roles an account can have: `admin` may act on the other accounts of its tenant.
pub const ROLES: [&str; 2] = ["user", "admin"];

/// Password changes and account switches.
#[derive(Clone)]
pub struct Accounts {
    pub(super) store: DynStore,
    pub(super) tenants: Arc<Directory>,
    pub(super) hasher: Hasher,
    pub(super) revocations: Revocations,
    pub(super) clock: SharedClock,
    password_policy: PasswordPolicy,
}

/// What an operator, or a tenant's admin, gives to create an account.
pub struct NewAccount {
    /// The address.
    pub email: Email,
    /// The display name (may be empty).
    pub name: String,
    /// The role, one of [`ROLES`].
    pub role: String,
    /// The password, checked against the policy; `None`: the account signs in by emailed
    /// code, or once it has chosen one from an invitation.
    pub password: Option<SecretString>,
    /// Whether the user is emailed an invitation: a link to choose a password, valid 7 days,
    /// single use, on the hosted page.
    pub invite: bool,
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

    /// Creates an account (`tessera user create`, the admin APIs): one of [`ROLES`], the same
    /// name rule and password policy as registration, the emailed second factor when asked,
    /// the invitation when asked, and an audit event naming `actor`, in one commit. An address
    /// already in the tenant is `Conflict` `email_taken`; a password and an invitation at once
    /// are `InvalidInput` (an invitation is for choosing one).
    pub async fn create(
        &self,
        tenant: &TenantSlug,
        account: NewAccount,
        actor: &Actor,
    ) -> ServiceResult<User> {
        if !ROLES.contains(&account.role.as_str()) {
            return Err(invalid_role(&account.role));
        }
        if account.invite && account.password.is_some() {
            return Err(ServiceError::InvalidInput {
                code: "password_and_invite",
                detail: "Send a password or an invitation, not both: the invitation is for \
                         choosing one."
                    .into(),
            });
        }
        self.tenants
            .get(tenant)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        let name = super::registration::checked_name(&account.name)?;
        let hash = match account.password {
            Some(password) => {
                self.password_policy
                    .check(
                        password.expose_secret(),
                        &[account.email.as_str(), tenant.as_str(), name],
                    )
                    .await?;
                Some(self.hasher.hash(password).await?)
            }
            None => None,
        };
        let now = self.clock.now_secs();
        let new = NewUser {
            id: UserId::from_random_bytes(crate::clock::random()),
            email: account.email.clone(),
            name: name.to_owned(),
            role: account.role.clone(),
            password_hash: hash,
            now,
        };
        let mut tx = self.store.write(tenant).await?;
        let user = match tx.users().create(&new).await {
            Err(StoreError::Conflict) => {
                return Err(ServiceError::Conflict {
                    code: "email_taken",
                    detail: format!(
                        "{} already has an account in tenant {tenant}",
                        account.email
                    ),
                })
            }
            other => other?,
        };
        if account.mfa_email {
            tx.users().set_mfa_email(&user.id, true, now).await?;
        }
        if account.invite {
            // The mail worker makes the link (it holds the key that digests links), so that
            // an invitation needs nothing here but the queued request.
            let request = NewMail {
                kind: requests::INVITATION,
                recipient: user.email.to_string(),
                params: serde_json::json!({ "email": user.email.as_str() }),
            };
            tx.outbox()
                .enqueue(&request, self.clock.now_millis_i64())
                .await?;
        }
        let detail = format!("role={} invited={}", user.role, account.invite);
        tx.audit()
            .append(&actor.event(&actor.named("user_created"), Some(&user.id), &detail, now))
            .await?;
        tx.commit().await?;
        Ok(user)
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

    /// Disables or enables an account (the operator, a tenant's admin or service); disabling
    /// ends all its sessions. Answers how many ended.
    pub async fn set_disabled(
        &self,
        tenant: &TenantSlug,
        who: &UserKey,
        disabled: bool,
        actor: &Actor,
    ) -> ServiceResult<usize> {
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let user = self.user(&mut tx, who).await?;
        tx.users().set_disabled(&user.id, disabled, now).await?;
        let ended = if disabled {
            tx.sessions()
                .revoke_all_of_user(&user.id, None, "disabled", now)
                .await?
        } else {
            Vec::new()
        };
        let event = if disabled {
            "user_disabled"
        } else {
            "user_enabled"
        };
        let detail = format!("sessions_ended={}", ended.len());
        tx.audit()
            .append(&actor.event(event, Some(&user.id), &detail, now))
            .await?;
        tx.commit().await?;
        self.announce(tenant, &ended);
        Ok(ended.len())
    }

    /// Ends every session of an account, which may sign in again at once (after a suspected
    /// theft of a token or a device, where disabling would lock its owner out).
    pub async fn end_sessions(
        &self,
        tenant: &TenantSlug,
        who: &UserKey,
        actor: &Actor,
    ) -> ServiceResult<usize> {
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let user = self.user(&mut tx, who).await?;
        let ended = tx
            .sessions()
            .revoke_all_of_user(&user.id, None, "admin", now)
            .await?;
        let detail = format!("sessions_ended={}", ended.len());
        tx.audit()
            .append(&actor.event(&actor.named("sessions_ended"), Some(&user.id), &detail, now))
            .await?;
        tx.commit().await?;
        self.announce(tenant, &ended);
        Ok(ended.len())
    }

    /// An admin of the caller's tenant ends every session of one of its accounts, named by
    /// address (`POST /api/auth/admin/sign-out`), as [`Accounts::end_sessions`] does; 404
    /// `not_found` for an address with no account there.
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
        let id = self
            .store
            .read(&caller.tenant)
            .await?
            .users()
            .by_email(&email)
            .await?
            .ok_or(ServiceError::NotFound)?
            .id;
        let actor = Actor::Admin {
            user: caller.user_id,
            session: caller.session_id,
            client: client.clone(),
        };
        self.end_sessions(&caller.tenant, &UserKey::Id(id), &actor)
            .await
    }

    /// Removes every second factor of an account (the authenticator app, its recovery codes,
    /// the emailed code, passkeys), for an owner who lost them or whose account someone else
    /// enrolled: every session ends and the owner is told by email. Answers how many sessions
    /// ended.
    pub async fn reset_mfa(
        &self,
        tenant: &TenantSlug,
        who: &UserKey,
        actor: &Actor,
    ) -> ServiceResult<usize> {
        let stored = self
            .tenants
            .get(tenant)
            .await?
            .ok_or(ServiceError::TenantNotFound)?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let user = self.user(&mut tx, who).await?;
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
        let detail = format!("sessions_ended={}", ended.len());
        tx.audit()
            .append(&actor.event(&actor.named("mfa_reset"), Some(&user.id), &detail, now))
            .await?;
        tx.commit().await?;
        self.announce(tenant, &ended);
        Ok(ended.len())
    }

    /// Sets an account's password (the operator's); all its sessions end.
    pub async fn set_password(
        &self,
        tenant: &TenantSlug,
        who: &UserKey,
        new: SecretString,
        actor: &Actor,
    ) -> ServiceResult<usize> {
        let user = self.user(&mut self.store.read(tenant).await?, who).await?;
        self.password_policy
            .check(
                new.expose_secret(),
                &[user.email.as_str(), tenant.as_str(), &user.name],
            )
            .await?;
        let hash = self.hasher.hash(new).await?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let user = self.user(&mut tx, &UserKey::Id(user.id)).await?;
        tx.users().set_password_hash(&user.id, &hash, now).await?;
        let ended = tx
            .sessions()
            .revoke_all_of_user(&user.id, None, "password_set", now)
            .await?;
        let detail = format!("sessions_ended={}", ended.len());
        tx.audit()
            .append(&actor.event("password_set", Some(&user.id), &detail, now))
            .await?;
        tx.commit().await?;
        self.announce(tenant, &ended);
        Ok(ended.len())
    }

    /// The user `who` names in the unit's tenant: by address, `InvalidInput` `unknown_user`
    /// (the command line's words); by id, `NotFound` (the APIs' 404).
    pub(super) async fn user(
        &self,
        tx: &mut crate::store::TenantTx,
        who: &UserKey,
    ) -> ServiceResult<User> {
        match who {
            UserKey::Email(email) => {
                tx.users()
                    .by_email(email)
                    .await?
                    .ok_or_else(|| ServiceError::InvalidInput {
                        code: "unknown_user",
                        detail: format!("no user {email} in tenant {}", tx.tenant()),
                    })
            }
            UserKey::Id(id) => tx.users().by_id(id).await?.ok_or(ServiceError::NotFound),
        }
    }

    fn announce(&self, tenant: &TenantSlug, ended: &[SessionId]) {
        self.revocations.sessions_ended(tenant, ended);
    }
}

/// A role that is none of [`ROLES`].
pub(super) fn invalid_role(role: &str) -> ServiceError {
    ServiceError::InvalidInput {
        code: "invalid_role",
        detail: format!("no role '{role}': a user is one of {}", ROLES.join(", ")),
    }
}
