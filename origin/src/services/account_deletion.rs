//! Leaving: an account erased by its user (`DELETE /api/auth/me`, behind their password), by an
//! admin of its tenant (`DELETE /api/auth/admin/users/{id}`) or by the operator (`tessera user
//! delete`). Every session ends at the origin and the edge, the account and all that hangs on
//! it go in one commit, and the audit log keeps the event under a pseudonymous id, so that the
//! address can register again and nothing left names the person.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use tessera_core::model::{Email, SessionId, TenantSlug, UserId};

use super::account::operator_event;
use super::{
    audit_event, confirm_password, require_admin, Accounts, Authenticated, Client, ServiceError,
    ServiceResult,
};
use crate::store::{AuditEvent, TenantTx, User};

/// The id an erased account's audit events keep: the same for all its events, and derived from
/// its random id, which is gone, so that it names no one; an operator who kept the old id can
/// still find its events.
#[must_use]
pub fn pseudonym(user: &UserId) -> String {
    let digest = Sha256::digest(format!("tessera erased user {user}").as_bytes());
    format!("erased:{}", URL_SAFE_NO_PAD.encode(&digest[..18]))
}

impl Accounts {
    /// The user erases their own account. An account with a password confirms it here: a
    /// stolen access token alone must not erase its owner.
    pub async fn delete_own(
        &self,
        caller: &Authenticated,
        password: Option<SecretString>,
        client: &Client,
    ) -> ServiceResult<()> {
        if caller.user.password_hash.is_some() {
            confirm_password(&self.hasher, caller, password).await?;
        }
        let now = self.clock.now_secs();
        let tx = self.store.write(&caller.tenant).await?;
        let event = audit_event("user_deleted", client, None, None, "by=self".into(), now);
        self.erase(tx, &caller.tenant, &caller.user, event).await
    }

    /// An admin of the caller's tenant erases one of its accounts, by id; 404 `not_found` for
    /// an id with no account there.
    pub async fn delete_as_admin(
        &self,
        caller: &Authenticated,
        user: &str,
        client: &Client,
    ) -> ServiceResult<()> {
        require_admin(caller)?;
        let id = UserId::parse(user).map_err(|_| ServiceError::NotFound)?;
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        let user = tx.users().by_id(&id).await?.ok_or(ServiceError::NotFound)?;
        let event = audit_event(
            "user_deleted",
            client,
            None,
            None,
            format!("by=admin:{}", caller.user_id),
            now,
        );
        self.erase(tx, &caller.tenant, &user, event).await
    }

    /// The operator erases an account (`tessera user delete`).
    pub async fn delete_by_operator(
        &self,
        tenant: &TenantSlug,
        email: &Email,
    ) -> ServiceResult<()> {
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let user = self.user(&mut tx, email).await?;
        let mut event = operator_event("user_deleted", &user, now);
        event.detail = "by=operator".into();
        self.erase(tx, tenant, &user, event).await
    }

    /// Ends every session of `user` (logged for the edge), erases the account with `event`
    /// under its pseudonym, commits, and drops the sessions from the caches.
    async fn erase(
        &self,
        mut tx: TenantTx,
        tenant: &TenantSlug,
        user: &User,
        mut event: AuditEvent,
    ) -> ServiceResult<()> {
        let now = self.clock.now_secs();
        let ended: Vec<SessionId> = tx
            .sessions()
            .revoke_all_of_user(&user.id, None, "deleted", now)
            .await?;
        let pseudonym = pseudonym(&user.id);
        tx.users().erase(user, &pseudonym, now).await?;
        event.user_id = Some(pseudonym);
        event.session_id = None;
        event.detail = format!("{} sessions_ended={}", event.detail, ended.len());
        tx.audit().append(&event).await?;
        tx.commit().await?;
        self.revocations.sessions_ended(tenant, &ended);
        Ok(())
    }
}
