//! `tessera keys`: signing keys, and the edge's identity key for application upstreams.

use clap::Subcommand;
use tessera_origin::config::Config;
use tessera_origin::{clock, keys, server};

use super::operator::tell_edge;

#[derive(Subcommand)]
pub enum KeysCommand {
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
    /// Make a new Ed25519 identity key for the edge, which signs the identity it forwards to
    /// the upstreams behind its ROUTES: prints the Worker secret IDENTITY_KEY and the public
    /// key every upstream checks signatures with. Nothing is stored here.
    EdgeIdentity,
}

/// Runs a `keys` command.
pub async fn run(command: KeysCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate => {
            let store = server::open_store(config).await?;
            let master = server::master_key(config)?;
            let kid = keys::rotate(&store, &master, clock::system_now_secs()).await?;
            println!(
                "new current key {kid}; running servers pick it up within {}s",
                keys::RELOAD_EVERY_SECS
            );
        }
        KeysCommand::Remove { kid } => {
            let store = server::open_store(config).await?;
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
            tell_edge(config).await?;
        }
        KeysCommand::EdgeIdentity => {
            let key = tessera_core::identity::IdentityKey::from_seed(clock::random());
            let public = key.public();
            println!("IDENTITY_KEY (the Worker's secret: npx wrangler secret put IDENTITY_KEY):");
            println!("{}", key.to_text());
            println!(
                "public key {} (give it to every upstream behind ROUTES):",
                public.key_id()
            );
            println!("{}", public.to_text());
        }
        KeysCommand::List => {
            let store = server::open_store(config).await?;
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
