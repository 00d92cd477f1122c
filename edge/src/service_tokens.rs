//! Service API tokens at the edge. They are opaque, so the origin judges them: the edge asks
//! the origin's `GET /api/auth/verify` once and remembers a valid answer in the isolate for at
//! most [`SERVICE_TOKEN_CACHE_SECS`]. Every use also checks the revocation store, which the
//! origin tells when a token is revoked, so a revocation takes effect at the edge within the
//! revocation store's one second, not the cache's minute. Refusals are not remembered: the
//! origin is asked again (its verify quota still applies per client).

use std::cell::RefCell;
use std::collections::HashMap;

use tessera_core::api::VerifyAnswer;
use tessera_core::edge::{service_token_key, CLIENT_IP, EDGE_SECRET, SERVICE_TOKEN_CACHE_SECS};
use tessera_core::secret::sha256;
use tessera_core::token::TokenKind;
use worker::{console_error, Date, Env, Headers, Method, Response, Result};

use crate::auth::{token_problem, Wording};
use crate::config::Config;
use crate::forward::{self, Incoming};
use crate::problem::{problem, revocations_unavailable};
use crate::revocations;

/// Answers remembered per isolate at most; past it the memory starts over.
const MAX_ENTRIES: usize = 10_000;

thread_local! {
    /// SHA-256 of the token → (when the origin answered, in ms; its answer).
    static VALID: RefCell<HashMap<[u8; 32], (u64, VerifyAnswer)>> = RefCell::new(HashMap::new());
}

/// Whether a bearer token has the form of a service token.
#[must_use]
pub fn is_service_token(token: &str) -> bool {
    token.starts_with(TokenKind::ServiceApi.prefix())
}

/// The origin's answer for a service token, from this isolate's memory while fresh, and only
/// while the token is not revoked. `Ok(Err(response))` is the refusal to send.
pub async fn check(
    env: &Env,
    config: &Config,
    token: &str,
    client_ip: &str,
    wording: Wording,
) -> Result<std::result::Result<VerifyAnswer, Response>> {
    let digest = sha256(token.as_bytes());
    let now_ms = Date::now().as_millis();
    let fresh = VALID.with(|valid| {
        valid.borrow().get(&digest).and_then(|(at, answer)| {
            (now_ms.saturating_sub(*at) < SERVICE_TOKEN_CACHE_SECS * 1000).then(|| answer.clone())
        })
    });
    let answer = match fresh {
        Some(answer) => answer,
        None => match ask_origin(config, token, client_ip).await? {
            Ok(answer) => {
                VALID.with(|valid| {
                    let mut valid = valid.borrow_mut();
                    if valid.len() >= MAX_ENTRIES {
                        valid.clear();
                    }
                    valid.insert(digest, (now_ms, answer.clone()));
                });
                answer
            }
            Err(status) if status == 401 || status == 403 => {
                return Ok(Err(refused(wording)?));
            }
            Err(status) => {
                console_error!("origin answered {status} to a service token check");
                return Ok(Err(problem(
                    503,
                    "origin_unavailable",
                    "Service unavailable",
                    Some("Service tokens cannot be checked right now."),
                )?));
            }
        },
    };
    let key = service_token_key(&answer.user.id);
    match revocations::is_revoked(env, &answer.tenant, &key, now_ms / 1000).await {
        Ok(false) => Ok(Ok(answer)),
        Ok(true) => {
            VALID.with(|valid| valid.borrow_mut().remove(&digest));
            Ok(Err(refused(wording)?))
        }
        Err(error) => Ok(Err(revocations_unavailable(&error)?)),
    }
}

fn refused(wording: Wording) -> Result<Response> {
    token_problem("invalid_token", "The token is not valid.", wording)
}

/// Asks the origin; `Err(status)` for any answer but 200.
async fn ask_origin(
    config: &Config,
    token: &str,
    client_ip: &str,
) -> Result<std::result::Result<VerifyAnswer, u16>> {
    let headers = Headers::new();
    headers.set("authorization", &format!("Bearer {token}"))?;
    let incoming = Incoming {
        method: Method::Get,
        path_and_query: "/api/auth/verify".to_owned(),
        headers,
        body: Vec::new(),
    };
    let extra = [
        (CLIENT_IP, client_ip.to_owned()),
        (EDGE_SECRET, config.edge_secret.clone()),
    ];
    let mut response = forward::send(&config.origin_url, &incoming, &extra).await?;
    if response.status_code() != 200 {
        return Ok(Err(response.status_code()));
    }
    match response.json::<VerifyAnswer>().await {
        Ok(answer) if answer.service.is_some() => Ok(Ok(answer)),
        // Anything else is not a service token's answer.
        _ => Ok(Err(401)),
    }
}
