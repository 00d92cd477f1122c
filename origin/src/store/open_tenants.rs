//! The SQLite tenant databases kept open: at most a configured number, the least recently used
//! closed first.
//!
//! Strict recency, not a frequency-aware cache: quick_cache, used before, closes a newly opened
//! tenant first when the others were used more often, so a tenant opened while another was
//! being opened could be closed before its request's next statement, which then reopened it.
//! A tenant just used must stay open for the rest of its request.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lru::LruCache;
use sqlx::AnyPool;
use tessera_core::model::TenantSlug;
use tokio::sync::OnceCell;

use super::StoreResult;

/// A tenant's pool, opened once by whichever request needs it first.
type Slot = Arc<OnceCell<AnyPool>>;

/// The bounded set of open tenant databases.
pub(super) struct OpenTenants {
    slots: Mutex<LruCache<TenantSlug, Slot>>,
}

impl OpenTenants {
    /// Keeps at most `capacity` (at least one) tenant databases open.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// The tenant's pool, opened by `open` if it is not open; marks it the most recently used.
    /// Concurrent first requests for one tenant open it once. An evicted pool closes when the
    /// last request using it is done.
    pub(super) async fn get_or_open<F, Fut>(
        &self,
        tenant: &TenantSlug,
        open: F,
    ) -> StoreResult<AnyPool>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<AnyPool>>,
    {
        let (slot, evicted) = {
            let mut slots = self.lock();
            match slots.get(tenant) {
                Some(slot) => (slot.clone(), None),
                None => {
                    let slot = Slot::default();
                    let evicted = slots.push(tenant.clone(), slot.clone());
                    (slot, evicted)
                }
            }
        };
        // Closing a pool stops its connections' threads: not under the lock.
        drop(evicted);
        slot.get_or_try_init(open).await.cloned()
    }

    /// How many tenant databases are open (or being opened).
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<TenantSlug, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tessera_core::model::TenantSlug;

    use super::OpenTenants;
    use crate::store::dialect::sqlite_tenant_pool;

    fn slug(i: usize) -> TenantSlug {
        TenantSlug::parse(&format!("tenant-{i}")).unwrap()
    }

    /// Opens `tenant` through `open`, counting the pools opened (lazy pools: no file needed).
    async fn use_tenant(open: &OpenTenants, opened: &AtomicUsize, tenant: usize) {
        open.get_or_open(&slug(tenant), || async {
            opened.fetch_add(1, Ordering::SeqCst);
            sqlite_tenant_pool(std::path::Path::new("/nonexistent/t.db"))
        })
        .await
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
            use_tenant(&open, &opened, tenant).await;
            use_tenant(&open, &opened, tenant).await;
        }
        use_tenant(&open, &opened, 10).await;
        use_tenant(&open, &opened, 11).await;
        assert_eq!(opened.load(Ordering::SeqCst), 6);
        assert_eq!(open.len(), 4);

        use_tenant(&open, &opened, 10).await;
        assert_eq!(opened.load(Ordering::SeqCst), 6, "10 stayed open");
        use_tenant(&open, &opened, 2).await;
        assert_eq!(opened.load(Ordering::SeqCst), 6, "2 stayed open");
        use_tenant(&open, &opened, 0).await;
        assert_eq!(opened.load(Ordering::SeqCst), 7, "0 was closed");
    }

    /// Concurrent first requests for one tenant open it once.
    #[tokio::test]
    async fn concurrent_first_requests_open_a_tenant_once() {
        sqlx::any::install_default_drivers();
        let (open, opened) = (OpenTenants::new(4), AtomicUsize::new(0));
        let tenant = slug(1);
        let first = open.get_or_open(&tenant, || async {
            opened.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            sqlite_tenant_pool(std::path::Path::new("/nonexistent/t.db"))
        });
        let (a, ()) = tokio::join!(first, use_tenant(&open, &opened, 1));
        a.unwrap();
        assert_eq!(opened.load(Ordering::SeqCst), 1);
    }
}
