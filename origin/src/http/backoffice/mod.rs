//! Back Office v2 — `/api/v2/*`, exactly as its document shows: sign-in answering
//! `2faRequired`, 2FA confirmation, refresh rotating both tokens, sign-out. The tenant is the
//! one the request's headers name, else the default tenant. Errors are the canonical
//! problem+json (the document shows none).

pub mod shapes;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::ExposeSecret as _;
use tessera_core::api::Problem;

use super::extract::{ApiJson, Auth};
use super::problem::ApiError;
use super::tenant::served;
use crate::clock::iso8601_offset;
use crate::services::sign_in::Attempt;
use crate::services::{Client, SignedIn};
use crate::state::AppState;
use shapes::{
    ConfirmRequest, RefreshRequest, SignInRequest, SignInResponse, TokenPair, TwoFactorDetails,
};

/// Back Office v2's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v2/signin", post(sign_in))
        .route("/api/v2/2fa/confirm", post(confirm))
        .route("/api/v2/refresh", post(refresh))
        .route("/api/v2/signout", post(sign_out))
}

/// Sign in to the Back Office.
#[utoipa::path(post, path = "/api/v2/signin", tag = "Back Office v2", request_body = SignInRequest,
    responses(
        (status = 200, description = "Signed in (`2faRequired: false` with the tokens), or a code was sent (`2faRequired: true` with `2faDetails`)", body = SignInResponse),
        (status = 401, description = "Wrong email or password (`invalid_credentials`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Address not confirmed where the tenant requires it (`email_not_verified`), or the tenant requires a second factor the user has not set up (`mfa_enrollment_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 sign-ins a minute per account (from any address) and per IP", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignInRequest>,
) -> Result<Json<SignInResponse>, ApiError> {
    let tenant = served(&headers, &state.config)?;
    let attempt = Attempt {
        named_tenant: None,
        tenant: tenant.as_str(),
        email: &body.email,
        password: body.password,
    };
    let answer = match state.services.sign_in.login(attempt, &client).await? {
        SignedIn::Tokens(issued) => SignInResponse {
            two_factor_required: false,
            two_factor_details: None,
            tokens: Some(TokenPair::from(*issued)),
        },
        SignedIn::SecondFactor(challenge) => {
            let expires_at = state.clock.now_secs() + challenge.expires_in.cast_signed();
            SignInResponse {
                two_factor_required: true,
                two_factor_details: Some(TwoFactorDetails {
                    provider: challenge.methods.first().copied().unwrap_or("email"),
                    token: challenge.mfa_token,
                    expires_at: iso8601_offset(expires_at),
                }),
                tokens: None,
            }
        }
        SignedIn::EnrolmentRequired { .. } => return Err(enrolment_required()),
    };
    Ok(Json(answer))
}

fn enrolment_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "mfa_enrollment_required",
        "Second factor required",
    )
    .detail("This tenant requires a second factor: sign in with POST /api/auth/login to enrol an authenticator app.")
}

/// Confirm a 2FA verification code.
#[utoipa::path(post, path = "/api/v2/2fa/confirm", tag = "Back Office v2", request_body = ConfirmRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 400, description = "Wrong code (`invalid_code`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown, used, expired or exhausted 2FA token (`invalid_mfa_token`): sign in again", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "3 attempts a minute per IP and per account", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn confirm(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<ConfirmRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let issued = state
        .services
        .mfa
        .verify(
            body.token.expose_secret(),
            crate::services::mfa::Answer::Code(body.code.expose_secret()),
            &client,
        )
        .await?;
    Ok(Json(issued.into()))
}

/// Refresh the access token: both tokens rotate; a reused refresh token ends its family.
#[utoipa::path(post, path = "/api/v2/refresh", tag = "Back Office v2", request_body = RefreshRequest,
    responses(
        (status = 200, description = "Rotated", body = TokenPair),
        (status = 401, description = "Unknown, revoked, expired or reused refresh token (`invalid_refresh_token`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 refreshes a minute per IP", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let tenant = served(&headers, &state.config)?;
    let issued = state
        .services
        .refresh
        .refresh(body.refresh_token.expose_secret(), Some(&tenant), &client)
        .await?;
    Ok(Json(issued.into()))
}

/// Sign out of the Back Office: the session ends, and its access token gets 401 from then on.
#[utoipa::path(post, path = "/api/v2/signout", tag = "Back Office v2", security(("bearer" = [])),
    responses(
        (status = 200, description = "Signed out"),
        (status = 401, description = "The access token was revoked or expired", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sign_out(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
) -> Result<StatusCode, ApiError> {
    state.services.sessions.sign_out(&auth, &client).await?;
    Ok(StatusCode::OK)
}
