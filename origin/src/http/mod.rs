//! The HTTP surface: one `app(state)` assembling every area's router and the layers every
//! request passes.

pub mod account;
pub mod admin;
pub mod api_tokens;
pub mod auth;
pub mod backoffice;
pub mod cors;
pub mod edge_feed;
pub mod extract;
pub mod mfa;
pub mod middleware;
pub mod oidc;
pub mod oidc_clients;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod passkeys;
pub mod problem;
pub mod team_vault;
pub mod tenant;
pub mod users;
pub mod voicestamp;

use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{middleware as mw, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use problem::ApiError;

/// The largest request body accepted (core's rule, shared with the edge).
pub const MAX_BODY_BYTES: usize = tessera_core::api::MAX_BODY_BYTES;

/// The whole application.
pub fn app(state: AppState) -> Router {
    let dev = state.config.dev;
    let router = Router::new()
        .merge(auth::router())
        .merge(account::router())
        .merge(mfa::router())
        .merge(passkeys::router())
        .merge(api_tokens::router())
        .merge(voicestamp::router())
        .merge(team_vault::router())
        .merge(backoffice::router())
        .merge(pages::router())
        .merge(oidc::router())
        .merge(oidc_clients::router())
        .merge(users::router())
        .merge(admin::router())
        .merge(ops::router())
        .merge(edge_feed::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(mw::from_fn(middleware::body_limit))
        // CORS inside the limits (a preflight names its tenant in headers anyone can make up:
        // it is charged before the tenant is looked up) and inside the body's timeout (it may
        // read a cross-origin body for its tenant, under that timeout).
        .layer(mw::from_fn_with_state(state.clone(), cors::cors))
        .layer(RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs(state.config.body_read_timeout_secs),
        ))
        .layer(mw::from_fn_with_state(
            state.clone(),
            middleware::client_and_limits,
        ))
        .layer(mw::from_fn_with_state(state.clone(), middleware::edge_host))
        .layer(mw::from_fn(middleware::api_wording));
    // Outside every other layer but the request id and tracing: the status and code the
    // client really got, limits and refusals included.
    let router = if dev {
        router.layer(mw::from_fn(middleware::request_log))
    } else {
        router
    };
    router
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(middleware::REQUEST_ID.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                    let id = request
                        .headers()
                        .get(&middleware::REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let path = middleware::loggable_path(request.uri().path());
                    tracing::info_span!("request", method = %request.method(), path = %path, request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(middleware::REQUEST_ID.clone()))
                .layer(mw::from_fn(middleware::security_headers))
                .layer(CatchPanicLayer::custom(panic_response)),
        )
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found().detail("No such route.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(&std::io::Error::other("handler panicked")).into_response()
}
