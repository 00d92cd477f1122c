//! Access tokens: claims, signing, strict verification, key sets for rotation, and JWKS.
//!
//! Access tokens are JWTs with header `typ: at+jwt` (RFC 9068), so that no other JWT (an ID
//! token, a token of another service signed by a shared key) can pass as one. Signing is EdDSA
//! (Ed25519) by default; HS256 exists only for keys built explicitly with
//! [`SigningKey::hs256`]. Verification is strict; see [`Verifier::verify`] for every refusal.
//! Time is always an argument: this module reads no clock.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::SigningKey as Ed25519SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The `typ` header of every access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The longest token the verifier reads; anything longer is refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Headers that would let a token name its own key or certificate. They are never fetched and
/// never trusted: a token carrying any of them is refused.
const FORBIDDEN_HEADERS: &[&str] = &["jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit"];

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the origin's configured URL.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// The user's email when the token was issued, so that the edge can answer a verification
    /// without asking the origin.
    pub email: String,
    /// The user's role when the token was issued.
    pub role: String,
    /// Audience: who the token is for. Tessera issues the configured audience and
    /// `<audience>:<tenant>` ([`Audience::for_tenant`]); a single string is read too.
    pub aud: Audience,
    /// Tenant slug.
    pub tid: String,
    /// Session id: revoking the session revokes the token.
    pub sid: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Not before, Unix seconds.
    pub nbf: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// Unique token id.
    pub jti: String,
    /// Authentication methods (RFC 8176): `pwd`, `otp`, `mfa`, `email`...
    pub amr: Vec<String>,
    /// Whether the user had confirmed their email address when the token was issued. Absent
    /// in tokens of earlier versions, which read as `false`.
    #[serde(default)]
    pub email_verified: bool,
    /// Set only on a restricted token, which is good for nothing but what its scope names
    /// ([`ENROL_SCOPE`]): every verifier refuses it elsewhere (see
    /// [`AccessClaims::is_restricted`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The team/vault API's `vaultToken` only: the user's default team (its id), absent
    /// before the user has one (an unconfirmed account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// With `team`: the user's role in it (`owner`, `admin`, `member`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_role: Option<String>,
}

/// The `aud` claim: one audience, or several (RFC 7519 allows both forms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, as tokens of earlier versions carry it.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// What Tessera issues: the configured `audience`, which every existing check keeps
    /// accepting, and `<audience>:<tenant>`, with which an application pins its tenant by the
    /// audience alone (every tenant shares the configured one).
    #[must_use]
    pub fn for_tenant(audience: &str, tenant: &str) -> Self {
        Self::Many(vec![audience.to_owned(), format!("{audience}:{tenant}")])
    }

    /// Whether `audience` is among them.
    #[must_use]
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

impl From<&str> for Audience {
    fn from(audience: &str) -> Self {
        Self::One(audience.to_owned())
    }
}

/// The scope of the token a user of a tenant that requires a second factor gets when they
/// have none yet: it can only enrol an authenticator app.
pub const ENROL_SCOPE: &str = "mfa_enroll";

impl AccessClaims {
    /// Whether the token is restricted to its scope: the edge and the origin refuse it on every
    /// route but the ones of that scope.
    #[must_use]
    pub fn is_restricted(&self) -> bool {
        self.scope.is_some()
    }
}

/// The algorithms Tessera signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// Ed25519 signatures (RFC 8037), the default.
    EdDSA,
    /// HMAC-SHA-256 with a shared secret; only when configured explicitly.
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256: ID tokens only, the one algorithm every OpenID Connect
    /// relying party must accept. Never accepted for an access token.
    RS256,
}

impl KeyAlgorithm {
    /// The `alg` header value.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::HS256 => "HS256",
            Self::RS256 => "RS256",
        }
    }

    /// The algorithm of this `alg` name, if Tessera signs with it.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::EdDSA, Self::HS256, Self::RS256]
            .into_iter()
            .find(|a| a.name() == name)
    }

    const fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            Self::EdDSA => Algorithm::EdDSA,
            Self::HS256 => Algorithm::HS256,
            Self::RS256 => Algorithm::RS256,
        }
    }
}

/// Why a key could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A `kid` must be 1–64 characters of `[A-Za-z0-9_-]`.
    #[error("malformed key id")]
    MalformedKid,
    /// HS256 secrets must be at least 32 bytes (RFC 7518 §3.2).
    #[error("HS256 secret shorter than 32 bytes")]
    WeakSecret,
    /// An RSA key that is malformed or shorter than 2048 bits.
    #[error("malformed or short RSA key")]
    BadRsaKey,
    /// A JWK that is not an Ed25519 public key of 32 bytes.
    #[error("unsupported or malformed JWK: {0}")]
    BadJwk(&'static str),
    /// The JWKS document is not valid JSON of the expected shape.
    #[error("malformed JWKS document")]
    BadJwks,
    /// Signing failed (only possible with a corrupted key).
    #[error("signing failed")]
    Signing,
}

fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok = (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(KeyError::MalformedKid)
    }
}

/// PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410), the form jsonwebtoken signs with.
fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = Vec::with_capacity(48);
    der.extend_from_slice(&PREFIX);
    der.extend_from_slice(seed);
    der
}

/// A private key that signs access tokens (EdDSA, HS256), and EdDSA ID tokens. Tessera's RS256
/// ID-token keys sign with OpenSSL in the origin: RSA private-key operations are no part of
/// core.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    algorithm: KeyAlgorithm,
    encoding: EncodingKey,
    verification: VerificationKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey({}, {}, ***)",
            self.kid,
            self.algorithm.name()
        )
    }
}

impl SigningKey {
    /// An Ed25519 key from a 32-byte seed (the private key of RFC 8032), supplied by the caller.
    pub fn ed25519(kid: &str, seed: [u8; 32]) -> Result<Self, KeyError> {
        check_kid(kid)?;
        let public = Ed25519SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        Ok(Self {
            kid: kid.to_owned(),
            algorithm: KeyAlgorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(&ed25519_pkcs8(&seed)),
            verification: VerificationKey::ed25519(kid, public)?,
        })
    }

    /// An HS256 key from a shared secret of at least 32 bytes. Whoever can verify such tokens
    /// can also mint them, so it is for single-party deployments only.
    pub fn hs256(kid: &str, secret: &[u8]) -> Result<Self, KeyError> {
        Ok(Self {
            kid: kid.to_owned(),
            algorithm: KeyAlgorithm::HS256,
            encoding: EncodingKey::from_secret(secret),
            verification: VerificationKey::hs256(kid, secret)?,
        })
    }

    /// The key id written into the `kid` header.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm it signs with.
    #[must_use]
    pub const fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Signs any claims as a plain JWT (`typ: JWT`), as an ID token is (OpenID Connect Core
    /// §2): never an access token, whose `typ` is `at+jwt`.
    pub fn sign_jwt<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(self.algorithm.to_jsonwebtoken());
        header.typ = Some("JWT".to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|_| KeyError::Signing)
    }

    /// The key that verifies this key's signatures.
    #[must_use]
    pub fn verification_key(&self) -> &VerificationKey {
        &self.verification
    }

    /// Signs claims as an access token with header `{alg, typ: at+jwt, kid}`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        let mut header = Header::new(self.algorithm.to_jsonwebtoken());
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|_| KeyError::Signing)
    }
}

/// A key that verifies access tokens, bound to one algorithm: a token that names another
/// algorithm for this key's `kid` is refused (no key confusion).
#[derive(Clone)]
pub struct VerificationKey {
    kid: String,
    algorithm: KeyAlgorithm,
    decoding: DecodingKey,
    /// The public key, for JWKS; `None` for HS256, which is never published.
    public: Option<PublicKey>,
}

/// A published public key.
#[derive(Clone)]
enum PublicKey {
    Ed25519([u8; 32]),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VerificationKey({}, {})",
            self.kid,
            self.algorithm.name()
        )
    }
}

impl VerificationKey {
    /// An Ed25519 public key (32 bytes).
    pub fn ed25519(kid: &str, public: [u8; 32]) -> Result<Self, KeyError> {
        check_kid(kid)?;
        Ok(Self {
            kid: kid.to_owned(),
            algorithm: KeyAlgorithm::EdDSA,
            decoding: DecodingKey::from_ed_der(&public),
            public: Some(PublicKey::Ed25519(public)),
        })
    }

    /// An RSA public key from its modulus and exponent (big endian), at least 2048 bits.
    pub fn rs256(kid: &str, n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        check_kid(kid)?;
        let n = n.strip_prefix(&[0]).unwrap_or(n);
        if n.len() < 256 || e.is_empty() {
            return Err(KeyError::BadRsaKey);
        }
        Ok(Self {
            kid: kid.to_owned(),
            algorithm: KeyAlgorithm::RS256,
            decoding: DecodingKey::from_rsa_raw_components(n, e),
            public: Some(PublicKey::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
            }),
        })
    }

    /// An HS256 shared secret of at least 32 bytes.
    pub fn hs256(kid: &str, secret: &[u8]) -> Result<Self, KeyError> {
        check_kid(kid)?;
        if secret.len() < 32 {
            return Err(KeyError::WeakSecret);
        }
        Ok(Self {
            kid: kid.to_owned(),
            algorithm: KeyAlgorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
            public: None,
        })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    #[must_use]
    pub const fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public JWK, or `None` for a shared secret.
    #[must_use]
    pub fn to_jwk(&self) -> Option<Jwk> {
        let jwk = Jwk {
            kty: String::new(),
            crv: None,
            x: None,
            n: None,
            e: None,
            kid: self.kid.clone(),
            alg: self.algorithm.name().to_owned(),
            use_: "sig".to_owned(),
        };
        match self.public.as_ref()? {
            PublicKey::Ed25519(x) => Some(Jwk {
                kty: "OKP".to_owned(),
                crv: Some("Ed25519".to_owned()),
                x: Some(URL_SAFE_NO_PAD.encode(x)),
                ..jwk
            }),
            PublicKey::Rsa { n, e } => Some(Jwk {
                kty: "RSA".to_owned(),
                n: Some(URL_SAFE_NO_PAD.encode(n)),
                e: Some(URL_SAFE_NO_PAD.encode(e)),
                ..jwk
            }),
        }
    }

    /// The Ed25519 public key, for an EdDSA key.
    #[must_use]
    pub fn ed25519_public(&self) -> Option<[u8; 32]> {
        match self.public {
            Some(PublicKey::Ed25519(x)) => Some(x),
            _ => None,
        }
    }

    /// Builds a key from a published JWK, refusing anything but an Ed25519 signing key.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if jwk.kty != "OKP" || jwk.crv.as_deref() != Some("Ed25519") {
            return Err(KeyError::BadJwk("not an Ed25519 key"));
        }
        if jwk.alg != "EdDSA" || jwk.use_ != "sig" {
            return Err(KeyError::BadJwk("not an EdDSA signing key"));
        }
        let x = URL_SAFE_NO_PAD
            .decode(jwk.x.as_deref().unwrap_or_default())
            .map_err(|_| KeyError::BadJwk("x is not base64url"))?;
        let x: [u8; 32] = x
            .try_into()
            .map_err(|_| KeyError::BadJwk("x is not 32 bytes"))?;
        Self::ed25519(&jwk.kid, x)
    }
}

/// A public key in JWK form (RFC 7517; Ed25519 keys as RFC 8037 has them, RSA keys as RFC
/// 7518 §6.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    /// Key type: `OKP` (Ed25519) or `RSA`.
    pub kty: String,
    /// Curve: `Ed25519`, for an `OKP` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The Ed25519 public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// The RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// The RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Key id.
    pub kid: String,
    /// Algorithm: `EdDSA` or `RS256`.
    pub alg: String,
    /// Use: `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// A JWK set document, as served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS document into verification keys. Keys of types Tessera does not use are
    /// skipped (a JWKS may carry them); a malformed Ed25519 key fails the whole document.
    pub fn parse_keys(json: &[u8]) -> Result<Vec<VerificationKey>, KeyError> {
        #[derive(Deserialize)]
        struct Loose {
            keys: Vec<serde_json::Value>,
        }
        let loose: Loose = serde_json::from_slice(json).map_err(|_| KeyError::BadJwks)?;
        loose
            .keys
            .into_iter()
            .filter(|k| k.get("kty").and_then(|v| v.as_str()) == Some("OKP"))
            .map(|k| {
                let jwk: Jwk = serde_json::from_value(k).map_err(|_| KeyError::BadJwks)?;
                VerificationKey::from_jwk(&jwk)
            })
            .collect()
    }
}

/// Keys by `kid`: the current key and the previous ones that tokens still in circulation were
/// signed with.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: BTreeMap<String, VerificationKey>,
}

impl KeySet {
    /// A key set from keys; a later key with the same `kid` replaces an earlier one.
    #[must_use]
    pub fn new(keys: impl IntoIterator<Item = VerificationKey>) -> Self {
        Self {
            keys: keys.into_iter().map(|k| (k.kid.clone(), k)).collect(),
        }
    }

    /// The key with this `kid`.
    #[must_use]
    pub fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.get(kid)
    }

    /// Whether the set holds no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `token`'s signature verifies under the key its `kid` names, with that key's
    /// algorithm, whatever its claims say: for an ID token presented back to its issuer as a
    /// hint (RP-initiated logout), whose expiry does not matter.
    #[must_use]
    pub fn signed_by_one(&self, token: &str) -> bool {
        if token.len() > MAX_TOKEN_BYTES {
            return false;
        }
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return false;
        };
        let Some(key) = header.kid.as_deref().and_then(|kid| self.get(kid)) else {
            return false;
        };
        if header.alg != key.algorithm.to_jsonwebtoken() {
            return false;
        }
        let mut validation = Validation::new(key.algorithm.to_jsonwebtoken());
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation).is_ok()
    }

    /// The public JWKS document of the set (shared secrets are never published).
    #[must_use]
    pub fn to_jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .keys
                .values()
                .filter_map(VerificationKey::to_jwk)
                .collect(),
        }
    }
}

/// Why a token was refused. [`VerifyError::code`] is stable for API clients; all of them mean
/// 401 to a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not three base64url parts of JSON, too long, or claims of the wrong shape (a required
    /// claim such as `exp` missing included).
    #[error("malformed token")]
    Malformed,
    /// `alg` is `none`, or one Tessera does not accept.
    #[error("algorithm not accepted")]
    UnsupportedAlgorithm,
    /// `typ` is not `at+jwt`.
    #[error("not an access token")]
    WrongType,
    /// The header carries `jku`, `jwk`, `x5u`, `x5c` or another key-locating header.
    #[error("forbidden header {0}")]
    ForbiddenHeader(&'static str),
    /// No `kid`, or a malformed one.
    #[error("missing or malformed key id")]
    BadKid,
    /// The `kid` is well formed but not in the key set: the caller may refresh its keys once.
    #[error("unknown key id")]
    UnknownKid(String),
    /// The token's `alg` is not the algorithm of the key its `kid` names.
    #[error("algorithm does not match the key")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not this issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` is not this audience.
    #[error("wrong audience")]
    WrongAudience,
}

impl VerifyError {
    /// The stable machine-readable code.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Expired => "token_expired",
            _ => "invalid_token",
        }
    }
}

/// Verifies access tokens against a key set, an issuer and an audience.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    issuer: String,
    audience: String,
    leeway_secs: u64,
}

impl Verifier {
    /// The default clock-skew allowance for `exp`, `nbf` and `iat`, in seconds.
    pub const DEFAULT_LEEWAY_SECS: u64 = 30;

    /// A verifier with the default leeway.
    #[must_use]
    pub fn new(keys: KeySet, issuer: &str, audience: &str) -> Self {
        Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway_secs: Self::DEFAULT_LEEWAY_SECS,
        }
    }

    /// Sets the clock-skew allowance.
    #[must_use]
    pub const fn with_leeway(mut self, leeway_secs: u64) -> Self {
        self.leeway_secs = leeway_secs;
        self
    }

    /// The key set.
    #[must_use]
    pub const fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Verifies `token` at Unix time `now_secs`. Refuses, in this order: more than
    /// [`MAX_TOKEN_BYTES`] or not three parts; a header that is not JSON; `alg` other than
    /// EdDSA/HS256 (`none` included); `typ` other than `at+jwt`; `jku`/`jwk`/`x5u`/`x5c`/`x5t`/
    /// `crit`; a missing or malformed `kid`; an unknown `kid`; an `alg` that is not the key's;
    /// a bad signature; claims of the wrong shape; a wrong issuer or audience; an `exp` at or
    /// before `now - leeway`; an `nbf` or `iat` after `now + leeway`.
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<AccessClaims, VerifyError> {
        self.verify_with_grace(token, now_secs, 0)
    }

    /// [`Verifier::verify`], also accepting a token that expired up to `grace_secs` ago: for
    /// an exchange whose real bound is elsewhere (the team/vault API's `GET /api/refresh`,
    /// bounded by the session's own lifetime). Everything else is checked as by `verify`.
    pub fn verify_with_grace(
        &self,
        token: &str,
        now_secs: u64,
        grace_secs: u64,
    ) -> Result<AccessClaims, VerifyError> {
        let key = self.check_header(token)?;
        let mut validation = Validation::new(key.algorithm.to_jsonwebtoken());
        // Time, issuer and audience are checked by `check_claims` against the caller's clock:
        // the library's own checks would read the system clock, which core never does.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => VerifyError::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => VerifyError::KeyMismatch,
                _ => VerifyError::Malformed,
            })?
            .claims;
        self.check_claims_with(&claims, now_secs, grace_secs)?;
        Ok(claims)
    }

    /// [`Verifier::verify`], also answering the `kid` of the key that verified, so that a
    /// caller caching the outcome can drop it when the key leaves the set
    /// ([`Verifier::recheck`]).
    pub fn verify_keyed(&self, token: &str, now_secs: u64) -> Result<Verified, VerifyError> {
        let claims = self.verify(token, now_secs)?;
        let kid = parse_header(token)?.kid;
        Ok(Verified { claims, kid })
    }

    /// Whether a token verified earlier (and remembered by its caller) still verifies at
    /// `now_secs` without computing its signature again: its key is still in the set, and its
    /// time claims still hold. Issuer and audience are fixed for a verifier and were checked.
    pub fn recheck(&self, verified: &Verified, now_secs: u64) -> Result<(), VerifyError> {
        if self.keys.get(&verified.kid).is_none() {
            return Err(VerifyError::UnknownKid(verified.kid.clone()));
        }
        self.check_claims(&verified.claims, now_secs)
    }

    /// Every check of [`Verifier::verify`] except the Ed25519 signature itself, which the
    /// caller computes elsewhere (the edge uses the runtime's WebCrypto, several times faster
    /// than Ed25519 in WebAssembly) and reports to [`DeferredSignature::finish`]. The claims
    /// are only ever released through `finish`, and the outcome for every token equals that of
    /// `verify`. Tokens of HS256 keys are refused here with `KeyMismatch`: verify them with
    /// `verify`.
    pub fn verify_deferred(
        &self,
        token: &str,
        now_secs: u64,
    ) -> Result<DeferredSignature, VerifyError> {
        let key = self.check_header(token)?;
        let public_key = key.ed25519_public().ok_or(VerifyError::KeyMismatch)?;
        let (signing_input, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| VerifyError::Malformed)?;
        let payload = signing_input
            .split('.')
            .nth(1)
            .ok_or(VerifyError::Malformed)?;
        let claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<AccessClaims>(&bytes).ok())
            .ok_or(VerifyError::Malformed)
            .and_then(|claims| self.check_claims(&claims, now_secs).map(|()| claims));
        Ok(DeferredSignature {
            kid: key.kid.clone(),
            public_key,
            signing_input: signing_input.to_owned(),
            signature,
            claims,
        })
    }

    /// Checks the header and finds the key: everything that must hold before any signature is
    /// worth computing.
    fn check_header(&self, token: &str) -> Result<&VerificationKey, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES || token.split('.').count() != 3 {
            return Err(VerifyError::Malformed);
        }
        let header = parse_header(token)?;
        let key = self
            .keys
            .get(&header.kid)
            .ok_or_else(|| VerifyError::UnknownKid(header.kid.clone()))?;
        // An RS256 key signs ID tokens only: none of its tokens is an access token.
        if key.algorithm != header.algorithm || key.algorithm == KeyAlgorithm::RS256 {
            return Err(VerifyError::KeyMismatch);
        }
        Ok(key)
    }

    /// Issuer, audience and time, against the caller's clock.
    fn check_claims(&self, claims: &AccessClaims, now_secs: u64) -> Result<(), VerifyError> {
        self.check_claims_with(claims, now_secs, 0)
    }

    /// [`Verifier::check_claims`] with `grace_secs` more allowed past `exp`.
    fn check_claims_with(
        &self,
        claims: &AccessClaims,
        now_secs: u64,
        grace_secs: u64,
    ) -> Result<(), VerifyError> {
        if claims.iss != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !claims.aud.contains(&self.audience) {
            return Err(VerifyError::WrongAudience);
        }
        // A tenant audience, where there is one, names the token's own tenant.
        if let Audience::Many(many) = &claims.aud {
            let prefix = format!("{}:", self.audience);
            let foreign = many
                .iter()
                .filter_map(|a| a.strip_prefix(&prefix))
                .any(|tenant| tenant != claims.tid);
            if foreign {
                return Err(VerifyError::WrongAudience);
            }
        }
        if claims
            .exp
            .saturating_add(self.leeway_secs)
            .saturating_add(grace_secs)
            <= now_secs
        {
            return Err(VerifyError::Expired);
        }
        let latest_start = now_secs.saturating_add(self.leeway_secs);
        if claims.nbf > latest_start || claims.iat > latest_start {
            return Err(VerifyError::NotYetValid);
        }
        Ok(())
    }
}

/// A verified token's claims and the `kid` of the key that verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The claims.
    pub claims: AccessClaims,
    /// The key that verified the signature.
    pub kid: String,
}

/// A token that passed every check but its Ed25519 signature; see [`Verifier::verify_deferred`].
#[derive(Debug)]
pub struct DeferredSignature {
    kid: String,
    public_key: [u8; 32],
    signing_input: String,
    signature: Vec<u8>,
    claims: Result<AccessClaims, VerifyError>,
}

impl DeferredSignature {
    /// The `kid` of the key to verify with (for caching an imported key).
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The Ed25519 public key.
    #[must_use]
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// The signed bytes: `header.payload` as sent.
    #[must_use]
    pub fn message(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The signature bytes.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The outcome, given whether the signature verified: a bad signature is reported before
    /// anything about the claims, as [`Verifier::verify`] does.
    pub fn finish(self, signature_valid: bool) -> Result<AccessClaims, VerifyError> {
        if signature_valid {
            self.claims
        } else {
            Err(VerifyError::BadSignature)
        }
    }
}

struct ParsedHeader {
    algorithm: KeyAlgorithm,
    kid: String,
}

fn parse_header(token: &str) -> Result<ParsedHeader, VerifyError> {
    let encoded = token.split('.').next().ok_or(VerifyError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| VerifyError::Malformed)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed)?;
    let algorithm = match header.get("alg").and_then(|v| v.as_str()) {
        Some("EdDSA") => KeyAlgorithm::EdDSA,
        Some("HS256") => KeyAlgorithm::HS256,
        _ => return Err(VerifyError::UnsupportedAlgorithm),
    };
    // RFC 9068 §4: "at+jwt", or the full media type, compared case-insensitively.
    let typ = header
        .get("typ")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if typ.strip_prefix("application/").unwrap_or(&typ) != ACCESS_TOKEN_TYP {
        return Err(VerifyError::WrongType);
    }
    if let Some(name) = FORBIDDEN_HEADERS.iter().find(|h| header.contains_key(**h)) {
        return Err(VerifyError::ForbiddenHeader(name));
    }
    let kid = header
        .get("kid")
        .and_then(|v| v.as_str())
        .ok_or(VerifyError::BadKid)?;
    check_kid(kid).map_err(|_| VerifyError::BadKid)?;
    Ok(ParsedHeader {
        algorithm,
        kid: kid.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8037 Appendix A.1–A.4: the Ed25519 key and its JWS of "Example of Ed25519 signing".
    const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const RFC8037_INPUT: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    const RFC8037_SIG: &str =
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

    fn rfc8037_key() -> Result<SigningKey, KeyError> {
        let seed: [u8; 32] = URL_SAFE_NO_PAD
            .decode(RFC8037_D)
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or(KeyError::Signing)?;
        SigningKey::ed25519("rfc8037", seed)
    }

    #[test]
    fn rfc8037_public_key_is_derived_from_the_seed() {
        let jwk = rfc8037_key().map(|k| k.verification_key().to_jwk());
        assert_eq!(
            jwk.ok().flatten().and_then(|j| j.x),
            Some(RFC8037_X.to_owned())
        );
    }

    #[test]
    fn rfc8037_signature_is_reproduced_and_verifies() {
        let key = rfc8037_key();
        let signature = key.as_ref().ok().and_then(|k| {
            jsonwebtoken::crypto::sign(RFC8037_INPUT.as_bytes(), &k.encoding, Algorithm::EdDSA).ok()
        });
        assert_eq!(signature.as_deref(), Some(RFC8037_SIG));
        let verified = key.ok().and_then(|k| {
            jsonwebtoken::crypto::verify(
                RFC8037_SIG,
                RFC8037_INPUT.as_bytes(),
                &k.verification.decoding,
                Algorithm::EdDSA,
            )
            .ok()
        });
        assert_eq!(verified, Some(true));
    }
}
