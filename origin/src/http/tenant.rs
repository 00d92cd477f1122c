//! Which tenant a request names outside its body: core's one rule (`tessera_core::tenant`) over
//! this request's `X-Tenant` and `Host` (behind the edge, the host the edge vouches for: see
//! `middleware::edge_host`).

use axum::http::{header, HeaderMap};
use tessera_core::api::TENANT_HEADER;
use tessera_core::model::TenantSlug;
use tessera_core::tenant::NamedTenantError;

use super::problem::ApiError;
use crate::config::Config;

impl From<NamedTenantError> for ApiError {
    fn from(error: NamedTenantError) -> Self {
        match error {
            NamedTenantError::InvalidHeader => Self::bad_request(error.code(), error.to_string()),
            NamedTenantError::Conflict => Self::tenant_mismatch(),
        }
    }
}

/// The tenant a request names outside its body, if any; a malformed `X-Tenant` is a 400 and a
/// header and subdomain naming two tenants a 403.
pub fn named_by_request(
    headers: &HeaderMap,
    config: &Config,
) -> Result<Option<TenantSlug>, ApiError> {
    // A header that is not text cannot be a slug: the same 400 as a malformed one.
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    Ok(tessera_core::tenant::named(
        text(TENANT_HEADER),
        text(header::HOST.as_str()),
        config.base_domain.as_deref(),
    )?)
}

/// The tenant a canonical body is for: its `tenant` field when it has one (the service refuses
/// it when the headers name another), else the tenant the headers name, else the default
/// tenant: the order docs/API.md gives.
#[must_use]
pub fn of_body(body_tenant: Option<&str>, named: Option<&TenantSlug>, config: &Config) -> String {
    match body_tenant {
        Some(tenant) => tenant.to_owned(),
        None => named.unwrap_or(&config.default_tenant).to_string(),
    }
}

/// The tenant an API without a tenant in its bodies serves (VoiceStamp v1, team/vault, Back
/// Office v2): the one the headers name, else the configured default tenant.
pub fn served(headers: &HeaderMap, config: &Config) -> Result<TenantSlug, ApiError> {
    Ok(named_by_request(headers, config)?.unwrap_or_else(|| config.default_tenant.clone()))
}
