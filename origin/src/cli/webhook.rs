//! `tessera webhook`: a tenant's webhook endpoints and their deliveries.

use clap::Subcommand;
use tessera_origin::config::Config;
use tessera_origin::server;
use tessera_origin::services::Webhooks;

use super::operator::Operator;

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Add an endpoint; its signing secret (`whsec_…`, for any Standard Webhooks library) is
    /// printed alone on the last line, once.
    Create {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Where events are POSTed: https, or http to localhost.
        #[arg(long)]
        url: String,
        /// An event to send (repeatable): user.created, user.email_verified, user.disabled,
        /// user.deleted, session.created, session.ended, password.changed, mfa.changed.
        #[arg(long = "event", required = true)]
        events: Vec<String>,
    },
    /// List a tenant's endpoints (never their secrets).
    List {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove an endpoint; its pending deliveries go with it.
    Delete {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// The endpoint's id.
        id: String,
    },
    /// The latest deliveries, newest first: event, endpoint, tries and outcome.
    Deliveries {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Runs a `webhook` command.
pub async fn run(command: WebhookCommand, config: &Config) -> anyhow::Result<()> {
    let tenant = match &command {
        WebhookCommand::Create { tenant, .. }
        | WebhookCommand::List { tenant }
        | WebhookCommand::Delete { tenant, .. }
        | WebhookCommand::Deliveries { tenant, .. } => tenant.clone(),
    };
    let operator = Operator::open(config, tenant.as_deref()).await?;
    let webhooks = Webhooks::new(
        operator.store.clone(),
        operator.directory.clone(),
        server::master_key(config)?,
        operator.clock.clone(),
    );
    let tenant = &operator.tenant;
    let fail = |e: tessera_origin::services::ServiceError| anyhow::anyhow!("{e}");
    match command {
        WebhookCommand::Create { url, events, .. } => {
            let created = webhooks.create(tenant, &url, &events).await.map_err(fail)?;
            println!(
                "webhook endpoint {} in tenant {tenant}",
                created.endpoint.id
            );
            println!("url: {}", created.endpoint.url);
            println!("events: {}", created.endpoint.events.join(" "));
            println!("signing secret (shown once; keep it with the receiver):");
            println!("{}", created.secret);
        }
        WebhookCommand::List { .. } => {
            for endpoint in webhooks.list(tenant).await.map_err(fail)? {
                println!(
                    "{}\t{}\t{}",
                    endpoint.id,
                    endpoint.url,
                    endpoint.events.join(" ")
                );
            }
        }
        WebhookCommand::Delete { id, .. } => {
            webhooks.delete(tenant, &id).await.map_err(fail)?;
            println!("webhook endpoint {id} removed from tenant {tenant}");
        }
        WebhookCommand::Deliveries { limit, .. } => {
            println!("seq\tevent_id\tevent\tuser\tendpoint\ttries\tstate\tlast status\tlast error");
            for d in webhooks
                .deliveries(tenant, i64::from(limit))
                .await
                .map_err(fail)?
            {
                let state = match (d.delivered_ms, d.failed_ms) {
                    (Some(_), _) => "delivered",
                    (None, Some(_)) => "given up",
                    (None, None) => "pending",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{state}\t{}\t{}",
                    d.seq,
                    d.event_id,
                    d.event,
                    d.user_id,
                    d.endpoint_id,
                    d.attempts,
                    d.last_status.map(|s| s.to_string()).unwrap_or_default(),
                    d.last_error.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
