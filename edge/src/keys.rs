//! The origin's public keys, fetched from its JWKS and kept in the isolate. A token naming an
//! unknown `kid` triggers one refetch (at most every `JWKS_REFETCH_MIN_MS`), so a key rotated in
//! at the origin is accepted without a redeploy; if the origin cannot be reached, the keys
//! already held keep working.

use std::cell::RefCell;
use std::rc::Rc;

use quick_cache::unsync::Cache as Lru;
use tessera_core::jwt::{Jwks, KeySet, Verified, Verifier, VerifyError};
use tessera_core::secret::sha256;
use worker::{Date, Fetch, Request};

use crate::config::Config;

/// How long keys are used before a routine refetch (retired keys drop out then).
pub const MAX_AGE_MS: u64 = 5 * 60 * 1000;

#[derive(Default)]
struct Cache {
    verifier: Option<Rc<Verifier>>,
    fetched_ms: u64,
    attempted_ms: u64,
}

/// Verified tokens remembered per isolate (least recently used evicted past this).
const VERIFIED_ENTRIES: usize = 10_000;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
    /// Tokens this isolate verified, by SHA-256 of the whole token, used only while core's
    /// `recheck` holds (key still published, `exp` not passed). Revocation is checked apart
    /// from this, on every request.
    static VERIFIED: RefCell<Lru<[u8; 32], Rc<Verified>>> = RefCell::new(Lru::new(VERIFIED_ENTRIES));
}

/// Why a token could not be checked or was refused.
#[derive(Debug)]
pub enum Refusal {
    /// The token is not valid.
    Invalid(VerifyError),
    /// No keys could ever be fetched.
    KeysUnavailable,
}

async fn fetch(config: &Config) -> Option<Verifier> {
    let url = format!("{}/.well-known/jwks.json", config.origin_url);
    let mut response = Fetch::Request(Request::new(&url, worker::Method::Get).ok()?)
        .send()
        .await
        .ok()?;
    if response.status_code() != 200 {
        return None;
    }
    let body = response.bytes().await.ok()?;
    let keys = Jwks::parse_keys(&body).ok()?;
    Some(Verifier::new(
        KeySet::new(keys),
        &config.issuer,
        &config.audience,
    ))
}

/// The verifier to use now; refetches when asked to (unknown `kid`) or when the keys are old,
/// never more often than the configured minimum.
async fn verifier(config: &Config, unknown_kid: bool) -> Option<Rc<Verifier>> {
    let now = Date::now().as_millis();
    let (current, stale, may_fetch) = CACHE.with(|c| {
        let c = c.borrow();
        let stale =
            c.verifier.is_none() || unknown_kid || now.saturating_sub(c.fetched_ms) > MAX_AGE_MS;
        (
            c.verifier.clone(),
            stale,
            now.saturating_sub(c.attempted_ms) >= config.jwks_refetch_min_ms
                || c.verifier.is_none(),
        )
    });
    if !(stale && may_fetch) {
        return current;
    }
    CACHE.with(|c| c.borrow_mut().attempted_ms = now);
    match fetch(config).await {
        Some(fresh) => {
            let fresh = Rc::new(fresh);
            CACHE.with(|c| {
                let mut c = c.borrow_mut();
                c.verifier = Some(fresh.clone());
                c.fetched_ms = now;
            });
            Some(fresh)
        }
        None => current,
    }
}

/// The verifier over the keys held now (fetching them if none are).
#[cfg(feature = "bench")]
pub async fn current(config: &Config) -> Option<Rc<Verifier>> {
    verifier(config, false).await
}

/// Verifies an access token with core's strict verifier, the Ed25519 signature computed by
/// WebCrypto; a token this isolate verified before costs a cache lookup and core's recheck.
pub async fn verify(config: &Config, token: &str) -> Result<Verified, Refusal> {
    let now = Date::now().as_millis() / 1000;
    let held = verifier(config, false)
        .await
        .ok_or(Refusal::KeysUnavailable)?;
    let digest = sha256(token.as_bytes());
    if let Some(hit) = VERIFIED.with(|v| v.borrow().get(&digest).cloned()) {
        if held.recheck(&hit, now).is_ok() {
            return Ok((*hit).clone());
        }
        VERIFIED.with(|v| v.borrow_mut().remove(&digest));
    }
    let verified = verify_fully(config, &held, token, now).await?;
    VERIFIED.with(|v| v.borrow_mut().insert(digest, Rc::new(verified.clone())));
    Ok(verified)
}

async fn verify_fully(
    config: &Config,
    held: &Verifier,
    token: &str,
    now: u64,
) -> Result<Verified, Refusal> {
    match check(held, token, now).await {
        Err(VerifyError::UnknownKid(_)) => {
            let refreshed = verifier(config, true)
                .await
                .ok_or(Refusal::KeysUnavailable)?;
            check(&refreshed, token, now)
                .await
                .map_err(Refusal::Invalid)
        }
        other => other.map_err(Refusal::Invalid),
    }
}

/// One verification: everything but the signature in core, the signature in WebCrypto; if
/// WebCrypto fails (it should not), core's own Ed25519 decides.
pub async fn check(verifier: &Verifier, token: &str, now: u64) -> Result<Verified, VerifyError> {
    let pending = verifier.verify_deferred(token, now)?;
    let kid = pending.kid().to_owned();
    let verified = crate::webcrypto::ed25519_verify(
        pending.kid(),
        pending.public_key(),
        pending.message(),
        pending.signature(),
    )
    .await;
    match verified {
        Ok(valid) => pending.finish(valid).map(|claims| Verified { claims, kid }),
        Err(error) => {
            worker::console_warn!("WebCrypto Ed25519 failed, verifying in WebAssembly: {error:?}");
            verifier.verify_keyed(token, now)
        }
    }
}
