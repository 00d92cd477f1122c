//! The `tessera` command line: one module per command group, over the library's services.

mod client;
mod keys;
mod operator;
mod operator_token;
mod tenant;
mod token;
mod user;
mod webhook;

use clap::{Parser, Subcommand};
use tessera_origin::config::Config;
use tessera_origin::server;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Multi-tenant authentication service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending migrations to the global scope and every tenant.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage the operator API's tokens (global, of no tenant).
    #[command(subcommand)]
    OperatorToken(operator_token::OperatorTokenCommand),
    /// Manage service API tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Manage OpenID clients (relying parties) of a tenant's provider.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage a tenant's webhook endpoints, and see their deliveries.
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
}

/// Binds `address`; a failure names the address and the variable that set it (a second server
/// on one machine clashes on the operations port first).
async fn listen(
    address: std::net::SocketAddr,
    variable: &str,
) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| {
            anyhow::anyhow!(
            "cannot listen on {address} ({variable}): {error}; set {variable} to a free address{}",
            if variable == "TESSERA_OPS_BIND" { " or to off" } else { "" }
        )
        })
}

/// Runs a command.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let shutdown = server::shutdown_signal();
            // Open tenant databases and connections are files: take the hard limit, not the
            // often much lower soft one (TESSERA_SQLITE_OPEN_TENANTS bounds what is used).
            match rlimit::increase_nofile_limit(u64::MAX) {
                Ok(limit) => tracing::debug!(limit, "open files limit"),
                Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
            }
            let bind = config.bind;
            let embedded = config.is_embedded();
            let default_tenant = config.default_tenant.clone();
            let ops_bind = config.ops_bind;
            let dev = config.dev;
            let state = server::build_state(config).await?;
            let listener = listen(bind, "TESSERA_BIND").await?;
            let ops = match ops_bind {
                Some(address) => Some(listen(address, "TESSERA_OPS_BIND").await?),
                None => None,
            };
            // One signal stops both listeners.
            let (stop, stopped) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                shutdown.await;
                let _ = stop.send(true);
            });
            let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
                let _ = rx.wait_for(|stopped| *stopped).await;
            };
            tracing::info!(address = %listener.local_addr()?, embedded, "tessera listening");
            if let Some(ops) = &ops {
                tracing::info!(address = %ops.local_addr()?, "operations listener (/metrics)");
            }
            eprintln!(
                "Tessera is listening on http://{}\nCreate the first user with:\n  printf '%s' 'a long passphrase' | cargo run -- user create --tenant {default_tenant} --email you@example.com",
                listener.local_addr()?
            );
            if dev {
                eprintln!(
                    "Development mode (TESSERA_DEV=1): rate limits x{}, a log line per request. Never in production.",
                    tessera_origin::limiter::DEV_RELAXATION
                );
            }
            let ops = ops.map(|ops| {
                tokio::spawn(server::serve_ops(
                    ops,
                    state.clone(),
                    until_stopped(stopped.clone()),
                ))
            });
            server::serve(listener, state, until_stopped(stopped)).await?;
            if let Some(ops) = ops {
                ops.await??;
            }
        }
        Command::Migrate => {
            server::open_store(&config).await?.migrate().await?;
            println!("migrations applied");
        }
        Command::Tenant(command) => tenant::run(command, &config).await?,
        Command::User(command) => user::run(command, &config).await?,
        Command::Token(command) => token::run(command, &config).await?,
        Command::OperatorToken(command) => operator_token::run(command, &config).await?,
        Command::Client(command) => client::run(command, &config).await?,
        Command::Webhook(command) => webhook::run(command, &config).await?,
        Command::Keys(command) => keys::run(command, &config).await?,
    }
    Ok(())
}
