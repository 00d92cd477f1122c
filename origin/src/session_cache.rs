//! A short-lived cache of "this session is active, and this is its user", so that verifying a
//! bearer token does not cost a database round trip on every request.
//!
//! Revocations made by this node remove the entry at once. A revocation made by another node
//! (or by the CLI) is seen here within the TTL (`TESSERA_SESSION_CACHE_MS`, default 1 s, the
//! same bound the edge promises); a TTL of 0 turns the cache off. The cache holds at most
//! [`MAX_ENTRIES`] sessions, evicted by quick_cache's recency-and-frequency policy.

use quick_cache::sync::Cache;
use tessera_core::model::{SessionId, TenantSlug};

use crate::clock::SharedClock;
use crate::store::{Session, User};

/// Sessions held at most.
pub const MAX_ENTRIES: usize = 100_000;

type Key = (TenantSlug, SessionId);

/// The cache.
pub struct SessionCache {
    ttl_ms: u64,
    clock: SharedClock,
    entries: Cache<Key, (u64, Session, User)>,
}

impl SessionCache {
    /// A cache whose entries live `ttl_ms` on `clock`.
    #[must_use]
    pub fn new(ttl_ms: u64, clock: SharedClock) -> Self {
        Self {
            ttl_ms,
            clock,
            entries: Cache::new(MAX_ENTRIES),
        }
    }

    /// The cached session and user, if fresh.
    pub fn get(&self, tenant: &TenantSlug, session: &SessionId) -> Option<(Session, User)> {
        if self.ttl_ms == 0 {
            return None;
        }
        let (at, session, user) = self.entries.get(&(tenant.clone(), *session))?;
        (self.clock.now_millis().saturating_sub(at) < self.ttl_ms).then_some((session, user))
    }

    /// Remembers a session and its user as just read from storage.
    pub fn put(&self, tenant: &TenantSlug, session: &Session, user: &User) {
        if self.ttl_ms == 0 {
            return;
        }
        self.entries.insert(
            (tenant.clone(), session.id),
            (self.clock.now_millis(), session.clone(), user.clone()),
        );
    }

    /// Forgets every entry past its TTL. Such an entry is never answered, but it would hold its
    /// memory until capacity evicted it: swept, the cache holds the sessions used in the last
    /// TTL, not the last [`MAX_ENTRIES`] ever used.
    pub fn sweep(&self) {
        let now = self.clock.now_millis();
        self.entries
            .retain(|_, (at, _, _)| now.saturating_sub(*at) < self.ttl_ms);
    }

    /// How many entries the cache holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets a session: called whenever this node revokes one.
    pub fn invalidate(&self, tenant: &TenantSlug, session: &SessionId) {
        self.entries.remove(&(tenant.clone(), *session));
    }
}
