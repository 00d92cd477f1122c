//! What the operator's commands share: the services they run over, and telling the edge.

use tessera_core::model::{Email, TenantSlug};
use tessera_origin::config::Config;
use tessera_origin::edge_push::EdgePush;
use tessera_origin::password::PasswordPolicy;
use tessera_origin::services::{Accounts, ApiTokens, Revocations, Tenants, UserKey};
use tessera_origin::session_cache::SessionCache;
use tessera_origin::tenants::Directory;
use tessera_origin::{clock, password, server};

use super::user::UserRef;

/// Delivers the revocation log to the edge before the command exits, and says whether the edge
/// heard: a session-ending command never reports the edge told when it was not. The change
/// itself is committed (with its log entry) either way; what the edge missed, a running
/// `tessera serve` delivers as soon as the edge answers.
pub async fn tell_edge(config: &Config) -> anyhow::Result<()> {
    let Some(edge) = EdgePush::from_config(config) else {
        return Ok(());
    };
    let store = server::open_store(config).await?;
    match edge.deliver_pending(&store, clock::system_now_secs()).await {
        Ok(_) => println!("the edge has been told"),
        Err(error) => eprintln!(
            "delivery to the edge is pending ({error}); the revocation is in the log, and a \
             running `tessera serve` delivers it as soon as the edge answers"
        ),
    }
    Ok(())
}

/// What an operator command's services share: the store, an existing tenant, the directory,
/// revocations told to the edge, and the system clock.
pub struct Operator {
    pub store: tessera_origin::store::DynStore,
    pub tenant: TenantSlug,
    pub directory: std::sync::Arc<Directory>,
    pub revocations: Revocations,
    pub clock: clock::SharedClock,
}

impl Operator {
    pub async fn open(config: &Config, tenant: Option<&str>) -> anyhow::Result<Self> {
        let tenant = match tenant {
            Some(t) => TenantSlug::parse(t)?,
            None => config.default_tenant.clone(),
        };
        let store = server::open_store(config).await?;
        if store.tenant(&tenant).await?.is_none() {
            anyhow::bail!("no tenant {tenant}");
        }
        let clock: clock::SharedClock = std::sync::Arc::new(clock::SystemClock);
        let cache = std::sync::Arc::new(SessionCache::new(0, clock.clone()));
        let index = std::sync::Arc::new(tessera_origin::revocation_index::RevocationIndex::new());
        let revocations = Revocations::new(cache, index, clock.clone());
        let directory = std::sync::Arc::new(Directory::new(store.clone(), clock.clone()));
        Ok(Self {
            store,
            tenant,
            directory,
            revocations,
            clock,
        })
    }

    pub fn api_tokens(&self) -> ApiTokens {
        ApiTokens::new(
            self.store.clone(),
            self.directory.clone(),
            self.clock.clone(),
        )
    }
}

/// The account service for an operator command on `user`, with its tenant checked and the
/// user named by address.
pub async fn accounts(
    config: &Config,
    user: &UserRef,
) -> anyhow::Result<(Accounts, TenantSlug, UserKey)> {
    let email = Email::parse(&user.email)?;
    let (accounts, tenant) = operator_accounts(config, user.tenant.as_deref()).await?;
    Ok((accounts, tenant, UserKey::Email(email)))
}

/// The tenant service for an operator command.
pub async fn tenants(config: &Config) -> anyhow::Result<Tenants> {
    let store = server::open_store(config).await?;
    let clock: clock::SharedClock = std::sync::Arc::new(clock::SystemClock);
    let cache = std::sync::Arc::new(SessionCache::new(0, clock.clone()));
    let index = std::sync::Arc::new(tessera_origin::revocation_index::RevocationIndex::new());
    let revocations = Revocations::new(cache, index, clock.clone());
    let directory = std::sync::Arc::new(Directory::new(store.clone(), clock.clone()));
    Ok(Tenants::new(
        store,
        directory,
        revocations,
        clock,
        config.default_tenant.clone(),
    ))
}

/// The account service for an operator command in `tenant` (checked to exist).
pub async fn operator_accounts(
    config: &Config,
    tenant: Option<&str>,
) -> anyhow::Result<(Accounts, TenantSlug)> {
    let operator = Operator::open(config, tenant).await?;
    let hasher =
        password::Hasher::new(config.argon2, 1, 1).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let accounts = Accounts::new(
        operator.store,
        operator.directory,
        hasher,
        operator.revocations,
        operator.clock,
        PasswordPolicy::from_config(config),
    );
    Ok((accounts, operator.tenant))
}
