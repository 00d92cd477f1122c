//! What must follow the end of a session, after its commit: this node's session cache forgets
//! it at once, and the edge is told.

use std::sync::Arc;

use tessera_core::edge::Revocation;
use tessera_core::model::{SessionId, TenantSlug};

use crate::clock::SharedClock;
use crate::edge_push::EdgePush;
use crate::session_cache::SessionCache;

/// Announces ended sessions.
#[derive(Clone)]
pub struct Revocations {
    cache: Arc<SessionCache>,
    edge: Option<EdgePush>,
    clock: SharedClock,
}

impl Revocations {
    /// Announces to `cache` and, when one is configured, to the edge.
    #[must_use]
    pub fn new(cache: Arc<SessionCache>, edge: Option<EdgePush>, clock: SharedClock) -> Self {
        Self { cache, edge, clock }
    }

    /// Several sessions have ended (their change is committed).
    pub fn sessions_ended(&self, tenant: &TenantSlug, sessions: &[SessionId]) {
        for session in sessions {
            self.session_ended(tenant, session);
        }
    }

    /// Several sessions have ended; returns once the edge has been told (or given up on), for
    /// a short-lived process such as the CLI, whose background pushes would die with it.
    pub async fn sessions_ended_and_told(&self, tenant: &TenantSlug, sessions: &[SessionId]) {
        for session in sessions {
            self.cache.invalidate(tenant, session);
            if let Some(edge) = &self.edge {
                edge.send(&self.revocation(tenant, session)).await;
            }
        }
    }

    fn revocation(&self, tenant: &TenantSlug, session: &SessionId) -> Revocation {
        let now = u64::try_from(self.clock.now_secs()).unwrap_or(0);
        Revocation::ended_at(tenant.as_str(), &session.to_string(), now)
    }

    /// A service token was revoked (committed); returns once the edge has been told.
    pub async fn service_token_revoked(&self, tenant: &TenantSlug, token_id: &str) {
        if let Some(edge) = &self.edge {
            let now = u64::try_from(self.clock.now_secs()).unwrap_or(0);
            edge.send(&Revocation::service_token_revoked(
                tenant.as_str(),
                token_id,
                now,
            ))
            .await;
        }
    }

    /// A session has ended (its change is committed).
    pub fn session_ended(&self, tenant: &TenantSlug, session: &SessionId) {
        self.cache.invalidate(tenant, session);
        if let Some(edge) = &self.edge {
            edge.revoke(self.revocation(tenant, session));
        }
    }
}
