//! The one API error type: every failure a client sees is RFC 9457 problem+json with a stable
//! `code`. Service errors are mapped to it here and nowhere else; unexpected failures become an
//! opaque 500 whose cause is logged, never shown.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::api::Problem;
use tessera_core::ratelimit::{self, Decision, Quota, RouteClass};

use crate::services::ServiceError;

/// The stable `code` of a problem answer, kept in the response's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ProblemCode(pub &'static str);

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: Option<String>,
    retry_after_secs: Option<u64>,
    extra_headers: Vec<(&'static str, String)>,
    valid_false: bool,
}

impl ApiError {
    /// A client error with a status, a stable code and a title.
    #[must_use]
    pub fn new(status: StatusCode, code: &'static str, title: &'static str) -> Self {
        Self {
            status,
            code,
            title,
            detail: None,
            retry_after_secs: None,
            extra_headers: Vec::new(),
            valid_false: false,
        }
    }

    /// Adds a human-readable detail.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds `Retry-After`.
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    /// Adds response headers (rate-limit headers).
    #[must_use]
    pub fn headers(mut self, headers: impl IntoIterator<Item = (&'static str, String)>) -> Self {
        self.extra_headers.extend(headers);
        self
    }

    /// Marks the body with `valid: false` (token-verification endpoints).
    #[must_use]
    pub fn with_valid_false(mut self) -> Self {
        self.valid_false = true;
        self
    }

    /// The stable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 400: the request body or parameters are not acceptable.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, "Bad request").detail(detail)
    }

    /// 401: a missing, malformed, expired or revoked token.
    pub fn invalid_token(code: &'static str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, "Invalid token")
    }

    /// 403: the request names a tenant other than its token's.
    pub fn tenant_mismatch() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "tenant_mismatch",
            tessera_core::tenant::MISMATCH_TITLE,
        )
        .detail(tessera_core::tenant::MISMATCH_DETAIL)
    }

    /// 404.
    pub fn not_found() -> Self {
        Self::not_found_code("not_found")
    }

    /// 404 with a code of its own.
    pub fn not_found_code(code: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, "Not found")
    }

    /// 500: the cause is logged here and never shown to the client.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
        )
    }

    /// 429 with `Retry-After` and the `RateLimit` headers.
    #[must_use]
    pub fn too_many(class: RouteClass, decision: Decision, quota: Quota) -> Self {
        metrics::counter!("tessera_rate_limited_total", "class" => class.name()).increment(1);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
        )
        .detail(ratelimit::limited_detail(class, quota))
        .retry_after(decision.retry_after_secs().unwrap_or(1))
        .headers(decision.headers(class.name(), quota))
    }

    /// The body of this error.
    #[must_use]
    pub fn problem(&self) -> Problem {
        let mut problem = Problem::new(
            self.status.as_u16(),
            self.code,
            self.title,
            self.detail.as_deref(),
        );
        problem.valid = self.valid_false.then_some(false);
        problem
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        // For the request log (development mode): the stable code, without reading the body.
        response.extensions_mut().insert(ProblemCode(self.code));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera\""),
            );
        }
        for (name, value) in self.extra_headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// A storage failure: 503 with `Retry-After` while the database is unavailable (the cause is
/// logged, never shown), an opaque 500 for anything else.
impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(error = %error, cause = ?std::error::Error::source(&error).map(ToString::to_string), "database unavailable");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            )
            .detail("The service cannot reach its database right now; retry shortly.")
            .retry_after(1);
        }
        Self::internal(&error)
    }
}

/// The one mapping of the domain's errors to problems.
impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Invalid credentials",
            )
            .detail("The tenant, email or password is not correct."),
            ServiceError::InvalidRefreshToken => Self::invalid_token("invalid_refresh_token")
                .detail("The refresh token is not valid."),
            ServiceError::InvalidToken(refusal) => {
                Self::invalid_token(refusal.code()).detail(refusal.to_string())
            }
            ServiceError::SessionEnded => {
                Self::invalid_token("invalid_token").detail("The token's session has ended.")
            }
            ServiceError::RestrictedToken => Self::invalid_token("restricted_token")
                .detail("This token can only enrol a second factor (POST /api/auth/mfa/totp/enroll)."),
            ServiceError::TenantMismatch => Self::tenant_mismatch(),
            ServiceError::SessionNotFound => Self::not_found().detail("No such active session."),
            ServiceError::NotFound => Self::not_found().detail("No such item in your tenant."),
            ServiceError::InvalidServiceToken => Self::invalid_token("invalid_token")
                .detail("The service token is not valid: unknown, revoked or expired."),
            ServiceError::EmailLookupDisabled => Self::new(
                StatusCode::FORBIDDEN,
                "exist_email_disabled",
                "Lookup disabled",
            )
            .detail("This tenant does not tell whether an address has an account."),
            ServiceError::EmailTaken => Self::new(StatusCode::CONFLICT, "email_taken", "Email taken")
                .detail("An account uses this address already: sign in, or reset its password."),
            ServiceError::Forbidden => Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
                .detail("Only an admin of the tenant may do this."),
            ServiceError::RateLimited {
                class,
                decision,
                quota,
            } => Self::too_many(class, decision, quota),
            ServiceError::Busy => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "Service busy")
                    .detail("Too many sign-ins are being checked right now; retry shortly.")
                    .retry_after(1)
            }
            ServiceError::TooSoon { retry_after_secs } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
            )
            .detail("Too many emails were asked for this account; retry after Retry-After seconds.")
            .retry_after(retry_after_secs),
            ServiceError::TenantNotFound => {
                Self::not_found_code("tenant_not_found").detail("No such tenant.")
            }
            ServiceError::RegistrationClosed => Self::new(
                StatusCode::FORBIDDEN,
                "registration_closed",
                "Registration closed",
            )
            .detail("This tenant does not accept new registrations."),
            ServiceError::EmailNotVerified => Self::new(
                StatusCode::FORBIDDEN,
                "email_not_verified",
                "Email not verified",
            )
            .detail("Confirm your email address with the link we sent, then sign in."),
            ServiceError::AlreadyVerified => Self::new(
                StatusCode::CONFLICT,
                "already_verified",
                "Already verified",
            )
            .detail("This email address is confirmed already."),
            ServiceError::InvalidInput { code, detail } => Self::bad_request(code, detail),
            ServiceError::Conflict { code, detail } => {
                Self::new(StatusCode::CONFLICT, code, "Conflict").detail(detail)
            }
            ServiceError::InvalidClient => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Invalid client",
            )
            .detail("The client is unknown or did not prove itself."),
            ServiceError::InvalidGrant(detail) => Self::bad_request("invalid_grant", detail),
            ServiceError::InvalidLink => Self::bad_request(
                "invalid_link",
                "This link is not valid: it was used already, has expired, or was replaced by a newer one.",
            ),
            ServiceError::InvalidCode => Self::bad_request(
                "invalid_code",
                "The code is not correct, has expired, or was replaced by a newer one.",
            ),
            ServiceError::InvalidMfaToken => Self::invalid_token("invalid_mfa_token").detail(
                "The sign-in step has expired, was used, or had too many wrong codes; sign in again.",
            ),
            ServiceError::WrongPassword => Self::new(
                StatusCode::FORBIDDEN,
                "wrong_password",
                "Wrong password",
            )
            .detail("The current password is not correct."),
            ServiceError::PasswordRequired => Self::new(
                StatusCode::FORBIDDEN,
                "password_required",
                "Password required",
            )
            .detail("Send your current password in `password`: a second factor changes only with it."),
            ServiceError::SecondFactorRequired => Self::new(
                StatusCode::FORBIDDEN,
                "mfa_required",
                "Second factor required",
            )
            .detail("This account signs in with its password and a second factor."),
            ServiceError::CaptchaFailed => {
                Self::bad_request("captcha_failed", "The captcha did not verify; try again.")
            }
            ServiceError::TotpActive => Self::new(
                StatusCode::CONFLICT,
                "totp_active",
                "Authenticator active",
            )
            .detail("An authenticator app is active; turn it off before enrolling another."),
            ServiceError::NoPendingTotp => Self::new(
                StatusCode::CONFLICT,
                "no_pending_totp",
                "No pending enrolment",
            )
            .detail("Start with POST /api/auth/mfa/totp/enroll."),
            ServiceError::NoTotp => {
                Self::not_found_code("no_totp").detail("No authenticator app is set up.")
            }
            ServiceError::Store(error) => Self::from(error),
            ServiceError::Signing(error) => Self::internal(&error),
        }
    }
}
