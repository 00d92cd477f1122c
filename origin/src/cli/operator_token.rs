//! `tessera operator-token`: the tokens of the operator API (`/api/admin/*`), global, of no
//! tenant.

use clap::Subcommand;
use tessera_origin::config::Config;
use tessera_origin::services::{OperatorTokens, ServiceError};
use tessera_origin::{clock, server};

#[derive(Subcommand)]
pub enum OperatorTokenCommand {
    /// Create an operator token; the token is printed alone on the last line, once.
    Create {
        /// Name, unique.
        #[arg(long)]
        name: String,
        /// Lifetime in days (default: no expiry).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        expires_in_days: Option<u32>,
    },
    /// List the operator tokens (never their secrets).
    List,
    /// Revoke an operator token by id or name: refused from the next request on.
    Revoke {
        /// The token's id or name.
        token: String,
    },
}

/// Runs an `operator-token` command.
pub async fn run(command: OperatorTokenCommand, config: &Config) -> anyhow::Result<()> {
    let store = server::open_store(config).await?;
    let clock: clock::SharedClock = std::sync::Arc::new(clock::SystemClock);
    let tokens = OperatorTokens::new(store, clock);
    match command {
        OperatorTokenCommand::Create {
            name,
            expires_in_days,
        } => {
            let created = tokens
                .create(&name, expires_in_days)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let expiry = created
                .record
                .expires_at
                .map_or("never expires".to_owned(), |at| {
                    format!("expires {}", clock::rfc3339(at))
                });
            println!(
                "created operator token {} ({}); {expiry}; it is shown once, below:",
                created.record.id, created.record.name
            );
            println!("{}", created.token);
        }
        OperatorTokenCommand::List => {
            let all = tokens.list().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("id\tname\tcreated\tlast used\tstate");
            for token in all {
                let state = super::token::state(token.revoked_at, token.expires_at);
                println!(
                    "{}\t{}\t{}\t{}\t{state}",
                    token.id,
                    token.name,
                    clock::rfc3339(token.created_at),
                    token
                        .last_used_at
                        .map_or("never".to_owned(), clock::rfc3339),
                );
            }
        }
        OperatorTokenCommand::Revoke { token } => match tokens.revoke(&token).await {
            Ok(revoked) => println!("revoked operator token {} ({})", revoked.id, revoked.name),
            Err(ServiceError::NotFound) => anyhow::bail!("no active operator token {token}"),
            Err(other) => return Err(anyhow::anyhow!("{other}")),
        },
    }
    Ok(())
}
