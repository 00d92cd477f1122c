//! Leaving: an account erased by its user (`DELETE /api/auth/me`, behind their password), by an
//! admin of its tenant (`DELETE /api/auth/admin/users/{id}`) or by the operator (`tessera user
//! delete`). Every session ends at the origin and the edge, the account and all that hangs on
//! it go in one commit, and the audit log keeps the event under a pseudonymous id, so that the
//! address can register again and nothing left names the person.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use tessera_core::model::{SessionId, TenantSlug, UserId};

use super::{
    audit_event, confirm_password, Accounts, Actor, Authenticated, Client, ServiceResult, UserKey,
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

    /// The operator (`tessera user delete`, by address) or a tenant's admin or service
    /// (`DELETE /api/auth/admin/users/{id}`) erases an account, audited with `actor`.
    pub async fn delete(
        &self,
        tenant: &TenantSlug,
        who: &UserKey,
        actor: &Actor,
    ) -> ServiceResult<()> {
        let now = self.clock.now_secs();
        let mut tx = self.store.write(tenant).await?;
        let user = self.user(&mut tx, who).await?;
        let event = actor.event("user_deleted", None, "", now);
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
