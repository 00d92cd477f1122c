//! Tessera's edge: a Cloudflare Worker in front of the origin. For every request it applies
//! core's security headers, enforces core's rate limits with Durable Objects, verifies access
//! tokens with core's strict verifier against the origin's JWKS, refuses revoked sessions,
//! answers `GET /api/auth/verify` alone, guards configured application routes, and forwards
//! the rest to the origin with the client's IP in a header that only the edge secret makes
//! trustworthy.
//!
//! Failure policy: origin down → 502, no answer in 10 s → 504; JWKS unreachable → the keys
//! already held keep working; a Durable Object error refuses credential and code endpoints
//! (503, fail closed) and lets other classes through (fail open, logged), and a revocation
//! check that fails refuses the token (503).

// `#[durable_object]` and `#[event]` generate undocumented wasm-bindgen glue.
#![allow(missing_docs)]

pub mod config;
mod forward;
mod keys;
mod limits;
mod problem;
mod revocations;
mod webcrypto;

use std::cell::OnceCell;
use std::rc::Rc;

use serde_json::json;
use tessera_core::api::{rfc3339, MAX_BODY_BYTES};
use tessera_core::edge::{self, Identity, Revocation};
use tessera_core::jwt::{AccessClaims, Verifier};
use tessera_core::model::{Email, TenantSlug};
use tessera_core::ratelimit::{
    self, account_subject, classify, ip_subject, Decision, Quota, RouteClass,
};
use tessera_core::secret::ct_eq;
use worker::{
    console_error, console_warn, event, Context, Date, Env, Headers, Method, Request, Response,
    Result,
};

use crate::config::{AppRoute, Config, RouteAuth};
use crate::forward::Incoming;
use crate::keys::Refusal;
use crate::problem::{problem, problem_body, secure};

pub use limits::RateLimiter;
pub use revocations::SessionRevocation;

thread_local! {
    static CONFIG: OnceCell<std::result::Result<Rc<Config>, String>> = const { OnceCell::new() };
}

/// The configuration, parsed once per isolate (vars and secrets do not change under it).
fn config(env: &Env) -> std::result::Result<Rc<Config>, String> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| {
            Config::from_lookup(|name| {
                env.var(name)
                    .map(|v| v.to_string())
                    .or_else(|_| env.secret(name).map(|v| v.to_string()))
                    .ok()
            })
            .map(Rc::new)
        })
        .clone()
    })
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let response = match handle(req, &env).await {
        Ok(response) => response,
        Err(error) => {
            console_error!("edge error: {error}");
            problem(500, "internal", "Internal server error", None)?
        }
    };
    secure(response)
}

async fn handle(mut req: Request, env: &Env) -> Result<Response> {
    let config = match config(env) {
        Ok(config) => config,
        Err(error) => {
            console_error!("edge configuration: {error}");
            return problem(500, "edge_misconfigured", "Edge misconfigured", None);
        }
    };
    let url = req.url()?;
    let path = url.path().to_owned();
    let method = req.method();
    let body = if matches!(method, Method::Get | Method::Head) {
        Vec::new()
    } else {
        req.bytes().await?
    };
    if body.len() > MAX_BODY_BYTES {
        return problem(
            413,
            "payload_too_large",
            "Payload too large",
            Some("The request body is larger than 64 KiB."),
        );
    }
    // Only Cloudflare sets CF-Connecting-IP; X-Forwarded-For and the like are never believed.
    let client_ip = req
        .headers()
        .get("cf-connecting-ip")?
        .unwrap_or_else(|| "unknown".into());
    let incoming = Incoming {
        path_and_query: url
            .query()
            .map_or_else(|| path.clone(), |q| format!("{path}?{q}")),
        headers: req.headers().clone(),
        method,
        body,
    };

    if path == edge::REVOCATIONS_PATH {
        return receive_revocation(env, &config, &incoming).await;
    }
    if path == BENCH_PATH && config.bench {
        return bench(&config, &url, &incoming).await;
    }
    let route = config.route_for(&path).cloned();
    let class = route
        .as_ref()
        .map_or_else(|| classify(incoming.method.as_ref(), &path), |r| r.class);
    if let Some(refused) = enforce_limits(env, &config, class, &client_ip, &incoming).await? {
        return Ok(refused);
    }
    let bearer = bearer_jwt(&incoming.headers)?;
    if let Some(route) = route {
        return app_route(env, &config, &route, &incoming, bearer.as_deref()).await;
    }
    if path == "/api/auth/verify" && incoming.method == Method::Get {
        if let Some(token) = &bearer {
            return verify_here(env, &config, token).await;
        }
    }
    // Bearer JWTs are checked here, before the origin spends anything on them; refresh
    // endpoints are exempt, since a client may present an expired token there by design.
    let mut claims = None;
    if let (Some(token), false) = (&bearer, class == RouteClass::Refresh) {
        match authenticate(env, &config, token).await? {
            Ok(verified) => claims = Some(verified),
            Err(refused) => return Ok(refused),
        }
    }
    let extra = [
        (edge::CLIENT_IP, client_ip),
        (edge::EDGE_SECRET, config.edge_secret.clone()),
    ];
    let response = forward::send(&config.origin_url, &incoming, &extra).await?;
    if is_sign_out(&path) && (200..300).contains(&response.status_code()) {
        if let Some(claims) = claims {
            // Recorded on the way, so that this edge refuses the token at once even before
            // the origin's push arrives.
            let revocation = Revocation {
                tenant: claims.tid,
                session: claims.sid,
                until: claims.exp + Verifier::DEFAULT_LEEWAY_SECS,
            };
            if let Err(error) = revocations::revoke(env, &revocation).await {
                console_warn!("recording a sign-out failed: {error}");
            }
        }
    }
    Ok(response)
}

fn is_sign_out(path: &str) -> bool {
    matches!(path, "/api/auth/logout" | "/api/v2/signout")
}

/// The bearer token, when it has the shape of a JWT. Opaque bearer tokens (service tokens,
/// session tokens) are the origin's to judge.
fn bearer_jwt(headers: &Headers) -> Result<Option<String>> {
    let Some(value) = headers.get("authorization")? else {
        return Ok(None);
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Ok(None);
    };
    let token = token.trim();
    let jwt_shaped = scheme.eq_ignore_ascii_case("bearer") && token.split('.').count() == 3;
    Ok(jwt_shaped.then(|| token.to_owned()))
}

fn token_problem(code: &str, detail: &str, valid_false: bool) -> Result<Response> {
    let mut body = json!({"type": "about:blank", "title": "Invalid token", "status": 401, "code": code, "detail": detail});
    if valid_false {
        body["valid"] = false.into();
    }
    problem_body(401, &body)
}

/// Verifies a JWT and checks its session is not revoked. `Ok(Err(response))` is the refusal
/// to answer.
async fn authenticate(
    env: &Env,
    config: &Config,
    token: &str,
) -> Result<std::result::Result<AccessClaims, Response>> {
    authenticate_as(env, config, token, false).await
}

async fn authenticate_as(
    env: &Env,
    config: &Config,
    token: &str,
    valid_false: bool,
) -> Result<std::result::Result<AccessClaims, Response>> {
    let claims = match keys::verify(config, token).await {
        Ok(claims) => claims,
        Err(Refusal::Invalid(error)) => {
            return Ok(Err(token_problem(
                error.code(),
                &error.to_string(),
                valid_false,
            )?))
        }
        Err(Refusal::KeysUnavailable) => {
            return Ok(Err(problem(
                503,
                "keys_unavailable",
                "Service unavailable",
                Some("The signing keys cannot be fetched."),
            )?))
        }
    };
    let now = Date::now().as_millis() / 1000;
    match revocations::is_revoked(env, &claims.tid, &claims.sid, now).await {
        Ok(false) => Ok(Ok(claims)),
        Ok(true) => Ok(Err(token_problem(
            "invalid_token",
            "The token's session has ended.",
            valid_false,
        )?)),
        Err(error) => {
            console_error!("revocation check failed: {error}");
            Ok(Err(problem(
                503,
                "revocations_unavailable",
                "Service unavailable",
                None,
            )?))
        }
    }
}

/// The origin's verification body, field for field and in its order.
#[derive(serde::Serialize)]
struct Verified {
    valid: bool,
    user: VerifiedUser,
    tenant: String,
    expires_at: String,
}

#[derive(serde::Serialize)]
struct VerifiedUser {
    id: String,
    email: String,
    role: String,
}

/// `GET /api/auth/verify` with a JWT, answered with the origin's body.
async fn verify_here(env: &Env, config: &Config, token: &str) -> Result<Response> {
    match authenticate_as(env, config, token, true).await? {
        Err(refused) => Ok(refused),
        Ok(claims) => Response::from_json(&Verified {
            valid: true,
            expires_at: rfc3339(i64::try_from(claims.exp).unwrap_or(i64::MAX)),
            user: VerifiedUser {
                id: claims.sub,
                email: claims.email,
                role: claims.role,
            },
            tenant: claims.tid,
        }),
    }
}

/// A configured application route: token policy at the edge, then the upstream, with the
/// verified identity in headers signed with the edge secret.
async fn app_route(
    env: &Env,
    config: &Config,
    route: &AppRoute,
    incoming: &Incoming,
    bearer: Option<&str>,
) -> Result<Response> {
    let claims = match bearer {
        Some(token) => match authenticate(env, config, token).await? {
            Ok(claims) => Some(claims),
            Err(refused) => return Ok(refused),
        },
        None => None,
    };
    let mut extra = Vec::new();
    match (claims, route.auth) {
        (None, RouteAuth::Required) => {
            return token_problem(
                "missing_token",
                "Send Authorization: Bearer <access token>.",
                false,
            );
        }
        (None, RouteAuth::Optional) => {}
        (Some(claims), _) => {
            let timestamp = Date::now().as_millis() / 1000;
            let path = incoming
                .path_and_query
                .split('?')
                .next()
                .unwrap_or_default();
            let identity = Identity {
                user: &claims.sub,
                tenant: &claims.tid,
                session: &claims.sid,
            };
            let signature = edge::identity_signature(
                config.edge_secret.as_bytes(),
                incoming.method.as_ref(),
                path,
                identity,
                timestamp,
            );
            extra.extend([
                (edge::USER, claims.sub.clone()),
                (edge::TENANT, claims.tid.clone()),
                (edge::SESSION, claims.sid.clone()),
                (edge::TIMESTAMP, timestamp.to_string()),
                (edge::SIGNATURE, signature),
            ]);
        }
    }
    forward::send(&route.upstream, incoming, &extra).await
}

/// The origin's revocation push.
async fn receive_revocation(env: &Env, config: &Config, incoming: &Incoming) -> Result<Response> {
    let presented = incoming.headers.get(edge::EDGE_SECRET)?.unwrap_or_default();
    if incoming.method != Method::Post
        || !ct_eq(presented.as_bytes(), config.edge_secret.as_bytes())
    {
        return problem(404, "not_found", "Not found", None);
    }
    let Ok(revocation) = serde_json::from_slice::<Revocation>(&incoming.body) else {
        return problem(
            400,
            "invalid_request",
            "Bad request",
            Some("Expected {tenant, session, until}."),
        );
    };
    revocations::revoke(env, &revocation).await?;
    Ok(Response::empty()?.with_status(204))
}

/// The account a credential request names: its body's `email` and `tenant` (or `X-Tenant`, or
/// the default tenant).
fn account_of(config: &Config, incoming: &Incoming) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(&incoming.body).ok()?;
    let email = Email::parse(body.get("email")?.as_str()?).ok()?;
    let tenant = match body.get("tenant").and_then(|t| t.as_str()) {
        Some(tenant) => tenant.to_owned(),
        None => incoming
            .headers
            .get("x-tenant")
            .ok()
            .flatten()
            .unwrap_or_else(|| config.default_tenant.clone()),
    };
    let tenant = TenantSlug::parse(&tenant).ok()?;
    Some(account_subject(&tenant, &email))
}

/// Charges the request to its IP (and account, for credential classes). Returns the 429 or
/// 503 to answer instead of going on.
async fn enforce_limits(
    env: &Env,
    config: &Config,
    class: RouteClass,
    client_ip: &str,
    incoming: &Incoming,
) -> Result<Option<Response>> {
    let Some(quota) = class.quota() else {
        return Ok(None);
    };
    let mut subjects = vec![ip_subject(client_ip)];
    if class.per_account() {
        subjects.extend(account_of(config, incoming));
    }
    for subject in subjects {
        match limits::charge(env, &ratelimit::limit_key(class, &subject), quota).await {
            Ok(decision @ Decision::Limited { .. }) => {
                return Ok(Some(too_many(class, decision, quota)?))
            }
            Ok(Decision::Allowed { .. }) => {}
            Err(error) if class.per_account() => {
                console_error!(
                    "rate limiter unavailable, refusing {}: {error}",
                    class.name()
                );
                return Ok(Some(problem(
                    503,
                    "limiter_unavailable",
                    "Service unavailable",
                    None,
                )?));
            }
            Err(error) => console_warn!(
                "rate limiter unavailable, letting {} through: {error}",
                class.name()
            ),
        }
    }
    Ok(None)
}

fn too_many(class: RouteClass, decision: Decision, quota: Quota) -> Result<Response> {
    let mut response = problem(
        429,
        "rate_limited",
        "Too many requests",
        Some(&ratelimit::limited_detail(class, quota)),
    )?;
    // The problem's headers are our own (mutable), unlike a fetched response's.
    let headers = response.headers_mut();
    headers.set(
        "retry-after",
        &decision.retry_after_secs().unwrap_or(1).max(1).to_string(),
    )?;
    for (name, value) in decision.headers(class.name(), quota) {
        headers.set(name, &value)?;
    }
    Ok(response)
}

/// Benchmarks of verification inside workerd, measured from outside by wall clock
/// (`tests/edge/bench.mjs`); served only with `BENCH_ENDPOINTS = "1"`.
const BENCH_PATH: &str = "/__tessera/bench";

async fn bench(config: &Config, url: &worker::Url, incoming: &Incoming) -> Result<Response> {
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
