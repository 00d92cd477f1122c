//! `tessera token`: service API tokens.

use clap::Subcommand;
use tessera_origin::clock;
use tessera_origin::config::Config;
use tessera_origin::services::api_tokens::NewApiToken;

use super::operator::{tell_edge, Operator};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a service API token; the token is printed alone on the last line, once.
    Create {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Name, unique in the tenant.
        #[arg(long)]
        name: String,
        /// A scope (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime in days (default: no expiry).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List a tenant's tokens (never their secrets).
    List {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a token by id or name; the edge is told before the command exits.
    Revoke {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// The token's id or name.
        token: String,
    },
}

/// Runs a `token` command.
pub async fn run(command: TokenCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            tenant,
            name,
            scopes,
            expires_in_days,
        } => {
            let operator = Operator::open(config, tenant.as_deref()).await?;
            let new = NewApiToken {
                name,
                scopes,
                expires_in_days,
            };
            let created = operator
                .api_tokens()
                .create(&operator.tenant, new)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let expiry = created
                .record
                .expires_at
                .map_or("never expires".to_owned(), |at| {
                    format!("expires {}", clock::rfc3339(at))
                });
            println!(
                "created token {} ({}) in tenant {}; {expiry}; it is shown once, below:",
                created.record.id, created.record.name, operator.tenant
            );
            println!("{}", created.token);
        }
        TokenCommand::List { tenant } => {
            let operator = Operator::open(config, tenant.as_deref()).await?;
            let tokens = operator
                .api_tokens()
                .list(&operator.tenant)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("id\tname\tscopes\tcreated\tlast used\tstate");
            for token in tokens {
                let state = state(token.revoked_at, token.expires_at);
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{state}",
                    token.id,
                    token.name,
                    token.scopes.join(" "),
                    clock::rfc3339(token.created_at),
                    token
                        .last_used_at
                        .map_or("never".to_owned(), clock::rfc3339),
                );
            }
        }
        TokenCommand::Revoke { tenant, token } => {
            let operator = Operator::open(config, tenant.as_deref()).await?;
            let revoked = operator
                .api_tokens()
                .revoke(&operator.tenant, &token)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let Some(revoked) = revoked else {
                anyhow::bail!("no active token {token} in tenant {}", operator.tenant);
            };
            println!(
                "revoked token {} ({}) in tenant {}",
                revoked.id, revoked.name, operator.tenant
            );
            tell_edge(config).await?;
        }
    }
    Ok(())
}

/// A token's state in a listing: revoked, expiring, or active for ever.
pub(super) fn state(revoked_at: Option<i64>, expires_at: Option<i64>) -> String {
    match (revoked_at, expires_at) {
        (Some(at), _) => format!("revoked {}", clock::rfc3339(at)),
        (None, Some(at)) => format!("expires {}", clock::rfc3339(at)),
        (None, None) => "active".to_owned(),
    }
}
