//! The security-header policy: one list, applied by the edge and by the origin to every response
//! they return, errors and 404s included.
//!
//! Names are lowercase, as HTTP/2 writes them; values are fixed strings so that the policy is
//! data that tests can compare against, not code scattered over middlewares.

/// Headers that every response carries.
///
/// The content security policy is the one for an API that serves JSON only: nothing may be
/// loaded from a response and no page may frame it.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "permissions-policy",
        "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), \
         fullscreen=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), \
         payment=(), picture-in-picture=(), publickey-credentials-get=(), usb=(), \
         screen-wake-lock=(), xr-spatial-tracking=()",
    ),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

/// Headers of the policy for which an answer may carry a value of its own, kept by the origin
/// and by the edge: the origin's hosted pages need a CSP that allows their one stylesheet and
/// their forms, and send no Referer at all (their URL holds a token); the OpenID sign-in page
/// may ask the browser for a passkey (`publickey-credentials-get=(self)`). Every other header
/// of the policy is always the policy's value.
pub const ANSWER_MAY_SET: &[&str] = &[
    "content-security-policy",
    "referrer-policy",
    "permissions-policy",
];

/// Headers that a response carrying a token or other secret adds (RFC 6749 §5.1), so that no
/// cache, shared or private, keeps it.
pub const TOKEN_RESPONSE_HEADERS: &[(&str, &str)] =
    &[("cache-control", "no-store"), ("pragma", "no-cache")];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_and_unique() {
        let mut names: Vec<&str> = SECURITY_HEADERS
            .iter()
            .chain(TOKEN_RESPONSE_HEADERS)
            .map(|(n, _)| *n)
            .collect();
        for name in &names {
            assert_eq!(*name, name.to_ascii_lowercase());
        }
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn the_policy_holds_what_the_api_documents_require() {
        let get = |n: &str| {
            SECURITY_HEADERS
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| *v)
        };
        assert_eq!(
            get("strict-transport-security"),
            Some("max-age=63072000; includeSubDomains")
        );
        assert_eq!(get("x-frame-options"), Some("DENY"));
        assert_eq!(get("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            get("referrer-policy"),
            Some("strict-origin-when-cross-origin")
        );
        assert!(get("permissions-policy").is_some_and(|v| v.contains("camera=()")));
    }
}
