//! Sign-out and the caller's own sessions.

use tessera_core::model::SessionId;

use super::{audit_event, Authenticated, Client, Revocations, ServiceError, ServiceResult};
use crate::clock::SharedClock;
use crate::store::{DynStore, Session};

/// Lists and ends the caller's sessions.
#[derive(Clone)]
pub struct SessionService {
    store: DynStore,
    revocations: Revocations,
    clock: SharedClock,
}

impl SessionService {
    /// The service over its dependencies.
    #[must_use]
    pub fn new(store: DynStore, revocations: Revocations, clock: SharedClock) -> Self {
        Self {
            store,
            revocations,
            clock,
        }
    }

    /// The caller's active sessions, most recently used first.
    pub async fn list(&self, caller: &Authenticated) -> ServiceResult<Vec<Session>> {
        let now = self.clock.now_secs();
        Ok(self
            .store
            .read(&caller.tenant)
            .await?
            .sessions()
            .active_for(&caller.user_id, now)
            .await?)
    }

    /// Ends the caller's own session (sign-out).
    pub async fn sign_out(&self, caller: &Authenticated, client: &Client) -> ServiceResult<()> {
        self.end(caller, &caller.session_id, "logout", client)
            .await
            .map(|_| ())
    }

    /// Ends one of the caller's sessions; `SessionNotFound` unless it is an active session of
    /// the caller's.
    pub async fn end_own(
        &self,
        caller: &Authenticated,
        id: &SessionId,
        client: &Client,
    ) -> ServiceResult<()> {
        if self.end(caller, id, "session_ended", client).await? {
            Ok(())
        } else {
            Err(ServiceError::SessionNotFound)
        }
    }

    /// Ends a session of the caller's, with its audit event, in one unit; then announces it.
    async fn end(
        &self,
        caller: &Authenticated,
        id: &SessionId,
        event: &str,
        client: &Client,
    ) -> ServiceResult<bool> {
        let now = self.clock.now_secs();
        let mut tx = self.store.write(&caller.tenant).await?;
        let owned = tx
            .sessions()
            .by_id(id)
            .await?
            .is_some_and(|s| s.user_id == caller.user_id);
        if !owned {
            return Ok(false);
        }
        let ended = tx.sessions().revoke(id, event, now).await?;
        if ended {
            let event = audit_event(
                event,
                client,
                Some(&caller.user_id),
                Some(id),
                String::new(),
                now,
            );
            tx.audit().append(&event).await?;
        }
        tx.commit().await?;
        self.revocations.session_ended(&caller.tenant, id);
        Ok(ended)
    }
}
