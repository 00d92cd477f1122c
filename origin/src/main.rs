//! The `tessera` command: `serve` (the default), `migrate`, `tenant`, `user`, `keys`, `token`.

/// mimalloc instead of glibc's malloc: per-thread free lists without arena locks (see
/// docs/BENCHMARKS.md, 2026-12-05).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera_core::model::{Email, TenantSlug};
use tessera_origin::allowed_origin::AllowedOrigin;
use tessera_origin::config::{Config, LogFormat};
use tessera_origin::edge_push::EdgePush;
use tessera_origin::password::PasswordPolicy;
use tessera_origin::services::account::OperatorAccount;
use tessera_origin::services::api_tokens::NewApiToken;
use tessera_origin::services::{Accounts, ApiTokens, Revocations};
use tessera_origin::session_cache::SessionCache;
use tessera_origin::store::{StoreError, Tenant, TenantChanges, TenantPolicy, TenantSettings};
use tessera_origin::tenants::Directory;
use tessera_origin::{clock, keys, password, server};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Multi-tenant authentication service"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending migrations to the global scope and every tenant.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage service API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
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

#[derive(Subcommand)]
enum TenantCommand {
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
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from standard input (or prompted for), never from
    /// an argument, so it stays out of shell history and process listings.
    Create {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Email address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// Role.
        #[arg(long, default_value = "user")]
        role: String,
        /// A second factor to require at sign-in.
        #[arg(long, value_enum)]
        mfa: Option<MfaMethod>,
    },
    /// Disable a user: sign-in is refused and every session ends at once (the edge is told).
    Disable(UserRef),
    /// End every session of a user (the edge is told); they may sign in again at once.
    SignOut(UserRef),
    /// Enable a disabled user.
    Enable(UserRef),
    /// Set a user's password, read from standard input (or prompted for); every session of
    /// the user ends.
    SetPassword(UserRef),
}

/// Names a user.
#[derive(clap::Args)]
struct UserRef {
    /// Tenant slug (default: the configured default tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Email address.
    #[arg(long)]
    email: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Registration {
    Open,
    Closed,
}

impl Registration {
    fn is_open(self) -> bool {
        matches!(self, Self::Open)
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

impl Switch {
    fn is_on(self) -> bool {
        matches!(self, Self::On)
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MfaMethod {
    /// A code emailed after the password.
    Email,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new signing key current; tokens signed by the previous one stay valid.
    Rotate,
    /// List signing keys.
    List,
    /// Stop trusting a retired key at once (after a compromise): running servers refuse the
    /// tokens it signed from their next key reload. The current key cannot be removed; rotate
    /// first.
    Remove {
        /// The key id, as `keys list` shows it.
        kid: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
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
            let state = server::build_state(config).await?;
            let listener = tokio::net::TcpListener::bind(bind).await?;
            let ops = match ops_bind {
                Some(address) => Some(tokio::net::TcpListener::bind(address).await?),
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
        Command::Tenant(TenantCommand::Create {
            slug,
            name,
            cors_origins,
            registration,
            require_verified_email,
            require_mfa,
            exist_email,
        }) => {
            let slug = TenantSlug::parse(&slug)?;
            let store = server::open_store(&config).await?;
            let settings = TenantSettings {
                name: name.unwrap_or_else(|| slug.to_string()),
                cors_origins,
                policy: TenantPolicy {
                    registration_open: registration.is_open(),
                    require_verified_email,
                    require_mfa,
                    email_lookup: exist_email.is_on(),
                },
            };
            match store
                .create_tenant_with(&slug, &settings, clock::system_now_secs())
                .await
            {
                Err(StoreError::Conflict) => anyhow::bail!("tenant {slug} already exists"),
                other => other?,
            };
            println!("created tenant {slug}");
        }
        Command::Tenant(TenantCommand::Update {
            slug,
            name,
            cors_origins,
            no_cors_origins,
            registration,
            require_verified_email,
            require_mfa,
            exist_email,
        }) => {
            let slug = TenantSlug::parse(&slug)?;
            let store = server::open_store(&config).await?;
            let changes = TenantChanges {
                name,
                cors_origins: (no_cors_origins || !cors_origins.is_empty()).then_some(cors_origins),
                registration_open: registration.map(Registration::is_open),
                require_verified_email: require_verified_email.map(Switch::is_on),
                require_mfa: require_mfa.map(Switch::is_on),
                email_lookup: exist_email.map(Switch::is_on),
            };
            let Some(tenant) = store.update_tenant(&slug, &changes).await? else {
                anyhow::bail!("no tenant {slug}");
            };
            println!("updated tenant {slug}");
            print_tenant(&tenant);
        }
        Command::Tenant(TenantCommand::Show { slug }) => {
            let slug = TenantSlug::parse(&slug)?;
            let store = server::open_store(&config).await?;
            let Some(tenant) = store.tenant(&slug).await? else {
                anyhow::bail!("no tenant {slug}");
            };
            print_tenant(&tenant);
        }
        Command::Tenant(TenantCommand::List) => {
            let store = server::open_store(&config).await?;
            for tenant in store.tenants().await? {
                println!(
                    "{}\t{}\t{}",
                    tenant.slug,
                    tenant.name,
                    clock::rfc3339(tenant.created_at)
                );
            }
        }
        Command::User(UserCommand::Create {
            tenant,
            email,
            name,
            role,
            mfa,
        }) => {
            let tenant = match tenant {
                Some(t) => TenantSlug::parse(&t)?,
                None => config.default_tenant.clone(),
            };
            let email = Email::parse(&email)?;
            let store = server::open_store(&config).await?;
            server::ensure_default_tenant(&store, &config).await?;
            if store.tenant(&tenant).await?.is_none() {
                anyhow::bail!(
                    "no tenant {tenant}: create it with `tessera tenant create {tenant}`"
                );
            }
            let secret = read_password()?;
            let (accounts, tenant) = operator_accounts(&config, Some(tenant.as_str())).await?;
            let account = OperatorAccount {
                email: &email,
                name: &name,
                role: &role,
                password: secret.into(),
                mfa_email: matches!(mfa, Some(MfaMethod::Email)),
            };
            let user = accounts
                .create_by_operator(&tenant, account)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created user {user} ({email}) in tenant {tenant}");
        }
        Command::User(UserCommand::Disable(user)) => {
            let (accounts, tenant, email) = accounts(&config, &user).await?;
            let ended = accounts
                .set_disabled(&tenant, &email, true)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("disabled {email} in tenant {tenant}; {ended} session(s) ended");
            tell_edge(&config).await?;
        }
        Command::User(UserCommand::Enable(user)) => {
            let (accounts, tenant, email) = accounts(&config, &user).await?;
            accounts
                .set_disabled(&tenant, &email, false)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("enabled {email} in tenant {tenant}");
        }
        Command::User(UserCommand::SignOut(user)) => {
            let (accounts, tenant, email) = accounts(&config, &user).await?;
            let ended = accounts
                .end_sessions(&tenant, &email)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{ended} session(s) of {email} in tenant {tenant} ended");
            tell_edge(&config).await?;
        }
        Command::User(UserCommand::SetPassword(user)) => {
            let (accounts, tenant, email) = accounts(&config, &user).await?;
            let secret = read_password()?;
            let ended = accounts
                .set_password(&tenant, &email, secret.into())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("password of {email} in tenant {tenant} set; {ended} session(s) ended");
            tell_edge(&config).await?;
        }
        Command::Token(TokenCommand::Create {
            tenant,
            name,
            scopes,
            expires_in_days,
        }) => {
            let operator = Operator::open(&config, tenant.as_deref()).await?;
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
        Command::Token(TokenCommand::List { tenant }) => {
            let operator = Operator::open(&config, tenant.as_deref()).await?;
            let tokens = operator
                .api_tokens()
                .list(&operator.tenant)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("id\tname\tscopes\tcreated\tlast used\tstate");
            for token in tokens {
                let state = match (token.revoked_at, token.expires_at) {
                    (Some(at), _) => format!("revoked {}", clock::rfc3339(at)),
                    (None, Some(at)) => format!("expires {}", clock::rfc3339(at)),
                    (None, None) => "active".to_owned(),
                };
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
        Command::Token(TokenCommand::Revoke { tenant, token }) => {
            let operator = Operator::open(&config, tenant.as_deref()).await?;
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
            tell_edge(&config).await?;
        }
        Command::Keys(KeysCommand::Rotate) => {
            let store = server::open_store(&config).await?;
            let master = server::master_key(&config)?;
            let kid = keys::rotate(&store, &master, clock::system_now_secs()).await?;
            println!(
                "new current key {kid}; running servers pick it up within {}s",
                keys::RELOAD_EVERY_SECS
            );
        }
        Command::Keys(KeysCommand::Remove { kid }) => {
            let store = server::open_store(&config).await?;
            if !store
                .remove_retired_key(&kid, clock::system_now_secs())
                .await?
            {
                anyhow::bail!(
                    "no retired key {kid} (the current key cannot be removed: rotate first)"
                );
            }
            println!(
                "removed key {kid}; running servers refuse its tokens within {}s",
                keys::RELOAD_EVERY_SECS
            );
            tell_edge(&config).await?;
        }
        Command::Keys(KeysCommand::List) => {
            let store = server::open_store(&config).await?;
            for key in store.keys().await? {
                let state = key.retired_at.map_or("current".to_owned(), |at| {
                    format!("retired {}", clock::rfc3339(at))
                });
                println!(
                    "{}\t{}\t{}\t{}",
                    key.kid,
                    key.algorithm,
                    clock::rfc3339(key.created_at),
                    state
                );
            }
        }
    }
    Ok(())
}

/// Delivers the revocation log to the edge before the command exits, and says whether the edge
/// heard: a session-ending command never reports the edge told when it was not. The change
/// itself is committed (with its log entry) either way; what the edge missed, a running
/// `tessera serve` delivers as soon as the edge answers.
async fn tell_edge(config: &Config) -> anyhow::Result<()> {
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
struct Operator {
    store: tessera_origin::store::DynStore,
    tenant: TenantSlug,
    directory: std::sync::Arc<Directory>,
    revocations: Revocations,
    clock: clock::SharedClock,
}

impl Operator {
    async fn open(config: &Config, tenant: Option<&str>) -> anyhow::Result<Self> {
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

    fn api_tokens(&self) -> ApiTokens {
        ApiTokens::new(
            self.store.clone(),
            self.directory.clone(),
            self.clock.clone(),
        )
    }
}

/// The account service for an operator command on `user`, with its tenant and email checked.
async fn accounts(
    config: &Config,
    user: &UserRef,
) -> anyhow::Result<(Accounts, TenantSlug, Email)> {
    let email = Email::parse(&user.email)?;
    let (accounts, tenant) = operator_accounts(config, user.tenant.as_deref()).await?;
    Ok((accounts, tenant, email))
}

/// The account service for an operator command in `tenant` (checked to exist).
async fn operator_accounts(
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

/// A tenant's display name: not blank, and short enough for a page's heading.
fn display_name(given: &str) -> Result<String, String> {
    let name = given.trim();
    match name.chars().count() {
        0 => Err("a name cannot be blank".into()),
        1..=100 => Ok(name.to_owned()),
        _ => Err("a name has at most 100 characters".into()),
    }
}

/// A tenant's settings, a line each, in the words of `tenant create`'s options.
fn print_tenant(tenant: &Tenant) {
    let on = |value: bool| if value { "on" } else { "off" };
    let policy = tenant.policy;
    println!("slug: {}", tenant.slug);
    println!("name: {}", tenant.name);
    println!("created: {}", clock::rfc3339(tenant.created_at));
    println!("cors origins: {}", tenant.cors_origins.join(" "));
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

/// Reads the password: a prompt on a terminal, otherwise standard input (one trailing newline
/// removed, nothing else: spaces are part of a passphrase).
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat: ")?;
        anyhow::ensure!(first == second, "the passwords differ");
        return Ok(first);
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_owned())
}
