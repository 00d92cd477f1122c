//! `tessera client`: a tenant's OpenID clients (relying parties).

use clap::{Args, Subcommand};
use tessera_core::jwt::KeyAlgorithm;
use tessera_core::oidc::Grant;
use tessera_origin::clock;
use tessera_origin::config::Config;
use tessera_origin::services::oidc_clients::{ClientSettings, OidcClients};
use tessera_origin::store::oidc::OidcClient;

use super::operator::{tell_edge, Operator};

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register a client: prints `client_id: <id>` and, for a confidential client, a last
    /// line `client_secret: <secret>`, shown once.
    Create {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        settings: SettingsArgs,
        /// A public client (a browser or mobile app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
    },
    /// List a tenant's clients.
    List {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show one client.
    Show {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// The client id.
        client_id: String,
    },
    /// Replace a client's settings (name, URIs, grants, ID-token algorithm).
    Update {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// The client id.
        client_id: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Delete a client; every session it holds ends, at the edge too.
    Delete {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// The client id.
        client_id: String,
    },
}

#[derive(Args)]
pub struct SettingsArgs {
    /// A name people see on the sign-in page.
    #[arg(long)]
    name: String,
    /// A redirect URI, matched exactly (repeatable; https, or http on loopback).
    #[arg(long = "redirect-uri", required = true, num_args = 1..)]
    redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to (repeatable).
    #[arg(long = "post-logout-redirect-uri", num_args = 1..)]
    post_logout_redirect_uris: Vec<String>,
    /// A grant the client may use (repeatable; default: authorization_code and refresh_token).
    #[arg(long = "grant", value_parser = parse_grant)]
    grants: Vec<Grant>,
    /// The ID tokens' algorithm: RS256 (the default) or EdDSA.
    #[arg(long = "id-token-alg", default_value = "RS256", value_parser = parse_alg)]
    id_token_alg: KeyAlgorithm,
}

fn parse_grant(value: &str) -> Result<Grant, String> {
    Grant::parse(value)
        .ok_or_else(|| "one of authorization_code, refresh_token, client_credentials".to_owned())
}

fn parse_alg(value: &str) -> Result<KeyAlgorithm, String> {
    match KeyAlgorithm::from_name(value) {
        Some(alg @ (KeyAlgorithm::RS256 | KeyAlgorithm::EdDSA)) => Ok(alg),
        _ => Err("RS256 or EdDSA".to_owned()),
    }
}

impl From<SettingsArgs> for ClientSettings {
    fn from(args: SettingsArgs) -> Self {
        Self {
            name: args.name,
            redirect_uris: args.redirect_uris,
            post_logout_redirect_uris: args.post_logout_redirect_uris,
            grants: args.grants,
            id_token_alg: args.id_token_alg,
        }
    }
}

fn clients(operator: &Operator) -> OidcClients {
    OidcClients::new(
        operator.store.clone(),
        operator.directory.clone(),
        operator.revocations.clone(),
        operator.clock.clone(),
    )
}

fn print(client: &OidcClient) {
    println!("client_id: {}", client.id);
    println!("name: {}", client.name);
    println!(
        "type: {}",
        if client.is_confidential() {
            "confidential"
        } else {
            "public"
        }
    );
    println!("redirect_uris: {}", client.redirect_uris.join(" "));
    println!(
        "post_logout_redirect_uris: {}",
        client.post_logout_redirect_uris.join(" ")
    );
    let grants: Vec<&str> = client.grants.iter().map(|g| g.name()).collect();
    println!("grants: {}", grants.join(" "));
    println!("id_token_alg: {}", client.id_token_alg);
    println!("created: {}", clock::rfc3339(client.created_at));
}

/// Runs a `client` command.
pub async fn run(command: ClientCommand, config: &Config) -> anyhow::Result<()> {
    let fail = |e: tessera_origin::services::ServiceError| anyhow::anyhow!("{e}");
    match command {
        ClientCommand::Create {
            tenant,
            settings,
            public,
        } => {
            let operator = Operator::open(config, tenant.as_deref()).await?;
            let registered = clients(&operator)
                .create(&operator.tenant, settings.into(), public)
                .await
                .map_err(fail)?;
            print(&registered.client);
            println!(
                "issuer: {}",
                tessera_core::oidc::issuer(&config.public_url, operator.tenant.as_str())
            );
            if let Some(secret) = registered.secret {
                println!("client_secret: {secret}");
            }
        }
        ClientCommand::List { tenant } => {
            let operator = Operator::open(config, tenant.as_deref()).await?;
            let all = clients(&operator)
                .list(&operator.tenant)
                .await
                .map_err(fail)?;
            println!("client_id\tname\ttype\tredirect_uris");
            for client in all {
                println!(
                    "{}\t{}\t{}\t{}",
                    client.id,
                    client.name,
                    if client.is_confidential() {
                        "confidential"
                    } else {
                        "public"
                    },
                    client.redirect_uris.join(" ")
                );
            }
        }
        ClientCommand::Show { tenant, client_id } => {
            let operator = Operator::open(config, tenant.as_deref()).await?;
            let client = clients(&operator)
                .get(&operator.tenant, &client_id)
                .await
                .map_err(fail)?;
            print(&client);
        }
        ClientCommand::Update {
            tenant,
            client_id,
            settings,
        } => {
            let operator = Operator::open(config, tenant.as_deref()).await?;
            let client = clients(&operator)
                .update(&operator.tenant, &client_id, settings.into())
                .await
                .map_err(fail)?;
            print(&client);
        }
        ClientCommand::Delete { tenant, client_id } => {
            let operator = Operator::open(config, tenant.as_deref()).await?;
            clients(&operator)
                .delete(&operator.tenant, &client_id)
                .await
                .map_err(fail)?;
            println!("deleted client {client_id} in tenant {}", operator.tenant);
            tell_edge(config).await?;
        }
    }
    Ok(())
}
