//! The keys that sign ID tokens. RS256 signs with OpenSSL: its RSA private-key operations are
//! constant-time and blinded, where the pure-Rust `rsa` crate's leak timing (RUSTSEC-2023-0071,
//! the Marvin attack), and they are about five times faster (docs/BENCHMARKS.md). EdDSA ID
//! tokens sign with core's key, the access tokens' own.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use serde::Serialize;
use tessera_core::jwt::{KeyAlgorithm, KeyError, SigningKey};

/// A key that signs ID tokens (`typ: JWT`, never `at+jwt`).
#[derive(Clone)]
pub enum IdTokenSigner {
    /// RSASSA-PKCS1-v1_5 with SHA-256, by OpenSSL.
    Rs256 {
        /// The key id.
        kid: String,
        /// The private key.
        key: PKey<Private>,
    },
    /// Ed25519, by core.
    EdDSA(Arc<SigningKey>),
}

impl std::fmt::Debug for IdTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rs256 { kid, .. } => write!(f, "IdTokenSigner(RS256, {kid}, ***)"),
            Self::EdDSA(key) => write!(f, "IdTokenSigner({key:?})"),
        }
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

impl IdTokenSigner {
    /// An RS256 signer from a PKCS#1 DER private key.
    pub fn rs256(kid: &str, pkcs1_der: &[u8]) -> Result<Self, openssl::error::ErrorStack> {
        let rsa = openssl::rsa::Rsa::private_key_from_der(pkcs1_der)?;
        Ok(Self::Rs256 {
            kid: kid.to_owned(),
            key: PKey::from_rsa(rsa)?,
        })
    }

    /// The algorithm it signs with.
    #[must_use]
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::Rs256 { .. } => KeyAlgorithm::RS256,
            Self::EdDSA(key) => key.algorithm(),
        }
    }

    /// Signs `claims` as a JWT with header `{alg, typ: JWT, kid}`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let (kid, key) = match self {
            Self::EdDSA(key) => return key.sign_jwt(claims),
            Self::Rs256 { kid, key } => (kid, key),
        };
        let header = Header {
            alg: "RS256",
            typ: "JWT",
            kid,
        };
        let signing_input = format!("{}.{}", base64_json(&header)?, base64_json(claims)?);
        let mut signer =
            Signer::new(MessageDigest::sha256(), key).map_err(|_| KeyError::Signing)?;
        let signature = signer
            .sign_oneshot_to_vec(signing_input.as_bytes())
            .map_err(|_| KeyError::Signing)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// The base64url of a value's JSON: a JWT's header or claims.
fn base64_json<T: Serialize + ?Sized>(value: &T) -> Result<String, KeyError> {
    serde_json::to_vec(value)
        .map(|json| URL_SAFE_NO_PAD.encode(json))
        .map_err(|_| KeyError::Signing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::jwt::{KeySet, VerificationKey};

    #[test]
    fn an_rs256_id_token_verifies_with_its_published_key() {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap_or_else(|_| unreachable!());
        let der = rsa.private_key_to_der().unwrap_or_else(|_| unreachable!());
        let signer = IdTokenSigner::rs256("r1", &der).unwrap_or_else(|_| unreachable!());
        let token = signer
            .sign(&serde_json::json!({"sub": "ann", "aud": "app"}))
            .unwrap_or_else(|_| unreachable!());
        let public = VerificationKey::rs256("r1", &rsa.n().to_vec(), &rsa.e().to_vec())
            .unwrap_or_else(|_| unreachable!());
        let keys = KeySet::new([public]);
        assert!(keys.signed_by_one(&token));
        let mut forged = token.clone();
        forged.replace_range(token.len() - 4.., "AAAA");
        assert!(!keys.signed_by_one(&forged));
    }
}
