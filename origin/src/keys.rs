//! Signing keys: generated here, sealed with the master key at rest, published as JWKS, and
//! rotated without invalidating tokens already issued.

use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tessera_core::jwt::{KeySet, SigningKey, VerificationKey, Verifier};
use tessera_core::lifetimes::LONGEST_JWT_SECS;
use tokio::sync::RwLock;

use crate::clock::{self, SharedClock};
use crate::store::{DynStore, StoreError, StoredKey};

/// The 32-byte key that seals signing keys and derives other server secrets.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// Why keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed key does not open with this master key.
    #[error("signing key {0} cannot be unsealed: wrong TESSERA_MASTER_KEY?")]
    Unseal(String),
    /// Reading or writing the master key file failed.
    #[error("master key file {0}: {1}")]
    File(String, String),
    /// A key could not be built.
    #[error("invalid key: {0}")]
    Key(#[from] tessera_core::jwt::KeyError),
}

impl MasterKey {
    /// Wraps configured key bytes.
    #[must_use]
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Embedded mode only: reads `<data dir>/master.key`, generating it on first start.
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, KeyringError> {
        let path = data_dir.join("master.key");
        let shown = path.display().to_string();
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| KeyringError::File(shown.clone(), e.to_string()))?;
            let bytes = STANDARD
                .decode(text.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| KeyringError::File(shown, "not the base64 of 32 bytes".into()))?;
            return Ok(Self(bytes));
        }
        std::fs::create_dir_all(data_dir)
            .map_err(|e| KeyringError::File(shown.clone(), e.to_string()))?;
        let bytes = clock::random::<32>();
        write_private(&path, &STANDARD.encode(bytes))
            .map_err(|e| KeyringError::File(shown.clone(), e.to_string()))?;
        tracing::warn!(
            path = %shown,
            "generated a new master key for embedded mode; back it up, and set TESSERA_MASTER_KEY in production"
        );
        Ok(Self(bytes))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }

    /// Seals `plaintext`, binding it to `context` (the kid), as nonce ‖ ciphertext.
    #[must_use]
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = clock::random::<24>();
        let payload = chacha20poly1305::aead::Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        let mut out = nonce_bytes.to_vec();
        // Encryption with a valid key and nonce cannot fail.
        out.extend(
            self.cipher()
                .encrypt(&XNonce::from(nonce_bytes), payload)
                .unwrap_or_default(),
        );
        out
    }

    /// Opens what [`MasterKey::seal`] sealed for the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        let payload = chacha20poly1305::aead::Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        self.cipher().decrypt(&XNonce::from(nonce), payload).ok()
    }

    /// A purpose-bound subkey (HMAC-SHA-256 of the purpose), so that one master key serves
    /// several uses without one use's output helping against another.
    #[must_use]
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.0, purpose.as_bytes())
    }
}

/// HMAC-SHA-256 of `message` under `key`.
#[must_use]
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    #[allow(clippy::expect_used)] // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

/// The keys in use: the current signing key and the verifier over every published key.
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<RwLock<Loaded>>,
    master: MasterKey,
    store: DynStore,
    issuer: String,
    audience: String,
    clock: SharedClock,
}

struct Loaded {
    signer: Arc<SigningKey>,
    verifier: Arc<Verifier>,
}

/// How often a running origin re-reads its keys, to pick up a rotation made by the CLI or by
/// another node.
pub const RELOAD_EVERY_SECS: u64 = 30;

/// How long a retired key stays published: until the last token it signed has expired (the
/// 30-day VoiceStamp session token is the longest), plus the verifier's leeway, plus one
/// reload interval (a node may sign with it that much longer).
const RETIRED_KEY_PUBLISHED_SECS: i64 =
    (LONGEST_JWT_SECS + Verifier::DEFAULT_LEEWAY_SECS + RELOAD_EVERY_SECS).cast_signed();

impl Keyring {
    /// Loads the keys, generating the first one if there is none.
    pub async fn load(
        store: DynStore,
        master: MasterKey,
        issuer: &str,
        audience: &str,
        clock: SharedClock,
    ) -> Result<Self, KeyringError> {
        if store.keys().await?.iter().all(|k| k.retired_at.is_some()) {
            rotate(&store, &master, clock.now_secs()).await?;
        }
        let loaded = load_keys(&store, &master, issuer, audience, clock.now_secs()).await?;
        Ok(Self {
            inner: Arc::new(RwLock::new(loaded)),
            master,
            store,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            clock,
        })
    }

    /// Re-reads the keys from storage (after a rotation by another process or node).
    pub async fn reload(&self) -> Result<(), KeyringError> {
        let loaded = load_keys(
            &self.store,
            &self.master,
            &self.issuer,
            &self.audience,
            self.clock.now_secs(),
        )
        .await?;
        *self.inner.write().await = loaded;
        Ok(())
    }

    /// Rotates a new current key in at this keyring's clock's time (see [`rotate`]); the
    /// running keyring picks it up at its next [`Keyring::reload`].
    pub async fn rotate(&self) -> Result<String, KeyringError> {
        rotate(&self.store, &self.master, self.clock.now_secs()).await
    }

    /// The current signing key.
    pub async fn signer(&self) -> Arc<SigningKey> {
        self.inner.read().await.signer.clone()
    }

    /// The verifier over every published key.
    pub async fn verifier(&self) -> Arc<Verifier> {
        self.inner.read().await.verifier.clone()
    }

    /// The master key.
    #[must_use]
    pub fn master(&self) -> &MasterKey {
        &self.master
    }
}

/// Generates a new Ed25519 key, makes it current and retires the previous one. Tokens signed
/// by the previous key keep verifying while it stays published.
pub async fn rotate(
    store: &DynStore,
    master: &MasterKey,
    now: i64,
) -> Result<String, KeyringError> {
    let seed = clock::random::<32>();
    let kid = format!(
        "k{}-{}",
        now,
        tessera_core::secret::hex(&clock::random::<4>())
    );
    let key = SigningKey::ed25519(&kid, seed)?;
    let public = key
        .verification_key()
        .to_jwk()
        .and_then(|jwk| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwk.x)
                .ok()
        })
        .unwrap_or_default();
    store
        .rotate_in_key(
            &StoredKey {
                kid: kid.clone(),
                algorithm: "EdDSA".into(),
                public_key: public,
                private_key_sealed: master.seal(&kid, &seed),
                created_at: now,
                retired_at: None,
            },
            now,
        )
        .await?;
    tracing::info!(kid, "signing key rotated in");
    Ok(kid)
}

async fn load_keys(
    store: &DynStore,
    master: &MasterKey,
    issuer: &str,
    audience: &str,
    now: i64,
) -> Result<Loaded, KeyringError> {
    let stored = store.keys().await?;
    let current = stored
        .iter()
        .find(|k| k.retired_at.is_none())
        .ok_or_else(|| KeyringError::Unseal("(no current key)".into()))?;
    let seed = master
        .open(&current.kid, &current.private_key_sealed)
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .ok_or_else(|| KeyringError::Unseal(current.kid.clone()))?;
    let signer = SigningKey::ed25519(&current.kid, seed)?;
    let published = stored
        .iter()
        .filter(|k| {
            k.retired_at
                .is_none_or(|at| now - at < RETIRED_KEY_PUBLISHED_SECS)
        })
        .filter_map(|k| {
            let public = <[u8; 32]>::try_from(k.public_key.as_slice()).ok()?;
            VerificationKey::ed25519(&k.kid, public).ok()
        });
    let verifier = Verifier::new(KeySet::new(published), issuer, audience);
    Ok(Loaded {
        signer: Arc::new(signer),
        verifier: Arc::new(verifier),
    })
}
