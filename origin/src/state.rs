//! Everything a request handler needs, built once at start-up.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::{Config, RateLimitStore};
use crate::edge_push::EdgePush;
use crate::keys::{Keyring, MasterKey};
use crate::limiter::Limiter;
use crate::password::Hasher;
use crate::session_cache::SessionCache;
use crate::store::DynStore;
use crate::tenants::Directory;

/// Shared application state.
#[derive(Clone)]
pub struct AppState {
    /// Configuration.
    pub config: Arc<Config>,
    /// Storage.
    pub store: DynStore,
    /// Signing and verification keys.
    pub keys: Keyring,
    /// Password hashing.
    pub hasher: Hasher,
    /// Rate limits.
    pub limiter: Arc<Limiter>,
    /// Tenant registry cache.
    pub tenants: Arc<Directory>,
    /// Recently verified sessions.
    pub sessions: Arc<SessionCache>,
    /// Key that derives a refresh token's successor from the token itself.
    pub refresh_key: Arc<[u8; 32]>,
    /// Revocations pushed to the edge, when one is configured.
    pub edge: Option<EdgePush>,
    /// Prometheus exposition.
    pub metrics: PrometheusHandle,
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Keys.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyringError),
    /// Password hashing parameters.
    #[error("argon2 parameters: {0}")]
    Argon2(argon2::Error),
}

impl AppState {
    /// Builds the state over a migrated store.
    pub async fn new(
        config: Config,
        store: DynStore,
        master: MasterKey,
    ) -> Result<Self, StartError> {
        let keys = Keyring::load(
            store.clone(),
            master.clone(),
            &config.issuer,
            &config.audience,
        )
        .await?;
        let hasher = Hasher::new(config.argon2, config.hash_concurrency, config.hash_queue)
            .map_err(StartError::Argon2)?;
        let limiter = match config.rate_limit_store {
            RateLimitStore::Memory => Limiter::memory(),
            RateLimitStore::Database => Limiter::Database(store.clone()),
        };
        Ok(Self {
            refresh_key: Arc::new(master.derive("refresh-token-successor")),
            tenants: Arc::new(Directory::new(store.clone())),
            sessions: Arc::new(SessionCache::new(std::time::Duration::from_millis(
                config.session_cache_ms,
            ))),
            limiter: Arc::new(limiter),
            metrics: crate::http::ops::metrics_handle(),
            edge: config
                .edge_url
                .as_deref()
                .zip(config.edge_secret.as_deref())
                .map(|(url, secret)| EdgePush::new(url, secret)),
            config: Arc::new(config),
            store,
            keys,
            hasher,
        })
    }
}
