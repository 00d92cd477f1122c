//! Passwords: argon2id hashing on the blocking pool behind a semaphore sized to the cores, with
//! a bounded queue (past it the caller answers 503 instead of growing memory without bound);
//! the NIST SP 800-63B policy; a dummy verification for unknown accounts; rehash on sign-in
//! when the parameters change.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::Argon2Params;

/// The longest password accepted, in bytes: far above any passphrase (NIST asks for at least
/// 64 characters), low enough that a request cannot make hashing itself the attack.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Shorter than the configured minimum (in characters).
    #[error("the password must have at least {0} characters")]
    TooShort(usize),
    /// Longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password must have at most 1024 bytes")]
    TooLong,
    /// Common, or guessable from the account's own details.
    #[error("the password is too easy to guess{0}")]
    Weak(String),
}

/// Checks a new password against the policy: length limits, never truncation, no composition
/// rules, and no common or guessable passwords (zxcvbn with the account's own details as
/// dictionary words: a score under 3 of 4 is refused).
pub fn check_policy(
    password: &str,
    min_chars: usize,
    user_inputs: &[&str],
) -> Result<(), PolicyError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PolicyError::TooLong);
    }
    if password.chars().count() < min_chars {
        return Err(PolicyError::TooShort(min_chars));
    }
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    if u8::from(estimate.score()) < 3 {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        return Err(PolicyError::Weak(hint));
    }
    Ok(())
}

/// The queue is full: answer 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing queue is full")]
pub struct Busy;

/// Hashes and verifies passwords within a fixed budget of cores and queue slots.
#[derive(Clone)]
pub struct Hasher {
    argon2: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    queue_limit: usize,
    dummy_hash: Arc<str>,
}

impl Hasher {
    /// A hasher with `concurrency` parallel hashes and up to `queue_limit` waiting or running.
    pub fn new(
        params: Argon2Params,
        concurrency: usize,
        queue_limit: usize,
    ) -> Result<Self, argon2::Error> {
        let params = Params::new(params.m_kib, params.t, params.p, None)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::encode_b64(&crate::clock::random::<16>())
            .map_err(|_| argon2::Error::SaltTooShort)?;
        let dummy = argon2
            .hash_password(&crate::clock::random::<32>(), &salt)
            .map_err(|_| argon2::Error::SaltTooShort)?
            .to_string();
        Ok(Self {
            argon2: Arc::new(argon2),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queued: Arc::new(AtomicUsize::new(0)),
            queue_limit,
            dummy_hash: dummy.into(),
        })
    }

    /// Sign-ins waiting for or holding a hash slot (a metric).
    #[must_use]
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, Busy> {
        self.run(move |argon2| {
            let salt = SaltString::encode_b64(&crate::clock::random::<16>()).ok()?;
            argon2
                .hash_password(password.as_bytes(), &salt)
                .ok()
                .map(|h| h.to_string())
        })
        .await?
        .ok_or(Busy)
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no account
    /// (so unknown accounts cost the same time). Returns whether it matched and whether the
    /// stored hash should be replaced because the parameters changed.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<Verified, Busy> {
        let dummy = self.dummy_hash.clone();
        self.run(move |argon2| {
            let real = stored.is_some();
            let text = stored.unwrap_or_else(|| dummy.to_string());
            let Ok(parsed) = PasswordHash::new(&text) else {
                return Verified::default();
            };
            let matched = argon2.verify_password(password.as_bytes(), &parsed).is_ok();
            let current = argon2.params();
            let outdated = parsed.algorithm.as_str() != "argon2id"
                || Params::try_from(&parsed).map_or(true, |p| {
                    p.m_cost() != current.m_cost()
                        || p.t_cost() != current.t_cost()
                        || p.p_cost() != current.p_cost()
                });
            Verified {
                matched: real && matched,
                needs_rehash: real && matched && outdated,
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let depth = self.queued.fetch_add(1, Ordering::SeqCst);
        let _slot = QueueSlot(&self.queued);
        metrics::gauge!("tessera_hash_queue_depth").set(depth as f64 + 1.0);
        if depth >= self.queue_limit {
            return Err(Busy);
        }
        let _permit = self.permits.acquire().await.map_err(|_| Busy)?;
        let argon2 = self.argon2.clone();
        tokio::task::spawn_blocking(move || work(&argon2))
            .await
            .map_err(|_| Busy)
    }
}

/// Releases a queue slot however the call ends (including cancellation).
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        let depth = self.0.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!("tessera_hash_queue_depth").set(depth.saturating_sub(1) as f64);
    }
}

/// The result of a verification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verified {
    /// The password matched a real account's hash.
    pub matched: bool,
    /// It matched, and the hash's parameters are not the current ones.
    pub needs_rehash: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Argon2Params = Argon2Params {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    #[test]
    fn the_policy_follows_nist() {
        assert_eq!(
            check_policy("short", 12, &[]),
            Err(PolicyError::TooShort(12))
        );
        assert_eq!(
            check_policy(&"x".repeat(1025), 12, &[]),
            Err(PolicyError::TooLong)
        );
        assert!(matches!(
            check_policy("passwordpassword", 12, &[]),
            Err(PolicyError::Weak(_))
        ));
        assert!(matches!(
            check_policy("ann.lee@example.com1", 12, &["ann.lee@example.com"]),
            Err(PolicyError::Weak(_))
        ));
        // No composition rules: a long lowercase passphrase is fine, and 128 characters too.
        assert_eq!(
            check_policy("correct horse battery staple", 12, &[]),
            Ok(())
        );
        assert_eq!(check_policy(&"vq8 lmz tr2 ".repeat(11), 12, &[]), Ok(()));
    }

    #[tokio::test]
    async fn hashes_verify_and_old_parameters_ask_for_a_rehash() {
        let old = Hasher::new(FAST, 1, 8).expect("params");
        let hash = old
            .hash("a long enough passphrase".into())
            .await
            .expect("slot");
        assert!(hash.starts_with("$argon2id$"));
        let same = old
            .verify("a long enough passphrase".into(), Some(hash.clone()))
            .await;
        assert_eq!(
            same,
            Ok(Verified {
                matched: true,
                needs_rehash: false
            })
        );
        let wrong = old
            .verify("another passphrase".into(), Some(hash.clone()))
            .await;
        assert_eq!(wrong, Ok(Verified::default()));
        let stronger = Hasher::new(Argon2Params { m_kib: 128, ..FAST }, 1, 8).expect("params");
        let again = stronger
            .verify("a long enough passphrase".into(), Some(hash))
            .await;
        assert_eq!(
            again,
            Ok(Verified {
                matched: true,
                needs_rehash: true
            })
        );
    }

    #[tokio::test]
    async fn an_unknown_account_never_matches() {
        let hasher = Hasher::new(FAST, 1, 8).expect("params");
        assert_eq!(
            hasher.verify("anything".into(), None).await,
            Ok(Verified::default())
        );
    }

    #[tokio::test]
    async fn past_the_queue_limit_callers_are_told_busy() {
        let hasher = Hasher::new(
            Argon2Params {
                m_kib: 8 * 1024,
                t: 3,
                p: 1,
            },
            1,
            2,
        );
        let hasher = hasher.expect("params");
        let calls = (0..8).map(|_| hasher.hash("a long enough passphrase".into()));
        let results = futures::future::join_all(calls).await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
        assert_eq!(results.iter().filter(|r| **r == Err(Busy)).count(), 6);
        assert_eq!(hasher.queue_depth(), 0);
    }
}
