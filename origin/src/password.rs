//! Passwords: argon2id hashing on a fixed set of threads sized to the cores, each reusing its
//! own memory, with a bounded queue (past it the caller answers 503 instead of growing memory
//! without bound);
//! the NIST SP 800-63B policy; a dummy verification for unknown accounts; rehash on sign-in
//! when the parameters change.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret as _, SecretString};
use tessera_core::secret::ct_eq;

use crate::breached_passwords::BreachedPasswords;
use crate::config::{Argon2Params, Config};

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
    /// Known from data breaches: attackers try these first.
    #[error("the password appears in {0} known data breach record(s); choose another")]
    Breached(u64),
}

/// The policy for new passwords: [`check_policy`] with the configured minimum, then, where
/// configured, the breached-password list. One value, shared by every flow that sets a
/// password.
#[derive(Clone)]
pub struct PasswordPolicy {
    min_chars: usize,
    breached: Option<BreachedPasswords>,
}

impl PasswordPolicy {
    /// At least `min_chars` characters; `breached`, when given, is asked about each password
    /// that passes the local checks.
    #[must_use]
    pub fn new(min_chars: usize, breached: Option<BreachedPasswords>) -> Self {
        Self {
            min_chars,
            breached,
        }
    }

    /// The policy `config` sets: `TESSERA_PASSWORD_MIN_LENGTH` and
    /// `TESSERA_BREACHED_PASSWORDS_URL`.
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        Self::new(
            config.password_min_length,
            config
                .breached_passwords_url
                .as_deref()
                .map(BreachedPasswords::new),
        )
    }

    /// Checks a new password; `user_inputs` are the account's own details. A breach list that
    /// does not answer does not stop the change (it is logged and counted): the local checks
    /// have passed, and an outage elsewhere should not stop every password change here.
    pub async fn check(&self, password: &str, user_inputs: &[&str]) -> Result<(), PolicyError> {
        check_policy(password, self.min_chars, user_inputs)?;
        if let Some(breached) = &self.breached {
            if let Some(count @ 1..) = breached.count(password).await {
                return Err(PolicyError::Breached(count));
            }
        }
        Ok(())
    }
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

/// A hashing thread's memory: argon2's blocks, allocated once and reused, so that resident
/// memory is `threads × m_cost` however many sign-ins arrive (a fresh 19 MiB allocation per
/// hash on the shared blocking pool left every allocator arena holding its own copy).
struct Workspace {
    blocks: Vec<Block>,
}

type Job = Box<dyn FnOnce(&mut Workspace) + Send>;

/// Hashes and verifies passwords on a fixed set of threads, with a bounded queue.
#[derive(Clone)]
pub struct Hasher {
    argon2: Arc<Argon2<'static>>,
    jobs: std::sync::mpsc::Sender<Job>,
    queued: Arc<AtomicUsize>,
    queue_limit: usize,
    dummy_hash: Arc<str>,
}

impl Hasher {
    /// A hasher with `threads` hashing threads and up to `queue_limit` sign-ins waiting or
    /// running.
    pub fn new(
        params: Argon2Params,
        threads: usize,
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
        let (jobs, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("tessera-hash-{i}"))
                .spawn(move || {
                    // Allocated on first use, so an idle server holds none of it.
                    let mut workspace = Workspace { blocks: Vec::new() };
                    // Ends when every Hasher (sender) is gone.
                    loop {
                        let job = receiver
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        match job {
                            Ok(job) => job(&mut workspace),
                            Err(_) => break,
                        }
                    }
                })
                .map_err(|_| argon2::Error::MemoryTooLittle)?;
        }
        Ok(Self {
            argon2: Arc::new(argon2),
            jobs,
            queued: Arc::new(AtomicUsize::new(0)),
            queue_limit,
            dummy_hash: dummy.into(),
        })
    }

    /// Sign-ins waiting for or holding a hashing thread (a metric).
    #[must_use]
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: SecretString) -> Result<String, Busy> {
        let argon2 = self.argon2.clone();
        self.run(move |_| {
            let salt = SaltString::encode_b64(&crate::clock::random::<16>()).ok()?;
            argon2
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .ok()
                .map(|h| h.to_string())
        })
        .await?
        .ok_or(Busy)
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no account
    /// (so unknown accounts cost the same time). Returns whether it matched and whether the
    /// stored hash should be replaced because the parameters changed.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, Busy> {
        let dummy = self.dummy_hash.clone();
        let current = self.argon2.params().clone();
        self.run(move |workspace| {
            let real = stored.is_some();
            let text = stored.unwrap_or_else(|| dummy.to_string());
            let password = password.expose_secret();
            // An imported hash (bcrypt, scrypt, …) is verified at its own cost, here on the
            // hashing threads like argon2id, and replaced by argon2id once it matches.
            let checked = match verify_phc(password.as_bytes(), &text, workspace) {
                Some((matched, algorithm, params)) => Some((
                    matched,
                    algorithm != Algorithm::Argon2id
                        || params.m_cost() != current.m_cost()
                        || params.t_cost() != current.t_cost()
                        || params.p_cost() != current.p_cost(),
                )),
                None => crate::imported_hash::verify(password, &text).map(|m| (m, true)),
            };
            let Some((matched, outdated)) = checked else {
                return Verified::default();
            };
            Verified {
                matched: real && matched,
                needs_rehash: real && matched && outdated,
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Workspace) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let depth = self.queued.fetch_add(1, Ordering::SeqCst);
        let slot = QueueSlot(self.queued.clone());
        metrics::gauge!("tessera_hash_queue_depth").set(depth as f64 + 1.0);
        if depth >= self.queue_limit {
            return Err(Busy);
        }
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |workspace| {
            let result = work(workspace);
            // The slot is released when the work is done, not when the caller gives up, so a
            // cancelled request still counts against the queue while its hash runs.
            drop(slot);
            let _ = done.send(result);
        });
        self.jobs.send(job).map_err(|_| Busy)?;
        result.await.map_err(|_| Busy)
    }
}

/// Verifies an argon2id (or imported argon2i) PHC string in the thread's reused memory.
/// Returns whether it matched, the variant and the parameters; `None` if the string is not a
/// usable argon2 hash.
fn verify_phc(
    password: &[u8],
    phc: &str,
    workspace: &mut Workspace,
) -> Option<(bool, Algorithm, Params)> {
    let parsed = PasswordHash::new(phc).ok()?;
    let algorithm: Algorithm = parsed.algorithm.as_str().parse().ok()?;
    if algorithm == Algorithm::Argon2d {
        return None;
    }
    let params = Params::try_from(&parsed).ok()?;
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .ok()?;
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let needed = params.block_count();
    if workspace.blocks.len() < needed {
        workspace.blocks.resize(needed, Block::default());
    }
    let mut out = [0u8; 64];
    let out = out.get_mut(..expected.len())?;
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt, &mut *out, &mut workspace.blocks[..needed])
        .ok()?;
    Some((ct_eq(out, expected.as_bytes()), algorithm, params))
}

/// Releases a queue slot however the work ends.
struct QueueSlot(Arc<AtomicUsize>);

impl Drop for QueueSlot {
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
