//! Which tenant a request names outside its body.

use axum::http::HeaderMap;
use tessera_core::api::TENANT_HEADER;
use tessera_core::model::TenantSlug;

use super::problem::ApiError;
use crate::config::Config;

/// The tenants a request names outside its body: the `X-Tenant` header and the subdomain of
/// `Host` under the configured base domain. A request that names two different tenants this way
/// is refused; a malformed `X-Tenant` is a 400.
pub fn named_by_request(
    headers: &HeaderMap,
    config: &Config,
) -> Result<Option<TenantSlug>, ApiError> {
    let header = headers
        .get(TENANT_HEADER)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| TenantSlug::parse(s).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_tenant",
                        "The X-Tenant header is not a valid tenant.",
                    )
                })
        })
        .transpose()?;
    let subdomain = config.base_domain.as_deref().and_then(|base| {
        let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
        let host = host.split(':').next()?.to_ascii_lowercase();
        let label = host.strip_suffix(base)?.strip_suffix('.')?;
        TenantSlug::parse(label).ok()
    });
    match (header, subdomain) {
        (Some(a), Some(b)) if a != b => Err(ApiError::tenant_mismatch()),
        (a, b) => Ok(a.or(b)),
    }
}

/// The tenant an API without a tenant in its bodies serves (VoiceStamp v1, team/vault, Back
/// Office v2): the one the headers name, else the configured default tenant.
pub fn served(headers: &HeaderMap, config: &Config) -> Result<TenantSlug, ApiError> {
    Ok(named_by_request(headers, config)?.unwrap_or_else(|| config.default_tenant.clone()))
}
