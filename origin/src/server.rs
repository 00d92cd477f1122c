//! Start-up: open and migrate storage, load keys, build the state, serve until SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::clock;
use crate::config::Config;
use crate::jobs::Jobs;
use crate::keys::{self, MasterKey};
use crate::state::AppState;
use crate::store::{DynStore, Store, StoreError};

/// Why start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Storage.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// Keys.
    #[error(transparent)]
    Keys(#[from] keys::KeyringError),
    /// State.
    #[error(transparent)]
    Start(#[from] crate::state::StartError),
    /// Configuration that is missing.
    #[error("{0}")]
    Config(String),
    /// Binding or serving.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Opens the configured store and migrates its global scope. Tenants are migrated on first
/// use (or all at once by `tessera migrate`), so neither start-up nor a CLI command touches
/// every tenant.
pub async fn open_store(config: &Config) -> Result<DynStore, ServeError> {
    let store: DynStore = match &config.database_url {
        Some(url) => Arc::new(Store::postgres(url, config.database_connections).await?),
        None => Arc::new(Store::sqlite_with(&config.data_dir, config.sqlite_open_tenants).await?),
    };
    store.migrate_global().await?;
    Ok(store)
}

/// The master key: configured, or in embedded mode generated into the data directory.
pub fn master_key(config: &Config) -> Result<MasterKey, ServeError> {
    let master = match (config.master_key, config.is_embedded()) {
        (Some(bytes), _) => MasterKey::new(bytes),
        (None, true) => MasterKey::load_or_generate(&config.data_dir)?,
        (None, false) => return Err(ServeError::Config(
            "TESSERA_MASTER_KEY: required with PostgreSQL (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)".into(),
        )),
    };
    Ok(master.also_accepting(config.master_key_accepted))
}

/// Creates the default tenant if it does not exist yet.
pub async fn ensure_default_tenant(store: &DynStore, config: &Config) -> Result<(), ServeError> {
    let slug = &config.default_tenant;
    if store.tenant(slug).await?.is_none() {
        match store
            .create_tenant(slug, "Default", clock::system_now_secs())
            .await
        {
            Ok(_) => tracing::info!(tenant = %slug, "created the default tenant"),
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Builds the state for `config`: storage migrated, default tenant present, keys loaded.
pub async fn build_state(config: Config) -> Result<AppState, ServeError> {
    let store = open_store(&config).await?;
    ensure_default_tenant(&store, &config).await?;
    let master = master_key(&config)?;
    Ok(AppState::new(config, store, master).await?)
}

/// Serves `state` on `listener`, with the background jobs, until `shutdown` resolves; then
/// drains in-flight requests and lets each job finish its current run.
///
/// HTTP/1.1 over hyper directly (not `axum::serve`), for what a server facing slow or greedy
/// clients needs: a header-read timeout that also bounds idle keep-alive connections, and a cap
/// on connections served at once (further ones wait in the listen backlog). The body-read
/// timeout is a layer of the app.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let jobs = Jobs::start(&state);
    let header_timeout = Duration::from_secs(state.config.header_read_timeout_secs);
    let slots = Arc::new(Semaphore::new(state.config.max_connections));
    let app = crate::http::app(state);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait a moment instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(Body::new)
            });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    // In-flight requests finish; idle connections close at once.
    graceful.shutdown().await;
    jobs.shutdown().await;
    Ok(())
}

/// Serves the operations listener (`/metrics` without a token, the probes) until `shutdown`
/// resolves. It is meant for loopback or a private network, so it is plain `axum::serve`.
pub async fn serve_ops(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    axum::serve(listener, crate::http::ops::ops_app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C. The SIGTERM handler is installed when this is called, not
/// when the future is first polled, so a SIGTERM that arrives while the server is still starting
/// is a graceful shutdown too, not the default kill. Call it inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            match term {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = term => {},
        }
        tracing::info!("shutting down: draining in-flight requests");
    }
}
