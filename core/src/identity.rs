//! The identity the edge vouches for on a request it forwards to an application's upstream
//! (`ROUTES`), signed with the edge's Ed25519 identity key over the whole request.
//!
//! An upstream holds only the public half: it can check an identity, never make one, and it
//! holds nothing that opens the origin or the edge (the edge secret stays between those two).
//! The signature covers the method, the upstream's host, the path with its query, a SHA-256
//! digest of the body, the identity and a timestamp, so that a signature made for one
//! upstream, request or moment is worth nothing for another; within the replay window
//! ([`MAX_AGE_SECS`]) an upstream that must act at most once per request remembers the
//! signatures it accepted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, Verifier as _};

use crate::secret::{hex, sha256};

/// How old (or how far in the future) a signature's timestamp may be when it is checked.
pub const MAX_AGE_SECS: u64 = 60;

/// The identity the edge vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    /// User id (a service token's id for a service token).
    pub user: &'a str,
    /// Tenant slug.
    pub tenant: &'a str,
    /// Session id (`sk-<id>` for a service token).
    pub session: &'a str,
}

/// The request as the upstream receives it: what a signature is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedRequest<'a> {
    /// The method (any case).
    pub method: &'a str,
    /// The upstream's host as it receives it in `Host` (any case; with a port if not the
    /// scheme's default).
    pub host: &'a str,
    /// The path with its query, as sent (`/orders?page=2`).
    pub path_and_query: &'a str,
    /// The body as sent (empty for none).
    pub body: &'a [u8],
}

/// An identity key, or its public half, that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an Ed25519 identity key is 32 bytes in base64url (no padding)")]
pub struct BadIdentityKey;

fn key_bytes(text: &str) -> Result<[u8; 32], BadIdentityKey> {
    URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or(BadIdentityKey)
}

/// The edge's signing key (the Worker secret `IDENTITY_KEY`: its 32-byte seed in base64url).
/// `Debug` never prints it.
#[derive(Clone)]
pub struct IdentityKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("IdentityKey")
            .field(&self.public().key_id())
            .finish()
    }
}

impl IdentityKey {
    /// The key of a 32-byte seed (from a CSPRNG: this crate draws no randomness).
    #[must_use]
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Reads the seed in base64url.
    ///
    /// # Errors
    /// [`BadIdentityKey`] unless `text` is 32 bytes of base64url.
    pub fn parse(text: &str) -> Result<Self, BadIdentityKey> {
        key_bytes(text).map(Self::from_seed)
    }

    /// The seed in base64url, as [`Self::parse`] reads it.
    #[must_use]
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.to_bytes())
    }

    /// The public half, for upstreams.
    #[must_use]
    pub fn public(&self) -> PublicIdentityKey {
        PublicIdentityKey(self.0.verifying_key())
    }

    /// The signature (base64url) over `request`, `identity` and `timestamp` (Unix seconds).
    #[must_use]
    pub fn sign(
        &self,
        request: SignedRequest<'_>,
        identity: Identity<'_>,
        timestamp: u64,
    ) -> String {
        let signature = self.0.sign(&message(request, identity, timestamp));
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    }
}

/// The public half of the edge's identity key, which upstreams are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicIdentityKey(ed25519_dalek::VerifyingKey);

impl PublicIdentityKey {
    /// Reads the key in base64url (32 bytes), as [`Self::to_text`] writes it.
    ///
    /// # Errors
    /// [`BadIdentityKey`] unless `text` is 32 bytes of base64url naming a curve point.
    pub fn parse(text: &str) -> Result<Self, BadIdentityKey> {
        let bytes = key_bytes(text)?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| BadIdentityKey)
    }

    /// The key in base64url.
    #[must_use]
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// A short name of the key (16 hex digits of its SHA-256), sent with every signature so
    /// that an upstream that knows the old and the new key during a rotation picks the right one.
    #[must_use]
    pub fn key_id(&self) -> String {
        hex(&sha256(self.0.as_bytes())[..8])
    }

    /// Whether `signature` (base64url) was made by this key's private half over `request`,
    /// `identity` and `timestamp`, and the timestamp is within `max_age_secs` of `now`.
    #[must_use]
    pub fn verify(
        &self,
        request: SignedRequest<'_>,
        identity: Identity<'_>,
        timestamp: u64,
        signature: &str,
        now: u64,
        max_age_secs: u64,
    ) -> bool {
        let Some(signature) = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
        else {
            return false;
        };
        timestamp.abs_diff(now) <= max_age_secs
            && self
                .0
                .verify(&message(request, identity, timestamp), &signature)
                .is_ok()
    }
}

/// The signed message: newline-separated, since none of its fields can hold a newline (a
/// method, a host, a path from a parsed URL, hex, ids and a slug).
fn message(request: SignedRequest<'_>, identity: Identity<'_>, timestamp: u64) -> Vec<u8> {
    format!(
        "tessera-identity-v2\n{timestamp}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
        request.method.to_ascii_uppercase(),
        request.host.to_ascii_lowercase(),
        request.path_and_query,
        hex(&sha256(request.body)),
        identity.user,
        identity.tenant,
        identity.session
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: Identity<'static> = Identity {
        user: "3f2c1a9e-0000-4000-8000-000000000001",
        tenant: "acme",
        session: "3f2c1a9e-0000-4000-8000-000000000002",
    };

    const REQUEST: SignedRequest<'static> = SignedRequest {
        method: "POST",
        host: "orders.internal:8443",
        path_and_query: "/app/orders?page=2",
        body: b"{\"item\":1}",
    };

    #[test]
    fn a_signature_verifies_only_for_its_request_identity_moment_and_key() {
        let key = IdentityKey::from_seed([7; 32]);
        let public = key.public();
        let sig = key.sign(REQUEST, ID, 1_000);
        let check = |request, identity, now| public.verify(request, identity, 1_000, &sig, now, 60);
        assert!(check(REQUEST, ID, 1_030));
        // Case of method and host is not significant.
        let spelled = SignedRequest {
            method: "post",
            host: "Orders.Internal:8443",
            ..REQUEST
        };
        assert!(check(spelled, ID, 1_000));
        for tampered in [
            SignedRequest {
                method: "PUT",
                ..REQUEST
            },
            SignedRequest {
                host: "billing.internal:8443",
                ..REQUEST
            },
            SignedRequest {
                path_and_query: "/app/orders?page=3",
                ..REQUEST
            },
            SignedRequest {
                path_and_query: "/app/orders",
                ..REQUEST
            },
            SignedRequest {
                body: b"{\"item\":2}",
                ..REQUEST
            },
        ] {
            assert!(!check(tampered, ID, 1_000), "{tampered:?}");
        }
        assert!(!check(
            REQUEST,
            Identity {
                tenant: "globex",
                ..ID
            },
            1_000
        ));
        assert!(!check(REQUEST, ID, 1_061), "past the window");
        assert!(!check(REQUEST, ID, 939), "from the future");
        let other = IdentityKey::from_seed([8; 32]).public();
        assert!(!other.verify(REQUEST, ID, 1_000, &sig, 1_000, 60));
        assert!(!public.verify(REQUEST, ID, 1_000, "not base64!", 1_000, 60));
    }

    #[test]
    fn keys_read_what_they_write_and_debug_prints_no_seed() {
        let key = IdentityKey::from_seed([9; 32]);
        let again = IdentityKey::parse(&key.to_text()).unwrap_or_else(|_| unreachable!());
        assert_eq!(again.public(), key.public());
        let public = PublicIdentityKey::parse(&key.public().to_text());
        assert_eq!(public, Ok(key.public()));
        assert_eq!(key.public().key_id().len(), 16);
        assert!(!format!("{key:?}").contains(&key.to_text()));
        assert_eq!(IdentityKey::parse("short").err(), Some(BadIdentityKey));
    }
}
