//! The team/vault API — `/api/*`, exactly as its document shows: registration, login and
//! email confirmation answering `{userToken, vaultToken}`, confirmation resend, `GET` refresh,
//! forgotten passwords (`forgot-passsword`, `reset-passsword`, three s as in the document; the
//! two-s spellings answer too) and `exist-email`. The tenant is the one the request's headers
//! name, else the default tenant. Errors are the canonical problem+json (the document shows
//! none).

pub mod shapes;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret as _;
use tessera_core::api::Problem;

use super::extract::{ApiJson, Auth, Bearer};
use super::problem::ApiError;
use super::tenant::{named_by_request, served};
use crate::services::registration::{Registered, Registration};
use crate::services::sign_in::Attempt;
use crate::services::{Client, ServiceError};
use crate::state::AppState;
use shapes::{
    ForgotRequest, LoginRequest, RegisterRequest, ResendQuery, ResetRequest, Status, Tokens, OK,
};

/// The team/vault API's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/register", post(register))
        .route("/api/login", post(login))
        .route("/api/verify-email/{token}", get(verify_email))
        .route(
            "/api/resend-email-verification",
            get(resend_email_verification),
        )
        .route("/api/refresh", get(refresh))
        .route("/api/forgot-passsword", post(forgot_password))
        .route("/api/forgot-password", post(forgot_password_two_s))
        .route("/api/reset-passsword", post(reset_password))
        .route("/api/reset-password", post(reset_password_two_s))
        .route("/api/exist-email/{email}", get(exist_email))
}

/// Create a user, signed in at once; a confirmation email follows. This API answers tokens,
/// so an address that has an account is told apart (409 `email_taken`; its owner is emailed
/// about the attempt): use the canonical API's registration to keep that hidden.
#[utoipa::path(post, path = "/api/register", tag = "team/vault", request_body = RegisterRequest,
    responses(
        (status = 200, description = "Registered and signed in; `vaultToken` names no team until the address is confirmed", body = Tokens),
        (status = 400, description = "Invalid email (`invalid_email`) or name (`invalid_name`), password against the policy (`weak_password`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Registration closed (`registration_closed`); or registered, but the tenant requires a confirmed address (`email_not_verified`) or a second factor (`mfa_required`) before sign-in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The address has an account (`email_taken`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Json<Tokens>, ApiError> {
    let tenant = served(&headers, &state.config)?;
    let registration = Registration {
        named_tenant: None,
        tenant: tenant.as_str(),
        email: &body.email,
        password: body.password,
        name: &body.name,
    };
    let registered = state
        .services
        .registration
        .register(registration, &client)
        .await?;
    let Registered::Created(tenant, user) = registered else {
        return Err(ServiceError::EmailTaken.into());
    };
    let pair = state
        .services
        .vault_tokens
        .for_new_account(&tenant, &user, &client)
        .await?;
    Ok(Json(pair.into()))
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/login", tag = "team/vault", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Tokens),
        (status = 401, description = "Wrong email or password (`invalid_credentials`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Address not confirmed where required (`email_not_verified`); the account has a second factor (`mfa_required`: sign in through the canonical API or Back Office v2, whose documents have that step)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 sign-ins a minute per IP and per account", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<Tokens>, ApiError> {
    let tenant = served(&headers, &state.config)?;
    let attempt = Attempt {
        named_tenant: None,
        tenant: tenant.as_str(),
        email: &body.email,
        password: body.password,
    };
    let issued = state
        .services
        .sign_in
        .login_in_one_step(attempt, &client)
        .await?;
    let pair = state.services.vault_tokens.for_sign_in(&issued).await?;
    Ok(Json(pair.into()))
}

/// Confirm the address with the emailed link's token (single use, 48 hours; this API spends
/// it on `GET`). The first confirmation creates the default team and project; the answer
/// signs the user in with a `vaultToken` naming that team.
#[utoipa::path(get, path = "/api/verify-email/{token}", tag = "team/vault",
    params(("token" = String, Path, description = "The emailed link's token")),
    responses(
        (status = 200, description = "Confirmed and signed in", body = Tokens),
        (status = 400, description = "Unknown, used, replaced or expired link (`invalid_link`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Confirmed, but the account signs in with a second factor (`mfa_required`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    client: Client,
    Path(token): Path<String>,
) -> Result<Json<Tokens>, ApiError> {
    let (tenant, user) = state
        .services
        .registration
        .verify_email(&token, &client)
        .await?;
    let pair = state
        .services
        .vault_tokens
        .for_confirmed_address(&tenant, &user, &client)
        .await?;
    Ok(Json(pair.into()))
}

/// Email the caller a new confirmation link (the previous one stops working): one a minute,
/// five an hour. Answers a fresh token pair of the caller's session.
#[utoipa::path(get, path = "/api/resend-email-verification", tag = "team/vault", security(("bearer" = [])),
    params(("capcha" = Option<String>, Query, description = "The captcha answer; required when the server checks one")),
    responses(
        (status = 200, description = "A new link is on its way", body = Tokens),
        (status = 400, description = "Captcha missing or wrong (`captcha_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The address is confirmed already (`already_verified`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn resend_email_verification(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    Query(query): Query<ResendQuery>,
) -> Result<Json<Tokens>, ApiError> {
    state
        .services
        .registration
        .resend(&auth, query.capcha.as_deref(), &client)
        .await?;
    let pair = state.services.vault_tokens.renew(&auth).await?;
    Ok(Json(pair.into()))
}

/// New tokens for the session of the bearer `userToken`, which may have expired: the
/// session's own end (7 days after sign-in), its revocation and the idle limit
/// (`TESSERA_SESSION_IDLE_SECS`) are the bounds. Only sessions this API opened renew here.
#[utoipa::path(get, path = "/api/refresh", tag = "team/vault", security(("bearer" = [])),
    responses(
        (status = 200, description = "Renewed", body = Tokens),
        (status = 401, description = "Not a token of an active session opened through this API", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 a minute per IP", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Bearer(token): Bearer,
) -> Result<Json<Tokens>, ApiError> {
    let named = named_by_request(&headers, &state.config)?;
    let pair = state
        .services
        .vault_tokens
        .refresh(&token, named.as_ref(), &client)
        .await?;
    Ok(Json(pair.into()))
}

/// Ask for a password-reset link. The answer is the same whatever the account (a bearer
/// token, which the document shows, is not needed).
#[utoipa::path(post, path = "/api/forgot-passsword", tag = "team/vault", request_body = ForgotRequest,
    responses(
        (status = 200, description = "A link is on its way if the account exists", body = Status),
        (status = 400, description = "Malformed body or email (`invalid_email`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn forgot_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ForgotRequest>,
) -> Result<Json<Status>, ApiError> {
    let tenant = served(&headers, &state.config)?;
    state
        .services
        .password_reset
        .forgot(None, tenant.as_str(), &body.email)
        .await?;
    Ok(Json(OK))
}

/// Set a new password with the emailed link's token (single use, 30 minutes). Every session
/// of the user ends.
#[utoipa::path(post, path = "/api/reset-passsword", tag = "team/vault", request_body = ResetRequest,
    responses(
        (status = 200, description = "Changed", body = Status),
        (status = 400, description = "Unknown, used, replaced or expired link (`invalid_link`), or password against the policy (`weak_password`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<Json<Status>, ApiError> {
    state
        .services
        .password_reset
        .reset(body.token.expose_secret(), body.new_password, &client)
        .await?;
    Ok(Json(OK))
}

/// The same as `POST /api/forgot-passsword`, under the spelling clients may correct it to.
#[utoipa::path(post, path = "/api/forgot-password", tag = "team/vault", request_body = ForgotRequest,
    responses(
        (status = 200, description = "A link is on its way if the account exists", body = Status),
        (status = 400, description = "Malformed body or email (`invalid_email`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn forgot_password_two_s(
    state: State<AppState>,
    headers: HeaderMap,
    body: ApiJson<ForgotRequest>,
) -> Result<Json<Status>, ApiError> {
    forgot_password(state, headers, body).await
}

/// The same as `POST /api/reset-passsword`, under the spelling clients may correct it to.
#[utoipa::path(post, path = "/api/reset-password", tag = "team/vault", request_body = ResetRequest,
    responses(
        (status = 200, description = "Changed", body = Status),
        (status = 400, description = "Unknown, used, replaced or expired link (`invalid_link`), or password against the policy (`weak_password`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reset_password_two_s(
    state: State<AppState>,
    client: Client,
    body: ApiJson<ResetRequest>,
) -> Result<Json<Status>, ApiError> {
    reset_password(state, client, body).await
}

/// Whether an account uses this address: `true` or `false`. Limited like sign-in (5 a minute
/// per IP); a tenant can turn it off (`tessera tenant create --exist-email off`).
#[utoipa::path(get, path = "/api/exist-email/{email}", tag = "team/vault",
    params(("email" = String, Path, description = "Email address")),
    responses(
        (status = 200, description = "Whether the address has an account", body = bool, content_type = "application/json"),
        (status = 403, description = "The tenant does not answer this (`exist_email_disabled`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "5 a minute per IP", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn exist_email(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(email): Path<String>,
) -> Result<Json<bool>, ApiError> {
    let tenant = served(&headers, &state.config)?;
    let taken = state
        .services
        .registration
        .address_taken(&tenant, &email)
        .await?;
    Ok(Json(taken))
}
