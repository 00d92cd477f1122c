//! The team/vault API's request and response bodies, named as its document names them.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::services::vault_tokens::VaultPair;

/// `POST /api/register`. `Debug` never prints the password.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TeamVaultRegisterRequest)]
pub struct RegisterRequest {
    /// Email address.
    #[schema(format = Email)]
    pub email: String,
    /// Password (the sign-in policy).
    #[schema(value_type = String, min_length = 12, max_length = 1024)]
    pub password: SecretString,
    /// Display name (at most 100 characters).
    #[schema(max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: String,
}

/// `POST /api/login`. `Debug` never prints the password.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TeamVaultLoginRequest)]
pub struct LoginRequest {
    /// Email address.
    #[schema(format = Email)]
    pub email: String,
    /// Password.
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// `POST /api/forgot-passsword`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TeamVaultForgotRequest)]
pub struct ForgotRequest {
    /// Email address.
    #[schema(format = Email)]
    pub email: String,
}

/// `POST /api/reset-passsword`. `Debug` prints neither the token nor the password.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TeamVaultResetRequest)]
#[serde(rename_all = "camelCase")]
pub struct ResetRequest {
    /// The `token` of the emailed link.
    #[schema(value_type = String)]
    pub token: SecretString,
    /// The new password.
    #[schema(value_type = String)]
    pub new_password: SecretString,
}

/// `GET /api/resend-email-verification`'s query.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TeamVaultResendQuery)]
pub struct ResendQuery {
    /// The captcha widget's answer (checked when the server has a captcha secret).
    #[serde(default)]
    pub capcha: Option<String>,
}

/// The token pair.
#[derive(Serialize, ToSchema)]
#[schema(as = TeamVaultTokens)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// An access token of the session (JWT, 15 minutes; `GET /api/refresh` renews it).
    pub user_token: String,
    /// The team token: an access token of the same session whose `team` and `team_role`
    /// claims name the user's default team and role; without them until the address is
    /// confirmed (the team is created then).
    pub vault_token: String,
}

impl From<VaultPair> for Tokens {
    fn from(pair: VaultPair) -> Self {
        Self {
            user_token: pair.user_token,
            vault_token: pair.vault_token,
        }
    }
}

/// `{"status":"ok"}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TeamVaultStatus)]
pub struct Status {
    /// Always `ok`.
    pub status: &'static str,
}

/// The one `Status` this API answers.
pub const OK: Status = Status { status: "ok" };
