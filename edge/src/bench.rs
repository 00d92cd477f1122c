//! Benchmarks of verification inside workerd, measured from outside by wall clock
//! (`tests/edge/bench.mjs`). Compiled only with the `bench` feature (`scripts/bench-edge`
//! builds that Worker into `edge/build-bench/`): the deployed Worker has no such endpoint.

use serde_json::json;
use worker::{Date, Response, Result, Url};

use crate::auth::bearer_jwt;
use crate::config::Config;
use crate::forward::Incoming;
use crate::problem::problem;
use crate::{keys, webcrypto};

/// The benchmark endpoint's path.
pub const PATH: &str = "/__tessera/bench";

/// Runs `n` verifications of the request's token by way `op`, answering how many succeeded.
pub async fn run(config: &Config, url: &Url, incoming: &Incoming) -> Result<Response> {
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let n: u32 = query.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
    let token = bearer_jwt(&incoming.headers)?.unwrap_or_default();
    let Some(verifier) = keys::current(config).await else {
        return problem(503, "keys_unavailable", "Service unavailable", None);
    };
    let now = Date::now().as_millis() / 1000;
    let mut ok = 0u32;
    match query.get("op").map(String::as_str) {
        // Core's verifier entirely in WebAssembly.
        Some("wasm") => (0..n).for_each(|_| ok += u32::from(verifier.verify(&token, now).is_ok())),
        // The production path: core's checks, WebCrypto's signature.
        Some("edge") => {
            for _ in 0..n {
                ok += u32::from(keys::check(&verifier, &token, now).await.is_ok());
            }
        }
        // The production path for a token presented again: the isolate's cache of verified
        // tokens and core's recheck.
        Some("cached") => {
            for _ in 0..n {
                ok += u32::from(keys::verify(config, &token).await.is_ok());
            }
        }
        // The baseline: WebCrypto's Ed25519 verify alone, on the same signature.
        Some("webcrypto") => {
            let Ok(pending) = verifier.verify_deferred(&token, now) else {
                return problem(400, "invalid_token", "Bad token", None);
            };
            for _ in 0..n {
                let valid = webcrypto::ed25519_verify(
                    pending.kid(),
                    pending.public_key(),
                    pending.message(),
                    pending.signature(),
                )
                .await;
                ok += u32::from(valid.unwrap_or(false));
            }
        }
        _ => {}
    }
    Response::from_json(&json!({"ok": ok}))
}
