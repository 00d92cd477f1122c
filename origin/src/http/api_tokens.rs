//! The canonical API's service-token area, for admins of a tenant: create, list and revoke
//! service API tokens (`/api/auth/api-tokens`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::api::Problem;
use utoipa::ToSchema;

use super::extract::{ApiJson, Auth};
use super::problem::ApiError;
use crate::clock::rfc3339;
use crate::services::api_tokens::NewApiToken;
use crate::services::Client;
use crate::state::AppState;
use crate::store::ApiToken;

/// The service-token routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/api-tokens", get(list).post(create))
        .route("/api/auth/api-tokens/{id}", delete(revoke))
}

/// A new service token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateRequest {
    /// Unique in the tenant, 1 to 100 printable characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: String,
    /// Scopes (letters, digits and `:._-`; at most 20).
    #[serde(default)]
    #[schema(value_type = Vec<Scope>, max_items = 20)]
    pub scopes: Vec<String>,
    /// Lifetime in days; absent: the token never expires.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub expires_in_days: Option<u32>,
}

/// A scope of a service token, as the document describes it.
#[derive(ToSchema)]
#[schema(pattern = "^[A-Za-z0-9:._-]{1,64}$")]
#[allow(dead_code)] // Only the schema is used: scopes travel as strings.
pub struct Scope(String);

/// A service token as listed (never the token itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenBody {
    /// Id: revoke with it.
    pub id: String,
    /// Name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; `null` never expires.
    pub expires_at: Option<String>,
    /// RFC 3339, to the minute; `null` never used.
    pub last_used_at: Option<String>,
    /// RFC 3339; `null` while active.
    pub revoked_at: Option<String>,
}

impl From<ApiToken> for ApiTokenBody {
    fn from(token: ApiToken) -> Self {
        Self {
            id: token.id,
            name: token.name,
            scopes: token.scopes,
            created_at: rfc3339(token.created_at),
            expires_at: token.expires_at.map(rfc3339),
            last_used_at: token.last_used_at.map(rfc3339),
            revoked_at: token.revoked_at.map(rfc3339),
        }
    }
}

/// A created service token: the only time the token is shown.
#[derive(Serialize, ToSchema)]
pub struct CreatedBody {
    /// The token (`tsr_sk_…`): send it as `Authorization: Bearer`. Shown once.
    pub token: String,
    /// Its record.
    #[serde(flatten)]
    pub record: ApiTokenBody,
}

/// Create a service API token (admins of the tenant).
#[utoipa::path(post, path = "/api/auth/api-tokens", tag = "api-tokens", security(("bearer" = [])),
    request_body = CreateRequest,
    responses(
        (status = 201, description = "Created; the token is in this answer only", body = CreatedBody),
        (status = 400, description = "Bad name (`invalid_name`), scope (`invalid_scope`) or lifetime (`invalid_expiry`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A token of the tenant has this name (`name_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin of the tenant (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<CreatedBody>), ApiError> {
    let new = NewApiToken {
        name: body.name,
        scopes: body.scopes,
        expires_in_days: body.expires_in_days,
    };
    let created = state
        .services
        .api_tokens
        .create_by(&auth, new, &client)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedBody {
            token: created.token,
            record: created.record.into(),
        }),
    ))
}

/// The tenant's service tokens, revoked ones included, newest first (admins of the tenant).
#[utoipa::path(get, path = "/api/auth/api-tokens", tag = "api-tokens", security(("bearer" = [])),
    responses(
        (status = 200, description = "The tokens (never their secrets)", body = [ApiTokenBody]),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin of the tenant (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Auth(auth): Auth,
) -> Result<Json<Vec<ApiTokenBody>>, ApiError> {
    let tokens = state.services.api_tokens.list_by(&auth).await?;
    Ok(Json(tokens.into_iter().map(Into::into).collect()))
}

/// Revoke a service token (admins of the tenant). The origin refuses it at once; the edge
/// within a second.
#[utoipa::path(delete, path = "/api/auth/api-tokens/{id}", tag = "api-tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin of the tenant (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such active token in the tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    client: Client,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .api_tokens
        .revoke_by(&auth, &id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
