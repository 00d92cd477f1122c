//! `tessera user`: create an account, disable or enable it, set its password, remove its second
//! factors, end its sessions.

use clap::Subcommand;
use std::io::{IsTerminal as _, Read as _};

use tessera_core::model::{Email, TenantSlug};
use tessera_origin::config::Config;
use tessera_origin::server;
use tessera_origin::services::account::OperatorAccount;

use super::operator::{accounts, operator_accounts, tell_edge};

#[derive(Subcommand)]
pub enum UserCommand {
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
            let secret = read_password()?;
            let (accounts, tenant) = operator_accounts(config, Some(tenant.as_str())).await?;
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
        UserCommand::Disable(user) => {
            let (accounts, tenant, email) = accounts(config, &user).await?;
            let ended = accounts
                .set_disabled(&tenant, &email, true)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("disabled {email} in tenant {tenant}; {ended} session(s) ended");
            tell_edge(config).await?;
        }
        UserCommand::Enable(user) => {
            let (accounts, tenant, email) = accounts(config, &user).await?;
            accounts
                .set_disabled(&tenant, &email, false)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("enabled {email} in tenant {tenant}");
        }
        UserCommand::SignOut(user) => {
            let (accounts, tenant, email) = accounts(config, &user).await?;
            let ended = accounts
                .end_sessions(&tenant, &email)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{ended} session(s) of {email} in tenant {tenant} ended");
            tell_edge(config).await?;
        }
        UserCommand::ResetMfa(user) => {
            let (accounts, tenant, email) = accounts(config, &user).await?;
            let ended = accounts
                .reset_mfa(&tenant, &email)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "second factors of {email} in tenant {tenant} removed; {ended} session(s) ended"
            );
            tell_edge(config).await?;
        }
        UserCommand::SetPassword(user) => {
            let (accounts, tenant, email) = accounts(config, &user).await?;
            let secret = read_password()?;
            let ended = accounts
                .set_password(&tenant, &email, secret.into())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("password of {email} in tenant {tenant} set; {ended} session(s) ended");
            tell_edge(config).await?;
        }
    }
    Ok(())
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
