//! Time-based one-time passwords (RFC 6238) over totp-rs, with the time passed in.
//!
//! A code is accepted in the current time step and one step either side (clock drift), and
//! [`verify`] returns the step it matched so that the caller can store it and refuse that step
//! and every earlier one next time: a code is single use even inside its window.

use std::fmt;

use totp_rs::TOTP;

/// The HMAC behind the codes. Authenticator apps support SHA-1 universally; the others exist
/// for the RFC's test vectors and for clients that support them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpAlgorithm {
    /// HMAC-SHA-1, what authenticator apps expect.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl TotpAlgorithm {
    const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    const fn to_totp_rs(self) -> totp_rs::Algorithm {
        match self {
            Self::Sha1 => totp_rs::Algorithm::SHA1,
            Self::Sha256 => totp_rs::Algorithm::SHA256,
            Self::Sha512 => totp_rs::Algorithm::SHA512,
        }
    }
}

/// Code length: RFC 4226 allows 6 to 8 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digits {
    /// 6 digits, what authenticator apps show.
    Six,
    /// 7 digits.
    Seven,
    /// 8 digits, used by the RFC's test vectors.
    Eight,
}

impl Digits {
    const fn count(self) -> usize {
        match self {
            Self::Six => 6,
            Self::Seven => 7,
            Self::Eight => 8,
        }
    }
}

/// The parameters of a TOTP enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    /// The HMAC.
    pub algorithm: TotpAlgorithm,
    /// The code length.
    pub digits: Digits,
    /// The time step in seconds (30 in practice).
    pub step_secs: u64,
}

impl TotpParams {
    /// SHA-1, 6 digits, 30-second steps: what every authenticator app understands.
    pub const AUTHENTICATOR: Self = Self {
        algorithm: TotpAlgorithm::Sha1,
        digits: Digits::Six,
        step_secs: 30,
    };
}

/// The minimum secret size in bytes: RFC 4226 requires 128 bits and recommends 160.
pub const SECRET_MIN_BYTES: usize = 16;

/// A shared TOTP secret. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// A new 160-bit secret from caller-supplied random bytes.
    #[must_use]
    pub fn from_random(random: [u8; 20]) -> Self {
        Self(random.to_vec())
    }

    /// Wraps stored secret bytes; refuses fewer than [`SECRET_MIN_BYTES`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        if bytes.len() < SECRET_MIN_BYTES {
            return Err(TotpError::SecretTooShort);
        }
        Ok(Self(bytes.to_vec()))
    }

    /// Reads the RFC 4648 base32 form an `otpauth://` URI carries (case, spaces and `=`
    /// padding ignored, as authenticator apps do); `None` if it is not base32 or shorter
    /// than [`SECRET_MIN_BYTES`].
    #[must_use]
    pub fn from_base32(text: &str) -> Option<Self> {
        let bare: String = text
            .chars()
            .filter(|c| *c != ' ' && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = data_encoding::BASE32_NOPAD.decode(bare.as_bytes()).ok()?;
        Self::from_bytes(&bytes).ok()
    }

    /// The raw bytes, for encrypted storage.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Unpadded RFC 4648 base32, the form users type into an app.
    #[must_use]
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

/// Why a code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The code matches no step in the window.
    #[error("invalid code")]
    Invalid,
    /// The code matches a step that was already used (or an earlier one).
    #[error("code already used")]
    Replayed,
    /// The stored secret is shorter than 128 bits.
    #[error("secret shorter than 128 bits")]
    SecretTooShort,
}

fn engine(secret: &TotpSecret, params: TotpParams) -> TOTP {
    // Unchecked: the secret length is enforced by `TotpSecret` and the digits by `Digits`.
    TOTP::new_unchecked(
        params.algorithm.to_totp_rs(),
        params.digits.count(),
        0,
        params.step_secs.max(1),
        secret.0.clone(),
    )
}

/// The code for Unix time `unix_secs`.
#[must_use]
pub fn generate(secret: &TotpSecret, params: TotpParams, unix_secs: u64) -> String {
    engine(secret, params).generate(unix_secs)
}

/// Checks `code` at `unix_secs` within ±1 step. `last_used_step` is the step of the last code
/// this secret accepted; that step and earlier ones are refused as replays. On success returns
/// the matched step, which the caller stores as the new `last_used_step`.
pub fn verify(
    secret: &TotpSecret,
    params: TotpParams,
    code: &str,
    unix_secs: u64,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    let step_secs = params.step_secs.max(1);
    let current = unix_secs / step_secs;
    let engine = engine(secret, params);
    // Every candidate is computed and compared, so timing does not tell which step matched.
    let mut matched = None;
    for step in [
        current.saturating_sub(1),
        current,
        current.saturating_add(1),
    ] {
        let expected = engine.generate(step.saturating_mul(step_secs));
        if crate::secret::ct_eq(expected.as_bytes(), code.as_bytes()) && matched.is_none() {
            matched = Some(step);
        }
    }
    let step = matched.ok_or(TotpError::Invalid)?;
    match last_used_step {
        Some(last) if step <= last => Err(TotpError::Replayed),
        _ => Ok(step),
    }
}

/// The `otpauth://totp/` URI that authenticator apps read from a QR code
/// (Key Uri Format: `otpauth://totp/Issuer:account?secret=..&issuer=..&algorithm=..`).
#[must_use]
pub fn otpauth_uri(secret: &TotpSecret, params: TotpParams, issuer: &str, account: &str) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
        percent_encode(issuer),
        percent_encode(account),
        secret.to_base32(),
        percent_encode(issuer),
        params.algorithm.name(),
        params.digits.count(),
        params.step_secs,
    )
}

/// Everything but RFC 3986's unreserved characters is percent-encoded in a key URI's label
/// and issuer.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn percent_encode(input: &str) -> String {
    percent_encoding::utf8_percent_encode(input, NOT_UNRESERVED).to_string()
}

fn base32_encode(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_secrets_read_back_as_apps_type_them() {
        let secret = TotpSecret::from_random([7; 20]);
        let text = secret.to_base32();
        assert_eq!(TotpSecret::from_base32(&text), Some(secret.clone()));
        let typed = text.to_ascii_lowercase().replace("", " ");
        assert_eq!(
            TotpSecret::from_base32(&format!("{typed}====")),
            Some(secret)
        );
        // 80 bits (16 base32 characters) is under RFC 4226's 128.
        assert_eq!(TotpSecret::from_base32("JBSWY3DPEHPK3PXP"), None);
        assert_eq!(TotpSecret::from_base32("not base32!"), None);
    }

    fn secret() -> TotpSecret {
        TotpSecret::from_random(*b"12345678901234567890")
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_not_beyond() {
        let params = TotpParams::AUTHENTICATOR;
        let code = generate(&secret(), params, 1_000_020);
        let step = 1_000_020 / 30;
        assert_eq!(verify(&secret(), params, &code, 1_000_020, None), Ok(step));
        assert_eq!(verify(&secret(), params, &code, 1_000_050, None), Ok(step));
        assert_eq!(
            verify(&secret(), params, &code, 1_000_020 - 30, None),
            Ok(step)
        );
        assert_eq!(
            verify(&secret(), params, &code, 1_000_020 + 61, None),
            Err(TotpError::Invalid)
        );
    }

    #[test]
    fn a_used_step_is_refused_as_a_replay() {
        let params = TotpParams::AUTHENTICATOR;
        let code = generate(&secret(), params, 3_000);
        let step = verify(&secret(), params, &code, 3_000, None);
        assert_eq!(step, Ok(100));
        assert_eq!(
            verify(&secret(), params, &code, 3_010, Some(100)),
            Err(TotpError::Replayed)
        );
        let next = generate(&secret(), params, 3_030);
        assert_eq!(verify(&secret(), params, &next, 3_030, Some(100)), Ok(101));
    }

    #[test]
    fn uri_matches_the_key_uri_format() {
        let uri = otpauth_uri(
            &secret(),
            TotpParams::AUTHENTICATOR,
            "Tessera Acme",
            "ann@x.io",
        );
        assert_eq!(
            uri,
            "otpauth://totp/Tessera%20Acme:ann%40x.io?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Tessera%20Acme&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            TotpSecret::from_bytes(&[0; 15]),
            Err(TotpError::SecretTooShort)
        );
    }
}
