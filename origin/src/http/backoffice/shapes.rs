//! Back Office v2's request and response bodies, named as its document names them.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::iso8601_offset;
use crate::services::Issued;

/// `POST /api/v2/signin`. `Debug` never prints the password.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = BackOfficeSignInRequest)]
pub struct SignInRequest {
    /// The user email.
    #[schema(format = Email)]
    pub email: String,
    /// The user password.
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// `POST /api/v2/2fa/confirm`. `Debug` never prints the token or the code.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = BackOfficeConfirmRequest)]
pub struct ConfirmRequest {
    /// The 2FA token of the sign-in.
    #[schema(value_type = String)]
    pub token: SecretString,
    /// The verification code sent to the user's email (or from their authenticator app).
    #[schema(value_type = String)]
    pub code: SecretString,
}

/// `POST /api/v2/refresh`. `Debug` never prints the token.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = BackOfficeRefreshRequest)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The refresh token issued for a user.
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
}

/// A token with its times.
#[derive(Serialize, ToSchema)]
#[schema(as = BackOfficeTokenDetails)]
#[serde(rename_all = "camelCase")]
pub struct TokenDetails {
    /// The token.
    pub token: String,
    /// When it was generated (ISO 8601, `+00:00`).
    pub created_at: String,
    /// When it is due to expire (ISO 8601, `+00:00`).
    pub expires_at: String,
}

/// The access and refresh tokens.
#[derive(Serialize, ToSchema)]
#[schema(as = BackOfficeTokenPair)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    /// The access token (a JWT, 15 minutes).
    pub access_token: TokenDetails,
    /// The refresh token (opaque, single use; its family ends 7 days after sign-in).
    pub refresh_token: TokenDetails,
}

impl From<Issued> for TokenPair {
    fn from(issued: Issued) -> Self {
        let created_at = iso8601_offset(issued.issued_at);
        Self {
            access_token: TokenDetails {
                token: issued.access_token,
                created_at: created_at.clone(),
                expires_at: iso8601_offset(issued.access_expires_at),
            },
            refresh_token: TokenDetails {
                token: issued.refresh_token,
                created_at,
                expires_at: iso8601_offset(issued.refresh_expires_at),
            },
        }
    }
}

/// The details of a pending second factor.
#[derive(Serialize, ToSchema)]
#[schema(as = BackOfficeTwoFactorDetails)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorDetails {
    /// The 2FA token: send it to `POST /api/v2/2fa/confirm` with the code.
    pub token: String,
    /// How the code reaches the user: `email`, or `totp` for an authenticator app.
    pub provider: &'static str,
    /// When the 2FA token is due to expire (ISO 8601, `+00:00`).
    pub expires_at: String,
}

/// The answer to a correct password.
#[derive(Serialize, ToSchema)]
#[schema(as = BackOfficeSignInResponse)]
pub struct SignInResponse {
    /// Whether a second factor is due.
    #[serde(rename = "2faRequired")]
    pub two_factor_required: bool,
    /// With `2faRequired: true`.
    #[serde(rename = "2faDetails", skip_serializing_if = "Option::is_none")]
    pub two_factor_details: Option<TwoFactorDetails>,
    /// With `2faRequired: false`.
    #[serde(flatten)]
    pub tokens: Option<TokenPair>,
}
