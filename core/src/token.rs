//! Opaque tokens: everything Tessera hands out that is not a JWT.
//!
//! Form: `tsr_<kind>_<tenant>_<body><check>`, where `tenant` is the tenant slug, `body` is 32
//! random bytes (256 bits) in unpadded base64url (43 characters) and `check` is the first 4
//! bytes of SHA-256 over everything before it, in base64url (6 characters). The prefix says what
//! a leaked token is (secret scanners can match it); the tenant says which tenant's store to
//! look in, so that a request that carries only a token (a refresh, an emailed link) needs no
//! cross-tenant search; the check refuses typos and truncation before any lookup.
//! Only the SHA-256 digest of the whole token is ever stored, so a token whose tenant part was
//! edited is simply not found in the other tenant.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::model::TenantSlug;
use crate::secret::{ct_eq, sha256};

/// How many random bytes a token carries.
pub const RANDOM_BYTES: usize = 32;

const BODY_CHARS: usize = 43;

/// Characters of the random part that [`OpaqueToken::account_tag`] covers: 10 base64url
/// characters are the first 60 bits of the random bytes, none of the rest.
const ACCOUNT_TAG_CHARS: usize = 10;

/// Leading random bytes that hold an account tag (the tag covers 60 of their 64 bits).
pub const ACCOUNT_TAG_BYTES: usize = 8;
const CHECK_CHARS: usize = 6;

/// What a token is for. Each kind has its own prefix, so that one kind never passes as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A refresh token, rotated on every use.
    Refresh,
    /// A passwordless session token (VoiceStamp v1's 30-day token).
    Session,
    /// The token that links the password step of a sign-in to its second factor.
    MfaChallenge,
    /// A single-use emailed link (password reset, email confirmation).
    EmailLink,
    /// A long-lived service API token, scoped to a tenant.
    ServiceApi,
    /// The link between the two requests of a passkey (WebAuthn) ceremony: single use, five
    /// minutes.
    Ceremony,
    /// An OpenID client's secret.
    ClientSecret,
    /// An OpenID authorization code: single use, a minute.
    AuthorizationCode,
    /// The OpenID provider's browser session (its `__Host-` cookie).
    ProviderSession,
}

impl TokenKind {
    /// Every kind.
    pub const ALL: [Self; 9] = [
        Self::Refresh,
        Self::Session,
        Self::MfaChallenge,
        Self::EmailLink,
        Self::ServiceApi,
        Self::Ceremony,
        Self::ClientSecret,
        Self::AuthorizationCode,
        Self::ProviderSession,
    ];

    /// The prefix that starts every token of this kind.
    #[must_use]
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Refresh => "tsr_rt_",
            Self::Session => "tsr_st_",
            Self::MfaChallenge => "tsr_mc_",
            Self::EmailLink => "tsr_el_",
            Self::ServiceApi => "tsr_sk_",
            Self::Ceremony => "tsr_wc_",
            Self::ClientSecret => "tsr_cs_",
            Self::AuthorizationCode => "tsr_ac_",
            Self::ProviderSession => "tsr_ps_",
        }
    }
}

/// Why a string is not a token of the expected kind. Deliberately coarse: a caller answers all
/// of them the same way, as an invalid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    /// Wrong prefix: another kind of token, or no token at all.
    #[error("not a token of this kind")]
    WrongKind,
    /// Wrong length, a character outside base64url, or no valid tenant.
    #[error("malformed token")]
    Malformed,
    /// The checksum does not match: a typo or a truncated copy.
    #[error("token checksum mismatch")]
    Checksum,
}

/// A token in its secret, presentable form. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken {
    kind: TokenKind,
    tenant: TenantSlug,
    text: String,
}

/// The tenant an opaque token of any kind names (its `tsr_<kind>_<tenant>_` prefix), if the
/// text is one: what a request carrying it is for, before anything is looked up.
#[must_use]
pub fn tenant_of_any(input: &str) -> Option<TenantSlug> {
    TokenKind::ALL
        .into_iter()
        .find_map(|kind| OpaqueToken::parse(kind, input).ok())
        .map(|token| token.tenant().clone())
}

impl OpaqueToken {
    /// Builds a new token of `kind` for `tenant` from caller-supplied random bytes.
    #[must_use]
    pub fn generate(kind: TokenKind, tenant: &TenantSlug, random: [u8; RANDOM_BYTES]) -> Self {
        let mut text = String::with_capacity(
            kind.prefix().len() + tenant.as_str().len() + 1 + BODY_CHARS + CHECK_CHARS,
        );
        text.push_str(kind.prefix());
        text.push_str(tenant.as_str());
        text.push('_');
        URL_SAFE_NO_PAD.encode_string(random, &mut text);
        let check = checksum(&text);
        text.push_str(&check);
        Self {
            kind,
            tenant: tenant.clone(),
            text,
        }
    }

    /// Parses a presented token, refusing another kind, bad form or a bad checksum.
    pub fn parse(kind: TokenKind, input: &str) -> Result<Self, TokenFormatError> {
        let rest = input
            .strip_prefix(kind.prefix())
            .ok_or(TokenFormatError::WrongKind)?;
        // A slug holds no '_', so the first '_' ends it.
        let (tenant, secret) = rest.split_once('_').ok_or(TokenFormatError::Malformed)?;
        // Exactly the stored spelling: a slug's case folding is for people, not for tokens.
        let tenant = TenantSlug::parse(tenant)
            .ok()
            .filter(|slug| slug.as_str() == tenant)
            .ok_or(TokenFormatError::Malformed)?;
        let well_formed = secret.len() == BODY_CHARS + CHECK_CHARS
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(TokenFormatError::Malformed);
        }
        let (signed, check) = input.split_at(input.len() - CHECK_CHARS);
        if !ct_eq(checksum(signed).as_bytes(), check.as_bytes()) {
            return Err(TokenFormatError::Checksum);
        }
        Ok(Self {
            kind,
            tenant,
            text: input.to_owned(),
        })
    }

    /// The leading characters of the random part (60 bits) that an issuer may fill with a tag
    /// of the account the token is for, such as a keyed hash of the user id. MFA challenges
    /// carry one, so that the edge can limit the tries per account from the token alone: a
    /// new sign-in yields a new token with the same tag, and a token whose tag was altered is
    /// no token the origin issued.
    #[must_use]
    pub fn account_tag(&self) -> &str {
        let body_start = self.text.len() - BODY_CHARS - CHECK_CHARS;
        &self.text[body_start..body_start + ACCOUNT_TAG_CHARS]
    }

    /// The kind of this token.
    #[must_use]
    pub const fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The tenant whose store holds this token.
    #[must_use]
    pub const fn tenant(&self) -> &TenantSlug {
        &self.tenant
    }

    /// The secret text, to hand to the client once. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The digest under which the token is stored and looked up.
    #[must_use]
    pub fn digest(&self) -> TokenDigest {
        TokenDigest(sha256(self.text.as_bytes()))
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpaqueToken({}{}_***)", self.kind.prefix(), self.tenant)
    }
}

/// The SHA-256 digest of a token: what the database holds. Equality is constant-time.
#[derive(Clone, Copy, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// Wraps a digest read back from storage.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest, for storage.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, for storage as text.
    #[must_use]
    pub fn to_hex(&self) -> String {
        crate::secret::hex(&self.0)
    }
}

impl PartialEq for TokenDigest {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenDigest({})", self.to_hex())
    }
}

/// A token of the platform's operator (`tsr_op_<body><check>`): global, of no tenant, so it
/// has its own form; the same random body and checksum as [`OpaqueToken`]. `Debug` never
/// prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorToken(String);

impl OperatorToken {
    /// The prefix of every operator token.
    pub const PREFIX: &'static str = "tsr_op_";

    /// Builds a new operator token from caller-supplied random bytes.
    #[must_use]
    pub fn generate(random: [u8; RANDOM_BYTES]) -> Self {
        let mut text = String::with_capacity(Self::PREFIX.len() + BODY_CHARS + CHECK_CHARS);
        text.push_str(Self::PREFIX);
        URL_SAFE_NO_PAD.encode_string(random, &mut text);
        let check = checksum(&text);
        text.push_str(&check);
        Self(text)
    }

    /// Parses a presented token, refusing another kind, bad form or a bad checksum.
    pub fn parse(input: &str) -> Result<Self, TokenFormatError> {
        let secret = input
            .strip_prefix(Self::PREFIX)
            .ok_or(TokenFormatError::WrongKind)?;
        let well_formed = secret.len() == BODY_CHARS + CHECK_CHARS
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(TokenFormatError::Malformed);
        }
        let (signed, check) = input.split_at(input.len() - CHECK_CHARS);
        if !ct_eq(checksum(signed).as_bytes(), check.as_bytes()) {
            return Err(TokenFormatError::Checksum);
        }
        Ok(Self(input.to_owned()))
    }

    /// The secret text, to hand to the operator once. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest under which the token is stored and looked up.
    #[must_use]
    pub fn digest(&self) -> TokenDigest {
        TokenDigest(sha256(self.0.as_bytes()))
    }
}

impl fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OperatorToken(tsr_op_***)")
    }
}

fn checksum(signed: &str) -> String {
    let digest = sha256(signed.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_tokens_round_trip_and_refuse_edits() {
        let token = OperatorToken::generate([5u8; RANDOM_BYTES]);
        assert!(token.expose().starts_with("tsr_op_"));
        assert_eq!(OperatorToken::parse(token.expose()), Ok(token.clone()));
        let mut edited = token.expose().to_owned();
        edited.replace_range(10..11, if &edited[10..11] == "A" { "B" } else { "A" });
        assert_eq!(
            OperatorToken::parse(&edited),
            Err(TokenFormatError::Checksum)
        );
        assert_eq!(
            OperatorToken::parse(&token.expose()[..20]),
            Err(TokenFormatError::Malformed)
        );
        let service = OpaqueToken::generate(
            TokenKind::ServiceApi,
            &TenantSlug::parse("acme").unwrap(),
            [5u8; RANDOM_BYTES],
        );
        assert_eq!(
            OperatorToken::parse(service.expose()),
            Err(TokenFormatError::WrongKind)
        );
        assert_eq!(format!("{token:?}"), "OperatorToken(tsr_op_***)");
    }

    #[test]
    fn the_account_tag_is_the_leading_random_bytes_only() {
        let tenant = TenantSlug::parse("acme").unwrap();
        let mut a = [7u8; RANDOM_BYTES];
        let mut b = [9u8; RANDOM_BYTES];
        a[..ACCOUNT_TAG_BYTES].copy_from_slice(&[1; ACCOUNT_TAG_BYTES]);
        b[..ACCOUNT_TAG_BYTES].copy_from_slice(&[1; ACCOUNT_TAG_BYTES]);
        let one = OpaqueToken::generate(TokenKind::MfaChallenge, &tenant, a);
        let two = OpaqueToken::generate(TokenKind::MfaChallenge, &tenant, b);
        assert_eq!(one.account_tag(), two.account_tag());
        assert_eq!(one.account_tag().len(), 10);
        b[0] = 2;
        let other = OpaqueToken::generate(TokenKind::MfaChallenge, &tenant, b);
        assert_ne!(one.account_tag(), other.account_tag());
        assert_eq!(
            crate::ratelimit::mfa_account_subject(one.expose()),
            Some(format!("mfa:acme:{}", one.account_tag()))
        );
        assert_eq!(
            crate::ratelimit::mfa_account_subject("tsr_mc_acme_short"),
            None
        );
    }

    fn acme() -> TenantSlug {
        TenantSlug::parse("acme-corp").expect("valid slug")
    }

    #[test]
    fn a_token_round_trips_and_digests_stably() {
        let token = OpaqueToken::generate(TokenKind::Refresh, &acme(), [42; 32]);
        assert!(token.expose().starts_with("tsr_rt_acme-corp_"));
        assert_eq!(token.expose().len(), 7 + 10 + 43 + 6);
        let parsed = OpaqueToken::parse(TokenKind::Refresh, token.expose());
        assert_eq!(parsed.as_ref().map(OpaqueToken::digest), Ok(token.digest()));
        assert_eq!(parsed.map(|t| t.tenant().clone()), Ok(acme()));
    }

    #[test]
    fn an_invalid_tenant_part_is_malformed() {
        let token = OpaqueToken::generate(TokenKind::Refresh, &acme(), [42; 32]);
        let edited = token.expose().replace("acme-corp", "ACME");
        assert_eq!(
            OpaqueToken::parse(TokenKind::Refresh, &edited),
            Err(TokenFormatError::Malformed)
        );
    }

    #[test]
    fn one_kind_never_passes_as_another() {
        let token = OpaqueToken::generate(TokenKind::EmailLink, &acme(), [1; 32]);
        assert_eq!(
            OpaqueToken::parse(TokenKind::Refresh, token.expose()),
            Err(TokenFormatError::WrongKind)
        );
    }

    #[test]
    fn typos_and_truncation_are_refused_before_lookup() {
        let token = OpaqueToken::generate(TokenKind::ServiceApi, &acme(), [9; 32]);
        let text = token.expose();
        let mut typo = text.to_owned().into_bytes();
        typo[30] = if typo[30] == b'A' { b'B' } else { b'A' };
        let typo = String::from_utf8(typo).unwrap_or_default();
        assert_eq!(
            OpaqueToken::parse(TokenKind::ServiceApi, &typo),
            Err(TokenFormatError::Checksum)
        );
        assert_eq!(
            OpaqueToken::parse(TokenKind::ServiceApi, &text[..text.len() - 1]),
            Err(TokenFormatError::Malformed)
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let token = OpaqueToken::generate(TokenKind::Session, &acme(), [3; 32]);
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.expose()[17..27]));
    }
}
