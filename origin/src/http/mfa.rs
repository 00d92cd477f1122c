//! The canonical API's second-factor area: answering a sign-in's challenge, the emailed
//! factor's setting, and the authenticator app (enrolment, confirmation, recovery codes,
//! turning it off).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post, put};
use axum::{Json, Router};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tessera_core::api::Problem;
use utoipa::ToSchema;

use super::auth::TokenResponse;
use super::extract::{ApiJson, Auth, EnrolAuth, OptionalJson};
use super::problem::ApiError;
use crate::services::mfa::Answer;
use crate::services::Client;
use crate::state::AppState;

/// The second-factor area's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/mfa/verify", post(mfa_verify))
        .route("/api/auth/mfa/webauthn/options", post(mfa_webauthn_options))
        .route("/api/auth/mfa/email", put(mfa_email))
        .route("/api/auth/mfa/totp/enroll", post(totp_enroll))
        .route("/api/auth/mfa/totp/confirm", post(totp_confirm))
        .route("/api/auth/mfa/totp", delete(totp_disable))
        .route("/api/auth/mfa/recovery-codes", post(recovery_codes))
}

/// A second factor's answer: a `code`, or a passkey's `credential` (one of the two).
/// `Debug` prints neither token nor code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MfaVerifyRequest {
    /// A code.
    Code {
        /// The `mfa_token` of the sign-in's answer.
        #[schema(value_type = String)]
        mfa_token: SecretString,
        /// The emailed or authenticator app's 6-digit code, or a recovery code.
        #[schema(value_type = String)]
        code: SecretString,
    },
    /// A passkey.
    Passkey {
        /// The `mfa_token` of the sign-in's answer.
        #[schema(value_type = String)]
        mfa_token: SecretString,
        /// A passkey's answer (`credential.toJSON()`) to the options of
        /// `POST /api/auth/mfa/webauthn/options`.
        #[schema(value_type = super::passkeys::AssertionCredentialShape)]
        credential: Box<webauthn_rs::prelude::PublicKeyCredential>,
    },
}

/// Finish a sign-in with its second factor (`amr: ["pwd", "otp"]`, `["pwd", "recovery"]` or
/// `["pwd", "webauthn"]`). The challenge lives 5 minutes, is single use, and ends at the
/// fifth wrong answer.
#[utoipa::path(post, path = "/api/auth/mfa/verify", tag = "mfa", request_body = MfaVerifyRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Wrong code or passkey (`invalid_code`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown, used, expired or exhausted challenge (`invalid_mfa_token`): sign in again", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mfa_verify(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<MfaVerifyRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let (mfa_token, answer) = match &body {
        MfaVerifyRequest::Code { mfa_token, code } => {
            (mfa_token, Answer::Code(code.expose_secret()))
        }
        MfaVerifyRequest::Passkey {
            mfa_token,
            credential,
        } => (mfa_token, Answer::Passkey(credential)),
    };
    let issued = state
        .services
        .mfa
        .verify(mfa_token.expose_secret(), answer, &client)
        .await?;
    Ok(Json(issued.into()))
}

/// The challenge a passkey answers.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MfaWebauthnRequest {
    /// The `mfa_token` of the sign-in's answer (its `methods` list `webauthn`).
    #[schema(value_type = String)]
    pub mfa_token: SecretString,
}

/// The options of a passkey answer to a challenge.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaWebauthnOptions {
    /// WebAuthn's `PublicKeyCredentialRequestOptions` (binary fields base64url): pass them to
    /// `navigator.credentials.get()` and send its answer to `POST /api/auth/mfa/verify` as
    /// `credential`, within 5 minutes.
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

/// Answer a sign-in's challenge with a passkey: the options for the account's passkeys.
#[utoipa::path(post, path = "/api/auth/mfa/webauthn/options", tag = "mfa",
    request_body = MfaWebauthnRequest,
    responses(
        (status = 200, description = "Request options (user verification required)", body = MfaWebauthnOptions),
        (status = 401, description = "Unknown, used, expired or exhausted challenge, or one without a passkey (`invalid_mfa_token`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mfa_webauthn_options(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<MfaWebauthnRequest>,
) -> Result<Json<MfaWebauthnOptions>, ApiError> {
    let public_key = state
        .services
        .mfa
        .webauthn_options(body.mfa_token.expose_secret())
        .await?;
    Ok(Json(MfaWebauthnOptions { public_key }))
}

/// Turn the emailed second factor on or off. `Debug` never prints the password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MfaEmailRequest {
    /// On or off.
    pub enabled: bool,
    /// The caller's current password, to confirm.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub password: Option<SecretString>,
}

/// The emailed second factor's setting.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaEmailSetting {
    /// Whether sign-in asks for an emailed code after the password.
    pub enabled: bool,
}

/// Turn the caller's emailed second factor on or off, confirmed by their password. Turning it
/// on needs a confirmed address.
#[utoipa::path(put, path = "/api/auth/mfa/email", tag = "mfa", security(("bearer" = [])),
    request_body = MfaEmailRequest,
    responses(
        (status = 200, description = "Set", body = MfaEmailSetting),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (`wrong_password`) or none sent (`password_required`), or the address is not confirmed (`email_not_verified`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mfa_email(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    ApiJson(body): ApiJson<MfaEmailRequest>,
) -> Result<Json<MfaEmailSetting>, ApiError> {
    let enabled = state
        .services
        .mfa
        .set_email(&auth, body.enabled, body.password, &client)
        .await?;
    Ok(Json(MfaEmailSetting { enabled }))
}

/// A started enrolment: add the secret to an authenticator app (scan the QR code), then
/// confirm with its first code. `Debug` never prints the secret.
#[derive(Serialize, ToSchema)]
pub struct EnrolmentBody {
    /// The secret, base32 (160 bits), for manual entry. Never shown again.
    pub secret: String,
    /// `otpauth://totp/<Issuer>:<email>?secret=…&issuer=<Issuer>&algorithm=SHA1&digits=6&period=30`.
    pub otpauth_uri: String,
    /// The same URI as an SVG QR code.
    pub qr_svg: String,
}

/// The current password that a change of second factors needs. `Debug` never prints it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct FactorChange {
    /// The caller's current password. Needed with an ordinary access token; the enrol-only
    /// token of a tenant that requires a second factor goes without.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub password: Option<SecretString>,
}

/// Start enrolling an authenticator app (replaces an enrolment not yet confirmed). With an
/// ordinary access token, the body carries the current `password`.
#[utoipa::path(post, path = "/api/auth/mfa/totp/enroll", tag = "mfa", security(("bearer" = [])),
    request_body = Option<FactorChange>,
    responses(
        (status = 200, description = "Pending until confirmed", body = EnrolmentBody),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (`wrong_password`) or none sent (`password_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An authenticator is active already (`totp_active`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn totp_enroll(
    State(state): State<AppState>,
    client: Client,
    EnrolAuth(auth): EnrolAuth,
    OptionalJson(body): OptionalJson<FactorChange>,
) -> Result<Json<EnrolmentBody>, ApiError> {
    let enrolment = state
        .services
        .totp
        .enroll(&auth, body.password, &client)
        .await?;
    Ok(Json(EnrolmentBody {
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauth_uri,
        qr_svg: enrolment.qr_svg,
    }))
}

/// A current authenticator code, and the current password that the change needs. `Debug`
/// prints neither.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TotpCode {
    /// The 6-digit code the app shows now.
    #[schema(value_type = String)]
    pub code: SecretString,
    /// The caller's current password (not needed with an enrol-only token).
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub password: Option<SecretString>,
}

/// Recovery codes, shown once: each signs in once in place of an app code.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten codes like `abcde-fghjk`.
    pub recovery_codes: Vec<String>,
}

/// Confirm the pending authenticator with its first code: from then on sign-in asks for a
/// code. The confirming code is spent; the owner is told by email.
#[utoipa::path(post, path = "/api/auth/mfa/totp/confirm", tag = "mfa", security(("bearer" = [])),
    request_body = TotpCode,
    responses(
        (status = 200, description = "Active; the recovery codes, shown this once", body = RecoveryCodes),
        (status = 400, description = "Wrong or already used code (`invalid_code`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (`wrong_password`) or none sent (`password_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No enrolment waiting (`no_pending_totp`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn totp_confirm(
    State(state): State<AppState>,
    client: Client,
    EnrolAuth(auth): EnrolAuth,
    ApiJson(body): ApiJson<TotpCode>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let recovery_codes = state
        .services
        .totp
        .confirm(&auth, body.code.expose_secret(), body.password, &client)
        .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// Replace the recovery codes (the old ones stop working), confirmed by the current password and
/// a current app code; the owner is told by email.
#[utoipa::path(post, path = "/api/auth/mfa/recovery-codes", tag = "mfa", security(("bearer" = [])),
    request_body = TotpCode,
    responses(
        (status = 200, description = "The new codes, shown this once", body = RecoveryCodes),
        (status = 400, description = "Wrong or already used code (`invalid_code`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (`wrong_password`) or none sent (`password_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No authenticator (`no_totp`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn recovery_codes(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    ApiJson(body): ApiJson<TotpCode>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let recovery_codes = state
        .services
        .totp
        .renew_recovery_codes(&auth, body.code.expose_secret(), body.password, &client)
        .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// Turn the authenticator app off (its recovery codes too), confirmed by the current password;
/// the user is told by email.
#[utoipa::path(delete, path = "/api/auth/mfa/totp", tag = "mfa", security(("bearer" = [])),
    request_body = FactorChange,
    responses(
        (status = 204, description = "Off"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (`wrong_password`) or none sent (`password_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No authenticator (`no_totp`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn totp_disable(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    ApiJson(body): ApiJson<FactorChange>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .totp
        .disable(&auth, body.password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
