//! Everything a request handler needs, built once at start-up: the services, and the few
//! pieces the HTTP layer uses itself (configuration, limits, the tenant registry, metrics).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, RateLimitStore};
use crate::keys::{Keyring, MasterKey};
use crate::limiter::Limiter;
use crate::mail::{Mailer, MailerError};
use crate::password::{Hasher, PasswordPolicy};
use crate::revocation_index::RevocationIndex;
use crate::services::captcha::CaptchaVerifier;
use crate::services::{
    Accounts, ApiTokens, Authenticator, EmailCodes, MailRequests, Mfa, OidcClients, OneTime,
    OperatorTokens, Passkeys, PasswordReset, Provider, Refresher, Registrar, Revocations, Services,
    SessionService, SignIn, Tenants, TokenIssuer, TotpFactor, UserTransfer, VaultTokens, Webhooks,
};
use crate::session_cache::SessionCache;
use crate::store::DynStore;
use crate::tenants::Directory;

/// Shared application state: one `Arc`, so that the clones axum makes for every layer and
/// extractor of every request cost one reference count, not one per service (dozens of
/// contended atomic counters cost 60 % of `/healthz` throughput on two cores).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the application state holds.
pub struct Shared {
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
    /// The clock every service reads.
    pub clock: SharedClock,
    /// The flows.
    pub services: Services,
    /// Prometheus exposition.
    pub metrics: PrometheusHandle,
    /// Renders and delivers email (for the mail worker).
    pub mailer: Arc<Mailer>,
    /// This node's index of the revocation log (fed by the `revocation_index` job).
    pub revocation_index: Arc<RevocationIndex>,
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
    /// Mail configuration.
    #[error(transparent)]
    Mail(#[from] MailerError),
    /// The revocation log could not be read into the index.
    #[error("reading the revocation log: {0}")]
    RevocationLog(#[from] crate::store::StoreError),
}

impl AppState {
    /// Builds the state over a migrated store, on the system clock.
    pub async fn new(
        config: Config,
        store: DynStore,
        master: MasterKey,
    ) -> Result<Self, StartError> {
        Self::with_clock(config, store, master, Arc::new(SystemClock)).await
    }

    /// Builds the state over a migrated store, on `clock`.
    pub async fn with_clock(
        config: Config,
        store: DynStore,
        master: MasterKey,
        clock: SharedClock,
    ) -> Result<Self, StartError> {
        let keys = Keyring::load(
            store.clone(),
            master.clone(),
            &config.issuer,
            &config.audience,
            clock.clone(),
        )
        .await?;
        let hasher = Hasher::new(config.argon2, config.hash_concurrency, config.hash_queue)
            .map_err(StartError::Argon2)?;
        let limiter = match config.rate_limit_store {
            RateLimitStore::Memory => Limiter::memory(clock.clone()),
            RateLimitStore::Database => Limiter::database(store.clone(), clock.clone()),
        };
        let limiter = Arc::new(if config.dev {
            limiter.relaxed(crate::limiter::DEV_RELAXATION)
        } else {
            limiter
        });
        let tenants = Arc::new(Directory::new(store.clone(), clock.clone()));
        let cache = Arc::new(SessionCache::new(config.session_cache_ms, clock.clone()));
        // Verification asks this index instead of tenant databases: it holds every revocation
        // still in force before the first request is served.
        if let Some(written) = store.backfill_revocation_log(clock.now_secs()).await? {
            tracing::info!(
                written,
                "sessions ended before the revocation log are now in it"
            );
        }
        let revocation_index = Arc::new(RevocationIndex::new());
        crate::revocation_index::catch_up(&revocation_index, &store, None, clock.now_secs())
            .await?;
        let revocations = Revocations::new(cache.clone(), revocation_index.clone(), clock.clone());
        let tokens = TokenIssuer::new(
            keys.clone(),
            &config.issuer,
            &config.audience,
            crate::keys::derived_key(&store, &master, "refresh-token-successor").await?,
            clock.clone(),
        );
        let one_time = OneTime::new(
            crate::keys::derived_key(&store, &master, "email-secret").await?,
            &config.public_url,
        );
        let password_policy = PasswordPolicy::from_config(&config);
        let totp = TotpFactor::new(
            store.clone(),
            tenants.clone(),
            hasher.clone(),
            master.clone(),
            crate::keys::derived_key(&store, &master, "recovery-code").await?,
            revocations.clone(),
            clock.clone(),
        );
        let passkeys = Passkeys::new(
            store.clone(),
            tenants.clone(),
            hasher.clone(),
            one_time.clone(),
            tokens.clone(),
            limiter.clone(),
            revocations.clone(),
            clock.clone(),
            &config.public_url,
        );
        let mfa = Mfa::new(
            store.clone(),
            tenants.clone(),
            hasher.clone(),
            one_time.clone(),
            tokens.clone(),
            totp.clone(),
            limiter.clone(),
            revocations.clone(),
            passkeys.clone(),
            clock.clone(),
        );
        let password_reset = PasswordReset::new(
            store.clone(),
            tenants.clone(),
            hasher.clone(),
            limiter.clone(),
            one_time.clone(),
            revocations.clone(),
            clock.clone(),
            password_policy.clone(),
        );
        let email_codes = EmailCodes::new(
            store.clone(),
            tenants.clone(),
            limiter.clone(),
            one_time.clone(),
            tokens.clone(),
            clock.clone(),
            revocations.clone(),
        );
        let authenticate = Authenticator::new(
            store.clone(),
            tenants.clone(),
            keys.clone(),
            cache,
            revocation_index.clone(),
            config.token_cache_entries,
            clock.clone(),
        );
        let refresh = Refresher::new(
            store.clone(),
            tenants.clone(),
            tokens.clone(),
            revocations.clone(),
            clock.clone(),
            config.refresh_grace_secs,
            config.session_idle_secs,
        );
        let oidc_clients = OidcClients::new(
            store.clone(),
            tenants.clone(),
            revocations.clone(),
            clock.clone(),
        );
        let provider = Provider::new(
            store.clone(),
            tenants.clone(),
            oidc_clients.clone(),
            tokens.clone(),
            keys.clone(),
            authenticate.clone(),
            refresh.clone(),
            limiter.clone(),
            revocations.clone(),
            clock.clone(),
            &config.public_url,
        );
        let services = Services {
            sign_in: SignIn::new(
                store.clone(),
                tenants.clone(),
                hasher.clone(),
                limiter.clone(),
                tokens.clone(),
                mfa.clone(),
                clock.clone(),
            ),
            refresh,
            oidc_clients,
            provider,
            vault_tokens: VaultTokens::new(
                store.clone(),
                tokens.clone(),
                authenticate.clone(),
                revocations.clone(),
                clock.clone(),
                config.session_idle_secs,
            ),
            authenticate,
            sessions: SessionService::new(store.clone(), revocations.clone(), clock.clone()),
            registration: Registrar::new(
                store.clone(),
                tenants.clone(),
                hasher.clone(),
                limiter.clone(),
                one_time.clone(),
                config.captcha.clone().map(CaptchaVerifier::new),
                clock.clone(),
                password_policy.clone(),
                revocations.clone(),
            ),
            mail_requests: MailRequests::new(
                store.clone(),
                tenants.clone(),
                password_reset.clone(),
                email_codes.clone(),
                one_time.clone(),
                clock.clone(),
            ),
            accounts: Accounts::new(
                store.clone(),
                tenants.clone(),
                hasher.clone(),
                revocations.clone(),
                clock.clone(),
                password_policy,
            ),
            api_tokens: ApiTokens::new(store.clone(), tenants.clone(), clock.clone()),
            passkeys: passkeys.clone(),
            user_transfer: UserTransfer::new(
                store.clone(),
                tenants.clone(),
                master.clone(),
                clock.clone(),
            ),
            webhooks: Webhooks::new(
                store.clone(),
                tenants.clone(),
                master.clone(),
                clock.clone(),
            ),
            tenants: Tenants::new(
                store.clone(),
                tenants.clone(),
                revocations.clone(),
                clock.clone(),
                config.default_tenant.clone(),
            ),
            operator_tokens: OperatorTokens::new(store.clone(), clock.clone()),
            password_reset,
            email_codes,
            mfa,
            totp,
        };
        let mailer = Arc::new(Mailer::from_config(&config)?);
        Ok(Self(Arc::new(Shared {
            metrics: crate::prometheus::handle(),
            config: Arc::new(config),
            store,
            keys,
            hasher,
            limiter,
            tenants,
            clock,
            services,
            mailer,
            revocation_index,
        })))
    }
}
