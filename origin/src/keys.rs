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
use tessera_core::jwt::{KeyAlgorithm, KeySet, SigningKey, VerificationKey, Verifier};
use tessera_core::lifetimes::LONGEST_JWT_SECS;
use tokio::sync::RwLock;

use crate::clock::{self, SharedClock};
use crate::id_token_signer::IdTokenSigner;
use crate::store::{DynStore, StoreError, StoredKey};

/// The 32-byte key that seals signing keys, TOTP secrets and the derived keys, and, while a
/// rotation is under way, the other key it also opens with (`TESSERA_MASTER_KEY_ACCEPTED`).
/// Sealing always uses the current key.
#[derive(Clone)]
pub struct MasterKey {
    current: [u8; 32],
    accepted: Option<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// What re-sealing one sealed value under the current master key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reseal {
    /// It opens with the current key already: nothing to do.
    Current,
    /// It opened with the accepted key only: here it is, sealed under the current one.
    Resealed(Vec<u8>),
    /// It opens with neither key.
    Unopenable,
}

/// Why keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed key does not open with this master key.
    #[error("{0} cannot be unsealed: wrong TESSERA_MASTER_KEY (or, after a rotation, TESSERA_MASTER_KEY_ACCEPTED dropped before `tessera keys rotate-master` finished)?")]
    Unseal(String),
    /// A master key rotation began before this version stored its derived keys: which key
    /// derived the digests made so far is not known.
    #[error("derived key {0} is not stored yet: start Tessera once with only the master key in use so far (no TESSERA_MASTER_KEY_ACCEPTED), then rotate")]
    DerivedKeyMissing(String),
    /// Reading or writing the master key file failed.
    #[error("master key file {0}: {1}")]
    File(String, String),
    /// OpenSSL could not make or read an RSA key.
    #[error("RSA key: {0}")]
    Rsa(String),
    /// A key could not be built.
    #[error("invalid key: {0}")]
    Key(#[from] tessera_core::jwt::KeyError),
}

impl MasterKey {
    /// Wraps configured key bytes.
    #[must_use]
    pub fn new(bytes: [u8; 32]) -> Self {
        Self {
            current: bytes,
            accepted: None,
        }
    }

    /// Also opens what `other` sealed (the previous key while a rotation is under way, or the
    /// next one while the nodes learn it).
    #[must_use]
    pub fn also_accepting(mut self, other: Option<[u8; 32]>) -> Self {
        self.accepted = other.filter(|other| *other != self.current);
        self
    }

    /// Whether another key is accepted besides the current one.
    #[must_use]
    pub fn accepts_another(&self) -> bool {
        self.accepted.is_some()
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
            return Ok(Self::new(bytes));
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
        Ok(Self::new(bytes))
    }

    fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(key.into())
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
            Self::cipher(&self.current)
                .encrypt(&XNonce::from(nonce_bytes), payload)
                .unwrap_or_default(),
        );
        out
    }

    /// Opens what [`MasterKey::seal`] sealed for the same `context`, with the current key or
    /// the accepted one.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.current, context, sealed).or_else(|| {
            self.accepted
                .as_ref()
                .and_then(|key| open_with(key, context, sealed))
        })
    }

    /// Re-seals `sealed` under the current key if only the accepted key opens it.
    #[must_use]
    pub fn reseal(&self, context: &str, sealed: &[u8]) -> Reseal {
        if open_with(&self.current, context, sealed).is_some() {
            return Reseal::Current;
        }
        match self.open(context, sealed) {
            Some(plaintext) => Reseal::Resealed(self.seal(context, &plaintext)),
            None => Reseal::Unopenable,
        }
    }

    /// A purpose-bound subkey of the current key (HMAC-SHA-256 of the purpose). Only the
    /// first value of each derived key comes from here: it is then stored sealed
    /// ([`derived_key`]), so that a rotation of the master key does not change it.
    #[must_use]
    fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.current, purpose.as_bytes())
    }
}

fn open_with(key: &[u8; 32], context: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 24 {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(24);
    let nonce: [u8; 24] = nonce.try_into().ok()?;
    let payload = chacha20poly1305::aead::Payload {
        msg: ciphertext,
        aad: context.as_bytes(),
    };
    MasterKey::cipher(key)
        .decrypt(&XNonce::from(nonce), payload)
        .ok()
}

/// The purposes of the derived keys, each an HMAC key of its own.
pub const DERIVED_KEY_PURPOSES: [&str; 3] =
    ["refresh-token-successor", "email-secret", "recovery-code"];

/// The seal context of a derived key.
#[must_use]
pub fn derived_key_context(purpose: &str) -> String {
    format!("derived:{purpose}")
}

/// The derived key for `purpose`: stored sealed in the global database; the first start that
/// finds none stores the value the master key derives (the value every earlier version used,
/// so digests made before stay checkable).
pub async fn derived_key(
    store: &DynStore,
    master: &MasterKey,
    purpose: &str,
) -> Result<[u8; 32], KeyringError> {
    let context = derived_key_context(purpose);
    if store.derived_key(purpose).await?.is_none() {
        if master.accepts_another() {
            return Err(KeyringError::DerivedKeyMissing(purpose.to_owned()));
        }
        let sealed = master.seal(&context, &master.derive(purpose));
        store.put_derived_key_if_absent(purpose, &sealed).await?;
    }
    store
        .derived_key(purpose)
        .await?
        .and_then(|sealed| master.open(&context, &sealed))
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| KeyringError::Unseal(context))
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
    id_token_rs256: IdTokenSigner,
    verifier: Arc<Verifier>,
    published: Arc<KeySet>,
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
        let stored = store.keys().await?;
        let current = |algorithm: &str| {
            stored
                .iter()
                .any(|k| k.retired_at.is_none() && k.algorithm == algorithm)
        };
        if !current(ED25519) {
            rotate_in(&store, &master, ED25519, clock.now_secs()).await?;
        }
        // Versions before the OpenID provider had no RS256 key: the first start makes one.
        if !current(RS256) {
            rotate_in(&store, &master, RS256, clock.now_secs()).await?;
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

    /// The current key that signs ID tokens with `algorithm` (RS256, or EdDSA: the access
    /// tokens' key).
    pub async fn id_token_signer(&self, algorithm: KeyAlgorithm) -> IdTokenSigner {
        let loaded = self.inner.read().await;
        match algorithm {
            KeyAlgorithm::RS256 => loaded.id_token_rs256.clone(),
            KeyAlgorithm::EdDSA | KeyAlgorithm::HS256 => {
                IdTokenSigner::EdDSA(loaded.signer.clone())
            }
        }
    }

    /// The verifier of access tokens: every published Ed25519 key.
    pub async fn verifier(&self) -> Arc<Verifier> {
        self.inner.read().await.verifier.clone()
    }

    /// Every published key (the access tokens' and the ID tokens'), for JWKS documents.
    pub async fn published(&self) -> Arc<KeySet> {
        self.inner.read().await.published.clone()
    }

    /// The master key.
    #[must_use]
    pub fn master(&self) -> &MasterKey {
        &self.master
    }
}

/// The stored algorithm names of the two keys in use.
const ED25519: &str = "EdDSA";
const RS256: &str = "RS256";

/// The size of the RS256 keys Tessera generates.
const RSA_BITS: u32 = 2048;

/// Generates a new Ed25519 key and a new RS256 key, makes them current and retires the
/// previous ones. Tokens signed by the previous keys keep verifying while they stay published.
/// Answers the new Ed25519 key's id.
pub async fn rotate(
    store: &DynStore,
    master: &MasterKey,
    now: i64,
) -> Result<String, KeyringError> {
    let kid = rotate_in(store, master, ED25519, now).await?;
    rotate_in(store, master, RS256, now).await?;
    Ok(kid)
}

/// Generates a key of one algorithm and makes it that algorithm's current key.
async fn rotate_in(
    store: &DynStore,
    master: &MasterKey,
    algorithm: &str,
    now: i64,
) -> Result<String, KeyringError> {
    let kid = format!(
        "{}{}-{}",
        if algorithm == RS256 { "r" } else { "k" },
        now,
        tessera_core::secret::hex(&clock::random::<4>())
    );
    let (public_key, private) = if algorithm == RS256 {
        let rsa = openssl::rsa::Rsa::generate(RSA_BITS).map_err(rsa_error)?;
        (
            rsa.public_key_to_der_pkcs1().map_err(rsa_error)?,
            rsa.private_key_to_der().map_err(rsa_error)?,
        )
    } else {
        let seed = clock::random::<32>();
        let key = SigningKey::ed25519(&kid, seed)?;
        let public = key.verification_key().ed25519_public().map(Vec::from);
        (public.unwrap_or_default(), seed.to_vec())
    };
    store
        .rotate_in_key(
            &StoredKey {
                kid: kid.clone(),
                algorithm: algorithm.to_owned(),
                public_key,
                private_key_sealed: master.seal(&kid, &private),
                created_at: now,
                retired_at: None,
            },
            now,
        )
        .await?;
    tracing::info!(kid, algorithm, "signing key rotated in");
    Ok(kid)
}

fn rsa_error(error: openssl::error::ErrorStack) -> KeyringError {
    KeyringError::Rsa(error.to_string())
}

/// The public key of a stored key, whatever its algorithm.
fn verification_key(stored: &StoredKey) -> Option<VerificationKey> {
    if stored.algorithm == RS256 {
        let rsa = openssl::rsa::Rsa::public_key_from_der_pkcs1(&stored.public_key).ok()?;
        VerificationKey::rs256(&stored.kid, &rsa.n().to_vec(), &rsa.e().to_vec()).ok()
    } else {
        let public = <[u8; 32]>::try_from(stored.public_key.as_slice()).ok()?;
        VerificationKey::ed25519(&stored.kid, public).ok()
    }
}

/// The private half of a stored key, unsealed.
fn unsealed(master: &MasterKey, stored: &StoredKey) -> Result<Vec<u8>, KeyringError> {
    master
        .open(&stored.kid, &stored.private_key_sealed)
        .ok_or_else(|| KeyringError::Unseal(format!("signing key {}", stored.kid)))
}

/// The access tokens' signing key: a stored current Ed25519 key.
fn signing_key(master: &MasterKey, stored: &StoredKey) -> Result<SigningKey, KeyringError> {
    let seed = <[u8; 32]>::try_from(unsealed(master, stored)?)
        .map_err(|_| KeyringError::Unseal(format!("signing key {}", stored.kid)))?;
    Ok(SigningKey::ed25519(&stored.kid, seed)?)
}

/// The ID tokens' RS256 key: a stored current RSA key.
fn id_token_key(master: &MasterKey, stored: &StoredKey) -> Result<IdTokenSigner, KeyringError> {
    IdTokenSigner::rs256(&stored.kid, &unsealed(master, stored)?).map_err(rsa_error)
}

async fn load_keys(
    store: &DynStore,
    master: &MasterKey,
    issuer: &str,
    audience: &str,
    now: i64,
) -> Result<Loaded, KeyringError> {
    let stored = store.keys().await?;
    let current = |algorithm: &str| {
        stored
            .iter()
            .find(|k| k.retired_at.is_none() && k.algorithm == algorithm)
            .ok_or_else(|| KeyringError::Unseal(format!("(no current {algorithm} key)")))
    };
    let signer = signing_key(master, current(ED25519)?)?;
    let id_token_rs256 = id_token_key(master, current(RS256)?)?;
    let published: Vec<VerificationKey> = stored
        .iter()
        .filter(|k| {
            k.retired_at
                .is_none_or(|at| now - at < RETIRED_KEY_PUBLISHED_SECS)
        })
        .filter_map(verification_key)
        .collect();
    let access_keys = published
        .iter()
        .filter(|k| k.algorithm() == KeyAlgorithm::EdDSA)
        .cloned();
    let verifier = Verifier::new(KeySet::new(access_keys), issuer, audience);
    Ok(Loaded {
        signer: Arc::new(signer),
        id_token_rs256,
        verifier: Arc::new(verifier),
        published: Arc::new(KeySet::new(published)),
    })
}
