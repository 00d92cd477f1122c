//! Tessera's edge: a Cloudflare Worker in front of the origin. For every request it applies
//! core's security headers, enforces core's rate limits with Durable Objects, verifies access
//! tokens with core's strict verifier against the origin's JWKS, refuses revoked sessions,
//! answers `GET /api/auth/verify` and `GET /api/v1/auth/verify` alone (service tokens from a
//! short memory of the origin's answer), guards configured application routes, and forwards
//! the rest to the origin with the client's IP in a header that only the edge secret makes
//! trustworthy.
//!
//! Failure policy: origin down → 502, no answer in 10 s → 504; JWKS unreachable → the keys
//! already held keep working; a Durable Object error refuses credential and code endpoints
//! (503, fail closed) and lets other classes through (fail open, logged), and a revocation
//! check that fails refuses the token (503).

//! This file is the router: it reads the request once, then hands it to one module per
//! concern (`limits`, `auth`, `service_tokens`, `guard`, `revocations`, `forward`).

// `#[durable_object]` and `#[event]` generate undocumented wasm-bindgen glue.
#![allow(missing_docs)]

mod auth;
#[cfg(feature = "bench")]
mod bench;
pub mod config;
mod forward;
mod guard;
mod keys;
mod limits;
mod problem;
mod revocations;
mod service_tokens;
mod webcrypto;

use std::cell::OnceCell;
use std::rc::Rc;

use tessera_core::api::MAX_BODY_BYTES;
use tessera_core::edge;
use tessera_core::ratelimit::{classify, RouteClass};
use worker::{console_error, event, Context, Env, Method, Request, Response, Result};

use crate::config::Config;
use crate::forward::Incoming;
use crate::problem::{problem, secure};

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
        return revocations::receive(env, &config, &incoming).await;
    }
    #[cfg(feature = "bench")]
    if path == bench::PATH {
        return bench::run(&config, &url, &incoming).await;
    }
    let route = config.route_for(&path).cloned();
    let class = route
        .as_ref()
        .map_or_else(|| classify(incoming.method.as_ref(), &path), |r| r.class);
    if let Some(refused) = limits::enforce(env, &config, class, &client_ip, &incoming).await? {
        return Ok(refused);
    }
    let bearer = auth::bearer_jwt(&incoming.headers)?;
    let service = auth::bearer_service(&incoming.headers)?;
    if let Some(route) = route {
        let presented = guard::Presented {
            jwt: bearer.as_deref(),
            service: service.as_deref(),
            client_ip: &client_ip,
        };
        return guard::app_route(env, &config, &route, &incoming, presented).await;
    }
    let is_verify = matches!(path.as_str(), "/api/auth/verify" | "/api/v1/auth/verify")
        && incoming.method == Method::Get;
    let wording = auth::Wording::for_request(&path, is_verify);
    if is_verify {
        if let Some(token) = &bearer {
            return auth::verify_here(env, &config, token, wording).await;
        }
        if let Some(token) = &service {
            return match service_tokens::check(env, &config, token, &client_ip, wording).await? {
                Ok(answer) => Response::from_json(&answer),
                Err(refused) => Ok(refused),
            };
        }
    }
    // Bearer JWTs are checked here, before the origin spends anything on them; refresh
    // endpoints are exempt, since a client may present an expired token there by design.
    let mut claims = None;
    if let (Some(token), false) = (&bearer, class == RouteClass::Refresh) {
        match auth::authenticate(env, &config, token, wording).await? {
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
        if let Some(claims) = &claims {
            revocations::record_sign_out(env, claims).await;
        }
    }
    Ok(response)
}

fn is_sign_out(path: &str) -> bool {
    matches!(
        path,
        "/api/auth/logout" | "/api/v2/signout" | "/api/v1/auth/logout"
    )
}
