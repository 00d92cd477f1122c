//! A short-lived cache of "this session is active, and this is its user", so that verifying a
//! bearer token does not cost a database round trip on every request.
//!
//! Revocations made by this node remove the entry at once. A revocation made by another node
//! (or by the CLI) is seen here within the TTL (`TESSERA_SESSION_CACHE_MS`, default 1 s, the
//! same bound the edge promises); a TTL of 0 turns the cache off.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tessera_core::model::{SessionId, TenantSlug};

use crate::store::{Session, User};

/// Entries kept before the cache is emptied and refilled (a bound, not a tuning knob).
const MAX_ENTRIES: usize = 100_000;

type Key = (TenantSlug, SessionId);

/// The cache.
pub struct SessionCache {
    ttl: Duration,
    entries: Mutex<HashMap<Key, (Instant, Session, User)>>,
}

impl SessionCache {
    /// A cache whose entries live `ttl`.
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (Instant, Session, User)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached session and user, if fresh.
    pub fn get(&self, tenant: &TenantSlug, session: &SessionId) -> Option<(Session, User)> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.lock();
        let (at, session, user) = entries.get(&(tenant.clone(), *session))?;
        (at.elapsed() < self.ttl).then(|| (session.clone(), user.clone()))
    }

    /// Remembers a session and its user as just read from storage.
    pub fn put(&self, tenant: &TenantSlug, session: &Session, user: &User) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            (tenant.clone(), session.id),
            (Instant::now(), session.clone(), user.clone()),
        );
    }

    /// Forgets a session: called whenever this node revokes one.
    pub fn invalidate(&self, tenant: &TenantSlug, session: &SessionId) {
        self.lock().remove(&(tenant.clone(), *session));
    }
}
