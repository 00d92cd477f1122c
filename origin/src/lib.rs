//! Tessera's origin: the axum server and the `tessera` command. It owns credentials and
//! state; the rules it applies come from `tessera-core`.

pub mod allowed_origin;
pub mod app_url;
pub mod breached_passwords;
pub mod clock;
pub mod config;
pub mod edge_push;
pub mod http;
pub mod id_token_signer;
pub mod imported_hash;
pub mod jobs;
pub mod keys;
pub mod limiter;
pub mod mail;
pub mod master_rotation;
pub mod password;
pub mod prometheus;
pub mod relying_party;
pub mod revocation_index;
pub mod server;
pub mod services;
pub mod session_cache;
pub mod state;
pub mod store;
pub mod tenants;
