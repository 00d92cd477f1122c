//! Which tenant a request is for, and a short-lived cache of the tenant registry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use tessera_core::model::TenantSlug;
use tokio::sync::RwLock;

use crate::config::Config;
use crate::error::ApiError;
use crate::store::{DynStore, StoreError, Tenant};

/// The header by which a request names its tenant.
pub const TENANT_HEADER: &str = "x-tenant";

/// How long a cached registry entry is trusted: a tenant's CORS origins changed by the CLI
/// reach every node within this time.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// The tenant registry with a positive cache (unknown slugs always ask the database, so a
/// tenant created on another node is found at once).
pub struct Directory {
    store: DynStore,
    cache: RwLock<HashMap<TenantSlug, (Instant, Tenant)>>,
}

impl Directory {
    /// A directory over `store`.
    #[must_use]
    pub fn new(store: DynStore) -> Self {
        Self {
            store,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The tenant, if it exists.
    pub async fn get(&self, slug: &TenantSlug) -> Result<Option<Tenant>, StoreError> {
        if let Some((at, tenant)) = self.cache.read().await.get(slug) {
            if at.elapsed() < CACHE_TTL {
                return Ok(Some(tenant.clone()));
            }
        }
        let found = self.store.tenant(slug).await?;
        if let Some(tenant) = &found {
            self.cache
                .write()
                .await
                .insert(slug.clone(), (Instant::now(), tenant.clone()));
        }
        Ok(found)
    }
}

/// The tenants a request names outside its body: the `X-Tenant` header and the subdomain of
/// `Host` under the configured base domain. A request that names two different tenants this way
/// is refused.
pub fn named_by_request(
    headers: &HeaderMap,
    config: &Config,
) -> Result<Option<TenantSlug>, ApiError> {
    let header = headers
        .get(TENANT_HEADER)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| TenantSlug::parse(s).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_tenant",
                        "The X-Tenant header is not a valid tenant.",
                    )
                })
        })
        .transpose()?;
    let subdomain = config.base_domain.as_deref().and_then(|base| {
        let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
        let host = host.split(':').next()?.to_ascii_lowercase();
        let label = host.strip_suffix(base)?.strip_suffix('.')?;
        TenantSlug::parse(label).ok()
    });
    match (header, subdomain) {
        (Some(a), Some(b)) if a != b => Err(ApiError::tenant_mismatch()),
        (a, b) => Ok(a.or(b)),
    }
}

/// Refuses a request whose authenticated tenant differs from any tenant it names.
pub fn ensure_same(token_tenant: &TenantSlug, named: Option<&TenantSlug>) -> Result<(), ApiError> {
    match named {
        Some(named) if named != token_tenant => Err(ApiError::tenant_mismatch()),
        _ => Ok(()),
    }
}
