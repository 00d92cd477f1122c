//! Layers every request passes: client identity and per-IP rate limits, CORS, and the
//! security-header policy on every response.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tessera_core::api::Problem;
use tessera_core::edge;
use tessera_core::headers::{ANSWER_MAY_SET, SECURITY_HEADERS, TOKEN_RESPONSE_HEADERS};
use tessera_core::policy;
use tessera_core::ratelimit::{classify, ip_subject, Decision};
use tessera_core::secret::ct_eq;
use tower::{Layer as _, ServiceExt as _};

use super::problem::ApiError;
use crate::config::Config;
use crate::services::Client;
use crate::state::AppState;

/// Applies core's security headers to every response, and `Cache-Control: no-store` (with
/// `Pragma: no-cache`) to every response that did not choose its own caching: API answers are
/// per-user, and many carry tokens.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        if ANSWER_MAY_SET.contains(name) && headers.contains_key(*name) {
            continue;
        }
        headers.insert(*name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        for (name, value) in TOKEN_RESPONSE_HEADERS {
            headers.insert(*name, HeaderValue::from_static(value));
        }
    }
    response
}

/// The client's IP: the edge's header only when the edge secret comes with it; the
/// right-most untrusted `X-Forwarded-For` entry only when the peer is a configured trusted
/// proxy; otherwise the socket's peer. Client-supplied headers are never believed on their own.
#[must_use]
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, config: &Config) -> IpAddr {
    if from_the_edge(headers, config) {
        if let Some(ip) = headers
            .get(edge::CLIENT_IP)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
        {
            return ip;
        }
    }
    if config.trusted_proxies.contains(&peer) {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        if let Some(ip) = forwarded
            .iter()
            .rev()
            .find(|ip| !config.trusted_proxies.contains(ip))
        {
            return *ip;
        }
    }
    peer
}

/// Whether the request carries the edge secret, which makes the edge's other `x-tessera-*`
/// headers trustworthy.
pub fn from_the_edge(headers: &HeaderMap, config: &Config) -> bool {
    config.edge_secret.as_ref().is_some_and(|secret| {
        headers
            .get(edge::EDGE_SECRET)
            .is_some_and(|presented| ct_eq(presented.as_bytes(), secret.as_bytes()))
    })
}

/// Behind the edge, the host the client addressed is the one the edge vouches for (its fetch to
/// the origin carries the origin's own `Host`): it replaces `Host` before anything reads it, so
/// a subdomain tenant is the same tenant at both halves. Without the edge secret the header is
/// dropped, never believed.
pub async fn edge_host(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let vouched = from_the_edge(request.headers(), &state.config);
    if let Some(host) = request.headers_mut().remove(edge::FORWARDED_HOST) {
        if vouched {
            request.headers_mut().insert(header::HOST, host);
        }
    }
    next.run(request).await
}

/// Words every error answer as the API of its route reads errors (core's table): VoiceStamp v1
/// clients read `success: false` and a `message` in every problem under their paths, whichever
/// layer or handler refused the request. Other APIs' answers pass untouched.
pub async fn api_wording(mut request: Request, next: Next) -> Response {
    let lookup = policy::lookup(request.method().as_str(), request.uri().path());
    let api = lookup.api();
    // Looked up once per request: the limits layer takes the class from it.
    request.extensions_mut().insert(lookup);
    let response = next.run(request).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/problem+json");
    if !api.voicestamp_wording() || !is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, super::MAX_BODY_BYTES).await else {
        return ApiError::internal(&std::io::Error::other("unreadable problem body"))
            .into_response();
    };
    let worded = serde_json::from_slice::<Problem>(&bytes)
        .ok()
        .filter(|problem| problem.success.is_none())
        .and_then(|problem| serde_json::to_vec(&problem.for_voicestamp()).ok());
    let body = worded.unwrap_or_else(|| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Bounds the body the extractors read by the route's limit in core's table (64 KiB but for the
/// bulk routes), as the edge does.
pub async fn body_limit(request: Request, next: Next) -> Response {
    let max_body = request
        .extensions()
        .get::<policy::Lookup>()
        .map_or(super::MAX_BODY_BYTES, |lookup| lookup.max_body());
    match DefaultBodyLimit::max(max_body)
        .layer(next)
        .oneshot(request)
        .await
    {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    }
}

/// Works out who the client is, charges the request to its IP under the route's class, and
/// answers 429 before any handler runs when it is over the limit.
pub async fn client_and_limits(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let ip = client_ip(peer, request.headers(), &state.config);
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect();
    let lookup = request.extensions().get::<policy::Lookup>().copied();
    let api = lookup.map_or(policy::Api::Canonical, |l| l.api());
    request.extensions_mut().insert(Client {
        ip,
        user_agent,
        api,
    });

    let class = match lookup {
        Some(policy::Lookup::Route(route)) => route.class,
        // No row serves it as sent (a trailing slash, another method): classified on its own.
        _ => classify(request.method().as_str(), request.uri().path()),
    };
    metrics::counter!("tessera_http_requests_total", "class" => class.name()).increment(1);
    let charged = match state
        .limiter
        .charge(
            class,
            &ip_subject(&ip.to_string(), state.config.ipv6_prefix),
        )
        .await
    {
        Ok(charged) => charged,
        Err(error) => return ApiError::from(error).into_response(),
    };
    if let Some((decision @ Decision::Limited { .. }, quota)) = charged {
        // A person at a hosted page reads the wait, not the API's problem+json.
        if lookup.is_some_and(|l| l.api() == policy::Api::Pages) {
            return super::pages::too_many(decision.retry_after_secs().unwrap_or(1).max(1));
        }
        return ApiError::too_many(class, decision, quota).into_response();
    }
    let mut response = next.run(request).await;
    if let Some((decision, quota)) = charged {
        for (name, value) in decision.headers(class.name(), quota) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}

/// Development mode's request log: one readable line per request, `POST /api/auth/login 401
/// invalid_credentials 12 ms`, so that a refusal shows up where the developer looks. Paths
/// carrying secrets are logged as [`loggable_path`] hides them.
pub async fn request_log(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = loggable_path(request.uri().path()).into_owned();
    let response = next.run(request).await;
    let code = response
        .extensions()
        .get::<super::problem::ProblemCode>()
        .map_or("", |code| code.0);
    tracing::info!(
        target: "tessera::request",
        "{method} {path} {} {code} {} ms",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// Paths whose last segment is a secret or personal data (the team/vault API's emailed link
/// token and the address it is asked about): never written to the logs.
const PATHS_WITH_SECRETS: [&str; 2] = ["/api/verify-email/", "/api/exist-email/"];

/// The request path as it may be logged: the secret segment of [`PATHS_WITH_SECRETS`] hidden.
#[must_use]
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match PATHS_WITH_SECRETS
        .iter()
        .find(|prefix| path.starts_with(*prefix))
    {
        Some(prefix) => format!("{prefix}***").into(),
        None => path.into(),
    }
}

/// The request-id header name.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn emailed_tokens_and_addresses_in_paths_are_not_logged() {
        assert_eq!(
            loggable_path("/api/verify-email/tsr_el_acme_secret"),
            "/api/verify-email/***"
        );
        assert_eq!(
            loggable_path("/api/exist-email/ann@example.com"),
            "/api/exist-email/***"
        );
        assert_eq!(loggable_path("/api/auth/login"), "/api/auth/login");
    }
}
