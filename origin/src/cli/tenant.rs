//! `tessera tenant`: create, update, show and list tenants.

use clap::Subcommand;
use tessera_core::model::TenantSlug;
use tessera_origin::allowed_origin::AllowedOrigin;
use tessera_origin::app_url::AppUrl;
use tessera_origin::clock;
use tessera_origin::config::Config;
use tessera_origin::relying_party::RelyingParty;
use tessera_origin::services::ServiceError;
use tessera_origin::store::{Tenant, TenantChanges, TenantPolicy, TenantSettings};

use super::operator::{tell_edge, tenants};

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant: its schema or file, migrated, with all its settings at once.
    Create {
        /// Slug: lowercase letters, digits and '-', 3–56 characters.
        slug: String,
        /// Display name (default: the slug).
        #[arg(long, value_parser = display_name)]
        name: Option<String>,
        /// A browser origin allowed to call the API, as `https://host[:port]` (repeatable).
        #[arg(long = "cors-origin", value_parser = AllowedOrigin::parse)]
        cors_origins: Vec<AllowedOrigin>,
        /// The tenant's app: where the hosted pages send the user afterwards ("Continue to
        /// <tenant name>").
        #[arg(long, value_parser = AppUrl::parse)]
        app_url: Option<AppUrl>,
        /// The WebAuthn RP ID the tenant's passkeys are bound to (a domain, e.g. example.com;
        /// default: TESSERA_PUBLIC_URL's host). It can never change without losing every
        /// passkey of the tenant.
        #[arg(long, requires = "webauthn_origin")]
        rp_id: Option<String>,
        /// The browser origin passkey ceremonies run on, the RP ID or under it (e.g.
        /// https://login.example.com; default: TESSERA_PUBLIC_URL's origin).
        #[arg(long, requires = "rp_id")]
        webauthn_origin: Option<String>,
        /// Whether anyone may register (403 `registration_closed` when closed).
        #[arg(long, value_enum, default_value = "open")]
        registration: Registration,
        /// Sign-in needs a confirmed email address (403 `email_not_verified` until then).
        #[arg(long)]
        require_verified_email: bool,
        /// Every sign-in needs a second factor: users without one get an enrol-only token.
        #[arg(long)]
        require_mfa: bool,
        /// Whether the team/vault API's `GET /api/exist-email/{email}` answers (when off it
        /// answers 403 `exist_email_disabled` for every address).
        #[arg(long, value_enum, default_value = "on")]
        exist_email: Switch,
    },
    /// Change a tenant's settings; what is not given stays as it is. Running servers apply the
    /// change within 30 seconds.
    #[command(group(clap::ArgGroup::new("change").multiple(true).required(true)))]
    Update {
        /// The tenant's slug.
        slug: String,
        /// Display name.
        #[arg(long, value_parser = display_name, group = "change")]
        name: Option<String>,
        /// A browser origin allowed to call the API, as `https://host[:port]` (repeatable);
        /// the list given replaces the old one.
        #[arg(long = "cors-origin", value_parser = AllowedOrigin::parse, group = "change")]
        cors_origins: Vec<AllowedOrigin>,
        /// Allow no browser origin.
        #[arg(long, conflicts_with = "cors_origins", group = "change")]
        no_cors_origins: bool,
        /// The tenant's app, where the hosted pages send the user afterwards.
        #[arg(long, value_parser = AppUrl::parse, group = "change")]
        app_url: Option<AppUrl>,
        /// No app: the hosted pages end where they are.
        #[arg(long, conflicts_with = "app_url", group = "change")]
        no_app_url: bool,
        /// The WebAuthn RP ID. Changing it makes every passkey of the tenant unusable.
        #[arg(long, requires = "webauthn_origin", group = "change")]
        rp_id: Option<String>,
        /// The browser origin passkey ceremonies run on.
        #[arg(long, requires = "rp_id")]
        webauthn_origin: Option<String>,
        /// Whether anyone may register.
        #[arg(long, value_enum, group = "change")]
        registration: Option<Registration>,
        /// Whether sign-in needs a confirmed email address.
        #[arg(long, value_enum, group = "change")]
        require_verified_email: Option<Switch>,
        /// Whether every sign-in needs a second factor.
        #[arg(long, value_enum, group = "change")]
        require_mfa: Option<Switch>,
        /// Whether the team/vault API's `GET /api/exist-email/{email}` answers.
        #[arg(long, value_enum, group = "change")]
        exist_email: Option<Switch>,
    },
    /// Show a tenant's settings.
    Show {
        /// The tenant's slug.
        slug: String,
    },
    /// List tenants.
    List,
    /// Delete a tenant: every session and service token of it ends (the edge is told), its
    /// schema or file is removed with all its users, and the slug may be created again.
    Delete {
        /// The tenant's slug.
        slug: String,
        /// The slug again, to confirm.
        #[arg(long)]
        confirm: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Registration {
    Open,
    Closed,
}

impl Registration {
    fn is_open(self) -> bool {
        matches!(self, Self::Open)
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    fn is_on(self) -> bool {
        matches!(self, Self::On)
    }
}

/// Runs a `tenant` command.
pub async fn run(command: TenantCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create {
            slug,
            name,
            cors_origins,
            app_url,
            rp_id,
            webauthn_origin,
            registration,
            require_verified_email,
            require_mfa,
            exist_email,
        } => {
            let slug = TenantSlug::parse(&slug)?;
            let relying_party = relying_party(rp_id, webauthn_origin)?;
            let tenants = tenants(config).await?;
            let settings = TenantSettings {
                name: name.unwrap_or_else(|| slug.to_string()),
                cors_origins,
                app_url,
                relying_party,
                policy: TenantPolicy {
                    registration_open: registration.is_open(),
                    require_verified_email,
                    require_mfa,
                    email_lookup: exist_email.is_on(),
                },
            };
            match tenants.create(&slug, &settings).await {
                Err(ServiceError::Conflict { .. }) => {
                    anyhow::bail!("tenant {slug} already exists")
                }
                other => other.map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            println!("created tenant {slug}");
        }
        TenantCommand::Update {
            slug,
            name,
            cors_origins,
            no_cors_origins,
            app_url,
            no_app_url,
            rp_id,
            webauthn_origin,
            registration,
            require_verified_email,
            require_mfa,
            exist_email,
        } => {
            let slug = TenantSlug::parse(&slug)?;
            let relying_party = relying_party(rp_id, webauthn_origin)?;
            let tenants = tenants(config).await?;
            let changes = TenantChanges {
                name,
                cors_origins: (no_cors_origins || !cors_origins.is_empty()).then_some(cors_origins),
                app_url: (no_app_url || app_url.is_some()).then_some(app_url),
                relying_party: relying_party.map(Some),
                registration_open: registration.map(Registration::is_open),
                require_verified_email: require_verified_email.map(Switch::is_on),
                require_mfa: require_mfa.map(Switch::is_on),
                email_lookup: exist_email.map(Switch::is_on),
            };
            let tenant = match tenants.update(&slug, &changes).await {
                Err(ServiceError::TenantNotFound) => anyhow::bail!("no tenant {slug}"),
                other => other.map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            println!("updated tenant {slug}");
            print_tenant(&tenant);
        }
        TenantCommand::Show { slug } => {
            let slug = TenantSlug::parse(&slug)?;
            let tenant = match tenants(config).await?.get(&slug).await {
                Err(ServiceError::TenantNotFound) => anyhow::bail!("no tenant {slug}"),
                other => other.map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            print_tenant(&tenant);
        }
        TenantCommand::Delete { slug, confirm } => {
            let slug = TenantSlug::parse(&slug)?;
            let deleted = match tenants(config).await?.delete(&slug, &confirm).await {
                Err(ServiceError::TenantNotFound) => anyhow::bail!("no tenant {slug}"),
                other => other.map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            println!(
                "deleted tenant {slug}; {} session(s) and {} service token(s) ended",
                deleted.sessions.len(),
                deleted.tokens
            );
            tell_edge(config).await?;
        }
        TenantCommand::List => {
            let all = tenants(config)
                .await?
                .all()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for tenant in all {
                println!(
                    "{}\t{}\t{}",
                    tenant.slug,
                    tenant.name,
                    clock::rfc3339(tenant.created_at)
                );
            }
        }
    }
    Ok(())
}

/// A tenant's own relying party from `--rp-id` and `--webauthn-origin` (clap requires both or
/// neither).
fn relying_party(
    id: Option<String>,
    origin: Option<String>,
) -> anyhow::Result<Option<RelyingParty>> {
    match (id, origin) {
        (Some(id), Some(origin)) => Ok(Some(RelyingParty::new(&id, &origin)?)),
        _ => Ok(None),
    }
}

/// A tenant's display name: not blank, and short enough for a page's heading.
fn display_name(given: &str) -> Result<String, String> {
    tessera_origin::services::tenants::checked_name(given).map_err(|e| e.to_string())
}

/// A tenant's settings, a line each, in the words of `tenant create`'s options.
fn print_tenant(tenant: &Tenant) {
    let on = |value: bool| if value { "on" } else { "off" };
    let policy = tenant.policy;
    println!("slug: {}", tenant.slug);
    println!("name: {}", tenant.name);
    println!("created: {}", clock::rfc3339(tenant.created_at));
    println!("cors origins: {}", tenant.cors_origins.join(" "));
    println!("app url: {}", tenant.app_url.as_deref().unwrap_or("-"));
    match &tenant.relying_party {
        Some(party) => println!("webauthn: rp id {}, origin {}", party.id(), party.origin()),
        None => println!("webauthn: TESSERA_PUBLIC_URL's"),
    }
    println!(
        "registration: {}",
        if policy.registration_open {
            "open"
        } else {
            "closed"
        }
    );
    println!(
        "require verified email: {}",
        on(policy.require_verified_email)
    );
    println!("require mfa: {}", on(policy.require_mfa));
    println!("exist email: {}", on(policy.email_lookup));
}
