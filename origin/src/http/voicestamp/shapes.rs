//! VoiceStamp v1's request and response bodies, named as its document names them.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = VoiceStampLoginRequest)]
pub struct LoginRequest {
    /// The user's email address.
    #[schema(format = Email)]
    pub email: String,
}

/// `POST /api/v1/auth/verify-code`. `Debug` never prints the code.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = VoiceStampCodeRequest)]
pub struct CodeRequest {
    /// The user's email address.
    #[schema(format = Email)]
    pub email: String,
    /// The 6-digit code from the email.
    #[schema(value_type = String)]
    pub code: SecretString,
}

/// A success with a message.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = VoiceStampOutcome)]
pub struct Outcome {
    /// Always `true` (failures are problems with `success: false`).
    pub success: bool,
    /// What happened.
    pub message: &'static str,
}

/// A signed-in user.
#[derive(Serialize, ToSchema)]
#[schema(as = VoiceStampSigned)]
pub struct Signed {
    /// Always `true`.
    pub success: bool,
    /// The session.
    pub data: SessionData,
}

/// The session token and its user.
#[derive(Serialize, ToSchema)]
#[schema(as = VoiceStampSessionData)]
pub struct SessionData {
    /// The session token (a JWT bound to its session: verified at the edge, revoked by
    /// logout). Send it as `Authorization: Bearer`.
    pub token: String,
    /// The user.
    pub user: SessionUser,
    /// When the token expires: 30 days after sign-in (RFC 3339).
    pub expires_at: String,
}

/// The user of a session.
#[derive(Serialize, ToSchema)]
#[schema(as = VoiceStampSessionUser)]
pub struct SessionUser {
    /// User id (UUID).
    pub id: String,
    /// Email address.
    #[schema(format = Email)]
    pub email: String,
    /// Display name.
    pub name: String,
}
