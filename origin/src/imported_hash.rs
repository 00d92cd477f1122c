//! Password hashes made by other systems: recognised and bounded at import (`tessera user
//! import`), verified at sign-in by their own crates until the first successful sign-in
//! replaces them with argon2id. Tessera reads the formats and bounds their cost; it computes
//! none of them itself. docs/API.md ("Importing users") states every format.

use base64::Engine as _;
use serde::Deserialize;
use tessera_core::secret::ct_eq;

/// The most memory one verification may take (argon2's `m`, scrypt's `128·r·N`): an imported
/// hash is verified on the hashing threads like Tessera's own, and each thread keeps what it
/// last needed. argon2-cffi's default is 64 MiB, scrypt's usual `ln=17,r=8` 128 MiB.
pub const MAX_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
/// The most passes argon2 may make.
pub const MAX_ARGON2_PASSES: u32 = 16;
/// The highest bcrypt cost (2^16 rounds, a few seconds).
pub const MAX_BCRYPT_COST: u32 = 16;
/// The most PBKDF2 iterations (Django 5.2 uses 1,000,000).
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The most parallel lanes (argon2's `p`, scrypt's `p`), which run one after another here.
pub const MAX_PARALLELISM: u32 = 16;

/// The parameters of a Firebase project's modified scrypt, as the Firebase console shows them
/// ("Password hash parameters"). They come once per import.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirebaseParams {
    /// The project's signer key, standard base64.
    pub base64_signer_key: String,
    /// The separator appended to every salt, standard base64.
    pub base64_salt_separator: String,
    /// scrypt's `r`.
    pub rounds: u32,
    /// scrypt's log2 of `N`.
    pub mem_cost: u32,
}

impl std::fmt::Debug for FirebaseParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirebaseParams")
            .field("rounds", &self.rounds)
            .field("mem_cost", &self.mem_cost)
            .finish_non_exhaustive()
    }
}

/// Why a hash is refused at import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not one of the accepted formats.
    #[error("the password hash is in none of the accepted formats (argon2id, argon2i, bcrypt, scrypt, Firebase scrypt, PBKDF2-SHA256)")]
    Unknown,
    /// An accepted format, but not readable.
    #[error("the {0} password hash is malformed")]
    Malformed(&'static str),
    /// Parameters past the bounds above.
    #[error("the {0} password hash costs more than Tessera verifies: {1}")]
    TooCostly(&'static str, String),
    /// A Firebase hash (`password_salt` given) without `--firebase-params`.
    #[error("a Firebase password hash needs the project's hash parameters (--firebase-params)")]
    NoFirebaseParams,
}

impl Refused {
    /// The stable code of the refusal.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Refused::Unknown => "unknown_hash_format",
            Refused::Malformed(_) => "malformed_hash",
            Refused::TooCostly(..) => "hash_too_costly",
            Refused::NoFirebaseParams => "firebase_params_required",
        }
    }
}

/// The prefix of Tessera's stored form of a Firebase hash.
const FIREBASE_PREFIX: &str = "$firebase-scrypt$";

/// Checks an imported hash and returns the string to store. `salt` is Firebase's
/// `password_salt`: with it, `hash` is Firebase's base64 `password_hash` and `firebase` the
/// project's parameters.
pub fn accept(
    hash: &str,
    salt: Option<&str>,
    firebase: Option<&FirebaseParams>,
) -> Result<String, Refused> {
    if let Some(salt) = salt {
        let params = firebase.ok_or(Refused::NoFirebaseParams)?;
        let stored = format!(
            "{FIREBASE_PREFIX}r={},ln={}${}${}${salt}${hash}",
            params.rounds, params.mem_cost, params.base64_salt_separator, params.base64_signer_key
        );
        check_firebase(&stored)?;
        return Ok(stored);
    }
    match Format::of(hash).ok_or(Refused::Unknown)? {
        Format::Argon2 => check_argon2(hash)?,
        Format::Bcrypt => check_bcrypt(hash)?,
        Format::Scrypt => check_scrypt(hash)?,
        Format::Firebase => {
            check_firebase(hash)?;
        }
        Format::DjangoPbkdf2 => {
            check_django_pbkdf2(hash)?;
        }
        Format::Pbkdf2 => check_pbkdf2(hash)?,
    }
    Ok(hash.to_owned())
}

/// Verifies `password` against a stored hash in one of the imported formats other than
/// argon2 (which the hashing threads verify in their own memory); `None` if `stored` is none
/// of them.
pub(crate) fn verify(password: &str, stored: &str) -> Option<bool> {
    match Format::of(stored)? {
        Format::Argon2 => None,
        Format::Bcrypt => bcrypt::verify(password, stored).ok(),
        Format::Scrypt => {
            use scrypt::password_hash::{PasswordHash, PasswordVerifier as _};
            let parsed = PasswordHash::new(stored).ok()?;
            Some(
                scrypt::Scrypt
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
            )
        }
        Format::Firebase => {
            let f = check_firebase(stored).ok()?;
            firebase_scrypt::verify_password(
                password,
                f.hash,
                f.salt,
                f.separator,
                f.signer_key,
                f.rounds,
                f.mem_cost,
            )
            .ok()
        }
        Format::DjangoPbkdf2 => {
            let d = check_django_pbkdf2(stored).ok()?;
            let mut out = vec![0u8; d.hash.len()];
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                password.as_bytes(),
                d.salt.as_bytes(),
                d.iterations,
                &mut out,
            );
            Some(ct_eq(&out, &d.hash))
        }
        Format::Pbkdf2 => {
            use pbkdf2::password_hash::{PasswordHash, PasswordVerifier as _};
            let parsed = PasswordHash::new(stored).ok()?;
            Some(
                pbkdf2::Pbkdf2
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
            )
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Argon2,
    Bcrypt,
    Scrypt,
    Firebase,
    DjangoPbkdf2,
    Pbkdf2,
}

impl Format {
    fn of(hash: &str) -> Option<Self> {
        const PREFIXES: [(&str, Format); 9] = [
            ("$argon2id$", Format::Argon2),
            ("$argon2i$", Format::Argon2),
            ("$2a$", Format::Bcrypt),
            ("$2b$", Format::Bcrypt),
            ("$2y$", Format::Bcrypt),
            ("$scrypt$", Format::Scrypt),
            (FIREBASE_PREFIX, Format::Firebase),
            ("pbkdf2_sha256$", Format::DjangoPbkdf2),
            ("$pbkdf2-sha256$", Format::Pbkdf2),
        ];
        PREFIXES
            .iter()
            .find(|(prefix, _)| hash.starts_with(prefix))
            .map(|(_, format)| *format)
    }
}

fn too_costly(format: &'static str, what: String) -> Refused {
    Refused::TooCostly(format, what)
}

fn check_argon2(hash: &str) -> Result<(), Refused> {
    use argon2::password_hash::PasswordHash;
    let malformed = Refused::Malformed("argon2");
    let parsed = PasswordHash::new(hash).map_err(|_| malformed.clone())?;
    let params = argon2::Params::try_from(&parsed).map_err(|_| malformed.clone())?;
    // Without `v=` the version is ambiguous (the reference implementation reads 0x10, the
    // argon2 crate 0x13): the exporter must say.
    if parsed.salt.is_none() || parsed.hash.is_none() || parsed.version.is_none() {
        return Err(malformed);
    }
    if u64::from(params.m_cost()) * 1024 > MAX_MEMORY_BYTES {
        return Err(too_costly("argon2", format!("m={} KiB", params.m_cost())));
    }
    if params.t_cost() > MAX_ARGON2_PASSES || params.p_cost() > MAX_PARALLELISM {
        return Err(too_costly(
            "argon2",
            format!("t={}, p={}", params.t_cost(), params.p_cost()),
        ));
    }
    Ok(())
}

fn check_bcrypt(hash: &str) -> Result<(), Refused> {
    let parts: bcrypt::HashParts = hash.parse().map_err(|_| Refused::Malformed("bcrypt"))?;
    // The parser takes any length after the salt; a bcrypt hash is exactly 60 characters.
    if hash.len() != 60 {
        return Err(Refused::Malformed("bcrypt"));
    }
    if parts.get_cost() > MAX_BCRYPT_COST {
        return Err(too_costly("bcrypt", format!("cost {}", parts.get_cost())));
    }
    Ok(())
}

fn check_scrypt(hash: &str) -> Result<(), Refused> {
    use scrypt::password_hash::PasswordHash;
    let malformed = Refused::Malformed("scrypt");
    let parsed = PasswordHash::new(hash).map_err(|_| malformed.clone())?;
    let params = scrypt::Params::try_from(&parsed).map_err(|_| malformed.clone())?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(malformed);
    }
    scrypt_bounds("scrypt", params.log_n(), params.r(), params.p())
}

fn scrypt_bounds(format: &'static str, log_n: u8, r: u32, p: u32) -> Result<(), Refused> {
    let memory = 128u64
        .saturating_mul(u64::from(r))
        .saturating_mul(1u64 << log_n.min(63));
    if memory > MAX_MEMORY_BYTES || p > MAX_PARALLELISM {
        return Err(too_costly(format, format!("ln={log_n}, r={r}, p={p}")));
    }
    Ok(())
}

/// A stored Firebase hash: `$firebase-scrypt$r=<rounds>,ln=<mem_cost>$<salt separator>$<signer
/// key>$<salt>$<hash>`, the last four in Firebase's standard base64 exactly as exported.
struct Firebase<'a> {
    rounds: u32,
    mem_cost: u32,
    separator: &'a str,
    signer_key: &'a str,
    salt: &'a str,
    hash: &'a str,
}

fn check_firebase(stored: &str) -> Result<Firebase<'_>, Refused> {
    let malformed = Refused::Malformed("Firebase scrypt");
    let rest = stored
        .strip_prefix(FIREBASE_PREFIX)
        .ok_or(malformed.clone())?;
    let fields: Vec<&str> = rest.split('$').collect();
    let [params, separator, signer_key, salt, hash] = fields[..] else {
        return Err(malformed);
    };
    let (rounds, mem_cost) = params
        .strip_prefix("r=")
        .and_then(|p| p.split_once(",ln="))
        .and_then(|(r, ln)| Some((r.parse::<u32>().ok()?, ln.parse::<u32>().ok()?)))
        .ok_or(malformed.clone())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let decodes = |field: &str| !field.is_empty() && b64.decode(field).is_ok();
    if ![separator, signer_key, salt, hash].into_iter().all(decodes) || rounds == 0 {
        return Err(malformed);
    }
    let log_n = u8::try_from(mem_cost).map_err(|_| malformed.clone())?;
    if !(1..64).contains(&log_n) {
        return Err(malformed);
    }
    scrypt_bounds("Firebase scrypt", log_n, rounds, 1)?;
    Ok(Firebase {
        rounds,
        mem_cost,
        separator,
        signer_key,
        salt,
        hash,
    })
}

/// Django's `pbkdf2_sha256$<iterations>$<salt>$<base64 of the 32-byte key>`; the salt is used
/// as its UTF-8 bytes.
struct DjangoPbkdf2<'a> {
    iterations: u32,
    salt: &'a str,
    hash: Vec<u8>,
}

fn check_django_pbkdf2(stored: &str) -> Result<DjangoPbkdf2<'_>, Refused> {
    let malformed = Refused::Malformed("PBKDF2-SHA256");
    let fields: Vec<&str> = stored.split('$').collect();
    let ["pbkdf2_sha256", iterations, salt, hash] = fields[..] else {
        return Err(malformed);
    };
    let iterations: u32 = iterations.parse().map_err(|_| malformed.clone())?;
    let hash = base64::engine::general_purpose::STANDARD
        .decode(hash)
        .map_err(|_| malformed.clone())?;
    if iterations == 0 || salt.is_empty() || !(16..=64).contains(&hash.len()) {
        return Err(malformed);
    }
    if iterations > MAX_PBKDF2_ITERATIONS {
        return Err(too_costly(
            "PBKDF2-SHA256",
            format!("{iterations} iterations"),
        ));
    }
    Ok(DjangoPbkdf2 {
        iterations,
        salt,
        hash,
    })
}

fn check_pbkdf2(hash: &str) -> Result<(), Refused> {
    use pbkdf2::password_hash::PasswordHash;
    let malformed = Refused::Malformed("PBKDF2-SHA256");
    let parsed = PasswordHash::new(hash).map_err(|_| malformed.clone())?;
    let params = pbkdf2::Params::try_from(&parsed).map_err(|_| malformed.clone())?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(malformed);
    }
    if params.rounds > MAX_PBKDF2_ITERATIONS {
        return Err(too_costly(
            "PBKDF2-SHA256",
            format!("{} iterations", params.rounds),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Firebase's published test vector (github.com/firebase/scrypt, README).
    fn firebase() -> FirebaseParams {
        FirebaseParams {
            base64_signer_key: "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==".into(),
            base64_salt_separator: "Bw==".into(),
            rounds: 8,
            mem_cost: 14,
        }
    }

    #[test]
    fn firebase_hashes_verify_with_the_projects_parameters() {
        let stored = accept(
            "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==",
            Some("42xEC+ixf3L2lw=="),
            Some(&firebase()),
        )
        .expect("accepted");
        assert!(stored.starts_with("$firebase-scrypt$r=8,ln=14$Bw==$"));
        assert_eq!(verify("user1password", &stored), Some(true));
        assert_eq!(verify("user2password", &stored), Some(false));
        // The stored form imports again unchanged (an export of one Tessera into another).
        assert_eq!(accept(&stored, None, None), Ok(stored.clone()));
        assert_eq!(
            accept("x", Some("42xEC+ixf3L2lw=="), None),
            Err(Refused::NoFirebaseParams)
        );
    }

    #[test]
    fn unknown_malformed_and_costly_hashes_are_refused() {
        assert_eq!(accept("md5$abc", None, None), Err(Refused::Unknown));
        assert_eq!(accept("", None, None), Err(Refused::Unknown));
        assert_eq!(
            accept("$2b$10$tooshort", None, None),
            Err(Refused::Malformed("bcrypt"))
        );
        assert_eq!(
            accept("$scrypt$ln=x$salt$hash", None, None).map_err(|e| e.code()),
            Err("malformed_hash")
        );
        assert_eq!(
            accept(
                "pbkdf2_sha256$0$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                None,
                None
            )
            .map_err(|e| e.code()),
            Err("malformed_hash")
        );
        assert_eq!(
            accept(
                "pbkdf2_sha256$99999999$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                None,
                None
            )
            .map_err(|e| e.code()),
            Err("hash_too_costly")
        );
        assert_eq!(
            accept(
                "$argon2id$v=19$m=1048576,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
                None,
                None
            )
            .map_err(|e| e.code()),
            Err("hash_too_costly")
        );
        assert_eq!(
            accept(
                "$scrypt$ln=22,r=8,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
                None,
                None
            )
            .map_err(|e| e.code()),
            Err("hash_too_costly")
        );
        // Parameters that would overflow are refused, not wrapped.
        let huge = FirebaseParams {
            rounds: u32::MAX,
            mem_cost: 63,
            ..firebase()
        };
        assert_eq!(
            accept("aGFzaA==", Some("c2FsdA=="), Some(&huge)).map_err(|e| e.code()),
            Err("hash_too_costly")
        );
    }

    #[test]
    fn django_pbkdf2_verifies() {
        // Made with Python: hashlib.pbkdf2_hmac("sha256", b"letmein", b"seasalt", 1000). The
        // integration tests import hashes made by Django's own hasher.
        let stored = "pbkdf2_sha256$1000$seasalt$R1/GfWtwog1T8Ev9VndgDjzkiRzbFr8JpmJtL9cMmQU=";
        assert_eq!(accept(stored, None, None), Ok(stored.to_owned()));
        assert_eq!(verify("letmein", stored), Some(true));
        assert_eq!(verify("letmeout", stored), Some(false));
    }
}
