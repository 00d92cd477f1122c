//! The OpenID provider's rules (OpenID Connect Core 1.0, RFC 6749, RFC 7636): what a client's
//! redirect URI may be, PKCE, the scopes and grants Tessera knows, the claims of an ID token,
//! and the discovery document of an issuer. Each tenant is its own issuer,
//! `{public URL}/oidc/{tenant}`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use crate::jwt::KeyAlgorithm;

/// The path under which each tenant's provider lives: `/oidc/{tenant}`.
pub const PATH_PREFIX: &str = "/oidc";

/// How long an authorization code can be exchanged, in seconds: long enough for a redirect and
/// one back-channel request (RFC 6749 §4.1.2 recommends at most ten minutes).
pub const CODE_SECS: i64 = 60;

/// How long the provider's browser session lasts without a new sign-in, in seconds.
pub const BROWSER_SESSION_SECS: i64 = 12 * 3600;

/// The scopes Tessera grants; others are ignored, as RFC 6749 §3.3 allows.
pub const SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The issuer of `tenant` under the public URL (no trailing slash).
#[must_use]
pub fn issuer(public_url: &str, tenant: &str) -> String {
    format!("{}{PATH_PREFIX}/{tenant}", public_url.trim_end_matches('/'))
}

/// A grant type a client may be registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Grant {
    /// The authorization code flow (with PKCE).
    AuthorizationCode,
    /// Refresh tokens (issued when the client asks for `offline_access`).
    RefreshToken,
    /// A service signs in as itself, with its secret.
    ClientCredentials,
}

impl Grant {
    /// Every grant, in the order documents list them.
    pub const ALL: [Self; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    /// The `grant_type` value.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// The grant of a `grant_type` value.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.name() == name)
    }
}

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    /// Not an absolute URL.
    #[error("a redirect URI must be an absolute URL")]
    NotAbsolute,
    /// RFC 6749 §3.1.2: no fragment.
    #[error("a redirect URI must not have a fragment")]
    Fragment,
    /// `http` is allowed for loopback addresses only; other schemes are refused.
    #[error("a redirect URI must use https (http only for localhost, 127.0.0.1 or [::1])")]
    Insecure,
    /// Longer than [`MAX_URI_BYTES`].
    #[error("a redirect URI must be at most 2000 characters")]
    TooLong,
}

/// The longest redirect URI Tessera registers.
pub const MAX_URI_BYTES: usize = 2000;

/// Whether `uri` may be registered as a redirect URI (or a post-logout one): an absolute
/// `https` URL without a fragment, or `http` on a loopback host (RFC 8252 §7.3). Matching
/// later is by exact string, so no wildcard has a meaning.
pub fn check_redirect_uri(uri: &str) -> Result<(), RedirectUriError> {
    if uri.len() > MAX_URI_BYTES {
        return Err(RedirectUriError::TooLong);
    }
    let parsed = url::Url::parse(uri).map_err(|_| RedirectUriError::NotAbsolute)?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(RedirectUriError::Fragment);
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(RedirectUriError::NotAbsolute),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(RedirectUriError::Insecure),
    }
}

/// The origin (`scheme://host[:port]`) of a registered redirect URI, for the sign-in page's
/// `form-action`: browsers apply it to the redirect that follows the form's POST.
#[must_use]
pub fn origin_of(uri: &str) -> Option<String> {
    let parsed = url::Url::parse(uri).ok()?;
    Some(parsed.origin().ascii_serialization()).filter(|o| o != "null")
}

/// Whether `verifier` is a PKCE code verifier: 43 to 128 characters of `[A-Za-z0-9-._~]`
/// (RFC 7636 §4.1).
#[must_use]
pub fn code_verifier_is_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `challenge` can be an S256 code challenge: 43 base64url characters.
#[must_use]
pub fn code_challenge_is_well_formed(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Whether `verifier` answers the S256 `challenge` (RFC 7636 §4.6), compared in constant time.
#[must_use]
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    if !code_verifier_is_well_formed(verifier) {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    crate::secret::ct_eq(computed.as_bytes(), challenge.as_bytes())
}

/// The `at_hash` of an access token for an ID token signed with `alg` (Core §3.1.3.6): the
/// left half of the token's hash under the signature's hash function, base64url. EdDSA over
/// Ed25519 hashes with SHA-512 (the OpenID Foundation's registration of EdDSA).
#[must_use]
pub fn token_hash(token: &str, alg: KeyAlgorithm) -> String {
    match alg {
        KeyAlgorithm::EdDSA => {
            let digest = Sha512::digest(token.as_bytes());
            URL_SAFE_NO_PAD.encode(&digest[..32])
        }
        KeyAlgorithm::RS256 | KeyAlgorithm::HS256 => {
            let digest = Sha256::digest(token.as_bytes());
            URL_SAFE_NO_PAD.encode(&digest[..16])
        }
    }
}

/// The scopes of a request that Tessera grants, in [`SCOPES`] order, each once.
#[must_use]
pub fn granted_scopes(requested: &str) -> Vec<&'static str> {
    let asked: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
    SCOPES
        .iter()
        .copied()
        .filter(|s| asked.contains(s))
        .collect()
}

/// Whether a space-separated scope string has `scope`.
#[must_use]
pub fn has_scope(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

/// The `prompt` parameter (Core §3.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prompt {
    /// `none`: never show a page; answer `login_required` without a session.
    pub none: bool,
    /// `login`: sign in again even with a session.
    pub login: bool,
}

impl Prompt {
    /// Parses the space-separated values; `None` when `none` comes with another value (the
    /// spec makes that an `invalid_request`). Unknown values (`consent`, `select_account`)
    /// are ignored: first-party clients have no consent screen.
    #[must_use]
    pub fn parse(value: Option<&str>) -> Option<Self> {
        let values: Vec<&str> = value
            .unwrap_or_default()
            .split(' ')
            .filter(|v| !v.is_empty())
            .collect();
        let prompt = Self {
            none: values.contains(&"none"),
            login: values.contains(&"login"),
        };
        if prompt.none && values.len() > 1 {
            return None;
        }
        Some(prompt)
    }
}

/// Whether a session that signed in at `auth_time` satisfies `max_age` at `now`: when the
/// last sign-in is older, the user signs in again (Core §3.1.2.1).
#[must_use]
pub const fn fresh_enough(auth_time: i64, max_age: Option<i64>, now: i64) -> bool {
    match max_age {
        Some(max_age) => now - auth_time <= max_age,
        None => true,
    }
}

/// The claims of an ID token (Core §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The tenant's issuer.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// The authorized party: the client id.
    pub azp: String,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// When the user last signed in, Unix seconds.
    pub auth_time: u64,
    /// The client's `nonce`, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
    /// The hash of the access token issued with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// The provider session, for logout.
    pub sid: String,
    /// The user's email, with the `email` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether it is confirmed, with the `email` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// The discovery document of an issuer (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Discovery {
    /// The issuer.
    pub issuer: String,
    /// The hosted sign-in page.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The userinfo endpoint.
    pub userinfo_endpoint: String,
    /// The keys.
    pub jwks_uri: String,
    /// RFC 7009.
    pub revocation_endpoint: String,
    /// RFC 7662.
    pub introspection_endpoint: String,
    /// RP-initiated logout.
    pub end_session_endpoint: String,
    /// `openid profile email offline_access`.
    pub scopes_supported: Vec<String>,
    /// `code` only.
    pub response_types_supported: Vec<String>,
    /// `query`.
    pub response_modes_supported: Vec<String>,
    /// The grants.
    pub grant_types_supported: Vec<String>,
    /// `public`.
    pub subject_types_supported: Vec<String>,
    /// `RS256` and `EdDSA`.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// How clients authenticate to the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `S256` only.
    pub code_challenge_methods_supported: Vec<String>,
    /// The claims Tessera can answer.
    pub claims_supported: Vec<String>,
    /// `none` and `login`.
    pub prompt_values_supported: Vec<String>,
}

impl Discovery {
    /// The document of `issuer`.
    #[must_use]
    pub fn of(issuer: &str) -> Self {
        let at = |path: &str| format!("{issuer}/{path}");
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Self {
            issuer: issuer.to_owned(),
            authorization_endpoint: at("authorize"),
            token_endpoint: at("token"),
            userinfo_endpoint: at("userinfo"),
            jwks_uri: at("jwks"),
            revocation_endpoint: at("revoke"),
            introspection_endpoint: at("introspect"),
            end_session_endpoint: at("end-session"),
            scopes_supported: strings(SCOPES),
            response_types_supported: strings(&["code"]),
            response_modes_supported: strings(&["query"]),
            grant_types_supported: Grant::ALL.iter().map(|g| g.name().to_owned()).collect(),
            subject_types_supported: strings(&["public"]),
            id_token_signing_alg_values_supported: strings(&["RS256", "EdDSA"]),
            token_endpoint_auth_methods_supported: strings(&[
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]),
            code_challenge_methods_supported: strings(&["S256"]),
            claims_supported: strings(&[
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "amr",
                "at_hash",
                "sid",
                "email",
                "email_verified",
                "name",
            ]),
            prompt_values_supported: strings(&["none", "login"]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_http_without_fragments() {
        for good in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "http://localhost:3000/cb",
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
            "https://localhost/cb",
        ] {
            assert_eq!(check_redirect_uri(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("/callback", RedirectUriError::NotAbsolute),
            (
                "https://app.example.com/cb#frag",
                RedirectUriError::Fragment,
            ),
            ("http://app.example.com/cb", RedirectUriError::Insecure),
            ("http://localhost.evil.com/cb", RedirectUriError::Insecure),
            ("javascript:alert(1)", RedirectUriError::NotAbsolute),
            ("ftp://127.0.0.1/cb", RedirectUriError::Insecure),
        ] {
            assert_eq!(check_redirect_uri(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn pkce_matches_the_rfc_7636_example() {
        // RFC 7636, Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(code_challenge_is_well_formed(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX",
            challenge
        ));
        assert!(!pkce_matches("short", challenge));
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_digest() {
        // OpenID Connect Core, Appendix A.3 (RS256).
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(
            token_hash(token, KeyAlgorithm::RS256),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(token_hash(token, KeyAlgorithm::EdDSA).len(), 43);
    }

    #[test]
    fn scopes_keep_the_known_ones_once() {
        assert_eq!(
            granted_scopes("email openid  weird openid"),
            vec!["openid", "email"]
        );
        assert!(has_scope("openid email", "email"));
        assert!(!has_scope("openid emails", "email"));
    }

    #[test]
    fn prompt_none_stands_alone() {
        assert_eq!(Prompt::parse(None), Some(Prompt::default()));
        assert_eq!(
            Prompt::parse(Some("login consent")),
            Some(Prompt {
                none: false,
                login: true
            })
        );
        assert_eq!(Prompt::parse(Some("none login")), None);
        assert!(fresh_enough(100, Some(60), 160));
        assert!(!fresh_enough(100, Some(60), 161));
    }

    #[test]
    fn discovery_names_every_endpoint_under_the_issuer() {
        let issuer = issuer("https://auth.example.com/", "acme");
        assert_eq!(issuer, "https://auth.example.com/oidc/acme");
        let doc = Discovery::of(&issuer);
        assert_eq!(
            doc.token_endpoint,
            "https://auth.example.com/oidc/acme/token"
        );
        assert_eq!(doc.code_challenge_methods_supported, vec!["S256"]);
    }
}
