//! What a service can answer instead of a result: the domain's own errors, free of any
//! transport. `http::problem` maps each to problem+json in one place.

use tessera_core::jwt::{KeyError, VerifyError};
use tessera_core::ratelimit::{Decision, Quota, RouteClass};

use crate::password::Busy;
use crate::store::StoreError;

/// A service's refusal or failure.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Unknown tenant, unknown email, wrong password or disabled account: one answer for all.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A refresh token that is malformed, unknown, of an ended family, or reused.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// An access token that does not verify.
    #[error("invalid access token: {0}")]
    InvalidToken(#[from] VerifyError),
    /// A token restricted to enrolling a second factor, used elsewhere.
    #[error("restricted token")]
    RestrictedToken,
    /// An access token whose session was ended, or whose user was disabled.
    #[error("the token's session has ended")]
    SessionEnded,
    /// The request names a tenant other than the one its token or body is for.
    #[error("the request names another tenant")]
    TenantMismatch,
    /// No active session of the caller has this id.
    #[error("no such session")]
    SessionNotFound,
    /// A service token that is malformed, unknown, revoked or expired.
    #[error("invalid service token")]
    InvalidServiceToken,
    /// The tenant does not answer whether an address has an account.
    #[error("email lookup disabled")]
    EmailLookupDisabled,
    /// The address has an account (only where an API's document must say so).
    #[error("email taken")]
    EmailTaken,
    /// The caller may not do this (an admin's action).
    #[error("forbidden")]
    Forbidden,
    /// No such thing in the caller's tenant.
    #[error("not found")]
    NotFound,
    /// Over a rate limit.
    #[error("rate limited ({})", class.name())]
    RateLimited {
        /// The route class whose quota was exceeded.
        class: RouteClass,
        /// The refusal, with its retry time.
        decision: Decision,
        /// The quota.
        quota: Quota,
    },
    /// Over a per-user limit of its own (resending a verification email).
    #[error("too many requests; retry in {retry_after_secs} s")]
    TooSoon {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// The body names a tenant that does not exist (tenants are not secret).
    #[error("no such tenant")]
    TenantNotFound,
    /// The tenant does not accept registrations.
    #[error("registration is closed")]
    RegistrationClosed,
    /// The tenant requires a confirmed email address to sign in.
    #[error("email address not confirmed")]
    EmailNotVerified,
    /// The address is confirmed already.
    #[error("email address already confirmed")]
    AlreadyVerified,
    /// A field is malformed or breaks a rule (the password policy included).
    #[error("{detail}")]
    InvalidInput {
        /// Stable code (`invalid_email`, `weak_password`…).
        code: &'static str,
        /// What is wrong, for the user.
        detail: String,
    },
    /// The request is well formed but clashes with what exists (a name already used).
    #[error("{detail}")]
    Conflict {
        /// Stable code (`name_taken`…).
        code: &'static str,
        /// What clashes, for the user.
        detail: String,
    },
    /// An emailed link's token that is malformed, unknown, used or expired.
    #[error("invalid or expired link")]
    InvalidLink,
    /// A wrong, used or expired code (email sign-in, second factor).
    #[error("invalid or expired code")]
    InvalidCode,
    /// An MFA token that is malformed, unknown, used, expired or out of tries.
    #[error("invalid or expired mfa token")]
    InvalidMfaToken,
    /// The current password given to confirm a change is wrong.
    #[error("wrong password")]
    WrongPassword,
    /// A change that needs the current password came without one.
    #[error("password required")]
    PasswordRequired,
    /// The account needs its second factor: a way in that skips it is refused.
    #[error("this account signs in with a second factor")]
    SecondFactorRequired,
    /// A confirmed authenticator exists already (turn it off first).
    #[error("an authenticator is active")]
    TotpActive,
    /// No enrolment is waiting for its first code.
    #[error("no pending authenticator")]
    NoPendingTotp,
    /// The user has no authenticator.
    #[error("no authenticator")]
    NoTotp,
    /// An OpenID client that is unknown or did not prove itself (RFC 6749 §5.2).
    #[error("client authentication failed")]
    InvalidClient,
    /// An authorization code or refresh token that is unknown, used, expired, of another
    /// client or redirect URI, or whose PKCE verifier does not match (RFC 6749 §5.2).
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// The captcha was missing or did not verify.
    #[error("captcha failed")]
    CaptchaFailed,
    /// The password-hashing queue is full.
    #[error("password hashing queue is full")]
    Busy,
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A token could not be signed.
    #[error("signing: {0}")]
    Signing(#[from] KeyError),
}

impl From<Busy> for ServiceError {
    fn from(_: Busy) -> Self {
        Self::Busy
    }
}

impl From<crate::password::PolicyError> for ServiceError {
    fn from(error: crate::password::PolicyError) -> Self {
        Self::InvalidInput {
            code: "weak_password",
            detail: error.to_string(),
        }
    }
}

impl ServiceError {
    /// A short label for metrics: the kind of outcome, never a detail.
    #[must_use]
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::InvalidToken(_)
            | Self::SessionEnded
            | Self::RestrictedToken
            | Self::InvalidServiceToken => "invalid_token",
            Self::TenantMismatch => "tenant_mismatch",
            Self::SessionNotFound | Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::EmailLookupDisabled => "exist_email_disabled",
            Self::EmailTaken => "email_taken",
            Self::RateLimited { .. } => "rate_limited",
            Self::Busy => "busy",
            Self::TooSoon { .. } => "rate_limited",
            Self::TenantNotFound => "tenant_not_found",
            Self::RegistrationClosed => "registration_closed",
            Self::EmailNotVerified => "email_not_verified",
            Self::AlreadyVerified => "already_verified",
            Self::InvalidInput { code, .. } | Self::Conflict { code, .. } => code,
            Self::InvalidLink => "invalid_link",
            Self::InvalidCode => "invalid_code",
            Self::InvalidMfaToken => "invalid_mfa_token",
            Self::WrongPassword => "wrong_password",
            Self::PasswordRequired => "password_required",
            Self::SecondFactorRequired => "mfa_required",
            Self::CaptchaFailed => "captcha_failed",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::TotpActive => "totp_active",
            Self::NoPendingTotp => "no_pending_totp",
            Self::NoTotp => "no_totp",
            Self::Store(_) | Self::Signing(_) => "error",
        }
    }
}

/// Result of a service call.
pub type ServiceResult<T> = Result<T, ServiceError>;
