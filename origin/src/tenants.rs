//! The tenant registry with a short-lived positive cache and a shorter negative one.

use std::time::Duration;

use quick_cache::sync::Cache;
use tessera_core::model::TenantSlug;

use crate::clock::SharedClock;
use crate::store::{DynStore, StoreError, Tenant};

/// How long a cached registry entry is trusted: a tenant's CORS origins changed by the CLI
/// reach every node within this time.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// Registry entries held at most (quick_cache evicts by recency and frequency). Ten times the
/// tenants the benchmarks reach: bounded at 10,000, 10,030 tenants missed 2 % of random lookups
/// (quick_cache's shards fill unevenly), each a registry query. Memory is taken per entry as
/// entries come, not for the bound.
const MAX_ENTRIES: usize = 100_000;

/// How long a slug found to name no tenant is believed: a tenant created on another node (or
/// by the CLI) is found within this time, and a request repeating an unknown `X-Tenant` costs
/// at most one registry query a second per node.
const NEGATIVE_TTL: Duration = Duration::from_secs(1);

/// Unknown slugs remembered at most, apart from the known tenants so that a stream of made-up
/// slugs cannot push real tenants out of their cache.
const MAX_NEGATIVE_ENTRIES: usize = 4_096;

/// The tenant registry with a positive cache and a short negative one.
pub struct Directory {
    store: DynStore,
    clock: SharedClock,
    cache: Cache<TenantSlug, (u64, Tenant)>,
    unknown: Cache<TenantSlug, u64>,
    /// Every browser origin some tenant lists, with when it was read: a CORS preflight carries
    /// no tenant, only its `Origin`.
    origins: tokio::sync::RwLock<Option<(u64, std::collections::HashSet<String>)>>,
}

impl Directory {
    /// A directory over `store`.
    #[must_use]
    pub fn new(store: DynStore, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            cache: Cache::new(MAX_ENTRIES),
            unknown: Cache::new(MAX_NEGATIVE_ENTRIES),
            origins: tokio::sync::RwLock::new(None),
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
        let negative_ttl = u64::try_from(NEGATIVE_TTL.as_millis()).unwrap_or(u64::MAX);
        if let Some(at) = self.unknown.get(slug) {
            if now.saturating_sub(at) < negative_ttl {
                return Ok(None);
            }
        }
        let found = self.store.tenant(slug).await?;
        match &found {
            Some(tenant) => {
                self.unknown.remove(slug);
                self.cache.insert(slug.clone(), (now, tenant.clone()));
            }
            None => self.unknown.insert(slug.clone(), now),
        }
        Ok(found)
    }

    /// Whether any tenant lists the browser origin `origin` (read anew every 30 s, as tenant
    /// settings are).
    pub async fn origin_listed_anywhere(&self, origin: &str) -> Result<bool, StoreError> {
        let now = self.clock.now_millis();
        let ttl = u64::try_from(CACHE_TTL.as_millis()).unwrap_or(u64::MAX);
        if let Some((at, origins)) = self.origins.read().await.as_ref() {
            if now.saturating_sub(*at) < ttl {
                return Ok(origins.contains(origin));
            }
        }
        let origins: std::collections::HashSet<String> = self
            .store
            .tenants()
            .await?
            .into_iter()
            .flat_map(|tenant| tenant.cors_origins)
            .collect();
        let listed = origins.contains(origin);
        *self.origins.write().await = Some((now, origins));
        Ok(listed)
    }

    /// Whether the tenant exists. An entry past its TTL still answers: a signed token's
    /// tenant is checked on every verification, and a tenant not requested for 30 s would
    /// otherwise cost a registry query on its next one. A deleted tenant is forgotten at once
    /// on the node that deleted it ([`Directory::forget`]); elsewhere its tokens are refused
    /// all the same, each session of it being in the revocation log.
    pub async fn exists(&self, slug: &TenantSlug) -> Result<bool, StoreError> {
        if self.cache.get(slug).is_some() {
            return Ok(true);
        }
        Ok(self.get(slug).await?.is_some())
    }

    /// Forgets a tenant (deleted, or whose settings just changed on this node), so that the
    /// next look-up asks the registry.
    pub fn forget(&self, slug: &TenantSlug) {
        self.cache.remove(slug);
        self.unknown.remove(slug);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tessera_core::model::TenantSlug;

    use super::Directory;
    use crate::clock::ManualClock;
    use crate::store::Store;

    /// `exists` answers from an entry past its TTL without asking the registry, where `get`
    /// asks again (the row is removed behind the directory's back to tell the two apart).
    #[tokio::test]
    async fn existence_outlives_the_ttl_and_details_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::sqlite(dir.path()).await.unwrap());
        store.migrate_global().await.unwrap();
        let slug = TenantSlug::parse("acme").unwrap();
        store.create_tenant(&slug, "Acme", 0).await.unwrap();
        let clock = Arc::new(ManualClock::starting_now());
        let directory = Directory::new(store, clock.clone());
        assert!(directory.get(&slug).await.unwrap().is_some());

        let global = sqlx::AnyPool::connect(&format!(
            "sqlite://{}",
            dir.path().join("global.db").display()
        ))
        .await
        .unwrap();
        sqlx::query("DELETE FROM tenants WHERE slug = 'acme'")
            .execute(&global)
            .await
            .unwrap();
        clock.advance(Duration::from_secs(31));
        assert!(directory.exists(&slug).await.unwrap());
        assert!(directory.get(&slug).await.unwrap().is_none());
    }

    /// An unknown slug is asked once a second at most (a request naming a made-up `X-Tenant`
    /// over and over costs no query per request), and a tenant created meanwhile is found
    /// once that second has passed.
    #[tokio::test]
    async fn an_unknown_slug_is_remembered_for_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::sqlite(dir.path()).await.unwrap());
        store.migrate_global().await.unwrap();
        let clock = Arc::new(ManualClock::starting_now());
        let directory = Directory::new(store.clone(), clock.clone());
        let slug = TenantSlug::parse("later").unwrap();
        assert!(directory.get(&slug).await.unwrap().is_none());
        store.create_tenant(&slug, "Later", 0).await.unwrap();
        assert!(directory.get(&slug).await.unwrap().is_none(), "remembered");
        clock.advance(Duration::from_millis(1_001));
        assert!(directory.get(&slug).await.unwrap().is_some(), "found");
    }
}
