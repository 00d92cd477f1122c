//! The tenant registry with a short-lived positive cache.

use std::time::Duration;

use quick_cache::sync::Cache;
use tessera_core::model::TenantSlug;

use crate::clock::SharedClock;
use crate::store::{DynStore, StoreError, Tenant};

/// How long a cached registry entry is trusted: a tenant's CORS origins changed by the CLI
/// reach every node within this time.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// Registry entries held at most (least recently used evicted first).
const MAX_ENTRIES: usize = 10_000;

/// The tenant registry with a positive cache (unknown slugs always ask the database, so a
/// tenant created on another node is found at once).
pub struct Directory {
    store: DynStore,
    clock: SharedClock,
    cache: Cache<TenantSlug, (u64, Tenant)>,
}

impl Directory {
    /// A directory over `store`.
    #[must_use]
    pub fn new(store: DynStore, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            cache: Cache::new(MAX_ENTRIES),
        }
    }

    /// The tenant, if it exists.
    pub async fn get(&self, slug: &TenantSlug) -> Result<Option<Tenant>, StoreError> {
        let now = self.clock.now_millis();
        let ttl = u64::try_from(CACHE_TTL.as_millis()).unwrap_or(u64::MAX);
        if let Some((at, tenant)) = self.cache.get(slug) {
            if now.saturating_sub(at) < ttl {
                return Ok(Some(tenant));
            }
        }
        let found = self.store.tenant(slug).await?;
        if let Some(tenant) = &found {
            self.cache.insert(slug.clone(), (now, tenant.clone()));
        }
        Ok(found)
    }
}
