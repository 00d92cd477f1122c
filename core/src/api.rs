//! API-wide rules and wire types that both the edge and the origin speak, so that a client
//! cannot tell which half answered.

use serde::{Deserialize, Serialize};

/// The largest request body accepted, in bytes; larger bodies get 413 `payload_too_large`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The request header that names a tenant (lowercase, as HTTP/2 sends it).
pub const TENANT_HEADER: &str = "x-tenant";

/// The token of an `Authorization: Bearer <token>` header value. The scheme is matched without
/// regard to case (RFC 9110 §11.1); the token is trimmed and must not be empty.
#[must_use]
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An RFC 9457 problem details body with Tessera's stable `code` member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URI naming the problem type; `about:blank` with `code` carrying the meaning.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// Stable machine-readable code, e.g. `invalid_credentials`.
    pub code: String,
    /// Human-readable explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
    /// Only on verification endpoints: always `false`, so that clients that read `valid` work.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub valid: Option<bool>,
    /// Only on VoiceStamp v1 routes: always `false`, as that API's clients read it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub success: Option<bool>,
    /// Only on VoiceStamp v1 routes: the detail (or title) again, under that API's name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
}

impl Problem {
    /// A problem with a status, a stable code, a title and an optional detail.
    #[must_use]
    pub fn new(status: u16, code: &str, title: &str, detail: Option<&str>) -> Self {
        Self {
            type_: "about:blank".to_owned(),
            title: title.to_owned(),
            status,
            code: code.to_owned(),
            detail: detail.map(str::to_owned),
            valid: None,
            success: None,
            message: None,
        }
    }

    /// This problem as VoiceStamp v1 clients read errors: with `success: false` and a
    /// `message`.
    #[must_use]
    pub fn for_voicestamp(mut self) -> Self {
        self.success = Some(false);
        self.message = Some(self.detail.clone().unwrap_or_else(|| self.title.clone()));
        self
    }
}

/// The user part of a verification answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifiedUser {
    /// User id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Role.
    pub role: String,
}

/// The answer of `GET /api/auth/verify` (and VoiceStamp's `GET /api/v1/auth/verify`) for a
/// valid token, from the edge or the origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyAnswer {
    /// Always `true` here; failures are 401 problems with `valid: false`.
    pub valid: bool,
    /// The token's user; for a service token, `id` is the token's id, `email` is empty and
    /// `role` is `service`.
    pub user: VerifiedUser,
    /// The token's tenant.
    pub tenant: String,
    /// When the token expires (RFC 3339); `null` for a service token without an expiry.
    pub expires_at: Option<String>,
    /// Present only for a service token: it names a service, not a user.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<ServiceAnswer>,
}

/// What a verification answers about a service token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceAnswer {
    /// The token's name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
}

/// The role a service token's principal has in a [`VerifyAnswer`].
pub const SERVICE_ROLE: &str = "service";

impl VerifyAnswer {
    /// The answer for a valid token of `user` in `tenant` expiring at `exp` (Unix seconds).
    #[must_use]
    pub fn new(user: VerifiedUser, tenant: String, exp: u64) -> Self {
        Self {
            valid: true,
            user,
            tenant,
            expires_at: Some(rfc3339(i64::try_from(exp).unwrap_or(i64::MAX))),
            service: None,
        }
    }

    /// The answer for a verified JWT, from its claims alone (docs/API.md, "The verification
    /// answer"): what the edge and the origin both answer.
    #[must_use]
    pub fn for_claims(claims: &crate::jwt::AccessClaims) -> Self {
        Self::new(
            VerifiedUser {
                id: claims.sub.clone(),
                email: claims.email.clone(),
                role: claims.role.clone(),
            },
            claims.tid.clone(),
            claims.exp,
        )
    }

    /// The answer for a valid service token.
    #[must_use]
    pub fn service(
        id: String,
        tenant: String,
        expires_at: Option<i64>,
        service: ServiceAnswer,
    ) -> Self {
        Self {
            valid: true,
            user: VerifiedUser {
                id,
                email: String::new(),
                role: SERVICE_ROLE.to_owned(),
            },
            tenant,
            expires_at: expires_at.map(rfc3339),
            service: Some(service),
        }
    }
}

/// RFC 3339 UTC text of Unix seconds, whole seconds, as the APIs' documents show times
/// (`2025-10-23T10:30:00Z`). Times before 1970 are written as 1970-01-01T00:00:00Z.
#[must_use]
pub fn rfc3339(unix_secs: i64) -> String {
    let secs = unix_secs.max(0);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, rfc3339};

    #[test]
    fn bearer_scheme_is_case_insensitive_and_the_token_required() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Basic abc"), None);
    }

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_761_215_400), "2025-10-23T10:30:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
    }
}
