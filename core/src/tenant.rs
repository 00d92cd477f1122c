//! The one rule for the tenant a request names outside its body, used by the edge and the
//! origin alike: the `X-Tenant` header, then the subdomain of the request's host under the
//! configured base domain, then (for the APIs whose bodies name no tenant) the default tenant.

use crate::model::TenantSlug;

/// Why a request's tenant cannot be worked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NamedTenantError {
    /// `X-Tenant` is not a valid tenant slug: 400 `invalid_tenant`.
    #[error("The X-Tenant header is not a valid tenant.")]
    InvalidHeader,
    /// `X-Tenant` and the host's subdomain name two different tenants: 403 `tenant_mismatch`.
    #[error("The request names two different tenants.")]
    Conflict,
}

/// The title of the 403 for a request that names another tenant than its token's.
pub const MISMATCH_TITLE: &str = "Tenant mismatch";
/// Its detail.
pub const MISMATCH_DETAIL: &str =
    "The request names a tenant other than the one its token was issued for.";

/// The 403 `tenant_mismatch` body both halves answer when a request names another tenant than
/// its token's.
#[must_use]
pub fn mismatch_problem() -> crate::api::Problem {
    crate::api::Problem::new(
        403,
        "tenant_mismatch",
        MISMATCH_TITLE,
        Some(MISMATCH_DETAIL),
    )
}

impl NamedTenantError {
    /// The problem body both halves answer with.
    #[must_use]
    pub fn problem(self) -> crate::api::Problem {
        match self {
            Self::InvalidHeader => {
                crate::api::Problem::new(400, self.code(), "Bad request", Some(&self.to_string()))
            }
            Self::Conflict => mismatch_problem(),
        }
    }

    /// The HTTP status both halves answer with.
    #[must_use]
    pub const fn status(self) -> u16 {
        match self {
            Self::InvalidHeader => 400,
            Self::Conflict => 403,
        }
    }

    /// The stable problem `code`.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::InvalidHeader => "invalid_tenant",
            Self::Conflict => "tenant_mismatch",
        }
    }
}

/// The subdomain label of `host` (which may carry a port) directly under `base_domain`, when it
/// is a valid tenant slug: `acme.auth.example.com` under `auth.example.com` is `acme`.
#[must_use]
pub fn subdomain_of(host: &str, base_domain: &str) -> Option<TenantSlug> {
    let host = host.split(':').next()?.to_ascii_lowercase();
    let base = base_domain.trim_matches('.').to_ascii_lowercase();
    let label = host.strip_suffix(base.as_str())?.strip_suffix('.')?;
    if label.contains('.') {
        return None;
    }
    TenantSlug::parse(label).ok()
}

/// The tenant a request names outside its body: `header` is the `X-Tenant` value, `host` the
/// host the client addressed (at the origin behind the edge, the one the edge vouches for), and
/// `base_domain` the configured `TESSERA_BASE_DOMAIN`. `None` when it names none.
pub fn named(
    header: Option<&str>,
    host: Option<&str>,
    base_domain: Option<&str>,
) -> Result<Option<TenantSlug>, NamedTenantError> {
    let header = header
        .map(|value| TenantSlug::parse(value).map_err(|_| NamedTenantError::InvalidHeader))
        .transpose()?;
    let subdomain = base_domain.and_then(|base| subdomain_of(host?, base));
    match (header, subdomain) {
        (Some(a), Some(b)) if a != b => Err(NamedTenantError::Conflict),
        (a, b) => Ok(a.or(b)),
    }
}

/// The tenant an API whose bodies name no tenant serves: the one the request names, else
/// `default`.
pub fn served(
    header: Option<&str>,
    host: Option<&str>,
    base_domain: Option<&str>,
    default: &TenantSlug,
) -> Result<TenantSlug, NamedTenantError> {
    Ok(named(header, host, base_domain)?.unwrap_or_else(|| default.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(s: &str) -> TenantSlug {
        TenantSlug::parse(s).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn header_then_subdomain_then_nothing() {
        let base = Some("auth.example.com");
        assert_eq!(named(Some("acme"), None, base), Ok(Some(slug("acme"))));
        assert_eq!(
            named(None, Some("acme.auth.example.com:8443"), base),
            Ok(Some(slug("acme")))
        );
        assert_eq!(
            named(Some("acme"), Some("ACME.auth.example.com"), base),
            Ok(Some(slug("acme")))
        );
        assert_eq!(named(None, Some("auth.example.com"), base), Ok(None));
        assert_eq!(named(None, Some("a.b.auth.example.com"), base), Ok(None));
        assert_eq!(named(None, Some("acme.auth.example.com"), None), Ok(None));
        assert_eq!(
            named(None, Some("acme.evilauth.example.com"), base),
            Ok(None)
        );
    }

    #[test]
    fn a_bad_or_conflicting_name_is_refused() {
        let base = Some("auth.example.com");
        assert_eq!(
            named(Some("no"), None, base),
            Err(NamedTenantError::InvalidHeader)
        );
        assert_eq!(
            named(Some("globex"), Some("acme.auth.example.com"), base),
            Err(NamedTenantError::Conflict)
        );
        assert_eq!(
            served(None, None, base, &slug("default")),
            Ok(slug("default"))
        );
    }
}
