//! Operations and discovery: health, readiness, metrics, JWKS, OpenAPI.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::problem::ApiError;
use crate::state::AppState;

/// Operational and discovery routes of the public listener. `/metrics` answers there only
/// when `TESSERA_METRICS_TOKEN` guards it; otherwise it lives on the operations listener alone.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/openapi.json", get(openapi))
}

/// The operations listener (`TESSERA_OPS_BIND`, loopback by default): metrics without a token,
/// and the probes.
pub fn ops_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(axum::middleware::from_fn(
            super::middleware::security_headers,
        ))
        .with_state(state)
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "Database unreachable", body = tessera_core::api::Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.store.ping().await.map_err(|error| {
        tracing::error!(%error, "readiness check failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Not ready")
            .detail("The database does not answer.")
    })?;
    Ok("ready")
}

/// Prometheus metrics: sign-in outcomes and latency, hash queue depth, rate-limit refusals,
/// requests per route class. On the public listener only when `TESSERA_METRICS_TOKEN` is set,
/// and only for that bearer token; without a token, on the operations listener
/// (`TESSERA_OPS_BIND`, loopback by default).
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text format"),
    (status = 401, description = "The request does not carry TESSERA_METRICS_TOKEN", body = tessera_core::api::Problem, content_type = "application/problem+json"),
    (status = 404, description = "No TESSERA_METRICS_TOKEN is set: metrics are on the operations listener only", body = tessera_core::api::Problem, content_type = "application/problem+json")))]
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let Some(expected) = &state.config.metrics_token else {
        return ApiError::not_found()
            .detail("Metrics are served on the operations listener (TESSERA_OPS_BIND).")
            .into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(tessera_core::api::bearer_token)
        .unwrap_or("");
    if !tessera_core::secret::ct_eq(presented.as_bytes(), expected.as_bytes()) {
        return ApiError::invalid_token("missing_token")
            .detail("Send Authorization: Bearer <TESSERA_METRICS_TOKEN>.")
            .into_response();
    }
    scrape(State(state)).await
}

/// The exposition itself.
async fn scrape(State(state): State<AppState>) -> Response {
    metrics::gauge!("tessera_hash_queue_depth").set(state.hasher.queue_depth() as f64);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The public signing keys: the current one and retired ones whose tokens may still be live.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys", responses((status = 200, description = "JWK set (RFC 7517)", body = tessera_core::jwt::Jwks)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let jwks = state.keys.published().await.to_jwks();
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        )],
        Json(jwks),
    )
        .into_response()
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi() -> Response {
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        )],
        Json(super::openapi::document()),
    )
        .into_response()
}
