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
    /// Re-seal every sealed secret (signing keys, derived keys, every tenant's TOTP secrets)
    /// under TESSERA_MASTER_KEY, with TESSERA_MASTER_KEY_ACCEPTED set to the previous key, as
    /// every running node is configured meanwhile; then drop TESSERA_MASTER_KEY_ACCEPTED
    /// everywhere. Running it again re-seals nothing.
    RotateMaster,
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
        KeysCommand::RotateMaster => {
            let master = server::master_key(config)?;
            anyhow::ensure!(
                master.accepts_another(),
                "set TESSERA_MASTER_KEY to the new key and TESSERA_MASTER_KEY_ACCEPTED to the \
                 previous one (as every running node must be configured while this runs)"
            );
            let store = server::open_store(config).await?;
            let done = tessera_origin::master_rotation::rotate_master(&store, &master).await?;
            println!(
                "re-sealed {} secret(s) under the new master key ({} already were; {} tenant(s)); \
                 now remove TESSERA_MASTER_KEY_ACCEPTED from every node",
                done.resealed, done.current, done.tenants
            );
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
