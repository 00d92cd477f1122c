//! What follows the end of a session on this node, after its commit: this node's session cache
//! forgets it and its revocation index refuses it at once. Everyone else learns of it from the
//! revocation log the commit wrote (other nodes within their poll, the edge from the edge feed).

use std::sync::Arc;

use tessera_core::edge::Revocation;
use tessera_core::model::{SessionId, TenantSlug};

use crate::clock::SharedClock;
use crate::revocation_index::RevocationIndex;
use crate::session_cache::SessionCache;

/// Announces ended sessions on this node.
#[derive(Clone)]
pub struct Revocations {
    cache: Arc<SessionCache>,
    index: Arc<RevocationIndex>,
    clock: SharedClock,
}

impl Revocations {
    /// Announces to `cache` and `index`.
    #[must_use]
    pub fn new(cache: Arc<SessionCache>, index: Arc<RevocationIndex>, clock: SharedClock) -> Self {
        Self {
            cache,
            index,
            clock,
        }
    }

    /// Several sessions have ended (their change is committed).
    pub fn sessions_ended(&self, tenant: &TenantSlug, sessions: &[SessionId]) {
        for session in sessions {
            self.session_ended(tenant, session);
        }
    }

    /// A session has ended (its change is committed).
    pub fn session_ended(&self, tenant: &TenantSlug, session: &SessionId) {
        self.cache.invalidate(tenant, session);
        let now = u64::try_from(self.clock.now_secs()).unwrap_or(0);
        let revocation = Revocation::ended_at(tenant.as_str(), &session.to_string(), now);
        self.index.insert(
            &revocation.tenant,
            &revocation.session,
            i64::try_from(revocation.until).unwrap_or(i64::MAX),
        );
    }
}
