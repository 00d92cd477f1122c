//! `tessera user`: create an account, disable or enable it, set its password, remove its second
//! factors, end its sessions.

use clap::Subcommand;
use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};

use tessera_core::model::{Email, TenantSlug};
use tessera_origin::clock;
use tessera_origin::config::Config;
use tessera_origin::imported_hash::FirebaseParams;
use tessera_origin::server;
use tessera_origin::services::account::NewAccount;
use tessera_origin::services::{Actor, UserTransfer};
use tessera_origin::tenants::Directory;

use super::operator::{accounts, operator_accounts, tell_edge};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input (or prompted for), never from
    /// an argument, so it stays out of shell history and process listings; with `--invite`
    /// the user is emailed a link to choose one instead.
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
        /// Email the user a link to choose their password (valid 7 days, single use), instead
        /// of reading one.
        #[arg(long)]
        invite: bool,
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
    /// Erase a user: every session ends (the edge is told), and the account, its factors,
    /// tokens and pending email go; the audit log keeps the event under a pseudonymous id, and
    /// the address may register again.
    Delete(UserRef),
    /// Import users from a JSON Lines file (one user a line; docs/API.md, "Importing users"),
    /// with their password hashes: idempotent (an address already in the tenant is skipped),
    /// all-or-nothing per batch of 1,000 users. Prints a summary and every line skipped or
    /// refused, with why.
    Import {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// The Firebase project's password hash parameters (the JSON the console shows), for
        /// lines with Firebase's `password_hash` and `password_salt`.
        #[arg(long, value_name = "FILE")]
        firebase_params: Option<std::path::PathBuf>,
        /// The JSON Lines file (`-` for standard input).
        file: std::path::PathBuf,
    },
    /// Write every user of a tenant to standard output in the import format, password hashes
    /// and authenticator secrets included: keep the output as secret as a database dump.
    Export {
        /// Tenant slug (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove every second factor of a user (authenticator app, recovery codes, emailed code,
    /// passkeys):
    /// every session ends (the edge is told) and the user is told by email.
    ResetMfa(UserRef),
}

/// Names a user.
#[derive(clap::Args)]
pub struct UserRef {
    /// Tenant slug (default: the configured default tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Email address.
    #[arg(long)]
    pub email: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum MfaMethod {
    /// A code emailed after the password.
    Email,
}

/// Runs a `user` command.
pub async fn run(command: UserCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        UserCommand::Create {
            tenant,
            email,
            name,
            role,
            mfa,
            invite,
        } => {
            let tenant = match tenant {
                Some(t) => TenantSlug::parse(&t)?,
                None => config.default_tenant.clone(),
            };
            let email = Email::parse(&email)?;
            let store = server::open_store(config).await?;
            server::ensure_default_tenant(&store, config).await?;
            if store.tenant(&tenant).await?.is_none() {
                anyhow::bail!(
                    "no tenant {tenant}: create it with `tessera tenant create {tenant}`"
                );
            }
            let password = if invite {
                None
            } else {
                Some(read_password()?.into())
            };
            let (accounts, tenant) = operator_accounts(config, Some(tenant.as_str())).await?;
            let account = NewAccount {
                email: email.clone(),
                name,
                role,
                password,
                invite,
                mfa_email: matches!(mfa, Some(MfaMethod::Email)),
            };
            let user = accounts
                .create(&tenant, account, &Actor::Cli)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .id;
            println!("created user {user} ({email}) in tenant {tenant}");
        }
        UserCommand::Disable(user) => {
            let (accounts, tenant, who) = accounts(config, &user).await?;
            let email = &user.email;
            let ended = accounts
                .set_disabled(&tenant, &who, true, &Actor::Cli)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("disabled {email} in tenant {tenant}; {ended} session(s) ended");
            tell_edge(config).await?;
        }
        UserCommand::Enable(user) => {
            let (accounts, tenant, who) = accounts(config, &user).await?;
            let email = &user.email;
            accounts
                .set_disabled(&tenant, &who, false, &Actor::Cli)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("enabled {email} in tenant {tenant}");
        }
        UserCommand::SignOut(user) => {
            let (accounts, tenant, who) = accounts(config, &user).await?;
            let email = &user.email;
            let ended = accounts
                .end_sessions(&tenant, &who, &Actor::Cli)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{ended} session(s) of {email} in tenant {tenant} ended");
            tell_edge(config).await?;
        }
        UserCommand::ResetMfa(user) => {
            let (accounts, tenant, who) = accounts(config, &user).await?;
            let email = &user.email;
            let ended = accounts
                .reset_mfa(&tenant, &who, &Actor::Cli)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "second factors of {email} in tenant {tenant} removed; {ended} session(s) ended"
            );
            tell_edge(config).await?;
        }
        UserCommand::Delete(user) => {
            let (accounts, tenant, who) = accounts(config, &user).await?;
            let email = &user.email;
            accounts
                .delete(&tenant, &who, &Actor::Cli)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("deleted {email} from tenant {tenant}");
            tell_edge(config).await?;
        }
        UserCommand::Import {
            tenant,
            firebase_params,
            file,
        } => {
            let transfer = user_transfer(config).await?;
            let tenant = tenant_or_default(config, tenant)?;
            let firebase = firebase_params
                .map(|path| -> anyhow::Result<FirebaseParams> {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                    serde_json::from_str(&text).map_err(|e| {
                        anyhow::anyhow!("{} is not Firebase's hash parameters: {e}", path.display())
                    })
                })
                .transpose()?;
            let input: Box<dyn std::io::BufRead + Send> = if file.as_os_str() == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            } else {
                let opened = std::fs::File::open(&file)
                    .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
                Box::new(std::io::BufReader::new(opened))
            };
            // A bar on a terminal only (indicatif draws nothing elsewhere); its length is the
            // file's lines when the file can be counted first.
            let total = if file.as_os_str() == "-" {
                None
            } else {
                Some(count_lines(&file)?)
            };
            let bar = match total {
                Some(total) => indicatif::ProgressBar::new(total),
                None => indicatif::ProgressBar::no_length(),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} lines ({per_sec}, {eta} left)",
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
            let summary = transfer
                .import(
                    &tenant,
                    input.lines(),
                    firebase.as_ref(),
                    &Actor::Cli,
                    |read| bar.set_position(read as u64),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            bar.finish_and_clear();
            for line in &summary.lines {
                println!(
                    "line {}: {} ({}): {}",
                    line.line, line.outcome, line.code, line.detail
                );
            }
            println!("{summary}");
        }
        UserCommand::Export { tenant } => {
            let transfer = user_transfer(config).await?;
            let tenant = tenant_or_default(config, tenant)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut after: Option<Email> = None;
            loop {
                let page = transfer
                    .export_page(&tenant, after.as_ref(), 1_000)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let Some(last) = page.last() else { break };
                after = Some(Email::parse(&last.email)?);
                for line in &page {
                    serde_json::to_writer(&mut out, line)?;
                    out.write_all(b"\n")?;
                }
            }
            out.flush()?;
        }
        UserCommand::SetPassword(user) => {
            let (accounts, tenant, who) = accounts(config, &user).await?;
            let email = &user.email;
            let secret = read_password()?;
            let ended = accounts
                .set_password(&tenant, &who, secret.into(), &Actor::Cli)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("password of {email} in tenant {tenant} set; {ended} session(s) ended");
            tell_edge(config).await?;
        }
    }
    Ok(())
}

/// The import and export service, over the configured store and master key.
async fn user_transfer(config: &Config) -> anyhow::Result<UserTransfer> {
    let store = server::open_store(config).await?;
    server::ensure_default_tenant(&store, config).await?;
    let master = server::master_key(config)?;
    let clock: clock::SharedClock = std::sync::Arc::new(clock::SystemClock);
    let directory = std::sync::Arc::new(Directory::new(store.clone(), clock.clone()));
    Ok(UserTransfer::new(store, directory, master, clock))
}

fn tenant_or_default(config: &Config, tenant: Option<String>) -> anyhow::Result<TenantSlug> {
    Ok(match tenant {
        Some(t) => TenantSlug::parse(&t)?,
        None => config.default_tenant.clone(),
    })
}

/// The lines of a file, for the progress bar's length.
fn count_lines(path: &std::path::Path) -> anyhow::Result<u64> {
    let mut reader = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut lines = 0;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(lines);
        }
        lines += buffer.iter().filter(|b| **b == b'\n').count() as u64;
        let consumed = buffer.len();
        reader.consume(consumed);
    }
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
