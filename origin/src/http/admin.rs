//! The operator API (`/api/admin/*`): the platform's own backend creates, lists, changes and
//! deletes tenants and creates a tenant's first admin, with an operator token. The same
//! services as `tessera tenant` and `tessera user create`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::api::Problem;
use tessera_core::model::TenantSlug;
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiQuery, OperatorCaller};
use super::problem::ApiError;
use super::users::{AdminUser, CreateUser, Role};
use crate::allowed_origin::AllowedOrigin;
use crate::app_url::AppUrl;
use crate::clock::rfc3339;
use crate::services::ServiceError;
use crate::state::AppState;
use crate::store::{Tenant, TenantChanges, TenantPolicy, TenantSettings};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/tenants", get(list_tenants).post(create_tenant))
        .route(
            "/api/admin/tenants/{slug}",
            get(get_tenant).patch(update_tenant).delete(delete_tenant),
        )
        .route("/api/admin/tenants/{slug}/users", post(create_first_admin))
}

/// Whether anyone may register.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Anyone may.
    Open,
    /// Only admins and the operator create accounts (403 `registration_closed`).
    Closed,
}

/// A tenant and its settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantBody {
    /// Slug: lowercase letters, digits and `-`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Creation (RFC 3339).
    pub created_at: String,
    /// Browser origins allowed to call the API (CORS).
    pub cors_origins: Vec<String>,
    /// Where the hosted pages send the user afterwards.
    pub app_url: Option<String>,
    /// Whether anyone may register.
    pub registration: Registration,
    /// Whether sign-in needs a confirmed address.
    pub require_verified_email: bool,
    /// Whether every sign-in needs a second factor.
    pub require_mfa: bool,
    /// Whether the team/vault API's `GET /api/exist-email/{email}` answers.
    pub exist_email: bool,
}

impl From<Tenant> for TenantBody {
    fn from(tenant: Tenant) -> Self {
        Self {
            slug: tenant.slug.to_string(),
            created_at: rfc3339(tenant.created_at),
            name: tenant.name,
            cors_origins: tenant.cors_origins,
            app_url: tenant.app_url,
            registration: if tenant.policy.registration_open {
                Registration::Open
            } else {
                Registration::Closed
            },
            require_verified_email: tenant.policy.require_verified_email,
            require_mfa: tenant.policy.require_mfa,
            exist_email: tenant.policy.email_lookup,
        }
    }
}

/// A new tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Slug: lowercase letters, digits and `-`, 3–56 characters.
    pub slug: String,
    /// Display name (default: the slug): not blank, at most 100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: Option<String>,
    /// Browser origins allowed to call the API, as `https://host[:port]`.
    #[serde(default)]
    pub cors_origins: Vec<OriginText>,
    /// Where the hosted pages send the user afterwards.
    #[schema(
        pattern = "^https?://([a-z0-9]+(-[a-z0-9]+)*\\.)*[a-z][a-z0-9]*(-[a-z0-9]+)*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]*)*$"
    )]
    pub app_url: Option<String>,
    /// Whether anyone may register (default `open`).
    pub registration: Option<Registration>,
    /// Whether sign-in needs a confirmed address (default false).
    #[serde(default)]
    pub require_verified_email: bool,
    /// Whether every sign-in needs a second factor (default false).
    #[serde(default)]
    pub require_mfa: bool,
    /// Whether `GET /api/exist-email/{email}` answers (default true).
    pub exist_email: Option<bool>,
}

/// Changes to a tenant's settings; what is left out stays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    /// Display name: not blank, at most 100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: Option<String>,
    /// Browser origins allowed to call the API; the list replaces the old one (`[]`: none).
    pub cors_origins: Option<Vec<OriginText>>,
    /// Where the hosted pages send the user afterwards (`""`: nowhere).
    #[schema(
        pattern = "^$|^https?://([a-z0-9]+(-[a-z0-9]+)*\\.)*[a-z][a-z0-9]*(-[a-z0-9]+)*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]*)*$"
    )]
    pub app_url: Option<String>,
    /// Whether anyone may register.
    pub registration: Option<Registration>,
    /// Whether sign-in needs a confirmed address.
    pub require_verified_email: Option<bool>,
    /// Whether every sign-in needs a second factor.
    pub require_mfa: Option<bool>,
    /// Whether `GET /api/exist-email/{email}` answers.
    pub exist_email: Option<bool>,
}

/// A tenant's deletion, confirmed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteTenant {
    /// The tenant's slug again.
    #[schema(max_length = 56)]
    pub confirm: String,
}

/// What a tenant's deletion ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantDeleted {
    /// Active sessions ended (each refused at the edge too).
    pub sessions_ended: usize,
    /// Service tokens revoked.
    pub tokens_revoked: usize,
}

/// A page of tenants.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    /// The tenants, newest first.
    pub tenants: Vec<TenantBody>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Which tenants.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// The `next_cursor` of the previous page.
    #[param(max_length = 512)]
    pub cursor: Option<String>,
    /// Tenants per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// A browser origin, as the document states its shape (the server's own check,
/// `AllowedOrigin::parse`, accepts at least these: a host's last label starts with a letter,
/// or URL parsing reads it as an IPv4 address; no `--`, which IDNA reads as punycode).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(value_type = String, pattern = "^https?://([a-z0-9]+(-[a-z0-9]+)*\\.)*[a-z][a-z0-9]*(-[a-z0-9]+)*(:[1-9][0-9]{0,3})?/?$")]
#[serde(transparent)]
pub struct OriginText(String);

fn invalid(code: &'static str, detail: impl Into<String>) -> ApiError {
    ServiceError::InvalidInput {
        code,
        detail: detail.into(),
    }
    .into()
}

fn display_name(given: &str) -> Result<String, ApiError> {
    Ok(crate::services::tenants::checked_name(given)?)
}

fn origins(given: &[OriginText]) -> Result<Vec<AllowedOrigin>, ApiError> {
    given
        .iter()
        .map(|o| AllowedOrigin::parse(&o.0).map_err(|e| invalid("invalid_origin", e.to_string())))
        .collect()
}

fn app_url(given: &str) -> Result<AppUrl, ApiError> {
    AppUrl::parse(given).map_err(|e| invalid("invalid_app_url", e.to_string()))
}

/// A tenant named in a path: an invalid slug names no tenant.
fn path_slug(slug: &str) -> Result<TenantSlug, ApiError> {
    TenantSlug::parse(slug).map_err(|_| ServiceError::TenantNotFound.into())
}

/// Create a tenant, with all its settings at once (operator token).
#[utoipa::path(post, path = "/api/admin/tenants", tag = "operator", security(("operator" = [])),
    request_body = CreateTenant,
    responses(
        (status = 201, description = "Created", body = TenantBody),
        (status = 400, description = "Malformed body, unknown field, bad slug, name, origin or URL", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid operator token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator token (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken (`tenant_exists`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_tenant(
    State(state): State<AppState>,
    OperatorCaller(actor): OperatorCaller,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<TenantBody>), ApiError> {
    let slug = TenantSlug::parse(&body.slug).map_err(|e| invalid("invalid_slug", e.to_string()))?;
    let settings = TenantSettings {
        name: match &body.name {
            Some(name) => display_name(name)?,
            None => slug.to_string(),
        },
        cors_origins: origins(&body.cors_origins)?,
        app_url: body.app_url.as_deref().map(app_url).transpose()?,
        relying_party: None,
        policy: TenantPolicy {
            registration_open: body.registration != Some(Registration::Closed),
            require_verified_email: body.require_verified_email,
            require_mfa: body.require_mfa,
            email_lookup: body.exist_email.unwrap_or(true),
        },
    };
    let tenant = state.services.tenants.create(&slug, &settings).await?;
    tracing::info!(tenant = %slug, by = %actor.by(), "tenant created");
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

/// List tenants, newest first, a page at a time (operator token).
#[utoipa::path(get, path = "/api/admin/tenants", tag = "operator", security(("operator" = [])),
    params(TenantQuery),
    responses(
        (status = 200, description = "A page of tenants", body = TenantList),
        (status = 400, description = "A malformed cursor (`invalid_cursor`), a limit outside 1–200 (`invalid_limit`), an unknown parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid operator token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator token (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_tenants(
    State(state): State<AppState>,
    _: OperatorCaller,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<Json<TenantList>, ApiError> {
    let page = state
        .services
        .tenants
        .page(query.cursor.as_deref(), query.limit)
        .await?;
    Ok(Json(TenantList {
        tenants: page.tenants.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A tenant and its settings (operator token).
#[utoipa::path(get, path = "/api/admin/tenants/{slug}", tag = "operator", security(("operator" = [])),
    params(("slug" = String, Path, description = "The tenant's slug")),
    responses(
        (status = 200, description = "The tenant", body = TenantBody),
        (status = 401, description = "Missing or invalid operator token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator token (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant (`tenant_not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_tenant(
    State(state): State<AppState>,
    _: OperatorCaller,
    Path(slug): Path<String>,
) -> Result<Json<TenantBody>, ApiError> {
    let tenant = state.services.tenants.get(&path_slug(&slug)?).await?;
    Ok(Json(tenant.into()))
}

/// Change a tenant's settings; what is left out stays (operator token). Other nodes apply
/// the change within 30 seconds.
#[utoipa::path(patch, path = "/api/admin/tenants/{slug}", tag = "operator", security(("operator" = [])),
    params(("slug" = String, Path, description = "The tenant's slug")),
    request_body = UpdateTenant,
    responses(
        (status = 200, description = "The tenant as it is now", body = TenantBody),
        (status = 400, description = "Malformed body, unknown field, bad name, origin or URL", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid operator token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator token (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant (`tenant_not_found`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_tenant(
    State(state): State<AppState>,
    OperatorCaller(actor): OperatorCaller,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<UpdateTenant>,
) -> Result<Json<TenantBody>, ApiError> {
    let slug = path_slug(&slug)?;
    let changes = TenantChanges {
        name: body.name.as_deref().map(display_name).transpose()?,
        cors_origins: body.cors_origins.as_deref().map(origins).transpose()?,
        app_url: match body.app_url.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(url) => Some(Some(app_url(url)?)),
        },
        relying_party: None,
        registration_open: body.registration.map(|r| r == Registration::Open),
        require_verified_email: body.require_verified_email,
        require_mfa: body.require_mfa,
        email_lookup: body.exist_email,
    };
    let tenant = state.services.tenants.update(&slug, &changes).await?;
    tracing::info!(tenant = %slug, by = %actor.by(), "tenant updated");
    Ok(Json(tenant.into()))
}

/// Delete a tenant (operator token): every session and service token of it ends, at the edge
/// too; its users and data go; the slug may be created again. The body repeats the slug.
#[utoipa::path(delete, path = "/api/admin/tenants/{slug}", tag = "operator", security(("operator" = [])),
    params(("slug" = String, Path, description = "The tenant's slug")),
    request_body = DeleteTenant,
    responses(
        (status = 200, description = "Deleted", body = TenantDeleted),
        (status = 400, description = "Malformed body, or `confirm` is not the slug (`confirmation_mismatch`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid operator token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator token (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant (`tenant_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The default tenant stays (`default_tenant`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    OperatorCaller(actor): OperatorCaller,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<DeleteTenant>,
) -> Result<Json<TenantDeleted>, ApiError> {
    let slug = path_slug(&slug)?;
    let deleted = state.services.tenants.delete(&slug, &body.confirm).await?;
    tracing::info!(tenant = %slug, by = %actor.by(), "tenant deleted by the operator API");
    Ok(Json(TenantDeleted {
        sessions_ended: deleted.sessions.len(),
        tokens_revoked: deleted.tokens,
    }))
}

/// Create a user of a tenant, by default its admin (`role` defaults to `admin` here), with a
/// password or an invitation (operator token).
#[utoipa::path(post, path = "/api/admin/tenants/{slug}/users", tag = "operator", security(("operator" = [])),
    params(("slug" = String, Path, description = "The tenant's slug")),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = AdminUser),
        (status = 400, description = "Malformed body, unknown field, bad address or role, weak password, a password and an invitation at once (`password_and_invite`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid operator token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator token (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant (`tenant_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The address has an account (`email_taken`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_first_admin(
    State(state): State<AppState>,
    OperatorCaller(actor): OperatorCaller,
    Path(slug): Path<String>,
    ApiJson(mut body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<AdminUser>), ApiError> {
    let slug = path_slug(&slug)?;
    body.role.get_or_insert(Role::Admin);
    let user = state
        .services
        .accounts
        .create(&slug, body.into_account()?, &actor)
        .await?;
    Ok((StatusCode::CREATED, Json(AdminUser::of(user, None))))
}
