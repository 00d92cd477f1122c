//! The SQLite tenant databases kept open: at most a configured number, the least recently used
//! closed first.
//!
//! Strict recency, not a frequency-aware cache: quick_cache, used before, closes a newly opened
//! tenant first when the others were used more often, so a tenant opened while another was
//! being opened could be closed before its request's next statement, which then reopened it.
//! A tenant just used must stay open for the rest of its request.

use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lru::LruCache;
use sqlx::AnyPool;
use tessera_core::model::TenantSlug;

use super::StoreResult;

/// The bounded set of open tenant databases.
pub(super) struct OpenTenants {
    pools: Mutex<LruCache<TenantSlug, AnyPool>>,
}

impl OpenTenants {
    /// Keeps at most `capacity` (at least one) tenant databases open.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            pools: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// The tenant's pool, opened by `open` if it is not open; marks it the most recently used.
    /// `open` only creates the pool (it connects on first acquire), so it runs under the lock
    /// and concurrent first requests for one tenant open it once. An evicted pool closes when
    /// the last request using it is done.
    pub(super) fn get_or_open(
        &self,
        tenant: &TenantSlug,
        open: impl FnOnce() -> StoreResult<AnyPool>,
    ) -> StoreResult<AnyPool> {
        let (pool, evicted) = {
            let mut pools = self.lock();
            if let Some(pool) = pools.get(tenant) {
                return Ok(pool.clone());
            }
            let pool = open()?;
            let evicted = pools.push(tenant.clone(), pool.clone());
            (pool, evicted)
        };
        // Closing a pool stops its connections' threads: not under the lock.
        drop(evicted);
        Ok(pool)
    }

    /// Takes a tenant's pool out of the set (a deleted tenant's), for the caller to close.
    pub(super) fn remove(&self, tenant: &TenantSlug) -> Option<AnyPool> {
        self.lock().pop(tenant)
    }

    /// How many tenant databases are open.
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<TenantSlug, AnyPool>> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tessera_core::model::TenantSlug;

    use super::OpenTenants;
    use crate::store::dialect::sqlite_tenant_pool;

    fn slug(i: usize) -> TenantSlug {
        TenantSlug::parse(&format!("tenant-{i}")).unwrap()
    }

    /// Opens `tenant` through `open`, counting the pools opened (lazy pools: no file needed).
    fn use_tenant(open: &OpenTenants, opened: &AtomicUsize, tenant: usize) {
        open.get_or_open(&slug(tenant), || {
            opened.fetch_add(1, Ordering::SeqCst);
            sqlite_tenant_pool(std::path::Path::new("/nonexistent/t.db"))
        })
        .unwrap();
    }

    /// A tenant opened while another is being opened is still open for its request's next
    /// statement: the one closed is the least recently used, however often it was used
    /// (a frequency-aware cache closed the newest instead).
    #[tokio::test]
    async fn the_least_recently_used_tenant_is_closed_first() {
        sqlx::any::install_default_drivers();
        let (open, opened) = (OpenTenants::new(4), AtomicUsize::new(0));
        for tenant in 0..4 {
            use_tenant(&open, &opened, tenant);
            use_tenant(&open, &opened, tenant);
        }
        use_tenant(&open, &opened, 10);
        use_tenant(&open, &opened, 11);
        assert_eq!(opened.load(Ordering::SeqCst), 6);
        assert_eq!(open.len(), 4);

        use_tenant(&open, &opened, 10);
        assert_eq!(opened.load(Ordering::SeqCst), 6, "10 stayed open");
        use_tenant(&open, &opened, 2);
        assert_eq!(opened.load(Ordering::SeqCst), 6, "2 stayed open");
        use_tenant(&open, &opened, 0);
        assert_eq!(opened.load(Ordering::SeqCst), 7, "0 was closed");
    }

    /// Concurrent first requests for one tenant open it once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_requests_open_a_tenant_once() {
        sqlx::any::install_default_drivers();
        let (open, opened) = (Arc::new(OpenTenants::new(4)), Arc::new(AtomicUsize::new(0)));
        let first_requests: Vec<_> = (0..2)
            .map(|_| {
                let (open, opened) = (open.clone(), opened.clone());
                tokio::spawn(async move {
                    open.get_or_open(&slug(1), || {
                        opened.fetch_add(1, Ordering::SeqCst);
                        // Long enough for the other request to arrive while this one opens.
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        sqlite_tenant_pool(std::path::Path::new("/nonexistent/t.db"))
                    })
                    .unwrap();
                })
            })
            .collect();
        for request in first_requests {
            request.await.unwrap();
        }
        assert_eq!(opened.load(Ordering::SeqCst), 1);
    }
}
