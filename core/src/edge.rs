//! The contract between the edge Worker and the services behind it: which request headers only
//! the edge may set (the identity it attaches for an application's upstream is signed as
//! [`crate::identity`] says), and the revocation message the origin pushes to it.

use serde::{Deserialize, Serialize};

/// The client's IP address as the edge saw it (`CF-Connecting-IP`).
pub const CLIENT_IP: &str = "x-tessera-client-ip";
/// The shared edge secret, which makes the other `x-tessera-*` headers trustworthy to the origin.
pub const EDGE_SECRET: &str = "x-tessera-edge-secret";
/// The host the client addressed at the edge (the edge's fetch to the origin carries the
/// origin's own `Host`), so that the origin works out a subdomain tenant exactly as the edge
/// did. Believed only with the edge secret.
pub const FORWARDED_HOST: &str = "x-tessera-forwarded-host";
/// The verified user id, for an application's upstream.
pub const USER: &str = "x-tessera-user";
/// The verified tenant.
pub const TENANT: &str = "x-tessera-tenant";
/// The verified session.
pub const SESSION: &str = "x-tessera-session";
/// Unix seconds when the edge signed the identity.
pub const TIMESTAMP: &str = "x-tessera-timestamp";
/// The edge's Ed25519 signature (base64url) over the request and the identity, see
/// [`crate::identity`].
pub const SIGNATURE: &str = "x-tessera-signature";
/// The id of the identity key that made the signature ([`crate::identity::PublicIdentityKey::key_id`]).
pub const KEY_ID: &str = "x-tessera-key-id";

/// The prefix of every header name the edge owns: the edge deletes every client-supplied
/// header that starts with it before it forwards a request (not only the names it knows
/// today), so an upstream or the origin only ever sees the edge's own.
pub const OWNED_PREFIX: &str = "x-tessera-";

/// Whether the header `name` (any case) is the edge's to set, never a client's.
#[must_use]
pub fn is_owned_header(name: &str) -> bool {
    name.len() >= OWNED_PREFIX.len()
        && name.as_bytes()[..OWNED_PREFIX.len()].eq_ignore_ascii_case(OWNED_PREFIX.as_bytes())
}

/// The internal path where the origin pushes revocations to the edge (authenticated with the
/// edge secret).
pub const REVOCATIONS_PATH: &str = "/__tessera/revocations";

/// "Refuse every access token of this session until `until`" (Unix seconds: the latest expiry
/// any of its tokens can have, after which the entry can be forgotten).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Tenant slug.
    pub tenant: String,
    /// Session id.
    pub session: String,
    /// Unix seconds after which no token of the session can be valid anyway.
    pub until: u64,
}

impl Revocation {
    /// The revocation of a session ended at `now_secs`: its `until` is the latest moment any
    /// token of the session can still be accepted (issued at `now` at the latest, then the
    /// longest bearer lifetime — a VoiceStamp session token's 30 days — and the verifier's
    /// leeway), so both halves compute it the same way.
    #[must_use]
    pub fn ended_at(tenant: &str, session: &str, now_secs: u64) -> Self {
        Self {
            tenant: tenant.to_owned(),
            session: session.to_owned(),
            until: longest_token_end(now_secs),
        }
    }

    /// The revocation of a service token revoked at `now_secs`: the edge remembers an answer
    /// about a service token for at most [`SERVICE_TOKEN_CACHE_SECS`] and asks the origin
    /// again afterwards, which refuses it from then on, so the entry need not outlive that.
    #[must_use]
    pub fn service_token_revoked(tenant: &str, token_id: &str, now_secs: u64) -> Self {
        Self {
            tenant: tenant.to_owned(),
            session: service_token_key(token_id),
            until: now_secs + SERVICE_TOKEN_CACHE_SECS + 5,
        }
    }
}

/// Entries of the revocation log per delivery or catch-up answer; an answer this full means
/// more may follow.
pub const REVOCATION_BATCH: usize = 500;

/// What the origin delivers from its revocation log: entries in log order, and the log
/// position they reach, which the edge acknowledges by answering 2xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationBatch {
    /// The log position of the last entry.
    pub through: i64,
    /// The entries (a signing key's removal has tenant `""` and session `key:<kid>`).
    pub revocations: Vec<Revocation>,
}

/// The revocation key of a removed signing key, beside session ids in the edge's revocation
/// store (tenant `""`).
#[must_use]
pub fn key_removal_key(kid: &str) -> String {
    format!("key:{kid}")
}

/// The revocation log's subject that says its tenant was deleted (beside session ids, which
/// are UUIDs: `tenant:` starts none). Every origin node forgets the tenant as it reads it; the
/// edge refuses the tenant's tokens by their sessions' own entries, written with it.
pub const TENANT_DELETED: &str = "tenant:deleted";

/// How long a [`TENANT_DELETED`] entry stays in the log: every running node reads the log many
/// times a second, and a node started later never knew the tenant.
pub const TENANT_DELETED_SECS: u64 = 300;

/// The latest moment a JWT issued at `now_secs` can still be accepted: the longest lifetime
/// ([`crate::lifetimes::LONGEST_JWT_SECS`]) and the verifier's leeway.
#[must_use]
pub const fn longest_token_end(now_secs: u64) -> u64 {
    now_secs + crate::lifetimes::LONGEST_JWT_SECS + crate::jwt::Verifier::DEFAULT_LEEWAY_SECS
}

/// How long the edge may remember the origin's answer about a service token.
pub const SERVICE_TOKEN_CACHE_SECS: u64 = 60;

/// The revocation key of a service token, beside session ids in the edge's revocation store
/// (`sk-` cannot start a session id, which is a UUID).
#[must_use]
pub fn service_token_key(token_id: &str) -> String {
    format!("sk-{token_id}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_header_of_the_edge_has_its_prefix_and_only_those_are_owned() {
        use super::*;
        for name in [
            CLIENT_IP,
            EDGE_SECRET,
            FORWARDED_HOST,
            USER,
            TENANT,
            SESSION,
            TIMESTAMP,
            SIGNATURE,
            KEY_ID,
        ] {
            assert!(is_owned_header(name), "{name}");
        }
        assert!(is_owned_header("X-Tessera-Whatever-Comes-Next"));
        assert!(!is_owned_header("x-tessera"));
        assert!(!is_owned_header("x-tenant"));
        assert!(!is_owned_header("authorization"));
    }
}
