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
    /// An access token whose session was ended, or whose user was disabled.
    #[error("the token's session has ended")]
    SessionEnded,
    /// The request names a tenant other than the one its token or body is for.
    #[error("the request names another tenant")]
    TenantMismatch,
    /// No active session of the caller has this id.
    #[error("no such session")]
    SessionNotFound,
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

impl ServiceError {
    /// A short label for metrics: the kind of outcome, never a detail.
    #[must_use]
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::InvalidToken(_) | Self::SessionEnded => "invalid_token",
            Self::TenantMismatch => "tenant_mismatch",
            Self::SessionNotFound => "not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::Busy => "busy",
            Self::Store(_) | Self::Signing(_) => "error",
        }
    }
}

/// Result of a service call.
pub type ServiceResult<T> = Result<T, ServiceError>;
