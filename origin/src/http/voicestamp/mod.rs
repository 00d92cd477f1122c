//! VoiceStamp v1 — `/api/v1/auth/*`, exactly as its document shows: passwordless sign-in by
//! an emailed 6-digit code, a 30-day session token, and token verification that also accepts
//! the tenant's service API tokens (the document's "static API token"). The tenant is the one
//! the request's headers name, else the default tenant. Errors are problem+json that also
//! carry this API's `success: false` and `message`: the `api_wording` layer words every
//! problem under `/api/v1/` so, from core's table.

pub mod shapes;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret as _;
use tessera_core::api::{Problem, VerifyAnswer};

use super::extract::{ApiJson, Auth, Principal};
use super::problem::ApiError;
use super::tenant::served;
use crate::clock::rfc3339;
use crate::services::Client;
use crate::state::AppState;
use shapes::{CodeRequest, LoginRequest, Outcome, SessionData, SessionUser, Signed};

/// VoiceStamp v1's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/verify-code", post(verify_code))
        .route("/api/v1/auth/verify", get(verify))
        .route("/api/v1/auth/logout", post(logout))
}

const CODE_SENT: &str = "Verification code sent to email";

/// Login with email: a 6-digit code is emailed (10 minutes; a new one voids the previous).
/// The answer is the same whether or not an account uses the address, and no account is
/// created.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "VoiceStamp v1", request_body = LoginRequest,
    responses(
        (status = 200, description = "A code is on its way if the account exists", body = Outcome),
        (status = 400, description = "Malformed body or email (`invalid_email`); `success: false`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 a minute per IP; 3 emails a minute per address", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<Outcome>, ApiError> {
    let tenant = served(&headers, &state.config)?;
    state
        .services
        .email_codes
        .request(None, tenant.as_str(), &body.email)
        .await?;
    Ok(Json(Outcome {
        success: true,
        message: CODE_SENT,
    }))
}

/// Verify the code: a session token valid for 30 days.
#[utoipa::path(post, path = "/api/v1/auth/verify-code", tag = "VoiceStamp v1", request_body = CodeRequest,
    responses(
        (status = 200, description = "Signed in", body = Signed),
        (status = 400, description = "Wrong, used, replaced or expired code (`invalid_code`); five wrong codes end a code", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account signs in with a password and a second factor (`mfa_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "3 a minute per IP and per account", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify_code(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Json<Signed>, ApiError> {
    let tenant = served(&headers, &state.config)?;
    let signed = state
        .services
        .email_codes
        .verify_for_session_token(
            None,
            tenant.as_str(),
            &body.email,
            body.code.expose_secret(),
            &client,
        )
        .await?;
    Ok(Json(Signed {
        success: true,
        data: SessionData {
            token: signed.token,
            user: SessionUser {
                id: signed.user.id.to_string(),
                email: signed.user.email.to_string(),
                name: signed.user.name,
            },
            expires_at: rfc3339(signed.expires_at),
        },
    }))
}

/// Validate a token: a session token, an access token or a service API token.
#[utoipa::path(get, path = "/api/v1/auth/verify", tag = "VoiceStamp v1", security(("bearer" = [])),
    responses(
        (status = 200, description = "Valid; `expires_at` is null for a service token without expiry, whose `user.role` is `service`", body = VerifyAnswer),
        (status = 401, description = "Invalid: `valid: false`, `success: false`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify(
    principal: Result<Principal, ApiError>,
) -> Result<Json<VerifyAnswer>, ApiError> {
    let principal = principal.map_err(ApiError::with_valid_false)?;
    Ok(Json(principal.verify_answer()))
}

/// End the session of the bearer token (not in the document; its clients need it).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "VoiceStamp v1", security(("bearer" = [])),
    responses(
        (status = 200, description = "Signed out", body = Outcome),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
) -> Result<Json<Outcome>, ApiError> {
    state.services.sessions.sign_out(&auth, &client).await?;
    Ok(Json(Outcome {
        success: true,
        message: "Signed out",
    }))
}
