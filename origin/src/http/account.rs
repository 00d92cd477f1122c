//! The canonical API's account area: registration and email confirmation, forgotten
//! passwords, sign-in by emailed code, password change, and an admin's sign-out of a user.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tessera_core::api::Problem;
use utoipa::ToSchema;

use super::auth::TokenResponse;
use super::extract::{ApiJson, Auth};
use super::problem::ApiError;
use super::tenant::{named_by_request, of_body};
use crate::services::registration::Registration;
use crate::services::Client;
use crate::state::AppState;

/// The account area's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/verify-email", post(verify_email))
        .route("/api/auth/resend-verification", post(resend_verification))
        .route("/api/auth/forgot-password", post(forgot_password))
        .route("/api/auth/reset-password", post(reset_password))
        .route("/api/auth/email-code", post(email_code))
        .route("/api/auth/email-code/verify", post(email_code_verify))
        .route("/api/auth/password", post(change_password))
        .route("/api/auth/admin/sign-out", post(admin_sign_out))
}

/// A short confirmation, the same for every outcome it covers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    /// What happens next.
    pub message: &'static str,
}

/// Registration request. `Debug` never prints the password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Tenant slug; left out, the tenant the request names (`X-Tenant`, subdomain), else the
    /// default tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Email address.
    #[schema(format = Email)]
    pub email: String,
    /// Password (the sign-in policy: length, not common, not guessable from the account).
    #[schema(value_type = String, min_length = 12, max_length = 1024)]
    pub password: SecretString,
    /// Display name (at most 100 characters).
    #[serde(default)]
    #[schema(max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: String,
}

const REGISTERED: &str = "Check your email to confirm your address.";

/// Register. The answer is the same whether or not the address already has an account (its
/// owner is emailed about the attempt instead); the address is confirmed by an emailed link.
#[utoipa::path(post, path = "/api/auth/register", tag = "account", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered (or the address's owner was told); a confirmation link was emailed", body = Message),
        (status = 400, description = "Malformed body, invalid email (`invalid_email`) or name (`invalid_name`), password against the policy (`weak_password`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The tenant does not accept registrations (`registration_closed`), or X-Tenant names another tenant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant (`tenant_not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let named = named_by_request(&headers, &state.config)?;
    let tenant = of_body(body.tenant.as_deref(), named.as_ref(), &state.config);
    let registration = Registration {
        named_tenant: named.as_ref(),
        tenant: &tenant,
        email: &body.email,
        password: body.password,
        name: &body.name,
    };
    state
        .services
        .registration
        .register(registration, &client)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Message {
            message: REGISTERED,
        }),
    ))
}

/// A request that carries an emailed link's token. `Debug` never prints it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The `token` of the emailed link.
    #[schema(value_type = String)]
    pub token: SecretString,
}

/// The address is confirmed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verified {
    /// Always `true`.
    pub email_verified: bool,
}

/// Confirm an email address with the token of the emailed link (single use, 48 hours). The
/// first confirmation creates the user's default team and project.
#[utoipa::path(post, path = "/api/auth/verify-email", tag = "account", request_body = TokenRequest,
    responses(
        (status = 200, description = "Confirmed", body = Verified),
        (status = 400, description = "Unknown, used, replaced or expired link (`invalid_link`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<Json<Verified>, ApiError> {
    use secrecy::ExposeSecret as _;
    state
        .services
        .registration
        .verify_email(body.token.expose_secret(), &client)
        .await?;
    Ok(Json(Verified {
        email_verified: true,
    }))
}

/// Resend request: the body is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ResendRequest {
    /// The captcha widget's answer, when the server checks one (Turnstile-compatible).
    #[serde(default)]
    pub captcha: Option<String>,
}

/// Email the caller a new confirmation link (the previous one stops working). At most one a
/// minute and five an hour.
#[utoipa::path(post, path = "/api/auth/resend-verification", tag = "account", security(("bearer" = [])),
    request_body(content = Option<ResendRequest>, description = "Optional; `captcha` is required when the server checks one"),
    responses(
        (status = 202, description = "A new link is on its way", body = Message),
        (status = 400, description = "Captcha missing or wrong (`captcha_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The address is confirmed already (`already_verified`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn resend_verification(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    // No body, or `null`, is the default request.
    let body: ResendRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ResendRequest::default()
    } else {
        serde_json::from_slice::<Option<ResendRequest>>(&body)
            .map_err(|_| {
                ApiError::bad_request("malformed_json", "The request body is not valid JSON.")
            })?
            .unwrap_or_default()
    };
    state
        .services
        .registration
        .resend(&auth, body.captcha.as_deref(), &client)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Message {
            message: "A new confirmation link is on its way.",
        }),
    ))
}

/// A request naming an account by tenant and email.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AccountRequest {
    /// Tenant slug; left out, the tenant the request names (`X-Tenant`, subdomain), else the
    /// default tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Email address.
    #[schema(format = Email)]
    pub email: String,
}

const RESET_SENT: &str =
    "If an account uses this address, a link to reset its password is on its way.";

/// Ask for a password-reset link. The answer is byte-identical whether or not the account
/// exists, and takes comparable time: the account is looked up later, by the mail worker.
#[utoipa::path(post, path = "/api/auth/forgot-password", tag = "account", request_body = AccountRequest,
    responses(
        (status = 202, description = "A link is on its way if the account exists", body = Message),
        (status = 400, description = "Malformed body or email (`invalid_email`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant (`tenant_not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn forgot_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AccountRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let named = named_by_request(&headers, &state.config)?;
    let tenant = of_body(body.tenant.as_deref(), named.as_ref(), &state.config);
    state
        .services
        .password_reset
        .forgot(named.as_ref(), &tenant, &body.email)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Message {
            message: RESET_SENT,
        }),
    ))
}

/// Reset request. `Debug` prints neither the token nor the password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetRequest {
    /// The `token` of the emailed link.
    #[schema(value_type = String)]
    pub token: SecretString,
    /// The new password.
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// What a reset answers.
pub const RESET_DONE: &str =
    "Your password was changed and every session signed out. Sign in with the new password.";

/// Set a new password with the emailed link's token (single use, 30 minutes; a newer request
/// voids it). Every session of the user ends; nobody is signed in.
#[utoipa::path(post, path = "/api/auth/reset-password", tag = "account", request_body = ResetRequest,
    responses(
        (status = 200, description = "Password changed; sign in with it", body = Message),
        (status = 400, description = "Unknown, used, replaced or expired link (`invalid_link`), or password against the policy (`weak_password`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<Json<Message>, ApiError> {
    use secrecy::ExposeSecret as _;
    state
        .services
        .password_reset
        .reset(body.token.expose_secret(), body.password, &client)
        .await?;
    Ok(Json(Message {
        message: RESET_DONE,
    }))
}

const CODE_SENT: &str = "If an account uses this address, a sign-in code is on its way.";

/// Ask for a sign-in code by email (6 digits, 10 minutes; a new one voids the previous). The
/// answer is byte-identical whether or not the account exists.
#[utoipa::path(post, path = "/api/auth/email-code", tag = "account", request_body = AccountRequest,
    responses(
        (status = 202, description = "A code is on its way if the account exists", body = Message),
        (status = 400, description = "Malformed body or email (`invalid_email`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant (`tenant_not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn email_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AccountRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let named = named_by_request(&headers, &state.config)?;
    let tenant = of_body(body.tenant.as_deref(), named.as_ref(), &state.config);
    state
        .services
        .email_codes
        .request(named.as_ref(), &tenant, &body.email)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Message { message: CODE_SENT })))
}

/// A code to trade for tokens. `Debug` never prints the code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeRequest {
    /// Tenant slug; left out, the tenant the request names (`X-Tenant`, subdomain), else the
    /// default tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Email address.
    #[schema(format = Email)]
    pub email: String,
    /// The 6-digit code.
    #[schema(value_type = String)]
    pub code: SecretString,
}

/// Sign in with an emailed code (`amr: ["otp"]`). Five wrong codes end the code.
#[utoipa::path(post, path = "/api/auth/email-code/verify", tag = "account", request_body = CodeRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Wrong, used, replaced or expired code (`invalid_code`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account signs in with a password and second factor (`mfa_required`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn email_code_verify(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    use secrecy::ExposeSecret as _;
    let named = named_by_request(&headers, &state.config)?;
    let tenant = of_body(body.tenant.as_deref(), named.as_ref(), &state.config);
    let issued = state
        .services
        .email_codes
        .verify(
            named.as_ref(),
            &tenant,
            &body.email,
            body.code.expose_secret(),
            &client,
        )
        .await?;
    Ok(Json(issued.into()))
}

/// Password change. `Debug` prints neither password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    /// The current password.
    #[schema(value_type = String)]
    pub current_password: SecretString,
    /// The new password (the sign-in policy).
    #[schema(value_type = String)]
    pub new_password: SecretString,
}

/// Change the caller's password. Every other session of the caller ends; this one stays.
#[utoipa::path(post, path = "/api/auth/password", tag = "account", security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "New password against the policy (`weak_password`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong current password (`wrong_password`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .accounts
        .change_password(&auth, body.current_password, body.new_password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An admin's request to sign a user out everywhere.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AdminSignOut {
    /// The user's email address, in the admin's own tenant.
    #[schema(format = Email)]
    pub email: String,
}

/// How many sessions ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    /// Sessions ended (0 when the user had none).
    pub sessions_ended: usize,
}

/// End every session of a user of the caller's tenant (admins only). Their refresh tokens stop
/// at once and their access tokens within the revocation delays; they may sign in again.
#[utoipa::path(post, path = "/api/auth/admin/sign-out", tag = "account", security(("bearer" = [])),
    request_body = AdminSignOut,
    responses(
        (status = 200, description = "Signed out", body = SessionsEnded),
        (status = 400, description = "Malformed address (`invalid_email`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No account with this address in the tenant (`not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn admin_sign_out(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    ApiJson(body): ApiJson<AdminSignOut>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let sessions_ended = state
        .services
        .accounts
        .end_sessions_as_admin(&auth, &body.email, &client)
        .await?;
    Ok(Json(SessionsEnded { sessions_ended }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_never_print_their_secrets() {
        let shown = format!(
            "{:?} {:?} {:?} {:?} {:?} {:?}",
            serde_json::from_str::<RegisterRequest>(
                r#"{"tenant":"acme","email":"a@b.io","password":"hunter2-secret"}"#
            )
            .unwrap(),
            serde_json::from_str::<TokenRequest>(r#"{"token":"tsr_el_acme_secretpart"}"#).unwrap(),
            serde_json::from_str::<ResetRequest>(
                r#"{"token":"tsr_el_acme_secretpart","password":"hunter2-secret"}"#
            )
            .unwrap(),
            serde_json::from_str::<CodeRequest>(
                r#"{"tenant":"acme","email":"a@b.io","code":"918273"}"#
            )
            .unwrap(),
            serde_json::from_str::<PasswordChange>(
                r#"{"current_password":"hunter2-secret","new_password":"hunter2-secret"}"#
            )
            .unwrap(),
            serde_json::from_str::<crate::http::mfa::MfaVerifyRequest>(
                r#"{"mfa_token":"tsr_mc_acme_secretpart","code":"918273"}"#
            )
            .unwrap(),
        );
        for secret in ["hunter2", "secretpart", "918273"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
