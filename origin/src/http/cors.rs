//! CORS for browser apps, per tenant. A preflight carries no tenant (browsers send no header
//! values and no body with it), so it is answered from the `Origin` alone: allowed when any
//! tenant lists that origin. The request itself gets `Access-Control-Allow-Origin` only when
//! the tenant it is for lists the origin: the tenant its headers name (`X-Tenant`, subdomain),
//! else its bearer token's, else its body's (`tenant`, or the tenant of an opaque token in it),
//! else the default tenant. Tokens travel in headers and bodies, never cookies, so credentials
//! are not allowed.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use tessera_core::model::TenantSlug;
use tessera_core::policy;

use super::problem::ApiError;
use crate::state::AppState;

/// The methods the APIs use, every one a browser app may need.
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";

/// How long a browser may keep a preflight's answer, in seconds.
const MAX_AGE_SECS: &str = "600";

/// Body fields that carry an opaque token, whose prefix names its tenant.
const TOKEN_FIELDS: [&str; 5] = [
    "refresh_token",
    "refreshToken",
    "mfa_token",
    "token",
    "ceremony",
];

/// The CORS layer (inside the rate limits and the body's timeout: it reads a cross-origin JSON
/// body itself, under the same time and size limits as the extractors).
pub async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let origin_text = origin.to_str().unwrap_or_default().to_owned();
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let allowed = state
            .tenants
            .origin_listed_anywhere(&origin_text)
            .await
            .unwrap_or(false);
        let mut response = StatusCode::NO_CONTENT.into_response();
        decorate(&mut response, allowed.then_some(origin), true);
        return response;
    }
    let (tenant, request) = match tenant_of(request, &state).await {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    let allowed = match state.tenants.get(&tenant).await {
        Ok(Some(t)) => t.cors_origins.contains(&origin_text),
        _ => false,
    };
    let mut response = next.run(request).await;
    decorate(&mut response, allowed.then_some(origin), false);
    response
}

fn decorate(response: &mut Response, allowed: Option<HeaderValue>, preflight: bool) {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = allowed else { return };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        if let Ok(allowed) = HeaderValue::from_str(&format!(
            "authorization, content-type, {}",
            tessera_core::api::TENANT_HEADER
        )) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECS),
        );
    } else {
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after, ratelimit, ratelimit-policy, x-request-id"),
        );
    }
}

/// The tenant a cross-origin request is for, and the request to pass on (its body read, when
/// that was needed, and put back).
async fn tenant_of(request: Request, state: &AppState) -> Result<(TenantSlug, Request), ApiError> {
    if let Ok(Some(named)) = super::tenant::named_by_request(request.headers(), &state.config) {
        return Ok((named, request));
    }
    if let Some(tenant) = bearer_tenant(&request) {
        return Ok((tenant, request));
    }
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Ok((state.config.default_tenant.clone(), request));
    }
    let (parts, body) = request.into_parts();
    // The body is already under the request-body timeout here; its size is bounded as the
    // extractors bound it, with the same answers.
    let max_body = policy::lookup(parts.method.as_str(), parts.uri.path()).max_body();
    let bytes = match axum::body::to_bytes(body, max_body).await {
        Ok(bytes) => bytes,
        Err(error) => return Err(body_refusal(&error)),
    };
    let tenant = body_tenant(&bytes).unwrap_or_else(|| state.config.default_tenant.clone());
    Ok((tenant, Request::from_parts(parts, Body::from(bytes))))
}

/// The answer to a body that could not be read, as the extractors give it: too large, or not
/// arrived in time.
fn body_refusal(error: &axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            )
            .detail("The request body is larger than 64 KiB.");
        }
        source = cause.source();
    }
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "Request timeout",
    )
    .detail("The request body did not arrive in time.")
}

/// The tenant claim of a bearer JWT, read without checking it: it only decides whether the
/// browser may read the answer, which the route's own check of the token still guards.
fn bearer_tenant(request: &Request) -> Option<TenantSlug> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(tessera_core::api::bearer_token)?;
    if let Some(tenant) = tessera_core::token::tenant_of_any(bearer) {
        return Some(tenant);
    }
    let payload = URL_SAFE_NO_PAD.decode(bearer.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    TenantSlug::parse(claims.get("tid")?.as_str()?).ok()
}

/// The tenant a JSON body names: its `tenant`, else the tenant of an opaque token in it.
fn body_tenant(bytes: &[u8]) -> Option<TenantSlug> {
    let body: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let text = |name: &str| body.get(name).and_then(serde_json::Value::as_str);
    if let Some(tenant) = text("tenant") {
        return TenantSlug::parse(tenant).ok();
    }
    TOKEN_FIELDS
        .iter()
        .find_map(|field| text(field).and_then(tessera_core::token::tenant_of_any))
}
