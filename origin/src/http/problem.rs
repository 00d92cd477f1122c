//! The one API error type: every failure a client sees is RFC 9457 problem+json with a stable
//! `code`. Unexpected failures become an opaque 500 whose cause is logged, never shown.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem details body (RFC 9457) with Tessera's stable `code` member.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank` with `code` carrying the meaning.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// Short human-readable summary of the problem type.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// Stable machine-readable code, e.g. `invalid_credentials`.
    pub code: &'static str,
    /// Human-readable explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Only on `/verify` endpoints: always `false`, so seed clients that read `valid` work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
}

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

    /// 401 for every failed credential check, whatever failed, so that nothing tells an
    /// attacker whether the tenant or the account exists.
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Invalid credentials",
        )
        .detail("The tenant, email or password is not correct.")
    }

    /// 401: a missing, malformed, expired or revoked token.
    pub fn invalid_token(code: &'static str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, "Invalid token")
    }

    /// 403: the request names a tenant other than its token's.
    pub fn tenant_mismatch() -> Self {
        Self::new(StatusCode::FORBIDDEN, "tenant_mismatch", "Tenant mismatch")
            .detail("The request names a tenant other than the one its token was issued for.")
    }

    /// 404.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found")
    }

    /// 503 with `Retry-After`: the password-hashing queue is full.
    pub fn busy() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "Service busy")
            .detail("Too many sign-ins are being checked right now; retry shortly.")
            .retry_after(1)
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

    /// The body of this error.
    #[must_use]
    pub fn problem(&self) -> Problem {
        Problem {
            type_: "about:blank",
            title: self.title,
            status: self.status.as_u16(),
            code: self.code,
            detail: self.detail.clone(),
            valid: self.valid_false.then_some(false),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
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

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::internal(&error)
    }
}
