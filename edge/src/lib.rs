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
mod feed;
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

use tessera_core::api::TENANT_HEADER;
use tessera_core::edge;
use tessera_core::policy::{self, classify, Credentials, Purpose};
use tessera_core::tenant;
use worker::{console_error, event, Context, Env, Method, Request, Response, Result};

use crate::config::Config;
use crate::forward::Incoming;
use crate::problem::{problem, secure};

pub use feed::RevocationFeed;
pub use limits::RateLimiter;
pub use revocations::SessionRevocation;

thread_local! {
    static CONFIG: OnceCell<std::result::Result<Rc<Config>, String>> = const { OnceCell::new() };
}

/// The configuration, parsed once per isolate (vars and secrets do not change under it).
pub(crate) fn config(env: &Env) -> std::result::Result<Rc<Config>, String> {
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
    feed::on_isolate_start(&env).await;
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
    // The route's own limit (core's table): 64 KiB but for the bulk routes.
    let max_body = policy::lookup(method.as_ref(), &path).max_body();
    if body.len() > max_body {
        let detail = format!("The request body is larger than {} KiB.", max_body / 1024);
        return problem(413, "payload_too_large", "Payload too large", Some(&detail));
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
    let app_route = config.route_for(&path).cloned();
    let lookup = policy::lookup(incoming.method.as_ref(), &path);
    let row = lookup.route();
    // The class of the guarded application route, or of the table's row; only a request no
    // row serves as sent (a trailing slash, another method) is classified again.
    let class = app_route.as_ref().map(|r| r.class).unwrap_or_else(|| {
        row.map_or_else(|| classify(incoming.method.as_ref(), &path), |r| r.class)
    });
    // The one rule for the named tenant, over the host the client addressed (the origin hears
    // it in FORWARDED_HOST, since this fetch carries the origin's own Host).
    let host = url.host_str().map(|h| match url.port() {
        Some(port) => format!("{h}:{port}"),
        None => h.to_owned(),
    });
    let named = tenant::named(
        incoming.headers.get(TENANT_HEADER)?.as_deref(),
        host.as_deref(),
        config.base_domain.as_deref(),
    );
    // A provider route names its tenant in its path (`/oidc/{tenant}/…`).
    let served = match (tessera_core::policy::path_tenant(&path), &named) {
        (Some(slug), _) => Some(slug),
        (None, Ok(Some(slug))) => Some(slug.clone()),
        (None, Ok(None)) => Some(config.default_tenant.clone()),
        (None, Err(_)) => None,
    };
    let account = row.and_then(|r| r.account).zip(served.as_ref());
    let voicestamp = lookup.api().voicestamp_wording();
    if let Some(refused) = limits::enforce(
        env,
        class,
        account,
        &client_ip,
        config.ipv6_prefix,
        &incoming,
        voicestamp,
    )
    .await?
    {
        return Ok(refused);
    }
    let bearer = auth::bearer_jwt(&incoming.headers)?;
    let service = auth::bearer_service(&incoming.headers)?;
    if let Some(route) = app_route {
        let presented = guard::Presented {
            jwt: bearer.as_deref(),
            service: service.as_deref(),
            client_ip: &client_ip,
        };
        return guard::app_route(env, &config, &route, &incoming, presented).await;
    }
    let mut extra = vec![
        (edge::CLIENT_IP, client_ip.clone()),
        (edge::EDGE_SECRET, config.edge_secret.clone()),
    ];
    extra.extend(host.map(|host| (edge::FORWARDED_HOST, host)));
    // A request no route serves goes on, and the origin answers its 404 or 405; so does one
    // whose route takes no bearer credential (a presented one means nothing there).
    let Some(row) = row.filter(|row| row.accepts.takes_bearer()) else {
        return forward::send(&config.origin_url, &incoming, &extra).await;
    };
    let wording = auth::Wording::of(row);
    if row.purpose == Purpose::Verify {
        if let Some(token) = &bearer {
            return auth::verify_here(env, &config, token, &named, wording).await;
        }
        if let Some(token) = &service {
            return match service_tokens::check(env, &config, token, &client_ip, wording).await? {
                Ok(answer) => match auth::check_tenant(&answer.tenant, &named, wording)? {
                    Some(refused) => Ok(refused),
                    None => Response::from_json(&answer),
                },
                Err(refused) => Ok(refused),
            };
        }
    }
    // A JWT is checked here, before the origin spends anything on it, against what the row
    // accepts; a route that also takes an expired token (renewal) leaves it to the origin,
    // which alone knows whether the session is still active.
    let mut claims = None;
    let checked_here = row.accepts.takes_jwt() && !row.accepts.accepts(Credentials::EXPIRED_ACCESS);
    if let (Some(token), true) = (&bearer, checked_here) {
        match auth::authenticate(env, &config, token, row.accepts, wording).await? {
            Ok(verified) => {
                if let Some(refused) = auth::check_tenant(&verified.tid, &named, wording)? {
                    return Ok(refused);
                }
                if let Some(refused) = limits::enforce_bearer_account(
                    env,
                    row,
                    &verified.tid,
                    &verified.sub,
                    voicestamp,
                )
                .await?
                {
                    return Ok(refused);
                }
                claims = Some(verified);
            }
            Err(refused) => return Ok(refused),
        }
    }
    let response = forward::send(&config.origin_url, &incoming, &extra).await?;
    if row.purpose == Purpose::SignOut && (200..300).contains(&response.status_code()) {
        if let Some(claims) = &claims {
            revocations::record_sign_out(env, claims).await;
        }
    }
    Ok(response)
}
